//! `lilypad-cli`: the command-line client of the Lilypad network.

mod commands;
mod inputs;
mod spinner;
mod summary;
mod when;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
pub(crate) use lilypad_cli_common::amounts;
use lilypad_cli_common::{GlobalArgs, finish, init_tracing};

/// Run jobs on the Lilypad network and inspect modules.
#[derive(Debug, Parser)]
#[command(
    name = "lilypad-cli",
    version,
    about,
    propagate_version = true,
    after_help = lilypad_cli_common::AFTER_HELP
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with modules: render a module template locally.
    #[command(subcommand)]
    Module(commands::module::ModuleCommand),
    /// Deploy a network's contracts on a chain, wire them, verify their code and write
    /// the network file. Key: --keystore (encrypted JSON) or WEB3_PRIVATE_KEY.
    ///
    /// Example: lilypad-cli deploy --network arbitrum-sepolia --keystore deployer.json --out net.toml
    Deploy(Box<commands::deploy::DeployArgs>),
    /// A throwaway local network: anvil with every contract deployed, wired and funded.
    #[cfg(feature = "devnet")]
    #[command(subcommand)]
    Devnet(commands::devnet::DevnetCommand),
    /// Providers ranked by reward points, with hashrate, rounds, days offline and
    /// reputation (deals completed, timed out, challenged, lost), from the chain's events.
    ///
    /// Example: lilypad-cli leaderboard --network ~/.lilypad/devnet/network.toml --json
    Leaderboard(commands::leaderboard::LeaderboardArgs),
    /// A web page of the network: leaderboard, network charts and a deal, offer and
    /// address explorer, from the chain's events and the solver's public endpoints.
    ///
    /// Example: lilypad-cli dashboard --network ~/.lilypad/devnet/network.toml --listen 127.0.0.1:8090
    Dashboard(commands::dashboard::DashboardArgs),
    /// Run the solver: the HTTP API job creators and providers post signed offers to;
    /// it matches them and creates the deals on chain. Key: WEB3_PRIVATE_KEY.
    ///
    /// Example: WEB3_PRIVATE_KEY=0x... lilypad-cli solver --network net.toml --db solver.db
    Solver(commands::solver::SolverArgs),
    /// Run a job: resolve and render the module, post a signed offer, wait for a deal,
    /// download and verify the results, accept them.
    ///
    /// Example: lilypad-cli run ./examples/modules/cowsay -i Message=moo
    Run(commands::run::RunArgs),
    /// An OpenAI-compatible HTTP API (/v1/embeddings, /v1/chat/completions, /v1/models)
    /// whose requests run as jobs paid by this account; `gateway keys` manages its API keys.
    ///
    /// Example: lilypad-cli gateway --network local --model all-MiniLM-L6-v2=./examples/modules/embeddings
    Gateway(Box<commands::gateway::GatewayArgs>),
    /// Your deals: list them or show one.
    #[command(subcommand)]
    Deals(commands::deals::DealsCommand),
    /// Re-run a deal's job here and check the provider's results as a mediator would
    /// (equal CIDs, or the module's declared tolerance, with its score); posts nothing.
    ///
    /// Example: lilypad-cli verify 0x5c0f...e1
    Verify(commands::verify::VerifyArgs),
    /// The embedded content store: serve it, add to it, get verified content from it.
    #[command(subcommand)]
    Storage(commands::storage::StorageCommand),
    /// The on-chain job bridge: runs the jobs contracts request from the job manager and
    /// posts each one's results (or cancels it) exactly once. Needs the BRIDGE_ROLE key.
    ///
    /// Example: WEB3_PRIVATE_KEY=0x... lilypad-cli bridge --network network.toml --db bridge.sqlite
    Bridge(commands::bridge::BridgeArgs),
    /// On-chain jobs from the client's side: deploy the example client contract, request
    /// jobs, show how they ended.
    ///
    /// Example: lilypad-cli jobs show 1 --wait 300
    #[command(subcommand)]
    Jobs(commands::jobs::JobsCommand),
    /// Accounts in encrypted JSON keystores: create, import, list, check. Any command
    /// that signs takes --account NAME (or --keystore FILE) instead of WEB3_PRIVATE_KEY.
    ///
    /// Example: lilypad-cli wallet new payer && lilypad-cli run cowsay:v0.0.4 --account payer
    #[command(subcommand)]
    Wallet(commands::wallet::WalletCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.global.apply();
    let result = match cli.command {
        Command::Module(cmd) => commands::module::run(cmd),
        Command::Deploy(args) => commands::deploy::run(&args),
        #[cfg(feature = "devnet")]
        Command::Devnet(cmd) => commands::devnet::run(cmd),
        Command::Leaderboard(args) => commands::leaderboard::run(&args),
        Command::Dashboard(args) => commands::dashboard::run(&args),
        Command::Solver(args) => {
            init_tracing();
            commands::solver::run(&args)
        }
        Command::Run(args) => commands::run::run(&args),
        Command::Gateway(args) => commands::gateway::run(*args),
        Command::Deals(cmd) => commands::deals::run(cmd),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Storage(cmd) => {
            init_tracing();
            commands::storage::run(cmd)
        }
        Command::Bridge(args) => commands::bridge::run(&args),
        Command::Jobs(cmd) => commands::jobs::run(cmd),
        Command::Wallet(cmd) => commands::wallet::run(cmd),
    };
    finish(result)
}
