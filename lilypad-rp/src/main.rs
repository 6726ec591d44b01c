//! `lilypad-rp`: the resource provider daemon.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Spec { data_dir, json } => spec::run(&data_dir, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
