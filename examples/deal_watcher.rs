//! Follows deals on chain until each ends, printing every change of state.
//!
//! ```text
//! WEB3_PRIVATE_KEY=0x... cargo run -p lilypad-examples --bin deal-watcher -- \
//!     --network ~/.lilypad/devnet/network.toml [DEAL_ID ...]
//! ```
//!
//! With no deal id it follows this account's newest deal.

use clap::Parser;
use futures::StreamExt;
use lilypad_sdk::{Lilypad, chain::PrivateKeySigner, core::B256};

#[derive(Parser)]
struct Args {
    /// A network file or a built-in network's name.
    #[arg(long, env = "LILYPAD_NETWORK")]
    network: String,
    /// The account's private key (hex).
    #[arg(long, env = "WEB3_PRIVATE_KEY", hide_env_values = true)]
    key: String,
    /// Deals to follow; none: this account's newest deal.
    deals: Vec<B256>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Parsed here, not by clap, so that a bad key is never echoed in an error.
    let key: PrivateKeySigner =
        args.key.trim().parse().map_err(|_| anyhow::anyhow!("the key is not a 32-byte hex key"))?;
    let lilypad = Lilypad::connect(args.network.as_str(), key).await?;
    let mut deals = args.deals;
    if deals.is_empty() {
        let newest = lilypad.deals().await?.into_iter().next();
        deals.push(newest.ok_or_else(|| anyhow::anyhow!("this account has no deals yet"))?.deal.id);
    }
    // One stream per deal, merged: each ends when its deal is finished.
    let mut updates = futures::stream::select_all(
        deals.iter().map(|id| lilypad.watch(*id).map(move |update| (*id, update)).boxed()),
    );
    while let Some((id, update)) = updates.next().await {
        match update {
            Ok(deal) => println!("deal {id}: {:?} (provider {})", deal.status, deal.provider),
            Err(e) if e.is_retryable() => eprintln!("deal {id}: {e} (retrying)"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
