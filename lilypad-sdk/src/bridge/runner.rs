//! What the bridge asks of the code that actually runs a job: [`JobRunner`].

use alloy::primitives::{B256, U256};
use tokio_util::sync::CancellationToken;

use super::{BridgeError, store::Store};
use crate::chain::RequestedJob;

/// A job the bridge hands to its [`JobRunner`]: the `JobRequested` event, plus what the
/// bridge knows from earlier attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeJob {
    /// The job as its `JobRequested` event asked for it. Its module reference and inputs
    /// are unchecked beyond the manager's length rules: a runner refuses what it cannot
    /// resolve with a non-retryable failure. Its payment is the most the bridge may be
    /// reimbursed ([`RunSuccess::spent`]); its deadline the last second (chain time) the
    /// bridge may post the results.
    pub job: RequestedJob,
    /// Which run of this job this is: 1 for the first, more after a retryable failure or
    /// after a bridge instance stopped mid-run.
    pub attempt: u32,
    /// The deal an earlier run recorded with [`RunContext::record_deal`]: resume it (wait
    /// for its results) instead of paying for a second deal.
    pub resume_deal: Option<B256>,
}

/// A job that ran: what to post on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSuccess {
    /// The results' CID as text (1 to 128 bytes, the manager's `MAX_RESULTS_BYTES`).
    pub results_cid: String,
    /// What running the job cost the bridge, reimbursed from the payment (at most the
    /// payment; more is capped at the payment).
    pub spent: U256,
    /// The deal that ran it, if any (for the logs and the database).
    pub deal_id: Option<B256>,
}

/// A job that did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// Why, for the client's `lilypadCancelled` callback (cut to 128 bytes).
    pub reason: String,
    /// Whether running it again may succeed (no provider yet, a network error); the bridge
    /// retries up to [`super::BridgeOptions::max_attempts`] runs, then cancels with `reason`.
    pub retryable: bool,
}

impl RunFailure {
    /// A failure that running again cannot fix (bad module or inputs): the job is cancelled.
    pub fn fatal(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), retryable: false }
    }

    /// A failure that may pass (no provider, a network error): the job is run again later.
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), retryable: true }
    }
}

/// Runs on-chain jobs through the network's normal job flow (module resolution, offer,
/// solver, deal, verified results). The bridge calls [`Self::run`] for each job it holds,
/// possibly again after a failure or a restart (see [`BridgeJob::attempt`] and
/// [`BridgeJob::resume_deal`]); never for the same job in two places at once while leases
/// hold (see `docs/bridge.md`).
#[async_trait::async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Runs `job`. Return promptly after `ctx.cancellation()` fires (the bridge is stopping,
    /// the job expired or another instance took it over); the result is then ignored unless
    /// it is a success.
    async fn run(&self, job: &BridgeJob, ctx: &RunContext) -> Result<RunSuccess, RunFailure>;
}

/// What a [`JobRunner`] gets besides the job: cancellation, and a durable place for the
/// deal id.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub(crate) cancel: CancellationToken,
    pub(crate) store: Store,
    pub(crate) job_id: U256,
    pub(crate) owner: String,
}

impl RunContext {
    /// Fires when the run should stop: the bridge is shutting down, the job's deadline
    /// passed, or this instance lost the job to another one.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Records the job's deal in the bridge's database, durably, as soon as it exists: a
    /// later run of this job (after a crash) gets it as [`BridgeJob::resume_deal`].
    /// Fails with [`BridgeError::LeaseLost`] if another instance holds the job now.
    pub async fn record_deal(&self, deal_id: B256) -> Result<(), BridgeError> {
        self.store.record_deal(self.job_id, self.owner.clone(), deal_id).await
    }
}
