//! `lilypad-rp`: the resource provider daemon.

mod bench;
mod spec;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Offer this machine's compute to the Lilypad network.
#[derive(Debug, Parser)]
#[command(name = "lilypad-rp", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Detect this machine's CPU, RAM and free disk: the spec a resource offer would carry.
    ///
    /// GPUs are not detected yet; they come with `lilypad-rp run`.
    Spec {
        /// Directory whose filesystem holds job data (its free space is the offered disk).
        #[arg(long, env = "LILYPAD_DATA_DIR", default_value = ".")]
        data_dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Spec { data_dir, json } => spec::run(&data_dir, json),
        Command::Bench { device, seconds } => bench::run(device, seconds),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
