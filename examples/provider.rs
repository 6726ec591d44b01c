//! A resource provider in a few lines: offers this machine to the network and runs
//! the jobs it is matched with in Docker, until Ctrl-C.
//!
//! ```text
//! WEB3_PRIVATE_KEY=0x... cargo run -p lilypad-examples --bin provider -- \
//!     --network ~/.lilypad/devnet/network.toml --data-dir /tmp/my-provider
//! ```
//!
//! The account needs the resource provider role on chain and tokens for collateral.
//! `lilypad-rp run` is the full-featured provider (GPUs, prices, allowlists, mining).

use std::path::PathBuf;

use clap::Parser;
use lilypad_sdk::{Lilypad, chain::PrivateKeySigner};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// A network file or a built-in network's name.
    #[arg(long, env = "LILYPAD_NETWORK")]
    network: String,
    /// The account's private key (hex).
    #[arg(long, env = "WEB3_PRIVATE_KEY", hide_env_values = true)]
    key: String,
    /// Where the provider keeps its deals, modules and job files.
    #[arg(long)]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Parsed here, not by clap, so that a bad key is never echoed in an error.
    let key: PrivateKeySigner =
        args.key.trim().parse().map_err(|_| anyhow::anyhow!("the key is not a 32-byte hex key"))?;
    let lilypad = Lilypad::connect(args.network.as_str(), key).await?;
    let provider = lilypad.provider(&args.data_dir).await?;

    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    println!("provider {} is offering this machine; Ctrl-C stops it", lilypad.address());
    provider.run(&stop).await?;
    Ok(())
}
