//! Turns matches into deals on chain, and sweeps expired offers.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::primitives::{B256, Bytes};
use lilypad_core::{
    deal::deal_id,
    matcher::{AddError, Matched},
    offer::{JobOffer, OfferId, ResourceOffer},
    state::DealStatus,
};
use tokio::sync::mpsc;

use super::{Book, ServeError, State, Term, now_secs};
use crate::{
    chain::{
        ChainError, Revert, SignedJobOffer, SignedResourceOffer,
        bindings::controller::LilypadController::LilypadControllerErrors as Ctl,
    },
    solver::{
        api::{DealRecord, OfferKind, OfferState},
        store::{Pair, StoredOffer},
    },
};

/// An offer to put into the book.
pub(super) enum Parsed {
    /// A job offer and the least provider score it takes (0: any).
    Job(JobOffer, f64),
    /// A resource offer and the provider's slots it takes.
    Resource(ResourceOffer, BTreeSet<String>),
}

/// An offer parsed back from its stored JSON.
pub(super) fn parse(o: &StoredOffer) -> Result<Parsed, serde_json::Error> {
    Ok(match o.kind {
        OfferKind::Job => {
            Parsed::Job(serde_json::from_str(&o.offer_json)?, o.min_reputation.unwrap_or(0.0))
        }
        OfferKind::Resource => Parsed::Resource(
            serde_json::from_str(&o.offer_json)?,
            o.slots.iter().cloned().collect(),
        ),
    })
}

/// The open offers and what the resource offers put on the market, as a leader's
/// book would hold them, read from the database (a replica that does not lead
/// answers `/healthz` with this).
pub(super) async fn book_in_database(
    state: &State,
) -> Result<super::BookCounts, crate::solver::store::StoreError> {
    let now = now_secs();
    let mut book = state.fresh_matcher();
    let mut jobs = 0u64;
    for o in state.store.live_offers().await? {
        if o.state != OfferState::Open {
            continue;
        }
        match parse(&o) {
            Ok(Parsed::Job(j, _)) if j.expiry > now => jobs += 1,
            // Resources only: nothing matches in this copy.
            Ok(Parsed::Resource(r, slots)) => {
                let _ = book.add_resource_claiming(o.id, r, slots, now);
            }
            _ => {}
        }
    }
    Ok((jobs, book.resource_count() as u64, book.capacity()))
}

/// Puts an offer into the book at `now`: its match goes to the dealer.
fn add_locked(
    book: &mut Book,
    id: OfferId,
    offer: Parsed,
    now: u64,
) -> Result<Option<Matched>, AddError> {
    match offer {
        Parsed::Job(j, min) => book.add_job_requiring(id, j, min, now),
        Parsed::Resource(r, slots) => book.add_resource_claiming(id, r, slots, now),
    }
}

/// Puts an offer into the book at `now`; a match goes to the dealer. Returns the
/// offer's state, or `Err` if it had expired.
///
/// `seq`: the offer was just stored by this replica's API (its arrival `seq`). On
/// a replica that does not lead, it stays `open` for the leader to pick up; on a
/// shared database's leader, an offer the tail read already is not added twice.
pub(super) fn add_to_book(
    state: &State,
    id: OfferId,
    offer: Parsed,
    now: u64,
    seq: Option<u64>,
) -> Result<OfferState, AddError> {
    let added = {
        let Ok(mut book) = state.book.lock() else { return Ok(OfferState::Open) };
        if let Some(seq) = seq {
            if book.leading.is_none() {
                return Ok(OfferState::Open);
            }
            if let Some(tailed) = book.tailed {
                if seq <= tailed {
                    let waiting = book.job(&id).is_some() || book.resource(&id).is_some();
                    return Ok(if waiting { OfferState::Open } else { OfferState::Matching });
                }
                book.admitted.insert(id);
            }
        }
        add_locked(&mut book, id, offer, now)
    };
    match added? {
        Some(m) => {
            state.matched(m);
            Ok(OfferState::Matching)
        }
        None => Ok(OfferState::Open),
    }
}

/// Puts stored offers into the book in `seq` order: the open offers after a term
/// starts (`tail` false), or the offers the tail read (`tail` true: those this
/// replica's API added already are skipped, and the tail's mark moves past them).
/// Matches go to the dealer; expired offers, and offers whose slots are gone, are
/// recorded so. Returns how many went into the book.
async fn admit(state: &State, term: &Term, offers: Vec<StoredOffer>, tail: bool) -> usize {
    let now = now_secs();
    let mut expired = Vec::new();
    let mut broken = Vec::new();
    let mut matched = Vec::new();
    let mut added = 0usize;
    {
        let Ok(mut book) = state.book.lock() else { return 0 };
        if book.leading != Some(term.epoch) {
            return 0;
        }
        for o in &offers {
            if tail {
                book.tailed = Some(book.tailed.unwrap_or(0).max(o.seq));
                if book.admitted.remove(&o.id) {
                    continue;
                }
            }
            if o.state != OfferState::Open {
                continue;
            }
            match parse(o) {
                Ok(p) => match add_locked(&mut book, o.id, p, now) {
                    Ok(m) => {
                        added += 1;
                        matched.extend(m);
                    }
                    Err(AddError::Expired { .. }) => expired.push(o.id),
                    // Its slots went into a deal while it waited (or the solver was down).
                    Err(e @ AddError::SlotTaken { .. }) => broken.push((o.id, e.to_string())),
                    Err(e) => tracing::warn!(offer = %o.id, "not put into the book: {e}"),
                },
                Err(e) => broken.push((o.id, format!("stored offer does not parse: {e}"))),
            }
        }
    }
    for m in matched {
        state.matched(m);
    }
    if !expired.is_empty() || !broken.is_empty() {
        let t = term.clone();
        let written = state
            .store
            .write(move |tx| {
                t.fence(tx)?;
                for id in expired {
                    tx.expire_offer(id)?;
                }
                for (id, why) in broken {
                    tx.fail_offer(id, &why)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::warn!("cannot record offers that left the book: {e}");
            state.write_failed(term, &e);
        }
    }
    added
}

/// After a term starts: the open offers stored up to `upto` (all: `None`) back into
/// the book, in arrival order.
pub(super) async fn reload(
    state: &Arc<State>,
    term: &Term,
    upto: Option<u64>,
) -> Result<(), ServeError> {
    let upto = upto.unwrap_or(u64::MAX);
    let offers: Vec<_> = state
        .store
        .live_offers()
        .await?
        .into_iter()
        .filter(|o| o.state == OfferState::Open && o.seq <= upto)
        .collect();
    let open = admit(state, term, offers, false).await;
    tracing::info!(open, "offers reloaded into the matcher");
    Ok(())
}

/// How often a shared database's leader looks for offers other replicas stored.
const TAIL_POLL: Duration = Duration::from_millis(200);

/// On a shared database's leader: puts the offers other replicas store into the
/// book, reading past the tail's mark every [`TAIL_POLL`] until the term ends.
pub(super) async fn tail(state: Arc<State>, term: Term) {
    let mut stop = state.shutdown.clone();
    let mut ticks = tokio::time::interval(TAIL_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = super::stopped(&mut stop) => return,
        }
        loop {
            let after = match state.book.lock() {
                Ok(b) if b.leading == Some(term.epoch) => b.tailed.unwrap_or(0),
                _ => return,
            };
            match state.store.offers_after(after, 1000).await {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => {
                    let full = rows.len() == 1000;
                    let n = admit(&state, &term, rows, true).await;
                    if n > 0 {
                        tracing::debug!(offers = n, "offers from other replicas into the book");
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot read new offers: {e}");
                    break;
                }
            }
        }
    }
}

/// What to do after a failed `createDeal`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The deal exists already (a retry after a crash): the chain follower records it.
    Exists,
    /// Try again later (the chain or node is unavailable).
    Retry,
    /// These offers can never make a deal; the other goes back into the book.
    Fail { job: bool, resource: bool },
}

/// Whose offer a revert is about, when the controller says.
fn blame(e: &ChainError, job: &JobOffer, resource: &ResourceOffer) -> Option<Verdict> {
    let ChainError::Reverted { revert, .. } = e else { return Some(Verdict::Retry) };
    let who = |a| Verdict::Fail { job: a == job.creator, resource: a == resource.provider };
    match revert {
        Revert::Controller(c) => Some(match c {
            Ctl::DealExists(_) => Verdict::Exists,
            Ctl::InvalidSignature(x) => who(x.signer),
            Ctl::NonceUsed(x) => who(x.signer),
            Ctl::OfferExpired(x) => who(x.signer),
            Ctl::TargetMismatch(_) | Ctl::ModuleNotAllowed(_) => {
                Verdict::Fail { job: true, resource: false }
            }
            Ctl::ModuleNotOffered(_) => Verdict::Fail { job: false, resource: true },
            // Under the provider's signed minimum or the network's floor: the job's.
            Ctl::TimeoutTooShort(_) => Verdict::Fail { job: true, resource: false },
            // Terms 1 and 3 are the job creator's bounds; 0, 2 and 4 the provider's.
            Ctl::TermsNotAccepted(x) => {
                let job = matches!(x.term, 1 | 3);
                Verdict::Fail { job, resource: !job }
            }
            Ctl::TooManyMediators(x) => Verdict::Fail { job: x.which == 0, resource: x.which != 0 },
            // Token transfers fail inside the controller (SafeERC20): see who lacks funds.
            Ctl::SafeERC20FailedOperation(_) => return None,
            _ => Verdict::Fail { job: true, resource: true },
        }),
        _ => None,
    }
}

/// Who lacks the allowance or balance for their collateral (after a token revert).
async fn funds_blame(state: &State, job: &JobOffer, resource: &ResourceOffer) -> Verdict {
    let controller = state.chain.config().contracts.controller;
    let short = |owner, need| async move {
        let allowance = state.chain.allowance(owner, controller).await?;
        let balance = state.chain.token_balance(owner).await?;
        Ok::<bool, ChainError>(allowance < need || balance < need)
    };
    funds_verdict(
        short(job.creator, job.payment_collateral).await,
        short(resource.provider, resource.timeout_collateral).await,
    )
}

/// Whose offer fails after a token transfer reverted, from whether each side is short
/// of allowance or balance now.
fn funds_verdict<E>(job_short: Result<bool, E>, resource_short: Result<bool, E>) -> Verdict {
    match (job_short, resource_short) {
        // Nobody is short now: someone's allowance or balance changed between the revert
        // and this check (a job creator that revoked and restored its allowance, say).
        // Failing both offers would punish the honest side; try the pair again (until
        // an offer expires).
        (Ok(false), Ok(false)) => Verdict::Retry,
        (Ok(j), Ok(r)) => Verdict::Fail { job: j, resource: r },
        _ => Verdict::Retry,
    }
}

struct Dealer {
    state: Arc<State>,
    term: Term,
    /// Pairs waiting for a retry: when, and how many attempts so far.
    retry: HashMap<B256, (Instant, u32)>,
}

/// Creates the deals of matches until shutdown.
pub(super) async fn run(
    state: Arc<State>,
    term: Term,
    mut matches: mpsc::UnboundedReceiver<Matched>,
    tick: Duration,
) {
    let mut dealer = Dealer { state: state.clone(), term, retry: HashMap::new() };
    // Pairs left from before a restart are due at once.
    match state.store.pairs().await {
        Ok(pairs) => {
            for p in pairs {
                dealer.retry.insert(p.deal_id, (Instant::now(), 0));
            }
        }
        Err(e) => tracing::error!("cannot read pending pairs: {e}"),
    }
    let mut stop = state.shutdown.clone();
    let mut ticks = tokio::time::interval(tick);
    loop {
        tokio::select! {
            m = matches.recv() => match m {
                Some(m) => dealer.on_match(&m).await,
                None => return,
            },
            _ = ticks.tick() => dealer.retry_due().await,
            _ = super::stopped(&mut stop) => return,
        }
    }
}

impl Dealer {
    async fn on_match(&mut self, m: &Matched) {
        let pair = Pair {
            deal_id: deal_id(m.deal.job, m.deal.resource),
            job: m.deal.job,
            resource: m.deal.resource,
        };
        // Recorded before createDeal is sent: after a crash the pair is retried, never
        // matched again with someone else. The provider's offers that shared a slot
        // with the resource offer leave the book with it, in the same transaction.
        let withdrawn = m.withdrawn.clone();
        let why = format!(
            "withdrawn: offer {} of the same provider, over one of its slots, was matched",
            m.deal.resource
        );
        let t = self.term.clone();
        let written = self
            .state
            .store
            .write(move |tx| {
                t.fence(tx)?;
                for id in withdrawn {
                    tx.fail_offer(id, &why)?;
                }
                tx.pair(pair)
            })
            .await;
        if let Err(e) = written {
            // Both offers stay out of the book until the next term (a restart, or
            // another replica's) reloads them as open.
            tracing::error!(deal = %pair.deal_id, "cannot record a match: {e}");
            self.state.write_failed(&self.term, &e);
            return;
        }
        self.attempt(pair).await;
    }

    async fn retry_due(&mut self) {
        if self.retry.is_empty() {
            return;
        }
        let pairs = match self.state.store.pairs().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot read pending pairs: {e}");
                return;
            }
        };
        self.retry.retain(|id, _| pairs.iter().any(|p| p.deal_id == *id));
        let now = Instant::now();
        for p in pairs {
            if self.retry.get(&p.deal_id).is_some_and(|(at, _)| *at <= now) {
                self.attempt(p).await;
            }
        }
    }

    async fn attempt(&mut self, pair: Pair) {
        let store = &self.state.store;
        let (job_row, res_row) =
            match (store.offer(pair.job).await, store.offer(pair.resource).await) {
                (Ok(Some(j)), Ok(Some(r))) => (j, r),
                (Ok(_), Ok(_)) => {
                    tracing::error!(deal = %pair.deal_id, "a pair of offers that are not stored");
                    self.retry.remove(&pair.deal_id);
                    let t = self.term.clone();
                    let _ = store
                        .write(move |tx| {
                            t.fence(tx)?;
                            tx.unpair(pair.deal_id)
                        })
                        .await;
                    return;
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("cannot read a pair's offers: {e}");
                    self.later(pair.deal_id);
                    return;
                }
            };
        if job_row.state != OfferState::Matching || res_row.state != OfferState::Matching {
            // Resolved already (the chain follower recorded the deal).
            self.retry.remove(&pair.deal_id);
            return;
        }
        let (Ok(Parsed::Job(job, _)), Ok(Parsed::Resource(resource, _))) =
            (parse(&job_row), parse(&res_row))
        else {
            self.resolve(
                pair,
                &job_row,
                &res_row,
                Some("stored offer does not parse".into()),
                Some("stored offer does not parse".into()),
            )
            .await;
            return;
        };
        let now = now_secs();
        if job.expiry <= now || resource.expiry <= now {
            let why =
                |e: u64| (e <= now).then(|| format!("expired at {e} before its deal was created"));
            self.resolve(pair, &job_row, &res_row, why(job.expiry), why(resource.expiry)).await;
            return;
        }
        let signed_job = SignedJobOffer {
            offer: job.clone(),
            signature: Bytes::from(job_row.signature.clone()),
            id: pair.job,
        };
        let signed_res = SignedResourceOffer {
            offer: resource.clone(),
            signature: Bytes::from(res_row.signature.clone()),
            id: pair.resource,
        };
        let e = match self.state.chain.create_deal(&signed_job, &signed_res).await {
            Ok(created) => {
                let record = DealRecord {
                    deal: created.deal,
                    status: DealStatus::Agreed,
                    mediators: created.mediators,
                    results_cid: None,
                    mediator: None,
                    tx: created.tx,
                };
                let id = record.deal.id;
                let t = self.term.clone();
                let recorded = store
                    .write(move |tx| {
                        t.fence(tx)?;
                        tx.record_deal(&record)
                    })
                    .await;
                // Created either way (counted here: the follower records it otherwise).
                self.state.metrics.deals_created.inc();
                match recorded {
                    Ok(_) => tracing::info!(deal = %id, "deal created"),
                    // The chain follower (this term's or the next leader's) records
                    // it from its DealCreated event.
                    Err(e) => {
                        tracing::warn!(deal = %id, "cannot record a created deal: {e}");
                        self.state.write_failed(&self.term, &e);
                    }
                }
                self.retry.remove(&pair.deal_id);
                return;
            }
            Err(e) => e,
        };
        let verdict = match blame(&e, &job, &resource) {
            Some(v) => v,
            None => funds_blame(&self.state, &job, &resource).await,
        };
        match verdict {
            Verdict::Exists => {
                self.retry.remove(&pair.deal_id);
            }
            Verdict::Retry => {
                self.state.metrics.deal_failures.with_label_values(&["transient"]).inc();
                tracing::warn!(deal = %pair.deal_id, "createDeal failed, will retry: {e}");
                self.later(pair.deal_id);
            }
            Verdict::Fail { job: j, resource: r } => {
                self.state.metrics.deal_failures.with_label_values(&["revert"]).inc();
                tracing::warn!(deal = %pair.deal_id, "createDeal failed: {e}");
                let reason = e.to_string();
                let (j, r) = if j || r { (j, r) } else { (true, true) };
                self.resolve(
                    pair,
                    &job_row,
                    &res_row,
                    j.then(|| reason.clone()),
                    r.then_some(reason),
                )
                .await;
            }
        }
    }

    fn later(&mut self, id: B256) {
        let e = self.retry.entry(id).or_insert((Instant::now(), 0));
        e.1 = e.1.saturating_add(1);
        e.0 = Instant::now() + Duration::from_secs(1u64 << e.1.min(6));
    }

    /// Ends a pair: failed offers get their reason (an expired one is marked expired),
    /// the others go back to `open` and into the book.
    async fn resolve(
        &mut self,
        pair: Pair,
        job: &StoredOffer,
        resource: &StoredOffer,
        job_failed: Option<String>,
        resource_failed: Option<String>,
    ) {
        self.retry.remove(&pair.deal_id);
        let (jf, rf) = (job_failed.clone(), resource_failed.clone());
        let t = self.term.clone();
        let written = self
            .state
            .store
            .write(move |tx| {
                t.fence(tx)?;
                for (id, failed) in [(pair.job, jf), (pair.resource, rf)] {
                    match failed {
                        Some(why) if why.starts_with("expired at") => tx.expire_offer(id)?,
                        Some(why) => tx.fail_offer(id, &why)?,
                        None => tx.reopen(id)?,
                    }
                }
                tx.unpair(pair.deal_id)
            })
            .await;
        if let Err(e) = written {
            tracing::error!(deal = %pair.deal_id, "cannot record a failed pair: {e}");
            self.state.write_failed(&self.term, &e);
            return;
        }
        // The offers put back to open go into the book again (read back as stored).
        let mut reopened = Vec::new();
        for (row, failed) in [(job, job_failed), (resource, resource_failed)] {
            if failed.is_none() {
                reopened.push(StoredOffer { state: OfferState::Open, ..row.clone() });
            }
        }
        admit(&self.state, &self.term, reopened, false).await;
    }
}

/// Drops expired offers from the book, forgets old nonces and idle rate-limit
/// buckets, and updates the gauges, every `tick` until shutdown.
pub(super) async fn sweep(state: Arc<State>, term: Term, tick: Duration) {
    let mut stop = state.shutdown.clone();
    let mut ticks = tokio::time::interval(tick);
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = super::stopped(&mut stop) => return,
        }
        let now = now_secs();
        let (expired, jobs, resources) = match state.book.lock() {
            Ok(mut book) => {
                let e = book.expire(now);
                (e, book.job_count(), book.resource_count())
            }
            Err(_) => return,
        };
        let m = &state.metrics;
        m.open_offers.with_label_values(&["job"]).set(i64::try_from(jobs).unwrap_or(i64::MAX));
        m.open_offers
            .with_label_values(&["resource"])
            .set(i64::try_from(resources).unwrap_or(i64::MAX));
        let prune = last_prune.elapsed() >= Duration::from_secs(60);
        if prune {
            last_prune = Instant::now();
            state.signers.prune();
            state.peers.prune();
        }
        if expired.jobs.is_empty() && expired.resources.is_empty() && !prune {
            continue;
        }
        let t = term.clone();
        let written = state
            .store
            .write(move |tx| {
                t.fence(tx)?;
                for id in expired.jobs.iter().chain(&expired.resources) {
                    tx.expire_offer(*id)?;
                }
                if prune {
                    tx.prune_nonces(now)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::error!("cannot record expired offers: {e}");
            state.write_failed(&term, &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_side_short_of_funds_fails_and_a_changed_allowance_is_retried() {
        let v = |j: bool, r: bool| funds_verdict::<()>(Ok(j), Ok(r));
        assert_eq!(v(true, false), Verdict::Fail { job: true, resource: false });
        assert_eq!(v(false, true), Verdict::Fail { job: false, resource: true });
        assert_eq!(v(true, true), Verdict::Fail { job: true, resource: true });
        // The job creator's allowance was back by the time of the check: the honest
        // provider's offer must not fail (it did before: both were failed).
        assert_eq!(v(false, false), Verdict::Retry);
        assert_eq!(funds_verdict(Err(()), Ok(true)), Verdict::Retry);
    }
}
