//! `lilypad-cli bridge`: the service that runs the jobs smart contracts request from the
//! job manager, with [`lilypad_sdk::bridge::Bridge`] (see docs/bridge.md).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    bridge::{Bridge, BridgeOptions, CancellationToken, JobRunner},
    chain::{ChainClient, NetworkConfig, PrivateKeySigner},
};

use super::devnet::runtime;

/// Arguments of `bridge`.
#[derive(Debug, Args)]
pub(crate) struct BridgeArgs {
    /// The network file (its contracts.job_manager is watched).
    #[arg(long, env = "LILYPAD_NETWORK", value_name = "FILE")]
    network: PathBuf,
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
    /// The bridge account's private key (hex); it must hold the job manager's BRIDGE_ROLE.
    /// Never logged or echoed.
    // Parsed after clap, not with a value_parser: clap's own error would print the value.
    #[arg(long, env = "WEB3_PRIVATE_KEY", hide_env_values = true, value_name = "HEX")]
    key: String,
}

/// Parses a private key without ever echoing it (errors say what is wrong, not what was given).
fn parse_key(s: &str) -> anyhow::Result<PrivateKeySigner> {
    s.trim().parse::<PrivateKeySigner>().map_err(|_| {
        anyhow::anyhow!(
            "--key / WEB3_PRIVATE_KEY is not a private key: expected 32 bytes as 64 hex digits \
             (0x optional); the value is not shown"
        )
    })
}

/// The runner that runs bridge jobs through the network's job-creator flow (module
/// resolution, job offer, solver, deal, verified results).
///
/// Not wired yet: the job-creator flow (`lilypad_sdk::job`) is being written. Until it
/// lands this fails, so the bridge never posts results it did not get from a real job.
fn job_creator_runner(_chain: &ChainClient) -> anyhow::Result<Arc<dyn JobRunner>> {
    anyhow::bail!(
        "the bridge cannot run jobs yet: the job-creator flow (lilypad_sdk::job) is not wired \
         into lilypad-cli bridge; SDK users can run lilypad_sdk::bridge::Bridge with their own \
         JobRunner (docs/bridge.md)"
    )
}

/// Logs to stderr; `RUST_LOG` sets the filter (info by default).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A subscriber set earlier (none in this binary) wins; nothing to report then.
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub(crate) fn run(args: &BridgeArgs) -> anyhow::Result<()> {
    let key = parse_key(&args.key)?;
    init_tracing();
    let config = NetworkConfig::load(&args.network)
        .with_context(|| format!("loading the network file {}", args.network.display()))?;
    let opts = BridgeOptions {
        concurrency: usize::from(args.concurrency),
        confirmations: args.confirmations,
        poll_interval: Duration::from_millis(args.poll_ms),
        ..BridgeOptions::default()
    };
    runtime()?.block_on(async {
        let chain = ChainClient::connect(config).await?.with_signer(key);
        let runner = job_creator_runner(&chain)?;
        let bridge = Bridge::new(chain, &args.db, runner, opts).await?;
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: stopping (a second Ctrl-C kills the process)");
            }
            on_signal.cancel();
        });
        bridge.run(shutdown).await?;
        Ok(())
    })
}
