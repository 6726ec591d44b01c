//! The resource provider daemon's engine and the mediator (feature `provider`).
//!
//! [`ProviderEngine`] splits the machine into slots (`lilypad_core::slots`), keeps one
//! resource offer on the solver per free slot, follows its deals (the solver's event
//! stream, with polling as the fallback) and drives each deal to the chain, the deals
//! of different slots at the same time: prepare (inputs checked against the deal, module fetched at the deal's
//! version) → allowlist and network block list → image → input files → sandboxed
//! run → publish → `submitResults`. Each step is recorded in SQLite
//! ([`ProviderStore`]) before the next starts, so a restart resumes every deal where
//! it was and never runs one whose results are published.
//!
//! A job that fails cleanly in the sandbox (non-zero exit, out of memory, over its
//! deadline, outputs over the cap) is still published and submitted: its `stdout`,
//! `stderr` (ending with a `lilypad: <reason>` line) and `exitCode` are what the job
//! creator paid for and the only way it learns why. Only a job that could not run at
//! all (bad inputs, a module outside the allowlist, an image that cannot be had) gets
//! no results, and the deal times out.
//!
//! [`Mediator`] re-runs a challenged job and posts `mediate(dealId, accept)`.
//!
//! See `docs/provider.md`.

mod engine;
mod mediator;
mod metrics;
mod store;

use lilypad_core::spec::MachineSpec;
use std::path::Path;

pub use engine::{EngineConfig, Fault, ProviderEngine};
pub use mediator::{Mediator, MediatorConfig, Verdict};
pub use metrics::ProviderMetrics;
pub use store::{DealPhase, DealRow, ProviderStore};

use crate::{
    chain::ChainError, executor::ExecError, job::ProviderError, solver::SolverError,
    storage::StorageError,
};

/// What the engine or the mediator could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Preparing a deal's job failed.
    #[error(transparent)]
    Provider(Box<ProviderError>),
    /// The executor failed.
    #[error(transparent)]
    Exec(Box<ExecError>),
    /// Chain failure.
    #[error(transparent)]
    Chain(Box<ChainError>),
    /// Solver failure.
    #[error(transparent)]
    Solver(#[from] SolverError),
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The state database failed.
    #[error("provider state database: {0}")]
    Store(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
}

// Boxed: the lower layers' errors are large and most results here are `Ok`.
impl From<ProviderError> for EngineError {
    fn from(e: ProviderError) -> Self {
        Self::Provider(Box::new(e))
    }
}

impl From<ExecError> for EngineError {
    fn from(e: ExecError) -> Self {
        Self::Exec(Box::new(e))
    }
}

impl From<ChainError> for EngineError {
    fn from(e: ChainError) -> Self {
        Self::Chain(Box::new(e))
    }
}

impl EngineError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }

    fn store(path: &Path, e: &rusqlite::Error) -> Self {
        Self::Store(format!("{}: {e}", path.display()))
    }
}

/// Unix seconds now (wall clock).
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What this machine can offer a job: its cores and available memory, no GPU.
pub fn machine_spec() -> MachineSpec {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let ram_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(2048, |kib| kib / 1024);
    MachineSpec {
        cpu_millicores: u32::try_from(cores * 1000).unwrap_or(u32::MAX),
        ram_mib,
        disk_mib: 10 * 1024,
        gpus: vec![],
    }
}
