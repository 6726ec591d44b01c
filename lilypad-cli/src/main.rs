//! `lilypad-cli`: the command-line client of the Lilypad network.

mod commands;
mod inputs;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run jobs on the Lilypad network and inspect modules.
#[derive(Debug, Parser)]
#[command(name = "lilypad-cli", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with modules: render a module template locally.
    #[command(subcommand)]
    Module(commands::module::ModuleCommand),
    /// A throwaway local network: anvil with every contract deployed, wired and funded.
    #[command(subcommand)]
    Devnet(commands::devnet::DevnetCommand),
    /// Providers ranked by proof-of-work hashrate, with rounds, proofs, jobs completed
    /// and reward points, from the chain's events.
    ///
    /// Example: lilypad-cli leaderboard --network ~/.lilypad/devnet/network.toml --json
    Leaderboard(commands::leaderboard::LeaderboardArgs),
    /// The on-chain job bridge: runs the jobs contracts request from the job manager and
    /// posts each one's results (or cancels it) exactly once. Needs the BRIDGE_ROLE key.
    ///
    /// Example: WEB3_PRIVATE_KEY=0x... lilypad-cli bridge --network network.toml --db bridge.sqlite
    Bridge(commands::bridge::BridgeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Module(cmd) => commands::module::run(cmd),
        Command::Devnet(cmd) => commands::devnet::run(cmd),
        Command::Leaderboard(args) => commands::leaderboard::run(&args),
        Command::Bridge(args) => commands::bridge::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
