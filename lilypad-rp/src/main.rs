//! `lilypad-rp`: the resource provider daemon.

use clap::Parser;

/// Offer this machine's compute to the Lilypad network.
#[derive(Debug, Parser)]
#[command(name = "lilypad-rp", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
