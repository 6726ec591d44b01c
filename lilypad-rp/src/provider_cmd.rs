//! `lilypad-rp run`, `doctor` and `mediate`: the provider daemon and the mediator.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context;
use clap::Args;
use lilypad_cli_common::network::{Network, NetworkArgs, Role, ensure_registered, load};
use lilypad_sdk::{
    chain::{ChainClient, NetworkConfig, roles, semver},
    core::{
        Address, U256,
        amount::{AmountStyle, parse_amount},
        offer::{ModuleId, ModulePolicy, ProviderBounds},
        slots::{Slot, SlotPlan},
        spec::MachineSpec,
    },
    executor::Executor,
    job::ProviderClient,
    module::ModuleCache,
    provider::{
        EngineConfig, Fault, Mediator, MediatorConfig, ProviderEngine, ProviderMetrics,
        ProviderStore,
    },
    solver::SolverClient,
    storage::StorageClient,
};
use tokio_util::sync::CancellationToken;

use crate::doctor::{self, Status};

/// The network and where state lives.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The key comes from WEB3_PRIVATE_KEY (on the local chain it defaults to the
    /// devnet's account for the role).
    #[command(flatten)]
    network: NetworkArgs,
    /// Where job data and the state database live [default: $LILYPAD_HOME/provider, else ~/.lilypad/provider].
    #[arg(long, env = "LILYPAD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The Docker containers' `lilypad.executor` label; two daemons sharing a dockerd need different names.
    #[arg(long, default_value = "lilypad-rp")]
    executor_name: String,
}

/// What to offer.
#[derive(Debug, Args)]
pub(crate) struct OfferArgs {
    /// Where deals pay this provider (its payments and collateral refunds) when that is
    /// not its signing key's address: a cold wallet, say. Signed in every offer.
    #[arg(long, env = "LILYPAD_PAYOUT", value_name = "ADDR")]
    payout: Option<Address>,
    /// Price per job: tokens (`1.5`, `1.5 LP`) or base units (`1000wei`).
    #[arg(long, default_value = "1wei", value_parser = parse_amount)]
    price: U256,
    /// Price of one module, `MODULE=PRICE` (repeatable); MODULE as in --allow-module.
    #[arg(long = "module-price", value_name = "MODULE=PRICE", value_parser = parse_module_price)]
    module_prices: Vec<(String, U256)>,
    /// Collateral escrowed per deal, slashed if results do not come in time: tokens
    /// (`0.5`, `0.5 LP`) or base units (`500wei`).
    #[arg(long, default_value = "0wei", value_parser = parse_amount)]
    timeout_collateral: U256,
    /// A mediator this provider trusts (repeatable) [default: every mediator registered on chain].
    #[arg(long = "mediator", value_name = "ADDR")]
    mediators: Vec<Address>,
    /// A module this provider runs (repeatable): a module id, a module reference that
    /// resolves to one (`cowsay:v0.0.4`, `github.com/org/repo:ref`, a local template
    /// directory), or `any`.
    #[arg(long = "allow-module", value_name = "ID|MODULE|any", default_value = "any")]
    allow_modules: Vec<String>,
    /// The base URL `name:version` references of --allow-module and --module-price
    /// expand against [default: Lilypad's module repositories on GitHub].
    #[arg(long, env = "LILYPAD_MODULE_BASE", value_name = "URL")]
    module_base: Option<String>,
    /// Seconds each resource offer lives; a fresh one is posted when it ends.
    #[arg(long, default_value_t = 600)]
    offer_ttl: u64,
    /// The shortest job timeout (seconds to submit results) accepted: a job with less
    /// time could only end with this provider's timeout collateral slashed.
    #[arg(long, env = "LILYPAD_MIN_JOB_TIMEOUT", default_value_t = 60)]
    min_job_timeout: u64,
    /// The largest results collateral multiple accepted (signed in every offer).
    #[arg(long, default_value_t = 4)]
    max_results_multiple: u32,
    /// The longest judge window accepted, in seconds (the pay waits on it).
    #[arg(long, default_value_t = 86_400)]
    max_judge_window: u32,
    /// The shortest mediate window accepted, in seconds.
    #[arg(long, default_value_t = 600)]
    min_mediate_window: u32,
    /// Attempts at fetching a job's module, image or input files before the job is
    /// reported on chain as impossible (the job creator is refunded, the collateral kept).
    #[arg(long, default_value_t = 3)]
    attempts_before_report: u32,
    /// Offer this many millicores instead of all cores.
    #[arg(long)]
    cpu_millicores: Option<u32>,
    /// Offer this much RAM (MiB) instead of all of it.
    #[arg(long)]
    ram_mib: Option<u64>,
    /// How the machine is split into slots, each with its own offer and running its
    /// own job: `auto` (one per GPU with a fair share of CPU, RAM and disk, plus a
    /// CPU-only slot; one slot without GPUs), a number of equal slots, or
    /// `;`-separated sizes (`gpus=2,cpu=8000,ram=32768;cpu=2000`; unsized resources
    /// are shared equally).
    #[arg(long, env = "LILYPAD_SLOTS", default_value = "auto", value_name = "auto|N|SIZES")]
    slots: SlotPlan,
    /// Most bytes of outputs a job may write, in MiB; over it the outputs are rejected.
    #[arg(long, default_value_t = 1024)]
    max_output_mib: u64,
    /// Seconds between polls of the solver (its event stream wakes the daemon sooner).
    #[arg(long, default_value_t = 2)]
    poll_secs: u64,
    /// Seconds kept between a job's end and its deal's deadline for publishing results.
    #[arg(long, default_value_t = 30)]
    submit_margin: u64,
    /// Least free disk space under the data dir, in MiB, for the preflight to pass.
    #[arg(long, default_value_t = 1024)]
    min_disk_mib: u64,
    /// Mine proof-of-work rounds while idle: on each GPU of the slots with the OpenCL
    /// miner, paused while a job runs on that GPU; without GPUs (or OpenCL GPU
    /// devices) on the CPU, paused while any job runs.
    #[arg(long)]
    mine: bool,
    /// TEST ONLY: with --mine, OpenCL CPU devices stand in for GPUs (no GPU in CI).
    #[arg(long, hide = true)]
    mine_opencl_cpu_as_gpu: bool,
    /// TEST ONLY: publish a stdout the job did not print, to test challenges and mediation.
    #[arg(long, hide = true)]
    fault_wrong_output: bool,
    /// TEST ONLY: publish embeddings turned to this cosine similarity from the computed
    /// ones (outputs/embeddings.json), to test mediation under a tolerance.
    #[arg(long, hide = true, value_name = "COSINE")]
    fault_skew_embeddings: Option<f64>,
}

fn parse_module_price(s: &str) -> Result<(String, U256), String> {
    // The price has no `=`; a module reference might.
    let (module, price) = s.rsplit_once('=').ok_or("expected MODULE=PRICE")?;
    if module.trim().is_empty() {
        return Err("expected MODULE=PRICE: the module is empty".into());
    }
    Ok((module.trim().to_owned(), parse_amount(price).map_err(|e| e.to_string())?))
}

/// The module id `item` names: an id as is, else a module reference resolved through
/// `cache` (a git repository is fetched: the id commits to its exact commit).
fn module_id(flag: &str, item: &str, cache: &ModuleCache) -> anyhow::Result<ModuleId> {
    let item = item.trim();
    if let Ok(id) = item.parse::<ModuleId>() {
        return Ok(id);
    }
    let resolved = cache.resolve_str(item).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {item:?}: not a module id (0x + 64 hex digits), and as a module reference: {e}"
        )
    })?;
    tracing::info!(module = item, id = %resolved.id, "{flag} resolved");
    Ok(resolved.id)
}

fn module_policy(items: &[String], cache: &ModuleCache) -> anyhow::Result<ModulePolicy> {
    if items.iter().any(|i| i == "any") {
        return Ok(ModulePolicy::Any);
    }
    let mut set = BTreeSet::new();
    for i in items {
        set.insert(module_id("--allow-module", i, cache)?);
    }
    Ok(ModulePolicy::Only(set))
}

/// The module cache names in the offer flags resolve through.
fn offer_modules(data_dir: &std::path::Path, offer: &OfferArgs) -> ModuleCache {
    let cache = ModuleCache::new(data_dir.join("modules"));
    match &offer.module_base {
        Some(base) => cache.with_base(base.clone()),
        None => cache,
    }
}

/// Everything a provider or a mediator talks to.
struct Setup {
    client: ProviderClient,
    solver: SolverClient,
    storage: StorageClient,
    executor: Executor,
    data_dir: PathBuf,
    me: Address,
    /// The solver's own address (it creates the deals).
    solver_address: Address,
}

/// Refuses to run a provider older than the network's `min_provider_version`.
fn check_version(config: &NetworkConfig, ours: &str) -> anyhow::Result<()> {
    let Some(min) = &config.min_provider_version else { return Ok(()) };
    let ours = semver::Version::parse(ours)
        .with_context(|| format!("this lilypad-rp's own version {ours:?}"))?;
    if ours < *min {
        anyhow::bail!(
            "this lilypad-rp is version {ours}, and network {} requires at least {min} \
             (min_provider_version in its network file): update lilypad-rp (`git pull && \
             cargo install --path lilypad-rp`) and start it again",
            config.name
        );
    }
    Ok(())
}

async fn setup(common: &Common, role: Role) -> anyhow::Result<Setup> {
    check_version(&load(&common.network)?, env!("CARGO_PKG_VERSION"))?;
    let network = Network::open(&common.network, role).await?;
    let me = network.me();
    let solver = network.solver()?;
    let storage = network.storage()?;
    let data_dir = match &common.data_dir {
        Some(d) => d.clone(),
        None => network.home.join("provider"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    let modules = ModuleCache::new(data_dir.join("modules"));
    let client = ProviderClient::new(network.chain, solver.clone(), storage.clone(), modules);
    let executor = Executor::connect()?.with_name(common.executor_name.clone());
    Ok(Setup {
        client,
        solver,
        storage,
        executor,
        data_dir,
        me,
        solver_address: network.solver_address,
    })
}

/// What the machine offers: detected (GPUs from `nvidia-smi`), less what the flags
/// hold back.
fn machine(data_dir: &std::path::Path, offer: &OfferArgs) -> anyhow::Result<MachineSpec> {
    let mut spec = crate::spec::detect(data_dir)?;
    if let Some(Ok(gpus)) = doctor::nvidia_gpus() {
        spec.gpus = gpus;
    }
    if let Some(c) = offer.cpu_millicores {
        spec.cpu_millicores = c;
    }
    if let Some(r) = offer.ram_mib {
        spec.ram_mib = r;
    }
    Ok(spec)
}

/// The slots `--slots` makes of the machine.
fn slots(data_dir: &std::path::Path, offer: &OfferArgs) -> anyhow::Result<Vec<Slot>> {
    let machine = machine(data_dir, offer)?;
    offer.slots.split(&machine).with_context(|| format!("--slots {}", offer.slots))
}

/// One line per slot: its name and size.
fn describe(slot: &Slot) -> String {
    let gpus = match slot.gpu_indexes.as_slice() {
        [] => String::new(),
        ids => format!(
            ", GPU {} ({})",
            ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            slot.spec.gpus.iter().map(|g| g.model.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "{}: {} millicores, {} MiB RAM, {} MiB disk{gpus}",
        slot.name, slot.spec.cpu_millicores, slot.spec.ram_mib, slot.spec.disk_mib
    )
}

/// Collateral escrowed at worst while every slot's offer is a deal: per deal, the
/// timeout collateral plus the results collateral of the dearest price.
async fn collateral_needed(
    chain: &ChainClient,
    offer: &OfferArgs,
    slots: usize,
) -> anyhow::Result<U256> {
    let params = chain.network_params().await?;
    let dearest = offer.module_prices.iter().map(|(_, p)| *p).fold(offer.price, U256::max);
    Ok(offer
        .timeout_collateral
        .saturating_add(dearest.saturating_mul(U256::from(params.results_collateral_multiple)))
        .saturating_mul(U256::from(slots.max(1))))
}

/// The preflight checks; `opencl` probes the OpenCL platforms too. The daemon leaves
/// that to `doctor`: it loads OpenCL only to mine on GPUs, after its own signal
/// handlers are in place (an OpenCL driver built on LLVM, as pocl, installs handlers
/// that re-raise SIGTERM; see `provider_mining`).
async fn run_checks(
    s: &Setup,
    offer: &OfferArgs,
    slots: &anyhow::Result<Vec<Slot>>,
    opencl: bool,
    amounts: AmountStyle,
) -> anyhow::Result<Vec<doctor::Check>> {
    let needed =
        collateral_needed(s.client.chain(), offer, slots.as_ref().map_or(1, Vec::len)).await?;
    let cx = doctor::Context {
        executor: &s.executor,
        data_dir: &s.data_dir,
        chain: s.client.chain(),
        me: s.me,
        collateral_needed: needed,
        min_disk_mib: offer.min_disk_mib,
        amounts,
    };
    let mut checks = doctor::checks(&cx, opencl, Some(&s.solver), Some(&s.storage)).await;
    checks.push(match slots {
        Ok(slots) => doctor::Check::new(
            "slots",
            Status::Ok,
            format!(
                "{} ({})",
                slots.len(),
                slots.iter().map(describe).collect::<Vec<_>>().join("; ")
            ),
        ),
        Err(e) => doctor::Check::new("slots", Status::Fail, format!("{e:#}")),
    });
    Ok(checks)
}

fn amount_style() -> AmountStyle {
    lilypad_cli_common::amounts::style()
}

/// `lilypad-rp doctor`: the checks as a table; fails if one fails.
pub(crate) fn doctor(common: &Common, offer: &OfferArgs) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async {
        let s = setup(common, Role::Provider).await?;
        let slots = slots(&s.data_dir, offer);
        let checks = run_checks(&s, offer, &slots, true, amount_style()).await?;
        print!("{}", doctor::table(&checks));
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        if failed > 0 {
            anyhow::bail!("{failed} check(s) failed");
        }
        Ok(())
    })
}

/// Cancels on SIGINT/SIGTERM. The handlers are installed when this returns (not
/// when the task first runs): an OpenCL driver loaded afterwards keeps them working,
/// one loaded before would kill the process on SIGTERM (see `provider_mining`).
fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(int), Ok(term)) => Some((int, term)),
            _ => None,
        }
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        match signals {
            Some((mut int, mut term)) => {
                tracing::debug!("SIGINT and SIGTERM stop the daemon");
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        // A job being run is abandoned: its container is removed, and the deal runs
        // again at the next start (its results were not published).
        tracing::info!("stopping");
        t.cancel();
    });
    token
}

/// `lilypad-rp run`.
pub(crate) fn run(
    common: &Common,
    offer: &OfferArgs,
    metrics_addr: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async {
        let s = setup(common, Role::Provider).await?;
        // Detected once (nvidia-smi is slow): the preflight checks these slots, the
        // engine offers them.
        let slots = slots(&s.data_dir, offer);
        let checks = run_checks(&s, offer, &slots, false, amount_style()).await?;
        for c in &checks {
            match c.status {
                Status::Fail => anyhow::bail!(
                    "preflight {}: {}\n  (`lilypad-rp doctor` lists every check)",
                    c.name,
                    c.detail
                ),
                Status::Note => tracing::info!(check = c.name, "{}", c.detail),
                Status::Ok => tracing::debug!(check = c.name, "{}", c.detail),
            }
        }
        let slots = slots?;
        for slot in &slots {
            tracing::info!("slot {}", describe(slot));
        }
        match ensure_registered(s.client.chain(), Role::Provider, "").await? {
            Some(line) => tracing::info!("{line}"),
            None => tracing::info!(account = %s.me, "registered on chain as a resource provider"),
        }
        let chain = s.client.chain().clone();
        let mediators: BTreeSet<Address> = if offer.mediators.is_empty() {
            let n = chain.member_count(roles::MEDIATOR).await?;
            chain.members(roles::MEDIATOR, 0, n).await?.into_iter().collect()
        } else {
            offer.mediators.iter().copied().collect()
        };
        if mediators.is_empty() {
            anyhow::bail!("no mediator: none is registered on chain; pass --mediator ADDR");
        }
        let mut config = EngineConfig::new(&s.data_dir, MachineSpec::default(), s.solver_address);
        config.slots = slots;
        // Names resolve through git: off the async threads.
        let (modules, module_prices) = {
            let cache = offer_modules(&s.data_dir, offer);
            let allow = offer.allow_modules.clone();
            let prices = offer.module_prices.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let modules = module_policy(&allow, &cache)?;
                let prices = prices
                    .iter()
                    .map(|(m, p)| Ok((module_id("--module-price", m, &cache)?, *p)))
                    .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
                Ok((modules, prices))
            })
            .await??
        };
        config.modules = modules;
        if let Some(payout) = offer.payout {
            tracing::info!(%payout, "deals pay this payout address, not the signing key");
        }
        config.payout = offer.payout;
        config.default_price = offer.price;
        config.module_prices = module_prices;
        config.timeout_collateral = offer.timeout_collateral;
        config.mediators = mediators;
        config.bounds = ProviderBounds {
            min_timeout_secs: offer.min_job_timeout.max(1),
            max_results_multiple: offer.max_results_multiple,
            max_judge_window_secs: offer.max_judge_window,
            min_mediate_window_secs: offer.min_mediate_window.max(1),
        };
        config.attempts_before_report = offer.attempts_before_report.max(1);
        config.offer_ttl = Duration::from_secs(offer.offer_ttl.max(10));
        config.poll_interval = Duration::from_secs(offer.poll_secs.max(1));
        config.submit_margin = Duration::from_secs(offer.submit_margin);
        config.max_output_bytes = offer.max_output_mib.saturating_mul(1024 * 1024);
        if offer.fault_wrong_output {
            tracing::warn!(
                "--fault-wrong-output: this provider publishes wrong results (test only)"
            );
            config.fault = Some(Fault::WrongOutput);
        }
        if let Some(c) = offer.fault_skew_embeddings {
            anyhow::ensure!(
                (0.0..=1.0).contains(&c),
                "--fault-skew-embeddings takes a cosine in [0, 1], not {c}"
            );
            tracing::warn!(
                "--fault-skew-embeddings {c}: this provider publishes skewed embeddings (test only)"
            );
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // in [0, 1e6]
            let cosine_ppm = (c * 1e6).round() as u32;
            config.fault = Some(Fault::SkewEmbeddings { cosine_ppm });
        }
        // Before any OpenCL driver loads: see `provider_mining` on SIGTERM.
        let cancel = cancel_on_signal();
        if offer.mine {
            crate::provider_mining::start(
                &chain,
                &mut config,
                offer.mine_opencl_cpu_as_gpu,
                &cancel,
            )
            .await;
        }
        let store = ProviderStore::open(&s.data_dir.join("provider.db"))?;
        let engine = ProviderEngine::new(s.client, s.executor, store, config)?;
        if let Some(addr) = metrics_addr {
            serve_metrics(addr, engine.metrics().clone(), &cancel).await?;
        }
        // The first stdout line says the daemon is up (scripts and tests wait for it).
        println!("lilypad-rp provider {} running", engine.address());
        engine.run(&cancel).await?;
        Ok(())
    })
}

/// Binds `addr` (before the daemon says it runs, so a taken port stops it) and serves
/// `metrics` at `/metrics` until `cancel` fires.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: ProviderMetrics,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-addr {addr}: cannot listen there"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!("metrics at http://{bound}/metrics");
    let shutdown = cancel.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) =
            lilypad_sdk::metrics::serve(listener, move || metrics.render(), shutdown).await
        {
            tracing::error!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(())
}

/// `lilypad-rp mediate`.
pub(crate) fn mediate(common: &Common, from_block: Option<u64>) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async {
        let s = setup(common, Role::Mediator).await?;
        let info = s.executor.preflight().await?;
        tracing::info!("dockerd {} (API {})", info.server_version, info.api_version);
        match ensure_registered(s.client.chain(), Role::Mediator, "").await? {
            Some(line) => tracing::info!("{line}"),
            None => tracing::info!(account = %s.me, "registered on chain as a mediator"),
        }
        let mut config = MediatorConfig::new(s.data_dir.join("mediator"));
        config.from_block = from_block;
        let mediator = Mediator::new(s.client, s.executor, config)?;
        let cancel = cancel_on_signal();
        println!("lilypad-rp mediator {} running", s.me);
        mediator.run(&cancel).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use lilypad_sdk::core::B256;

    use super::*;

    #[test]
    fn providers_older_than_the_network_allows_are_refused() {
        let mut config = NetworkConfig::local();
        check_version(&config, "0.1.0").expect("no minimum");
        config.min_provider_version = Some("0.2.0".parse().unwrap());
        for ok in ["0.2.0", "0.2.1", "1.0.0"] {
            check_version(&config, ok).expect(ok);
        }
        for old in ["0.1.9", "0.2.0-rc.1", "0.0.1"] {
            let e = check_version(&config, old).expect_err(old).to_string();
            assert!(e.contains(old) && e.contains("at least 0.2.0") && e.contains("update"), "{e}");
        }
    }

    #[test]
    fn module_prices_parse() {
        let id = B256::repeat_byte(7);
        assert_eq!(
            parse_module_price(&format!("{id}=1.5 LP")),
            Ok((id.to_string(), U256::from(1_500_000_000_000_000_000u128)))
        );
        assert_eq!(
            parse_module_price("cowsay:v0.0.4=2wei"),
            Ok(("cowsay:v0.0.4".to_owned(), U256::from(2)))
        );
        let e = parse_module_price(&format!("{id}=1e18")).expect_err("not an amount");
        assert!(e.contains("1e18") && e.contains("1500 wei"), "{e}");
        assert!(parse_module_price("=1wei").is_err());
    }

    /// A module repository as Lilypad names them (`lilypad-module-NAME`), tagged
    /// `version`, made with the real git; returns the base URL and the commit.
    fn git_module(dir: &std::path::Path, version: &str) -> (String, String) {
        let repo = dir.join("lilypad-module-cowsay");
        std::fs::create_dir_all(&repo).unwrap();
        let src =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/modules/cowsay");
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), repo.join(entry.file_name())).unwrap();
        }
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(&repo)
                .output()
                .expect("git must be installed");
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        git(&["init", "--quiet"]);
        git(&["add", "."]);
        git(&["commit", "--quiet", "-m", "module"]);
        git(&["tag", version]);
        (format!("file://{}/lilypad-module-", dir.display()), git(&["rev-parse", "HEAD"]))
    }

    #[test]
    fn allowlists_take_ids_names_and_local_templates() {
        let dir = tempfile::tempdir().unwrap();
        let (base, commit) = git_module(dir.path(), "v0.0.4");
        let cache = ModuleCache::new(dir.path().join("cache")).with_base(base.clone());

        // By name: the id commits to the repository and its exact commit.
        let url = format!("{base}cowsay");
        let expected = lilypad_sdk::core::inputs::ModuleSource::Git { url, commit }.module_id();
        let by_name = module_id("--allow-module", "cowsay:v0.0.4", &cache).expect("by name");
        assert_eq!(by_name, expected);
        // By id, as before; `any` wins over the rest.
        assert_eq!(
            module_policy(&[expected.to_string(), "cowsay:v0.0.4".into()], &cache).unwrap(),
            ModulePolicy::Only([expected].into_iter().collect())
        );
        assert_eq!(module_policy(&["any".into()], &cache).unwrap(), ModulePolicy::Any);
        // A local template directory.
        let local =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/modules/cowsay");
        let local_id = module_id("--allow-module", local.to_str().unwrap(), &cache).unwrap();
        assert_ne!(local_id, expected);

        // Names that do not resolve say which flag, which item and why.
        let e = module_policy(&["cowsay:v9.9.9".into()], &cache).unwrap_err().to_string();
        assert!(e.contains("--allow-module \"cowsay:v9.9.9\"") && e.contains("v9.9.9"), "{e}");
        let e = module_id("--module-price", "not a module", &cache).unwrap_err().to_string();
        assert!(e.contains("--module-price") && e.contains("0x + 64 hex digits"), "{e}");
    }
}
