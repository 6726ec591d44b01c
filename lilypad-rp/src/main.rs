//! `lilypad-rp`: the resource provider daemon.

mod bench;
mod doctor;
mod mine_cmd;
mod provider_cmd;
mod provider_mining;
mod spec;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use lilypad_cli_common::{GlobalArgs, finish, init_tracing, network::NetworkArgs};

/// Offer this machine's compute to the Lilypad network.
#[derive(Debug, Parser)]
#[command(
    name = "lilypad-rp",
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
    /// Detect this machine's CPU, RAM, free disk and GPUs (`nvidia-smi`): the spec a resource offer carries.
    Spec {
        /// Directory whose filesystem holds job data (its free space is the offered disk).
        #[arg(long, env = "LILYPAD_DATA_DIR", default_value = ".")]
        data_dir: PathBuf,
    },
    /// Measure proof-of-work hashes per second: every OpenCL device and the CPU fallback.
    ///
    /// Lists the OpenCL devices, calibrates each, then measures all miners in
    /// interleaved one-second slices and prints `opencl_vs_cpu=<ratio>` (the
    /// best OpenCL device over the CPU fallback on all cores).
    Bench {
        /// Only this OpenCL device (an id from the list this command prints).
        #[arg(long)]
        device: Option<usize>,
        /// Wall-clock seconds per miner.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Run the resource provider: offer this machine, run deals' jobs in Docker, submit results.
    ///
    /// Checks Docker, GPUs, disk, the network's services and the wallet first (see
    /// `doctor`), then keeps a resource offer on the solver and drives every deal to the
    /// chain. State lives in DATA_DIR/provider.db: a restart resumes each deal. The key
    /// comes from WEB3_PRIVATE_KEY (on the local chain: the devnet's provider account).
    /// Example: lilypad-rp run --network local --price 0.001 --timeout-collateral 0.01
    Run {
        #[command(flatten)]
        common: provider_cmd::Common,
        #[command(flatten)]
        offer: provider_cmd::OfferArgs,
        /// Serve Prometheus metrics at http://ADDR/metrics (jobs running, phase
        /// durations, deals completed and failed by reason, offers, mining proofs)
        /// [default: off]. Example: 127.0.0.1:9101.
        #[arg(long, env = "LILYPAD_METRICS_ADDR", value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Print the provider's preflight checks as a table; exit non-zero if one fails.
    Doctor {
        #[command(flatten)]
        common: provider_cmd::Common,
        #[command(flatten)]
        offer: provider_cmd::OfferArgs,
    },
    /// Mediate: re-run the jobs of challenged deals this account is drawn for and post verdicts.
    ///
    /// The verdict is exact equality of the re-run's results CID with the submitted one
    /// (deterministic modules). The key comes from WEB3_PRIVATE_KEY (on the local chain:
    /// the devnet's first mediator).
    Mediate {
        #[command(flatten)]
        common: provider_cmd::Common,
        /// First block to scan for challenges [default: the network's deployment block].
        #[arg(long)]
        from_block: Option<u64>,
    },
    /// Mine LilypadPow rounds: find proofs of work and submit them on chain.
    ///
    /// Uses the best miner here (an OpenCL device if there is one, else the CPU).
    /// Logs each accepted proof with the measured and estimated hashrate
    /// (RUST_LOG sets the level, info by default). Example:
    /// lilypad-rp mine --network ~/.lilypad/devnet/network.toml --rounds 1 --cpu
    Mine {
        #[command(flatten)]
        network: NetworkArgs,
        /// The node the proofs are for (up to 32 bytes of hex, left-padded).
        #[arg(long, default_value = "0x00", value_parser = mine_cmd::parse_node_id)]
        node_id: lilypad_sdk::core::B256,
        /// Stop after this many rounds with their proofs submitted [default: mine forever].
        #[arg(long)]
        rounds: Option<u64>,
        /// Proofs to submit per round (each one is a transaction) before waiting for the next.
        #[arg(long, default_value_t = 1)]
        proofs_per_round: u64,
        /// Mine on the CPU even when an OpenCL device exists.
        #[arg(long)]
        cpu: bool,
        /// Do not mine: exit at once saying so (for providers that opt out of proof of work).
        #[arg(long, env = "LILYPAD_DISABLE_POW")]
        disable_pow: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.global.apply();
    let result = match cli.command {
        Command::Spec { data_dir } => spec::run(&data_dir, lilypad_cli_common::json()),
        Command::Bench { device, seconds } => bench::run(device, seconds),
        Command::Run { common, offer, metrics_addr } => {
            init_tracing();
            provider_cmd::run(&common, &offer, metrics_addr)
        }
        Command::Doctor { common, offer } => provider_cmd::doctor(&common, &offer),
        Command::Mediate { common, from_block } => {
            init_tracing();
            provider_cmd::mediate(&common, from_block)
        }
        Command::Mine { disable_pow: true, .. } => {
            println!("proof of work is disabled (--disable-pow): not mining");
            Ok(())
        }
        Command::Mine { network, node_id, rounds, proofs_per_round, cpu, disable_pow: false } => {
            init_tracing();
            mine_cmd::run(&network, node_id, rounds, proofs_per_round, cpu)
        }
    };
    finish(result)
}
