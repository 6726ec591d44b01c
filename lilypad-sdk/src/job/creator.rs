//! The job creator's flow; see the [module docs](super).

use std::{collections::BTreeMap, path::Path, time::Duration};

use alloy::primitives::{Address, B256, U256};
use futures::StreamExt;
use lilypad_core::{
    inputs::MAX_INPUTS_BYTES,
    inputs::{JobInputs, ModuleSource},
    offer::{CreatorBounds, JobOffer},
    settlement::Outcome,
    state::JobFailure,
};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

use super::{JobError, JobEvent, JobOutcome, JobRequest};
use crate::{
    chain::{ChainClient, ControllerEvent, DealStatus, OnChainDeal, roles},
    module::ModuleCache,
    solver::{
        SolverClient,
        api::{EventKind, OfferState},
    },
    storage::{StorageClient, StorageError},
};

/// Knobs of the flow.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Max price when the request names none, in token base units.
    pub default_max_price: U256,
    /// How long the offer stays valid (and so how long to wait for a match).
    pub offer_ttl: Duration,
    /// Seconds the provider has to submit results, when the module names no timeout.
    pub default_timeout_secs: u64,
    /// Mediators the job creator trusts; empty means every mediator registered on chain.
    pub mediators: Vec<Address>,
    /// Approve the controller for the payment collateral when the allowance is short.
    pub approve: bool,
    /// Polling period of the fallback paths (solver offer state, chain deal state).
    pub poll_interval: Duration,
    /// Refuse a git module whose image is not pinned by digest (a mediator could not
    /// re-run the same image). Local modules are allowed either way, with a warning.
    pub require_pinned_image: bool,
    /// The limits this job creator signs on the network's parameters.
    pub bounds: CreatorBounds,
    /// Accept a provider's failure report at once (both refunded), rather than leave
    /// it open to be challenged by hand (`lilypad-cli deals challenge-failure`).
    pub accept_failures: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            default_max_price: U256::from(10u64).pow(U256::from(18u64)),
            offer_ttl: Duration::from_secs(120),
            default_timeout_secs: 600,
            mediators: Vec::new(),
            approve: true,
            poll_interval: Duration::from_millis(500),
            require_pinned_image: true,
            bounds: CreatorBounds::default(),
            accept_failures: true,
        }
    }
}

/// Runs jobs for one job creator account.
#[derive(Debug, Clone)]
pub struct JobCreator {
    chain: ChainClient,
    solver: SolverClient,
    storage: StorageClient,
    modules: ModuleCache,
    options: JobOptions,
    solver_address: Address,
}

impl JobCreator {
    /// A job creator signing with `chain`'s signer, talking to `solver` (whose chain
    /// account is `solver_address`) and `storage`.
    pub fn new(
        chain: ChainClient,
        solver: SolverClient,
        storage: StorageClient,
        modules: ModuleCache,
        options: JobOptions,
        solver_address: Address,
    ) -> Self {
        Self { chain, solver, storage, modules, options, solver_address }
    }

    /// The chain client.
    pub fn chain(&self) -> &ChainClient {
        &self.chain
    }

    /// The solver's chain address.
    pub fn solver_address(&self) -> Address {
        self.solver_address
    }

    /// Runs a job to accepted results, reporting each step to `on_event`.
    pub async fn run(
        &self,
        request: &JobRequest,
        cancel: &CancellationToken,
        mut on_event: impl FnMut(JobEvent) + Send,
    ) -> Result<JobOutcome, JobError> {
        let me = self
            .chain
            .address()
            .ok_or_else(|| JobError::Other("the chain client has no signer".into()))?;
        let min_reputation = request
            .min_reputation
            .map(crate::solver::api::check_min_reputation)
            .transpose()
            .map_err(JobError::InvalidMinReputation)?;

        // 1. Module and inputs, before anything touches the network.
        let modules = self.modules.clone();
        let reference = request.module.clone();
        let resolved = tokio::task::spawn_blocking(move || modules.resolve_str(&reference))
            .await
            .map_err(|e| JobError::Other(format!("module resolution panicked: {e}")))??;
        let (rendered, spec) = resolved.template.render(&request.values)?;
        on_event(JobEvent::ModuleResolved {
            module_id: resolved.id,
            source: describe_source(&resolved.source),
            missing_inputs: rendered.missing_inputs.clone(),
        });

        // Everything a provider checks that the job creator can check too, checked
        // before anything is paid: a provider would otherwise end the deal with a
        // failure report (or, worse, time out), with the payment held meanwhile.
        let declared: Vec<String> = spec.input_files.iter().map(|f| f.name.clone()).collect();
        for (key, path) in &request.files {
            if !declared.contains(key) {
                return Err(JobError::UndeclaredInputFile { key: key.clone(), declared });
            }
            std::fs::metadata(path).map_err(|source| JobError::InputFile {
                key: key.clone(),
                path: path.clone(),
                source,
            })?;
        }
        let placeholder = JobInputs {
            module: resolved.source.clone(),
            values: request.values.clone(),
            // A CIDv0 is always 46 characters: the size is exact before the upload.
            files: request.files.keys().map(|k| (k.clone(), "Q".repeat(46))).collect(),
        };
        let size = placeholder.canonical_bytes().len();
        if size > MAX_INPUTS_BYTES {
            return Err(JobError::InputsTooLarge { bytes: size, limit: MAX_INPUTS_BYTES });
        }
        if !spec.image.is_pinned() {
            match &resolved.source {
                ModuleSource::Git { .. } if self.options.require_pinned_image => {
                    return Err(JobError::ImageNotPinned { image: spec.image.to_string() });
                }
                _ => on_event(JobEvent::Warning {
                    message: format!(
                        "image {} is not pinned by digest: a mediator may not run the same image",
                        spec.image
                    ),
                }),
            }
        }

        // 2. Money: checked before anything is posted.
        let max_price = request.max_price.unwrap_or(self.options.default_max_price);
        let need = max_price;
        let have = self.chain.token_balance(me).await?;
        if have < need {
            return Err(JobError::InsufficientFunds { account: me, need, have });
        }
        // The controller takes the payment collateral at the deal and the mediation fee
        // if the results have to be challenged: approve both up front, so a challenge
        // never waits on an approval. The fee needs no balance now (only if challenging).
        let params = self.chain.network_params().await?;
        self.options.bounds.accepts(&params)?;
        let to_approve = need.saturating_add(params.mediation_fee);
        let controller = self.chain.config().contracts.controller;
        let allowance = self.chain.allowance(me, controller).await?;
        if allowance < to_approve {
            if !self.options.approve {
                return Err(JobError::InsufficientAllowance {
                    account: me,
                    need: to_approve,
                    have: allowance,
                });
            }
            self.chain.approve_controller(to_approve).await?;
            on_event(JobEvent::Approved { amount: to_approve });
        }

        // 3. Input files travel by CID.
        let mut files = BTreeMap::new();
        for (key, path) in &request.files {
            let cid = self.storage.publish_path(path).await?;
            on_event(JobEvent::InputUploaded { key: key.clone(), cid: cid.to_string() });
            files.insert(key.clone(), cid.to_string());
        }
        let inputs =
            JobInputs { module: resolved.source.clone(), values: request.values.clone(), files };
        let inputs_bytes = inputs.canonical_bytes();

        // 4. The offer.
        let mediators = if self.options.mediators.is_empty() {
            let n = self.chain.member_count(roles::MEDIATOR).await?;
            self.chain.members(roles::MEDIATOR, 0, n).await?
        } else {
            self.options.mediators.clone()
        };
        if mediators.is_empty() {
            return Err(JobError::Other(
                "no mediators: none are registered on chain and none were given".into(),
            ));
        }
        let now = self.now().await?;
        let expiry = now + self.options.offer_ttl.as_secs().max(1);
        let timeout_secs = if spec.timeout_secs > 0 {
            spec.timeout_secs
        } else {
            self.options.default_timeout_secs
        };
        let offer = JobOffer {
            creator: me,
            module_id: resolved.id,
            inputs_hash: inputs.hash(),
            requirements: spec.resources,
            max_price,
            payment_collateral: need,
            // The provider needs time to pull the image and publish as well as to run;
            // never under the network's floor, which createDeal enforces.
            timeout_secs: timeout_secs.saturating_add(120).max(params.min_job_timeout_secs),
            bounds: self.options.bounds,
            mediators: mediators.into_iter().collect(),
            solver: self.solver_address,
            target: request.target,
            expiry,
            nonce: random_nonce(),
        };
        let signed = self.chain.sign_job_offer(&offer)?;
        let offer_id = signed.id;
        self.solver.post_job_offer_requiring(&signed, &inputs_bytes, min_reputation).await?;
        on_event(JobEvent::OfferPosted { offer_id, expiry });

        // 5. The deal.
        let deal_id = match self.wait_for_deal(offer_id, expiry, cancel).await {
            Ok(id) => id,
            Err(e) => {
                if matches!(e, JobError::Cancelled(_) | JobError::NoMatch { .. }) {
                    // Make sure the offer can never become a deal; a deal that won the race
                    // is reported instead.
                    self.withdraw(&offer).await?;
                    if let Some(deal) = self.deal_for(offer_id).await? {
                        return Err(JobError::Other(format!(
                            "the offer became deal {deal} while it was being withdrawn; \
                             follow that deal by its id"
                        )));
                    }
                    on_event(JobEvent::OfferWithdrawn);
                }
                return Err(e);
            }
        };
        let deal = self
            .chain
            .deal(deal_id)
            .await?
            .ok_or_else(|| JobError::Other(format!("deal {deal_id} is not on chain")))?;
        on_event(JobEvent::DealAgreed {
            deal_id,
            provider: deal.provider,
            price: deal.price,
            deadline: deal.deadline,
        });
        self.settle(offer_id, resolved.id, &deal, &request.output_dir, &mut on_event).await
    }

    /// Takes up a deal this account made earlier (say, before a restart) and runs it to
    /// accepted results as [`Self::run`] does from its step 6: waits for the results on
    /// chain, downloads and verifies them into `<output_dir>/<deal id>/`, accepts or
    /// challenges them. A deal whose results were accepted already is only downloaded.
    /// Reports [`JobEvent::DealAgreed`] first, then the later events. The offer and module
    /// ids of the outcome come from the solver's record of the deal.
    ///
    /// Errors as [`Self::run`]; a deal of another job creator, or one that can no longer
    /// give accepted results (challenged, timed out, rejected), is [`JobError::Other`].
    pub async fn resume(
        &self,
        deal_id: B256,
        output_dir: &Path,
        mut on_event: impl FnMut(JobEvent) + Send,
    ) -> Result<JobOutcome, JobError> {
        let me = self
            .chain
            .address()
            .ok_or_else(|| JobError::Other("the chain client has no signer".into()))?;
        let deal = self
            .chain
            .deal(deal_id)
            .await?
            .ok_or_else(|| JobError::Other(format!("deal {deal_id} is not on chain")))?;
        if deal.job_creator != me {
            return Err(JobError::Other(format!(
                "deal {deal_id} belongs to job creator {}, not {me}",
                deal.job_creator
            )));
        }
        match deal.status {
            // A failure report is taken up too: accepted (or left open) as `run` does.
            DealStatus::Agreed | DealStatus::ResultsSubmitted | DealStatus::FailureReported => {}
            // The results stand: accepted, unjudged in time, or upheld by a mediator.
            DealStatus::Finished(
                Outcome::Accepted | Outcome::NoJudgementInTime | Outcome::MediationAccepted,
            ) => {}
            other => {
                return Err(JobError::Other(format!(
                    "deal {deal_id} cannot give accepted results any more ({other:?})"
                )));
            }
        }
        let record = self.solver.deal(deal_id).await?;
        on_event(JobEvent::DealAgreed {
            deal_id,
            provider: deal.provider,
            price: deal.price,
            deadline: deal.deadline,
        });
        self.settle(
            record.deal.job_offer_id,
            record.deal.module_id,
            &deal,
            output_dir,
            &mut on_event,
        )
        .await
    }

    /// Steps 6 to 8 of a deal: results on chain, verified download, accept or challenge
    /// (nothing to judge when the deal is over already).
    async fn settle(
        &self,
        offer_id: B256,
        module_id: B256,
        deal: &OnChainDeal,
        output_dir: &Path,
        on_event: &mut (impl FnMut(JobEvent) + Send),
    ) -> Result<JobOutcome, JobError> {
        let deal_id = deal.id;
        // 6. Results on chain (or the provider's word that the job cannot run).
        let cid = match self.wait_for_results(deal_id, deal.deadline).await? {
            Awaited::Results(cid) => cid,
            Awaited::Deadline => {
                let finished = self.chain.claim_timeout(deal_id).await?;
                on_event(JobEvent::TimedOut { refunded: finished.to_job_creator });
                return Err(JobError::ProviderTimedOut {
                    deal_id,
                    provider: deal.provider,
                    refunded: finished.to_job_creator,
                });
            }
            Awaited::Failure { reason, detail } => {
                on_event(JobEvent::FailureReported { reason, detail: detail.clone() });
                let accepted = self.options.accept_failures;
                if accepted {
                    let finished = self.chain.accept_failure(deal_id).await?;
                    on_event(JobEvent::FailureAccepted { refunded: finished.to_job_creator });
                }
                return Err(JobError::ProviderCouldNotRun {
                    deal_id,
                    provider: deal.provider,
                    reason,
                    detail,
                    accepted,
                });
            }
        };
        on_event(JobEvent::ResultsSubmitted { cid: cid.to_string() });

        // 7. Verified download; 8. accept or challenge.
        let dest = output_dir.join(deal_id.to_string());
        std::fs::create_dir_all(output_dir)
            .map_err(|e| JobError::Other(format!("creating {}: {e}", output_dir.display())))?;
        match self.storage.fetch(&cid, &dest).await {
            Ok(_) => {}
            Err(e) if is_verification_failure(&e) => {
                let reason = e.to_string();
                let created = self.deal_mediators(deal_id).await?;
                let challenge = self.chain.challenge_results(deal_id, &created).await?;
                on_event(JobEvent::Challenged {
                    reason: reason.clone(),
                    draw_block: challenge.draw_block,
                });
                return Err(JobError::ResultsRejected {
                    deal_id,
                    cid: cid.to_string(),
                    reason,
                    draw_block: challenge.draw_block,
                });
            }
            Err(e) => return Err(e.into()),
        }
        on_event(JobEvent::ResultsVerified { path: dest.clone() });
        if !matches!(deal.status, DealStatus::Finished(_)) {
            let finished = self.chain.accept_results(deal_id).await?;
            // One transfer pays the provider the price and returns its results collateral.
            on_event(JobEvent::Accepted {
                paid: deal.price,
                returned_collateral: finished.to_provider.saturating_sub(deal.price),
                refunded: finished.to_job_creator,
            });
        }
        Ok(JobOutcome {
            offer_id,
            deal_id,
            module_id,
            provider: deal.provider,
            price: deal.price,
            results_cid: cid.to_string(),
            exit_code: read_exit_code(&dest),
            results_dir: dest,
        })
    }

    /// The later of the wall clock and the latest block's time: an idle chain's
    /// last block can be old (anvil mines only on transactions), and a test chain
    /// can be ahead of the wall clock.
    async fn now(&self) -> Result<u64, JobError> {
        Ok(unix_now().max(self.chain.latest_timestamp().await?))
    }

    /// Waits for the offer's deal: the solver's event stream first, its offer state
    /// as a polling fallback when the stream is down.
    async fn wait_for_deal(
        &self,
        offer_id: B256,
        expiry: u64,
        cancel: &CancellationToken,
    ) -> Result<B256, JobError> {
        let mut events = self.solver.events(None).boxed();
        let mut stream_ok = true;
        let mut next_poll = Instant::now();
        let mut last_reasons = Vec::new();
        loop {
            if next_poll <= Instant::now() {
                next_poll = Instant::now() + self.options.poll_interval;
                let view = self.solver.job_offer(offer_id).await?;
                // Reasons are listed while the offer is open; keep the last ones seen
                // before its final second (then every pair fails on the expiry alone).
                let fresh = unix_now() < expiry;
                if !view.mismatches.is_empty() && fresh {
                    last_reasons = reasons(&view);
                }
                match view.state {
                    OfferState::Matched => {
                        if let Some(deal) = view.deal_id {
                            return Ok(deal);
                        }
                    }
                    OfferState::Failed => {
                        return Err(JobError::Rejected(
                            view.reason.unwrap_or_else(|| "the deal could not be created".into()),
                        ));
                    }
                    OfferState::Expired => {
                        return Err(JobError::NoMatch { offer_id, reasons: last_reasons });
                    }
                    OfferState::Open | OfferState::Matching => {}
                }
                let now = self.now().await?;
                if now > expiry {
                    return Err(JobError::NoMatch { offer_id, reasons: last_reasons });
                }
            }
            let wait = next_poll.saturating_duration_since(Instant::now());
            tokio::select! {
                () = cancel.cancelled() => {
                    return Err(JobError::Cancelled("before a provider took the job".into()));
                }
                event = events.next(), if stream_ok => match event {
                    Some(Ok(e)) => match e.kind {
                        EventKind::DealCreated { deal, .. } if deal.job_offer_id == offer_id => {
                            return Ok(deal.id);
                        }
                        // Failures and expiry: the next poll reports them with reasons.
                        EventKind::OfferFailed { offer_id: id, .. }
                        | EventKind::OfferExpired { offer_id: id }
                            if id == offer_id =>
                        {
                            next_poll = Instant::now();
                        }
                        _ => {}
                    },
                    // The stream reconnects by itself; polling covers the gap.
                    Some(Err(_)) => {}
                    None => stream_ok = false,
                },
                () = sleep(wait) => {}
            }
        }
    }

    /// Waits for results on chain until the deal's deadline.
    ///
    /// Cancelling after the deal exists cannot take the money back early: the refund
    /// path is the timeout claim after the deadline, so this keeps waiting.
    async fn wait_for_results(&self, deal_id: B256, deadline: u64) -> Result<Awaited, JobError> {
        let from = self.chain.config().deployed_at_block;
        let mut poller = self.chain.poll_controller_events(from);
        loop {
            for (event, _) in poller.next_batch().await? {
                match event {
                    ControllerEvent::ResultsSubmitted(e) if e.dealId == deal_id => {
                        let cid = cid::Cid::try_from(e.resultsCid.as_ref()).map_err(|err| {
                            JobError::Other(format!("the results CID on chain is malformed: {err}"))
                        })?;
                        return Ok(Awaited::Results(cid));
                    }
                    ControllerEvent::FailureReported(e) if e.dealId == deal_id => {
                        let reason = crate::chain::job_failure_from("FailureReported", e.reason)?;
                        return Ok(Awaited::Failure { reason, detail: e.detail });
                    }
                    ControllerEvent::DealFinished(e) if e.dealId == deal_id => {
                        return Err(JobError::Other(format!(
                            "deal {deal_id} ended before results were submitted"
                        )));
                    }
                    _ => {}
                }
            }
            if self.now().await? > deadline {
                return Ok(Awaited::Deadline);
            }
            sleep(self.options.poll_interval).await;
        }
    }

    /// The deal's mediators, from its `DealCreated` event.
    async fn deal_mediators(&self, deal_id: B256) -> Result<Vec<Address>, JobError> {
        Ok(self.chain.deal_mediators(deal_id).await?)
    }

    /// The deal the offer became, if any, as the solver recorded it (the
    /// `DealCreated` event does not carry offer ids).
    async fn deal_for(&self, offer_id: B256) -> Result<Option<B256>, JobError> {
        // A deal in flight (state `matching`) settles within a transaction's time.
        for _ in 0..120 {
            let view = self.solver.job_offer(offer_id).await?;
            if view.state != OfferState::Matching {
                return Ok(view.deal_id);
            }
            sleep(self.options.poll_interval).await;
        }
        Ok(self.solver.job_offer(offer_id).await?.deal_id)
    }

    /// Invalidates the offer's nonce on chain so no solver can turn it into a deal.
    async fn withdraw(&self, offer: &JobOffer) -> Result<(), JobError> {
        self.chain.invalidate_nonce(offer.nonce).await?;
        Ok(())
    }
}

/// What ends the wait for results.
enum Awaited {
    /// The results CID on chain.
    Results(cid::Cid),
    /// The provider says the job cannot run because of the job itself.
    Failure {
        /// Why.
        reason: JobFailure,
        /// The provider's details.
        detail: String,
    },
    /// The deadline passed without either.
    Deadline,
}

fn reasons(view: &crate::solver::api::JobOfferStatus) -> Vec<String> {
    view.mismatches
        .iter()
        .map(|m| match m.offers {
            1 => format!("1 offer: {}", m.reason),
            n => format!("{n} offers: {}", m.reason),
        })
        .collect()
}

/// Failures that make results unacceptable (as opposed to our own I/O or network
/// trouble, which must not cost the provider its collateral).
fn is_verification_failure(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::HashMismatch { .. }
            | StorageError::BadNode { .. }
            | StorageError::UnsafeName { .. }
            | StorageError::Symlink { .. }
            | StorageError::SpecialFile { .. }
            | StorageError::LimitExceeded { .. }
            | StorageError::UnsupportedCid { .. }
            | StorageError::NotFound { .. }
    )
}

fn describe_source(source: &ModuleSource) -> String {
    match source {
        ModuleSource::Git { url, commit } => format!("{url} at {commit}"),
        ModuleSource::Local { path, .. } => format!("{path} (local)"),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn read_exit_code(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join("exitCode")).ok()?.trim().parse().ok()
}

fn random_nonce() -> U256 {
    // 128 random bits: collisions are out of reach, and the bitmap word stays small.
    U256::from(rand::random::<u128>())
}
