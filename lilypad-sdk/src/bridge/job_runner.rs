//! [`JobCreatorRunner`]: the [`JobRunner`] that runs bridge jobs through the network's
//! job-creator flow ([`JobCreator`]), with the bridge account as the job creator.

use std::{collections::BTreeMap, future::Future, path::PathBuf};

use alloy::primitives::{B256, U256};
use lilypad_core::{amount::Amount, module::ModuleRef, settlement::Outcome};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{BridgeJob, JobRunner, RunContext, RunFailure, RunSuccess};
use crate::{
    chain::DealStatus,
    job::{JobCreator, JobError, JobEvent, JobOutcome, JobRequest},
};

/// Runs each bridge job as an ordinary job of the bridge account: resolve the module,
/// post a signed offer to the solver, wait for the deal, wait for the results on chain,
/// download and verify them, accept them.
///
/// Money: the bridge account is the deal's job creator and pays from its own tokens (a
/// payment collateral of the job's escrowed payment, which is also the offer's max price;
/// the deal price goes to the provider, the rest comes back on acceptance). It reports the
/// deal price as [`RunSuccess::spent`], which the job manager's `fulfill` reimburses from
/// the client's escrow, so the bridge ends even (less gas). The account needs at least the
/// largest payment it runs in tokens, and ETH for gas.
///
/// The deal id is recorded ([`RunContext::record_deal`]) as soon as the deal exists; a
/// later run of the job (after a crash or a retry) resumes that deal with
/// [`JobCreator::resume`] instead of paying for a second one, unless the deal can no longer
/// give results (the provider timed out, the mediator rejected them): then it starts anew.
///
/// Failures: a module that does not resolve or render, bad inputs, no provider matching
/// before the offer expires, a solver refusing the offer and results that fail
/// verification (challenged) cancel the job with a readable reason; chain, solver and
/// storage errors, a provider timeout and a short balance are retried.
#[derive(Debug, Clone)]
pub struct JobCreatorRunner {
    creator: JobCreator,
    work_dir: PathBuf,
    allow_local_modules: bool,
    keep_results: bool,
}

impl JobCreatorRunner {
    /// A runner using `creator` (whose chain client signs as the bridge account), downloading
    /// results under `work_dir` (`job-<id>/<deal id>/`, removed once a job succeeded).
    /// Local module paths are refused (see [`Self::allow_local_modules`]).
    pub fn new(creator: JobCreator, work_dir: impl Into<PathBuf>) -> Self {
        Self { creator, work_dir: work_dir.into(), allow_local_modules: false, keep_results: false }
    }

    /// Whether jobs may name a local module path (a directory on the bridge's machine).
    /// Off by default: any contract can request jobs, so on a public network this would let
    /// anyone read templates from the bridge's disk. Fine on a local network.
    pub fn allow_local_modules(mut self, allow: bool) -> Self {
        self.allow_local_modules = allow;
        self
    }

    /// Whether to keep each job's downloaded results in the work directory (default: they
    /// are removed once the job succeeded; the results stay in the network's storage).
    pub fn keep_results(mut self, keep: bool) -> Self {
        self.keep_results = keep;
        self
    }

    /// The job creator flow it runs jobs with.
    pub fn creator(&self) -> &JobCreator {
        &self.creator
    }

    /// The job request of a bridge job, or why it cannot run (not retryable).
    pub fn request(&self, job: &BridgeJob) -> Result<JobRequest, RunFailure> {
        let reference = ModuleRef::parse(&job.job.module)
            .map_err(|e| RunFailure::fatal(format!("module {:?}: {e}", job.job.module)))?;
        if matches!(reference, ModuleRef::Local { .. }) && !self.allow_local_modules {
            return Err(RunFailure::fatal(format!(
                "local module paths are not run by this bridge (use name:version or \
                 host/owner/repo:ref): {}",
                job.job.module
            )));
        }
        let mut values = BTreeMap::new();
        for (k, v) in &job.job.inputs {
            if values.insert(k.clone(), v.clone()).is_some() {
                return Err(RunFailure::fatal(format!("input {k:?} is given twice")));
            }
        }
        // Offers carry amounts below 2^128 (the controller refuses more).
        let max_price = job.job.payment.min(U256::from(u128::MAX));
        Ok(JobRequest {
            module: job.job.module.clone(),
            values,
            files: BTreeMap::new(),
            target: None,
            max_price: Some(max_price),
            output_dir: self.work_dir.join(format!("job-{}", job.job.job_id)),
            min_reputation: None,
        })
    }
}

#[async_trait::async_trait]
impl JobRunner for JobCreatorRunner {
    async fn run(&self, job: &BridgeJob, ctx: &RunContext) -> Result<RunSuccess, RunFailure> {
        let request = self.request(job)?;
        let (events, deals) = event_sink();
        let resume = match job.resume_deal {
            Some(deal_id) => self.resumable(deal_id).await?,
            None => None,
        };
        let outcome = match resume {
            Some(deal_id) => {
                info!(deal = %deal_id, "resuming the deal an earlier run made");
                let run = self.creator.resume(deal_id, &request.output_dir, events);
                watch_run(run, deals, Some(deal_id), ctx).await?
            }
            None => {
                let run = self.creator.run(&request, ctx.cancellation(), events);
                watch_run(run, deals, None, ctx).await?
            }
        };
        if !self.keep_results
            && let Err(e) = std::fs::remove_dir_all(&request.output_dir)
        {
            warn!(dir = %request.output_dir.display(), error = %e, "removing the downloaded results failed");
        }
        Ok(RunSuccess {
            results_cid: outcome.results_cid,
            spent: outcome.price,
            deal_id: Some(outcome.deal_id),
        })
    }
}

impl JobCreatorRunner {
    /// Whether the recorded deal can still give results: `Some(deal)` to resume it, `None`
    /// to make a new one.
    async fn resumable(&self, deal_id: B256) -> Result<Option<B256>, RunFailure> {
        let deal = self.creator.chain().deal(deal_id).await.map_err(|e| {
            RunFailure::retryable(format!("reading the recorded deal {deal_id}: {e}"))
        })?;
        match deal.map(|d| d.status) {
            Some(
                DealStatus::Agreed
                | DealStatus::ResultsSubmitted
                | DealStatus::FailureReported
                | DealStatus::Finished(
                    Outcome::Accepted | Outcome::NoJudgementInTime | Outcome::MediationAccepted,
                ),
            ) => Ok(Some(deal_id)),
            Some(DealStatus::ResultsChallenged) => Err(RunFailure::fatal(format!(
                "the results of deal {deal_id} failed verification and were challenged"
            ))),
            status => {
                info!(deal = %deal_id, ?status, "the recorded deal cannot give results; making a new one");
                Ok(None)
            }
        }
    }
}

/// The `on_event` callback of the job flow (synchronous) and the receiving end of the
/// deal ids it forwards: [`watch_run`] records them (asynchronously) while the flow runs.
fn event_sink() -> (impl FnMut(JobEvent) + Send, mpsc::UnboundedReceiver<B256>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = move |e: JobEvent| {
        match &e {
            JobEvent::DealAgreed { deal_id, provider, price, deadline } => {
                info!(deal = %deal_id, %provider, price = %Amount(*price), deadline, "deal agreed");
                // The receiver lives as long as the run.
                let _ = tx.send(*deal_id);
            }
            JobEvent::OfferPosted { offer_id, expiry } => {
                info!(offer = %offer_id, expiry, "offer posted");
            }
            JobEvent::ResultsSubmitted { cid } => info!(%cid, "results submitted"),
            JobEvent::Accepted { paid, returned_collateral, refunded } => {
                info!(
                    provider_paid = %Amount(*paid),
                    returned_collateral = %Amount(*returned_collateral),
                    refunded = %Amount(*refunded),
                    "results verified and accepted"
                );
            }
            other => info!(event = ?other, "job flow"),
        }
    };
    (sink, rx)
}

/// Drives `run`, recording each deal id it reports as soon as it comes. Once a deal is
/// recorded (`recorded`: one recorded earlier), a cancellation stops waiting at once (the next run resumes the deal); before
/// that, the flow itself answers it (it withdraws the offer).
async fn watch_run(
    run: impl Future<Output = Result<JobOutcome, JobError>>,
    mut deals: mpsc::UnboundedReceiver<B256>,
    mut recorded: Option<B256>,
    ctx: &RunContext,
) -> Result<JobOutcome, RunFailure> {
    tokio::pin!(run);
    loop {
        tokio::select! {
            biased;
            Some(deal_id) = deals.recv() => {
                ctx.record_deal(deal_id)
                    .await
                    .map_err(|e| RunFailure::retryable(format!("recording deal {deal_id}: {e}")))?;
                recorded = Some(deal_id);
            }
            result = &mut run => {
                // A deal reported just before the end is recorded too (a retry resumes it).
                while let Ok(deal_id) = deals.try_recv() {
                    if let Err(e) = ctx.record_deal(deal_id).await {
                        warn!(deal = %deal_id, error = %e, "recording the deal failed");
                    }
                }
                return result.map_err(|e| failure(&e));
            }
            () = ctx.cancellation().cancelled(), if recorded.is_some() => {
                let deal = recorded.unwrap_or_default();
                return Err(RunFailure::retryable(format!(
                    "stopped while deal {deal} runs; the next run resumes it"
                )));
            }
        }
    }
}

/// What a failed job flow means for the bridge job: a readable, one-line reason, and
/// whether running again may help.
pub(crate) fn failure(e: &JobError) -> RunFailure {
    let text = one_line(&e.to_string());
    match e {
        JobError::Module(_)
        | JobError::Load(_)
        | JobError::InputFile { .. }
        | JobError::NoMatch { .. }
        | JobError::Rejected(_)
        | JobError::ResultsRejected { .. }
        | JobError::ProviderCouldNotRun { .. }
        | JobError::UndeclaredInputFile { .. }
        | JobError::InputsTooLarge { .. }
        | JobError::ImageNotPinned { .. } => RunFailure::fatal(text),
        JobError::InsufficientFunds { .. } | JobError::InsufficientAllowance { .. } => {
            RunFailure::retryable(format!("the bridge account cannot pay: {text}"))
        }
        _ => RunFailure::retryable(text),
    }
}

/// Joins a multi-line message (a list of reasons) into one line.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(part.trim_start_matches("- "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_on_one_line_and_are_classified() {
        let e = JobError::NoMatch {
            offer_id: B256::ZERO,
            reasons: vec![
                "resource offer 0x01: too little RAM".into(),
                "resource offer 0x02: price".into(),
            ],
        };
        let f = failure(&e);
        assert!(!f.retryable);
        assert_eq!(
            f.reason,
            "no provider matched the job before its offer expired: resource offer 0x01: too \
             little RAM; resource offer 0x02: price"
        );
        let f = failure(&JobError::NoMatch { offer_id: B256::ZERO, reasons: vec![] });
        assert_eq!(
            f.reason,
            "no provider matched the job before its offer expired (no resource offer was available)"
        );
        assert!(
            failure(&JobError::Rejected("bad".into())).reason.contains("rejected the job: bad")
        );
        assert!(failure(&JobError::Cancelled("x".into())).retryable);
        assert!(failure(&JobError::Other("rpc".into())).retryable);
    }
}
