//! `lilypad-cli bridge`: the service that runs the jobs smart contracts request from the
//! job manager, with [`lilypad_sdk::bridge::Bridge`] (see docs/bridge.md).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    bridge::{Bridge, BridgeOptions, CancellationToken, JobCreatorRunner},
    job::{JobCreator, JobOptions},
    module::ModuleCache,
};

use super::network::{Network, NetworkArgs, Role};

/// Arguments of `bridge`.
#[derive(Debug, Args)]
pub(crate) struct BridgeArgs {
    /// The network file (its contracts.job_manager is watched; its solver_url and
    /// storage_url run the jobs).
    #[command(flatten)]
    network: NetworkArgs,
    /// The bridge's SQLite database (created if missing): its block cursor and job states.
    /// Instances sharing one file split the jobs between them.
    #[arg(long, env = "LILYPAD_BRIDGE_DB", value_name = "PATH")]
    db: PathBuf,
    /// Jobs run at once by this instance.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Blocks a request must be under before it is acted on (0 on a local chain).
    #[arg(long, default_value_t = 0)]
    confirmations: u64,
    /// Milliseconds between scans for new requests.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    poll_ms: u64,
    /// Seconds a claim holds a job; after this instance dies, its jobs wait this long
    /// before another instance (or the restart) takes them over.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    lease_secs: u64,
    /// How long each job's offer waits for a provider (seconds); the job is cancelled when
    /// none matches.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    match_timeout: u64,
    /// Where `name:version` modules are fetched from (e.g. a mirror, or a file:// base).
    #[arg(long, env = "LILYPAD_MODULE_BASE", value_name = "URL")]
    module_base: Option<String>,
    /// Run jobs that name a local module directory (only for a local network: any contract
    /// may request jobs).
    #[arg(long)]
    allow_local_modules: bool,
    /// Run published (git) modules whose image is a tag, not pinned by digest (a
    /// mediator may then re-run a different image than the provider did).
    #[arg(long)]
    allow_unpinned_image: bool,
    /// Where results are downloaded and verified [default: $LILYPAD_HOME/bridge].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (jobs in flight, phase durations,
    /// jobs ended by outcome, failures by reason) [default: off]. Example: 127.0.0.1:9102.
    #[arg(long, env = "LILYPAD_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

pub(crate) fn run(args: &BridgeArgs) -> anyhow::Result<()> {
    lilypad_cli_common::init_tracing();
    let opts = BridgeOptions {
        concurrency: usize::from(args.concurrency),
        confirmations: args.confirmations,
        poll_interval: Duration::from_millis(args.poll_ms),
        lease: Duration::from_secs(args.lease_secs),
        ..BridgeOptions::default()
    };
    lilypad_cli_common::block_on(async {
        let network = Network::open(&args.network, Role::Bridge).await?;
        let me = network.me();
        if !network.chain.is_bridge(me).await? {
            tracing::warn!(
                account = %me,
                "this account lacks the job manager's BRIDGE_ROLE: posting results will fail \
                 (deploy with --bridge {me}, or have the job manager's admin grant it)"
            );
        }
        // Discovery only (the contracts do not ask for it): a failure is worth a warning.
        match lilypad_cli_common::network::ensure_registered(&network.chain, Role::Bridge, "").await
        {
            Ok(Some(line)) => tracing::info!("{line}"),
            Ok(None) => tracing::info!(account = %me, "registered on chain as a job creator"),
            Err(e) => tracing::warn!("{e:#}"),
        }
        let mut modules = ModuleCache::new(network.home.join("modules"));
        if let Some(base) = &args.module_base {
            modules = modules.with_base(base.clone());
        }
        let job_options = JobOptions {
            offer_ttl: Duration::from_secs(args.match_timeout),
            require_pinned_image: !args.allow_unpinned_image,
            ..JobOptions::default()
        };
        let creator = JobCreator::new(
            network.chain.clone(),
            network.solver()?,
            network.storage()?,
            modules,
            job_options,
            network.solver_address,
        );
        let work_dir = args.work_dir.clone().unwrap_or_else(|| network.home.join("bridge"));
        let runner =
            JobCreatorRunner::new(creator, work_dir).allow_local_modules(args.allow_local_modules);
        let bridge = Bridge::new(network.chain.clone(), &args.db, Arc::new(runner), opts).await?;
        let shutdown = CancellationToken::new();
        if let Some(addr) = args.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics-addr {addr}: cannot listen there"))?;
            tracing::info!("metrics at http://{}/metrics", listener.local_addr().unwrap_or(addr));
            let metrics = bridge.metrics().clone();
            let stop = shutdown.clone().cancelled_owned();
            tokio::spawn(async move {
                let served =
                    lilypad_sdk::metrics::serve(listener, move || metrics.render(), stop).await;
                if let Err(e) = served {
                    tracing::error!("the metrics endpoint stopped: {e}");
                }
            });
        }
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: stopping (a second Ctrl-C kills the process)");
            }
            on_signal.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        });
        bridge.run(shutdown).await?;
        Ok(())
    })
}
