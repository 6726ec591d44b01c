//! `lilypad-cli dashboard`: a web page of the network, served by this binary.
//!
//! Fed only by the chain's events (read with the SDK's `LogPoller` through the same
//! [`ChainEvents`] the `leaderboard` command uses, so both show the same numbers) and
//! the solver's public endpoints (`/healthz`, `/metrics`). A background task reads
//! the new blocks every `--refresh` seconds and rebuilds a [`model::Snapshot`]; the
//! page follows it over server-sent events (`/api/events`). The page is plain HTML,
//! CSS and JavaScript embedded in the binary, with SVG charts drawn by that script:
//! nothing is fetched from the internet. See docs/dashboard.md.

mod api;
mod model;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use lilypad_sdk::chain::ChainClient;
use tokio::sync::{RwLock, watch};

use super::{
    leaderboard::ChainEvents,
    network::{NetworkArgs, load},
};

/// Arguments of `dashboard`.
#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// The address to listen on (port 0: any free port; the URL is printed).
    #[arg(
        long,
        env = "LILYPAD_DASHBOARD_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8090"
    )]
    listen: SocketAddr,
    /// How often to read new blocks (seconds).
    #[arg(long, env = "LILYPAD_DASHBOARD_REFRESH", value_name = "SECS", default_value_t = 5)]
    refresh: u64,
    /// A block explorer's base URL: transaction links go to URL/tx/HASH [default: the
    /// dashboard's own /api/tx/HASH, the receipt from the RPC node].
    #[arg(long, env = "LILYPAD_DASHBOARD_EXPLORER", value_name = "URL")]
    explorer: Option<String>,
    /// An IPFS gateway's base URL: results CIDs link to URL/ipfs/CID.
    #[arg(
        long,
        env = "LILYPAD_DASHBOARD_IPFS_GATEWAY",
        value_name = "URL",
        default_value = "https://ipfs.io"
    )]
    ipfs_gateway: String,
    #[command(flatten)]
    network: NetworkArgs,
}

/// The state the handlers share.
pub(crate) struct State {
    pub(crate) snapshot: RwLock<Arc<model::Snapshot>>,
    pub(crate) version: watch::Receiver<u64>,
    pub(crate) client: ChainClient,
    pub(crate) links: api::Links,
}

/// Runs `lilypad-cli dashboard`.
pub(crate) fn run(args: &DashboardArgs) -> anyhow::Result<()> {
    lilypad_cli_common::init_tracing();
    let config = load(&args.network)?;
    lilypad_cli_common::block_on(serve(args, config))
}

async fn serve(
    args: &DashboardArgs,
    config: lilypad_sdk::chain::NetworkConfig,
) -> anyhow::Result<()> {
    if args.refresh == 0 {
        anyhow::bail!("--refresh must be at least 1 second");
    }
    let solver_url = config.solver_url.clone();
    let client = ChainClient::connect(config).await?;
    let mut events = ChainEvents::new(&client);
    events.update().await.context("reading the chain's events")?;
    let solver_client = match &solver_url {
        Some(url) => Some(api::PublicSolver::new(url, client.config().chain_id)?),
        None => None,
    };
    let solver = api::solver_view(solver_client.as_ref()).await;
    let first = model::Snapshot::build(&events, 1, solver)?;
    let (tx, rx) = watch::channel(1u64);
    let state = Arc::new(State {
        snapshot: RwLock::new(Arc::new(first)),
        version: rx,
        client,
        links: api::Links {
            explorer: args.explorer.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
            ipfs_gateway: args.ipfs_gateway.trim_end_matches('/').to_owned(),
        },
    });
    tokio::spawn(refresh(
        state.clone(),
        events,
        solver_client,
        Duration::from_secs(args.refresh),
        tx,
    ));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // The first stdout line names the URL (scripts and tests read it).
    println!("dashboard listening on http://{addr}/");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    // No graceful drain: open live feeds (server-sent events) never end by themselves.
    tokio::select! {
        r = axum::serve(listener, api::router(state)) => r?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping");
    Ok(())
}

/// Reads new blocks every `every` and publishes a new snapshot when the head moved or
/// the solver's numbers changed; a failed read is logged and retried.
async fn refresh(
    state: Arc<State>,
    mut events: ChainEvents,
    solver_client: Option<api::PublicSolver>,
    every: Duration,
    tx: watch::Sender<u64>,
) {
    let mut version = 1u64;
    loop {
        tokio::time::sleep(every).await;
        let moved = match events.update().await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!("reading the chain's events: {e:#}");
                continue;
            }
        };
        let solver = api::solver_view(solver_client.as_ref()).await;
        let solver_changed = {
            let old = &state.snapshot.read().await.solver;
            (old.open_job_offers, old.open_resource_offers, old.reachable)
                != (solver.open_job_offers, solver.open_resource_offers, solver.reachable)
        };
        if !moved && !solver_changed {
            continue;
        }
        match model::Snapshot::build(&events, version + 1, solver) {
            Ok(s) => {
                version += 1;
                *state.snapshot.write().await = Arc::new(s);
                tx.send_replace(version);
            }
            Err(e) => tracing::warn!("computing the dashboard: {e:#}"),
        }
    }
}
