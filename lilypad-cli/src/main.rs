//! `lilypad-cli`: the command-line client of the Lilypad network.

use clap::Parser;

/// Run jobs on the Lilypad network and inspect modules.
#[derive(Debug, Parser)]
#[command(name = "lilypad-cli", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
