//! Follows the controller's events and keeps the solver's deals up to date.
//!
//! The block cursor lives in the database (`meta.block_cursor`) and moves in the
//! same transaction as the updates a batch of logs makes, so after a crash the
//! follower rescans from the last committed block: each update is idempotent
//! (a known deal is not created twice; a state update rewrites the same state).
//!
//! It also keeps every provider's reputation (`lilypad_core::reputation`) from the
//! deals of every solver: the events of each deal go to `provider_deals` in the same
//! transaction, and the scores of the providers a batch touched are then recomputed
//! from that table and handed to the matcher. At start the matcher gets every
//! provider's score from the table before the follower catches up.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use alloy::primitives::{Address, B256};
use lilypad_core::{offer::JobOffer, state::DealStatus};

use super::{ServeError, State, Term};
use crate::{
    chain::{
        ControllerEvent, LogPoller,
        bindings::controller::LilypadController as C,
        deals::{deal_from_event, job_failure_from, outcome_from},
    },
    solver::{
        api::{DealRecord, EventKind},
        store::{self, Tx},
    },
};

const CURSOR: &str = "block_cursor";

pub(super) struct Follower {
    state: Arc<State>,
    term: Term,
    poller: LogPoller<ControllerEvent>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("cursor", &self.poller.cursor()).finish()
    }
}

impl Follower {
    pub(super) async fn new(state: Arc<State>, term: Term) -> Result<Self, ServeError> {
        let from = match state.store.meta(CURSOR).await? {
            Some(v) => v.parse().unwrap_or(0),
            None => state.chain.config().deployed_at_block,
        };
        let poller = state.chain.poll_controller_events(from);
        Ok(Self { state, term, poller })
    }

    /// Scans one chunk of blocks and applies it; returns whether it found the head.
    async fn step(&mut self) -> Result<bool, ServeError> {
        let before = self.poller.cursor();
        let batch = self.poller.next_batch().await?;
        let after = self.poller.cursor();
        if after == before {
            return Ok(true);
        }
        let solver = self.state.solver;
        let t = self.term.clone();
        let touched = self
            .state
            .store
            .write(move |tx| {
                // The cursor is the leader's: a replica that lost the lease stops here.
                t.fence(tx)?;
                let mut touched = BTreeSet::new();
                for (event, log) in &batch {
                    apply(tx, solver, event, log.transaction_hash.unwrap_or_default())?;
                    if let Some(provider) = record_reputation(tx, event, log.block_timestamp)? {
                        touched.insert(provider);
                    }
                }
                tx.set_meta(CURSOR, &after.to_string())?;
                Ok(touched)
            })
            .await
            .inspect_err(|e| self.state.write_failed(&self.term, e))?;
        if !touched.is_empty() {
            load_scores(&self.state, Some(touched.into_iter().collect())).await?;
        }
        self.state.metrics.chain_block.set(i64::try_from(after).unwrap_or(i64::MAX));
        Ok(false)
    }

    /// Scans up to the chain head.
    pub(super) async fn catch_up(&mut self) -> Result<(), ServeError> {
        while !self.step().await? {}
        Ok(())
    }

    /// Follows the chain until shutdown; failures are logged and retried.
    pub(super) async fn run(mut self, idle: Duration) {
        let mut stop = self.state.shutdown.clone();
        loop {
            let pause = match self.step().await {
                Ok(true) => idle,
                Ok(false) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!("chain follower: {e}");
                    idle.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = super::stopped(&mut stop) => return,
            }
        }
    }
}

/// Hands the matcher the scores of `providers` (every provider: `None`) from the store.
pub(super) async fn load_scores(
    state: &State,
    providers: Option<Vec<Address>>,
) -> Result<(), ServeError> {
    let reputations = state.store.reputations(providers).await?;
    if let Ok(mut book) = state.book.lock() {
        for (provider, r) in reputations {
            book.set_score(provider, r.score);
        }
    }
    Ok(())
}

/// Records what an event says of its deal's provider's reputation; returns the
/// provider whose record changed.
fn record_reputation(
    tx: &mut Tx<'_>,
    event: &ControllerEvent,
    at: Option<u64>,
) -> store::Result<Option<Address>> {
    match event {
        ControllerEvent::DealCreated(e) => {
            tx.reputation_created(e.dealId, e.provider, at).map(Some)
        }
        ControllerEvent::ResultsSubmitted(e) => tx.reputation_results(e.dealId, at),
        ControllerEvent::ResultsChallenged(e) => tx.reputation_challenged(e.dealId),
        ControllerEvent::FailureChallenged(e) => tx.reputation_challenged(e.dealId),
        ControllerEvent::DealFinished(e) => match outcome_from("DealFinished", e.outcome) {
            Ok(outcome) => tx.reputation_finished(e.dealId, outcome),
            Err(_) => Ok(None),
        },
        _ => Ok(None),
    }
}

fn apply(
    tx: &mut Tx<'_>,
    solver: Address,
    event: &ControllerEvent,
    tx_hash: B256,
) -> store::Result<()> {
    match event {
        ControllerEvent::DealCreated(e) => {
            if e.solver != solver {
                return Ok(());
            }
            created(tx, e, tx_hash)
        }
        ControllerEvent::ResultsSubmitted(e) => {
            let cid = e.resultsCid.clone();
            tx.update_deal(
                e.dealId,
                |r| {
                    r.status = DealStatus::ResultsSubmitted;
                    r.results_cid = Some(cid.clone());
                },
                EventKind::ResultsSubmitted {
                    deal_id: e.dealId,
                    results_cid: e.resultsCid.clone(),
                },
            )
            .map(drop)
        }
        ControllerEvent::ResultsChallenged(e) => tx
            .update_deal(
                e.dealId,
                |r| {
                    r.status = DealStatus::ResultsChallenged;
                    r.mediator = None;
                },
                EventKind::ResultsChallenged { deal_id: e.dealId, draw_block: e.drawBlock },
            )
            .map(drop),
        ControllerEvent::FailureReported(e) => {
            let Ok(reason) = job_failure_from("FailureReported", e.reason) else {
                tracing::warn!(deal = %e.dealId, reason = e.reason, "unknown failure reason");
                return Ok(());
            };
            tx.update_deal(
                e.dealId,
                |r| r.status = DealStatus::FailureReported,
                EventKind::FailureReported { deal_id: e.dealId, reason, detail: e.detail.clone() },
            )
            .map(drop)
        }
        ControllerEvent::FailureChallenged(e) => tx
            .update_deal(
                e.dealId,
                |r| {
                    r.status = DealStatus::FailureChallenged;
                    r.mediator = None;
                },
                EventKind::FailureChallenged { deal_id: e.dealId, draw_block: e.drawBlock },
            )
            .map(drop),
        ControllerEvent::MediatorDrawn(e) => tx
            .update_deal(
                e.dealId,
                |r| r.mediator = Some(e.mediator),
                EventKind::MediatorDrawn { deal_id: e.dealId, mediator: e.mediator },
            )
            .map(drop),
        ControllerEvent::MediatorRedraw(e) => tx
            .update_deal(
                e.dealId,
                |r| r.mediator = None,
                EventKind::MediatorRedrawn { deal_id: e.dealId, previous: e.previous },
            )
            .map(drop),
        ControllerEvent::DealFinished(e) => {
            let Ok(outcome) = outcome_from("DealFinished", e.outcome) else {
                tracing::warn!(deal = %e.dealId, outcome = e.outcome, "unknown outcome");
                return Ok(());
            };
            tx.update_deal(
                e.dealId,
                |r| r.status = DealStatus::Finished(outcome),
                EventKind::DealFinished { deal_id: e.dealId, outcome },
            )
            .map(drop)
        }
        _ => Ok(()),
    }
}

/// Records a deal from its `DealCreated` event (a deal whose `createDeal` answer was
/// lost in a crash, or one the dealer recorded already: then nothing changes).
fn created(tx: &mut Tx<'_>, e: &C::DealCreated, tx_hash: B256) -> store::Result<()> {
    let Some(job) = tx.offer(e.terms.jobOfferHash)? else {
        tracing::warn!(deal = %e.dealId, "a deal of this solver from an offer it does not know");
        return Ok(());
    };
    let Ok(offer) = serde_json::from_str::<JobOffer>(&job.offer_json) else { return Ok(()) };
    let record = DealRecord {
        deal: deal_from_event(e, offer.timeout_secs),
        status: DealStatus::Agreed,
        mediators: e.mediators.clone(),
        results_cid: None,
        mediator: None,
        tx: tx_hash,
    };
    tx.record_deal(&record).map(drop)
}
