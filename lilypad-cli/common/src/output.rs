//! Global flags, the runtime, and how a command's result becomes output and an exit code.

use std::{future::Future, process::ExitCode, sync::OnceLock};

use clap::Args;
use lilypad_sdk::{chain::ChainError, job::JobError, solver::SolverError, storage::StorageError};
use serde::Serialize;

use crate::amounts;

/// Flags every command accepts, before or after its name.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Print JSON on stdout instead of text (one document per command; errors go to
    /// stderr as `{"error": ..., "retryable": ...}`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Show token amounts in base units (`1500000000000000000 wei`) instead of tokens
    /// (`1.5 LP`). JSON output is always in base units.
    #[arg(long, global = true)]
    pub wei: bool,
    /// The key to sign with.
    #[command(flatten)]
    pub key: crate::wallet::KeyArgs,
}

static JSON: OnceLock<bool> = OnceLock::new();

impl GlobalArgs {
    /// Makes these flags the process's (the first call wins): read back with [`json`]
    /// and [`amounts::show`]. Like a colour setting, they are read where output is
    /// written rather than threaded through every command's arguments.
    pub fn apply(&self) {
        let _ = JSON.set(self.json);
        amounts::set_base_units(self.wei);
        self.key.apply();
    }
}

/// Whether `--json` was given.
pub fn json() -> bool {
    JSON.get().copied().unwrap_or(false)
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Logs to stderr; `RUST_LOG` sets the filter (info by default).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Runs a command's `future` to completion on a multi-threaded Tokio runtime: the one
/// runtime of every command of both binaries.
pub fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?
        .block_on(future)
}

/// Exit codes of `lilypad-cli` and `lilypad-rp`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The command failed; running it again unchanged will fail again.
    pub const FAILURE: u8 = 1;
    /// The command line was wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The command failed for a reason that may pass (a node, solver or store that did
    /// not answer, a rate limit, no provider free yet): retrying may succeed.
    /// `EX_TEMPFAIL` of sysexits.h.
    pub const RETRYABLE: u8 = 75;
}

/// Whether a retry can help, from the first error of the chain that knows.
fn retryable(error: &anyhow::Error) -> bool {
    error.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<lilypad_sdk::Error>() {
            Some(e.is_retryable())
        } else if let Some(e) = e.downcast_ref::<JobError>() {
            Some(e.is_retryable())
        } else if let Some(e) = e.downcast_ref::<ChainError>() {
            Some(e.is_retryable())
        } else if let Some(e) = e.downcast_ref::<SolverError>() {
            Some(e.is_retryable())
        } else {
            e.downcast_ref::<StorageError>().map(StorageError::is_retryable)
        }
    }) == Some(true)
}

/// Ends a command: nothing more on success; on failure the error with its causes on
/// stderr (`error: ...`, or a JSON object with `--json`) and [`exit::RETRYABLE`] or
/// [`exit::FAILURE`].
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    let Err(error) = result else { return ExitCode::from(exit::OK) };
    let retryable = retryable(&error);
    if json() {
        let body = serde_json::json!({ "error": format!("{error:#}"), "retryable": retryable });
        eprintln!("{body}");
    } else {
        eprintln!("error: {error:#}");
        if retryable {
            eprintln!("(this may pass if you try again: exit code {})", exit::RETRYABLE);
        }
    }
    ExitCode::from(if retryable { exit::RETRYABLE } else { exit::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_that_say_so_are_retryable() {
        let plain = anyhow::anyhow!("bad input");
        assert!(!retryable(&plain));
        let timed_out = anyhow::Error::from(ChainError::Timeout {
            call: "test",
            after: std::time::Duration::from_secs(1),
        })
        .context("sending the offer");
        assert!(retryable(&timed_out), "a chain timeout under a context is retryable");
    }
}
