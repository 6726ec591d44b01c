//! `lilypad-cli devnet ...`: a throwaway local network (anvil + every contract).

use std::{path::PathBuf, time::Duration};

use anyhow::Context;

use crate::spinner::spinner;

use super::services;
use clap::{Args, Subcommand};
use lilypad_sdk::{
    chain::{ChainClient, NetworkConfig},
    core::amount::format_tokens,
    devnet::{self, ACCOUNT_ROLES, ANVIL_KEYS, Devnet, DevnetOptions, files},
};

/// How long `up` may take in all (anvil start, deployments, funding).
const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// How long `status` may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `down` waits for anvil to exit.
const DOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long each background service may take to listen.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(30);

/// Devnet subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start anvil in the background, deploy and wire every contract, fund anvil's
    /// well-known accounts and write a network file.
    ///
    /// Example: lilypad-cli devnet up && export LILYPAD_NETWORK=~/.lilypad/devnet/network.toml
    Up(UpArgs),
    /// Show the running devnet: block, contracts, balances.
    Status(DirArgs),
    /// Stop the devnet's anvil and remove its state.
    Down(DirArgs),
}

/// Where the devnet keeps its state.
#[derive(Debug, Args)]
pub(crate) struct DirArgs {
    /// State directory (network.toml, anvil.pid, anvil.log) [default: $LILYPAD_HOME/devnet,
    /// else ~/.lilypad/devnet].
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Arguments of `devnet up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The anvil binary [default: $ANVIL, then node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
    /// here or in a parent directory, then PATH].
    #[arg(long, value_name = "PATH")]
    anvil: Option<PathBuf>,
}

pub(crate) fn state_dir(args: &DirArgs) -> anyhow::Result<PathBuf> {
    if let Some(d) = &args.dir {
        return Ok(d.clone());
    }
    Ok(lilypad_cli_common::network::home().context("pass --dir")?.join("devnet"))
}

pub(crate) fn run(cmd: DevnetCommand) -> anyhow::Result<()> {
    match cmd {
        DevnetCommand::Up(args) => lilypad_cli_common::block_on(up(&args)),
        DevnetCommand::Status(args) => lilypad_cli_common::block_on(status(&args)),
        DevnetCommand::Down(args) => lilypad_cli_common::block_on(down(&args)),
    }
}

async fn up(args: &UpArgs) -> anyhow::Result<()> {
    let dir = state_dir(&args.dir)?;
    devnet::check_free(&dir).map_err(|e| {
        anyhow::Error::from(e)
            .context(format!("stop it with `lilypad-cli devnet down{}` first", dir_flag(&dir)))
    })?;
    let mut opts = DevnetOptions::new(&dir);
    opts.port = args.port;
    opts.anvil = args.anvil.clone();
    let solver_port = services::free_port()?;
    let storage_port = services::free_port()?;
    opts.solver_url = format!("http://127.0.0.1:{solver_port}");
    opts.storage_url = format!("http://127.0.0.1:{storage_port}");
    // It outlives this command: a Ctrl-C in this terminal later must not stop it.
    opts.background = true;
    let bar = spinner();
    let progress = |msg: &str| bar.set_message(msg.to_owned());
    let started = tokio::time::timeout(UP_TIMEOUT, Devnet::start(&opts, &progress)).await;
    bar.finish_and_clear();
    let devnet = match started {
        Err(_) => anyhow::bail!(
            "the devnet did not come up within {}s; see {}",
            UP_TIMEOUT.as_secs(),
            dir.join(files::LOG).display()
        ),
        Ok(r) => r?,
    };
    let network_file = devnet.network_file();
    let (config, pid) = devnet.detach()?;
    let bar = spinner();
    bar.set_message("starting the content store and the solver");
    let started = start_services(&dir, &network_file, storage_port, solver_port).await;
    bar.finish_and_clear();
    if let Err(e) = started {
        let _ = down_all(&dir).await;
        return Err(e.context("the devnet's services did not start; the devnet was stopped"));
    }
    print_up(&config, pid, &dir, &network_file, &opts);
    Ok(())
}

/// Where a service answers (the provider has no port).
fn service_url<'a>(config: &'a NetworkConfig, name: &str) -> &'a Option<String> {
    static NONE: Option<String> = None;
    match name {
        "solver" => &config.solver_url,
        "storage" => &config.storage_url,
        _ => &NONE,
    }
}

/// Names of the devnet's services, in start order.
const SERVICES: [&str; 3] = ["storage", "solver", "provider"];

async fn start_services(
    dir: &std::path::Path,
    network_file: &std::path::Path,
    storage_port: u16,
    solver_port: u16,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating lilypad-cli")?;
    let store = dir.join("store").display().to_string();
    let storage_args = ["storage", "serve", "--dir", &store, "--listen"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("127.0.0.1:{storage_port}")])
        .collect::<Vec<_>>();
    services::spawn(dir, "storage", &exe, &storage_args, &[])?;
    services::wait_listening(dir, "storage", storage_port, SERVICE_TIMEOUT).await?;
    let solver_args = vec![
        "solver".to_owned(),
        "--network".to_owned(),
        network_file.display().to_string(),
        "--db".to_owned(),
        dir.join("solver.db").display().to_string(),
        "--listen".to_owned(),
        format!("127.0.0.1:{solver_port}"),
    ];
    let key = ANVIL_KEYS[devnet::SOLVER];
    services::spawn(dir, "solver", &exe, &solver_args, &[("WEB3_PRIVATE_KEY", key)])?;
    services::wait_listening(dir, "solver", solver_port, SERVICE_TIMEOUT).await?;
    // The provider is the other binary; when it sits beside this one (a cargo build or
    // install puts both there), it runs too, offering this machine through Docker.
    let rp = exe.with_file_name("lilypad-rp");
    if rp.is_file() {
        let rp_args = vec![
            "run".to_owned(),
            "--network".to_owned(),
            network_file.display().to_string(),
            "--data-dir".to_owned(),
            dir.join("provider").display().to_string(),
            "--allow-module".to_owned(),
            "any".to_owned(),
            "--min-disk-mib".to_owned(),
            "50".to_owned(),
        ];
        let key = ANVIL_KEYS[devnet::PROVIDER];
        services::spawn(dir, "provider", &rp, &rp_args, &[("WEB3_PRIVATE_KEY", key)])?;
        // It has no port: give it a moment to fail loudly (Docker missing) or start.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if services::running(dir, "provider").is_none() {
            anyhow::bail!(
                "the provider (lilypad-rp run) exited at start; its log:\n{}",
                services::tail(&services::log_file(dir, "provider"))
            );
        }
    }
    Ok(())
}

/// Stops the services, removes their state, stops anvil.
async fn down_all(dir: &std::path::Path) -> anyhow::Result<Option<u32>> {
    for name in SERVICES.iter().rev() {
        services::stop(dir, name, DOWN_TIMEOUT).await?;
        let _ = std::fs::remove_file(services::log_file(dir, name));
    }
    for f in ["solver.db", "solver.db-wal", "solver.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let _ = std::fs::remove_dir_all(dir.join("store"));
    let _ = std::fs::remove_dir_all(dir.join("provider"));
    Ok(devnet::stop_detached(dir, DOWN_TIMEOUT).await?)
}

fn print_up(
    config: &NetworkConfig,
    pid: u32,
    dir: &std::path::Path,
    network_file: &std::path::Path,
    opts: &DevnetOptions,
) {
    let rpc = config.rpc_urls.first().map_or("", String::as_str);
    println!("devnet up: anvil (pid {pid}) at {rpc}, chain id {}", config.chain_id);
    for name in SERVICES {
        let url = service_url(config, name);
        if name == "provider" && services::running(dir, name).is_none() {
            println!(
                "  provider not started: no lilypad-rp beside lilypad-cli (run `lilypad-rp run --network local`)"
            );
            continue;
        }
        println!(
            "  {name:<8} pid {} at {}  (log {})",
            services::running(dir, name).map_or_else(|| "?".into(), |p| p.to_string()),
            url.as_deref().unwrap_or("(no port)"),
            services::log_file(dir, name).display()
        );
    }
    println!("state:     {}", dir.display());
    println!("network:   {}", network_file.display());
    println!();
    println!("contracts:");
    for (name, address) in config.contracts.named() {
        println!("  {name:<11} {address}");
    }
    println!();
    println!(
        "accounts (anvil's well-known test keys: never use them on a real network; {} each):",
        crate::amounts::show(opts.fund)
    );
    for (i, (key, role)) in ANVIL_KEYS.iter().zip(ACCOUNT_ROLES).enumerate() {
        println!("  {i} {} {key}  {role}", devnet::anvil_address(i));
    }
    println!();
    println!("use it:");
    println!("  lilypad-cli run ./examples/modules/cowsay -i Message=moo   # needs a provider");
    println!("  export LILYPAD_NETWORK={}", network_file.display());
    println!("  lilypad-cli devnet status{}", dir_flag(dir));
    println!("  export WEB3_PRIVATE_KEY={}   # the job creator (account 3)", ANVIL_KEYS[3]);
    println!(
        "  on-chain jobs: the bridge is account {} (job timeout {}s)",
        devnet::BRIDGE,
        opts.job_timeout_secs
    );
    println!("stop it:");
    println!("  lilypad-cli devnet down{}", dir_flag(dir));
}

/// ` --dir D` when `D` is not the default directory, for the hints.
fn dir_flag(dir: &std::path::Path) -> String {
    match state_dir(&DirArgs { dir: None }) {
        Ok(default) if default == dir => String::new(),
        _ => format!(" --dir {}", dir.display()),
    }
}

async fn status(args: &DirArgs) -> anyhow::Result<()> {
    let dir = state_dir(args)?;
    let Some(pid) = devnet::running_pid(&dir) else {
        anyhow::bail!(
            "no devnet is running from {}: start one with `lilypad-cli devnet up{}`",
            dir.display(),
            dir_flag(&dir)
        );
    };
    let network_file = dir.join(files::NETWORK);
    let config = NetworkConfig::load(&network_file)?;
    let bar = spinner();
    bar.set_message(format!("querying {}", config.rpc_urls.join(", ")));
    let report = tokio::time::timeout(STATUS_TIMEOUT, report(config, pid, &dir)).await;
    bar.finish_and_clear();
    match report {
        Err(_) => anyhow::bail!("the devnet did not answer within {}s", STATUS_TIMEOUT.as_secs()),
        Ok(r) => {
            print!("{}", r?);
            Ok(())
        }
    }
}

async fn report(config: NetworkConfig, pid: u32, dir: &std::path::Path) -> anyhow::Result<String> {
    use std::fmt::Write;
    let client = ChainClient::connect(config.clone()).await?;
    let mut out = String::new();
    let block = client.block_number().await?;
    let time = client.latest_timestamp().await?;
    let rpc = config.rpc_urls.join(", ");
    writeln!(out, "devnet running: anvil pid {pid} at {rpc}, chain id {}", config.chain_id)?;
    writeln!(out, "block {block}, timestamp {time}")?;
    for name in SERVICES {
        let url = service_url(&config, name);
        if name == "provider" && !services::pid_file(dir, name).exists() {
            continue;
        }
        match services::running(dir, name) {
            Some(p) => writeln!(
                out,
                "  {name:<8} running, pid {p}, at {}",
                url.as_deref().unwrap_or("(no port)")
            )?,
            None => writeln!(
                out,
                "  {name:<8} NOT running (see {}; restart: lilypad-cli devnet down && lilypad-cli devnet up)",
                services::log_file(dir, name).display()
            )?,
        }
    }
    writeln!(out)?;
    writeln!(out, "contracts:")?;
    for (name, address) in config.contracts.named() {
        let code = client.code_at(address).await?;
        let state = if code.is_empty() {
            "NO CODE (redeploy: lilypad-cli devnet down && lilypad-cli devnet up)".to_owned()
        } else {
            format!("{} bytes of code", code.len())
        };
        writeln!(out, "  {name:<11} {address}  {state}")?;
    }
    let params = client.network_params().await?;
    writeln!(
        out,
        "  params: results collateral {}x price, mediation fee {}, judge window {}s, mediation window {}s",
        params.results_collateral_multiple,
        crate::amounts::show(params.mediation_fee),
        params.judge_window_secs,
        params.mediate_window_secs
    )?;
    if let Some(r) = client.pow_round().await? {
        writeln!(out, "  proof of work: round {}, target {:#x}", r.round, r.target)?;
    }
    if config.contracts.job_manager.is_some() {
        let bridge = devnet::anvil_address(devnet::BRIDGE);
        let granted = if client.is_bridge(bridge).await? { "granted" } else { "NOT granted" };
        writeln!(
            out,
            "  job manager: {} jobs, job timeout {}s, bridge role {granted} to account {} ({bridge})",
            client.job_count().await?,
            client.job_timeout().await?,
            devnet::BRIDGE
        )?;
    } else {
        writeln!(out, "  job manager: none in this network file (an older devnet: recreate it)")?;
    }
    writeln!(out)?;
    writeln!(out, "{:<48}{:>14}  {:>13}  role", "accounts:", "tokens", "ETH")?;
    for (i, role) in ACCOUNT_ROLES.iter().enumerate() {
        let a = devnet::anvil_address(i);
        let tokens = crate::amounts::show(client.token_balance(a).await?);
        // ETH has 18 decimals too; only the token's formatter knows how to write them.
        let eth = short(&format_tokens(client.eth_balance(a).await?));
        writeln!(out, "  {i} {a}  {tokens:>14}  {eth:>13}  {role}")?;
    }
    let controller = client.token_balance(config.contracts.controller).await?;
    writeln!(out, "  controller escrow: {}", crate::amounts::show(controller))?;
    if let Some(manager) = config.contracts.job_manager {
        let held = client.token_balance(manager).await?;
        writeln!(out, "  job manager escrow: {}", crate::amounts::show(held))?;
    }
    Ok(out)
}

/// At most four decimals (for ETH balances after gas).
fn short(units: &str) -> String {
    match units.split_once('.') {
        Some((whole, frac)) => format!("{whole}.{}", &frac[..frac.len().min(4)]),
        None => units.to_owned(),
    }
}

async fn down(args: &DirArgs) -> anyhow::Result<()> {
    let dir = state_dir(args)?;
    let bar = spinner();
    bar.set_message("stopping the solver, the content store and anvil");
    let stopped = down_all(&dir).await;
    bar.finish_and_clear();
    let stopped = match stopped {
        Err(e)
            if matches!(
                e.downcast_ref::<devnet::DevnetError>(),
                Some(devnet::DevnetError::NotRunning { .. })
            ) =>
        {
            return Err(e.context(format!(
                "nothing to stop: start one with `lilypad-cli devnet up{}`",
                dir_flag(&dir)
            )));
        }
        other => other?,
    };
    match stopped {
        None => println!("devnet was not running; removed stale state in {}", dir.display()),
        Some(pid) => println!("devnet down: stopped anvil (pid {pid}), removed {}", dir.display()),
    }
    Ok(())
}
