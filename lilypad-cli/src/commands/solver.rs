//! `lilypad-cli solver`: runs the solver service (HTTP API, matching, deal creation).
//!
//! The key comes from `WEB3_PRIVATE_KEY` only (never a flag: it would show in `ps`);
//! its address is the solver every accepted offer must name.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    chain::{ChainClient, NetworkConfig},
    solver::{Database, Limits, Rate, SolverOptions},
};

/// Arguments of `solver`.
#[derive(Debug, Args)]
pub(crate) struct SolverArgs {
    /// The network file (chain id, RPC URLs, contracts), or a built-in network's name.
    #[arg(long, env = "LILYPAD_NETWORK", value_name = "FILE|NAME")]
    network: Option<PathBuf>,
    /// Instead of a network file (and taking precedence over one): the built-in `local`
    /// network (a devnet's contract addresses, chain 31337) at this RPC URL.
    #[arg(long, env = "LILYPAD_RPC_URL", value_name = "URL")]
    rpc_url: Option<String>,
    /// The database: a SQLite file (created if missing; its WAL files sit beside it) or
    /// a PostgreSQL URL, `postgres://USER[:PASSWORD]@HOST:PORT/DB`.
    #[arg(long, env = "LILYPAD_SOLVER_DB", value_name = "PATH")]
    db: PathBuf,
    /// The address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(
        long,
        env = "LILYPAD_SOLVER_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// Largest request body in bytes.
    #[arg(long, env = "LILYPAD_SOLVER_MAX_BODY", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest job inputs in bytes.
    #[arg(long, env = "LILYPAD_SOLVER_MAX_INPUTS", default_value_t = Limits::default().max_inputs_bytes)]
    max_inputs_bytes: usize,
    /// Requests per second per signer (sustained).
    #[arg(long, env = "LILYPAD_SOLVER_SIGNER_RATE", default_value_t = Limits::default().per_signer.per_sec)]
    signer_rate: f64,
    /// Requests per signer at once (burst).
    #[arg(long, env = "LILYPAD_SOLVER_SIGNER_BURST", default_value_t = Limits::default().per_signer.burst)]
    signer_burst: f64,
    /// Requests per second per peer IP address (sustained).
    #[arg(long, env = "LILYPAD_SOLVER_PEER_RATE", default_value_t = Limits::default().per_peer.per_sec)]
    peer_rate: f64,
    /// Requests per peer IP address at once (burst).
    #[arg(long, env = "LILYPAD_SOLVER_PEER_BURST", default_value_t = Limits::default().per_peer.burst)]
    peer_burst: f64,
    /// Among equally priced offers for a job, prefer the provider with the better
    /// reputation score (from chain events) over the older offer.
    #[arg(long, env = "LILYPAD_SOLVER_PREFER_REPUTATION")]
    prefer_reputation: bool,
}

fn network(args: &SolverArgs) -> anyhow::Result<NetworkConfig> {
    if let Some(url) = &args.rpc_url {
        let mut config = NetworkConfig::local();
        config.rpc_urls = vec![url.clone()];
        config.validate()?;
        return Ok(config);
    }
    let path = args.network.as_ref().context(
        "no network: pass --network FILE (or set LILYPAD_NETWORK), or --rpc-url URL for a local devnet",
    )?;
    // A built-in name loads like everywhere else (and says so when it has no deployment).
    super::network::load(&super::network::NetworkArgs { network: Some(path.display().to_string()) })
}

/// Runs `lilypad-cli solver` until Ctrl-C or SIGTERM.
pub(crate) fn run(args: &SolverArgs) -> anyhow::Result<()> {
    let config = network(args)?;
    let key = super::network::key(&config, super::network::Role::Solver)?;
    let db = match args.db.to_str() {
        Some(s) => Database::parse(s),
        None => Database::Sqlite(args.db.clone()),
    };
    let mut opts = SolverOptions::new(db, args.listen);
    opts.limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_inputs_bytes: args.max_inputs_bytes,
        per_signer: Rate { per_sec: args.signer_rate, burst: args.signer_burst },
        per_peer: Rate { per_sec: args.peer_rate, burst: args.peer_burst },
        ..Limits::default()
    };
    opts.prefer_reputation = args.prefer_reputation;
    let shared = matches!(opts.db, Database::Postgres(_));
    lilypad_cli_common::block_on(async move {
        let public_url = config.solver_url.clone();
        if shared && public_url.is_none() {
            tracing::warn!(
                "the network file has no solver_url: this replica registers its own URL, and \
                 replicas sharing the database overwrite each other's; put the URL of the load \
                 balancer in front of them in the network file's solver_url"
            );
        }
        let chain = ChainClient::connect(config).await?.with_signer(key);
        let solver = lilypad_sdk::solver::start(chain.clone(), opts).await?;
        // Clients find the solver by the network file's URL; without one, where it listens.
        let url = public_url.unwrap_or_else(|| solver.url());
        let role = super::network::Role::Solver;
        match lilypad_cli_common::network::ensure_registered(&chain, role, &url).await {
            Ok(Some(line)) => tracing::info!("{line}"),
            Ok(None) => {
                tracing::info!(account = %solver.solver(), "registered on chain as the solver")
            }
            Err(e) => {
                solver.shutdown().await;
                return Err(e);
            }
        }
        println!("solver {} listening on {}", solver.solver(), solver.url());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("stopping");
        solver.shutdown().await;
        Ok(())
    })
}
