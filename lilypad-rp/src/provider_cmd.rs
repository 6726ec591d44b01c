//! `lilypad-rp run`, `doctor` and `mediate`: the provider daemon and the mediator.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use clap::Args;
use lilypad_cli_common::network::{Network, NetworkArgs, Role, ensure_registered};
use lilypad_sdk::{
    chain::{ChainClient, roles},
    core::{
        Address, U256,
        amount::{AmountStyle, parse_amount},
        offer::{ModuleId, ModulePolicy, ProviderBounds},
    },
    executor::Executor,
    job::ProviderClient,
    module::ModuleCache,
    provider::{EngineConfig, Fault, Mediator, MediatorConfig, ProviderEngine, ProviderStore},
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
    /// Price per job: tokens (`1.5`, `1.5 LP`) or base units (`1000wei`).
    #[arg(long, default_value = "1wei", value_parser = parse_amount)]
    price: U256,
    /// Price of one module, `MODULE_ID=PRICE` (repeatable).
    #[arg(long = "module-price", value_name = "ID=PRICE", value_parser = parse_module_price)]
    module_prices: Vec<(ModuleId, U256)>,
    /// Collateral escrowed per deal, slashed if results do not come in time: tokens
    /// (`0.5`, `0.5 LP`) or base units (`500wei`).
    #[arg(long, default_value = "0wei", value_parser = parse_amount)]
    timeout_collateral: U256,
    /// A mediator this provider trusts (repeatable) [default: every mediator registered on chain].
    #[arg(long = "mediator", value_name = "ADDR")]
    mediators: Vec<Address>,
    /// A module id this provider runs (repeatable), or `any`.
    #[arg(long = "allow-module", value_name = "ID|any", default_value = "any")]
    allow_modules: Vec<String>,
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
    /// Mine proof-of-work rounds on the CPU while idle (paused while a job runs).
    #[arg(long)]
    mine: bool,
    /// TEST ONLY: publish a stdout the job did not print, to test challenges and mediation.
    #[arg(long, hide = true)]
    fault_wrong_output: bool,
}

fn parse_module_price(s: &str) -> Result<(ModuleId, U256), String> {
    let (id, price) = s.split_once('=').ok_or("expected MODULE_ID=PRICE")?;
    let id: ModuleId =
        id.trim().parse().map_err(|_| format!("{id:?} is not a module id (32 bytes of hex)"))?;
    Ok((id, parse_amount(price).map_err(|e| e.to_string())?))
}

fn module_policy(items: &[String]) -> anyhow::Result<ModulePolicy> {
    if items.iter().any(|i| i == "any") {
        return Ok(ModulePolicy::Any);
    }
    let mut set = BTreeSet::new();
    for i in items {
        let id: ModuleId = i.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "--allow-module {i:?}: expected a module id (0x + 64 hex digits) or `any`"
            )
        })?;
        set.insert(id);
    }
    Ok(ModulePolicy::Only(set))
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

async fn setup(common: &Common, role: Role) -> anyhow::Result<Setup> {
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

async fn collateral_needed(chain: &ChainClient, offer: &OfferArgs) -> anyhow::Result<U256> {
    let params = chain.network_params().await?;
    let dearest = offer.module_prices.iter().map(|(_, p)| *p).fold(offer.price, U256::max);
    Ok(offer
        .timeout_collateral
        .saturating_add(dearest.saturating_mul(U256::from(params.results_collateral_multiple))))
}

/// The preflight checks; `opencl` probes the OpenCL platforms too. The daemon leaves
/// that to `doctor`: loading an OpenCL driver (pocl, via LLVM) installs signal handlers
/// that re-raise SIGTERM, so the daemon could not stop cleanly afterwards.
async fn run_checks(
    s: &Setup,
    offer: &OfferArgs,
    opencl: bool,
    amounts: AmountStyle,
) -> anyhow::Result<Vec<doctor::Check>> {
    let needed = collateral_needed(s.client.chain(), offer).await?;
    let cx = doctor::Context {
        executor: &s.executor,
        data_dir: &s.data_dir,
        chain: s.client.chain(),
        me: s.me,
        collateral_needed: needed,
        min_disk_mib: offer.min_disk_mib,
        amounts,
    };
    Ok(doctor::checks(&cx, opencl, Some(&s.solver), Some(&s.storage)).await)
}

fn amount_style() -> AmountStyle {
    lilypad_cli_common::amounts::style()
}

/// `lilypad-rp doctor`: the checks as a table; fails if one fails.
pub(crate) fn doctor(common: &Common, offer: &OfferArgs) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async {
        let s = setup(common, Role::Provider).await?;
        let checks = run_checks(&s, offer, true, amount_style()).await?;
        print!("{}", doctor::table(&checks));
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        if failed > 0 {
            anyhow::bail!("{failed} check(s) failed");
        }
        Ok(())
    })
}

/// Cancels on SIGINT/SIGTERM.
fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tracing::debug!("SIGINT and SIGTERM stop the daemon");
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
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
pub(crate) fn run(common: &Common, offer: &OfferArgs) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async {
        let s = setup(common, Role::Provider).await?;
        let checks = run_checks(&s, offer, false, amount_style()).await?;
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
        let mut spec = crate::spec::detect(&s.data_dir)?;
        if let Some(Ok(gpus)) = doctor::nvidia_gpus() {
            spec.gpus = gpus;
        }
        if let Some(c) = offer.cpu_millicores {
            spec.cpu_millicores = c;
        }
        if let Some(r) = offer.ram_mib {
            spec.ram_mib = r;
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
        let mut config = EngineConfig::new(&s.data_dir, spec, s.solver_address);
        config.modules = module_policy(&offer.allow_modules)?;
        config.default_price = offer.price;
        config.module_prices = offer.module_prices.iter().copied().collect::<BTreeMap<_, _>>();
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
        let cancel = cancel_on_signal();
        if offer.mine {
            let opts = lilypad_rp::mining::MineOptions::default();
            config.mining_pause = Some(Arc::clone(&opts.pause));
            let miner: Arc<dyn lilypad_rp::pow::Miner> = Arc::new(lilypad_rp::pow::CpuMiner::new());
            let (chain, cancel) = (chain.clone(), cancel.clone());
            tokio::spawn(async move {
                tokio::select! {
                    r = lilypad_rp::mining::mine(&chain, miner, &opts) => if let Err(e) = r {
                        tracing::error!("mining stopped: {e:#}");
                    },
                    () = cancel.cancelled() => {}
                }
            });
        }
        let store = ProviderStore::open(&s.data_dir.join("provider.db"))?;
        let engine = ProviderEngine::new(s.client, s.executor, store, config)?;
        // The first stdout line says the daemon is up (scripts and tests wait for it).
        println!("lilypad-rp provider {} running", engine.address());
        engine.run(&cancel).await?;
        Ok(())
    })
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
    fn amounts_and_policies_parse() {
        let id = B256::repeat_byte(7);
        assert_eq!(
            parse_module_price(&format!("{id}=1.5 LP")),
            Ok((id, U256::from(1_500_000_000_000_000_000u128)))
        );
        let e = parse_module_price(&format!("{id}=1e18")).expect_err("not an amount");
        assert!(e.contains("1e18") && e.contains("1500 wei"), "{e}");
        assert_eq!(module_policy(&["any".into()]).expect("any"), ModulePolicy::Any);
        let id = B256::repeat_byte(7);
        assert_eq!(
            module_policy(&[id.to_string()]).expect("one id"),
            ModulePolicy::Only([id].into_iter().collect())
        );
        let e = module_policy(&["cowsay".into()]).expect_err("not an id").to_string();
        assert!(e.contains("cowsay") && e.contains("any"), "{e}");
    }
}
