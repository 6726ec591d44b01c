//! What a provider returns for a job.

use serde::{Deserialize, Serialize};

/// The outcome of running a job, as published by the provider.
///
/// The results directory (stdout, stderr, exit code and `/outputs`) is a
/// UnixFS directory; `results_cid` addresses it and is what goes on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// CID of the results directory.
    pub results_cid: cid::Cid,
    /// Exit code of the container's entrypoint.
    pub exit_code: i64,
    /// Bytes written to stdout (before any cap).
    pub stdout_bytes: u64,
    /// Bytes written to stderr (before any cap).
    pub stderr_bytes: u64,
    /// Total bytes under `/outputs`.
    pub outputs_bytes: u64,
}
