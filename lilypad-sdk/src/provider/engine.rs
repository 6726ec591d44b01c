//! The provider's loop: one offer on the solver per free slot, every deal driven to
//! the chain, deals of different slots at the same time.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use futures::{StreamExt, stream::FuturesUnordered};
use lilypad_core::{
    deal::Deal,
    offer::{ModuleId, ModulePolicy, ProviderBounds, ResourceOffer},
    slots::Slot,
    spec::MachineSpec,
    state::JobFailure,
};
use tokio_util::sync::CancellationToken;

use super::{
    DealPhase, DealRow, EngineError, ProviderStore,
    metrics::{FailReason, Phase, ProviderMetrics, outcome_label},
    unix_now,
};
use crate::{
    chain::DealStatus,
    executor::{ExecError, Executor, RunOptions, RunOutcome},
    job::{ProviderClient, ProviderError, ProviderJob},
    solver::api::{EventKind, OfferState},
    storage::Cid,
};

const META_EVENT: &str = "last_event_seq";

/// Joins the names of slots offered together (`gpu0+gpu1`), as recorded in `offers`.
const GROUP_SEP: char = '+';

/// The names of the slots a recorded offer name stands for (`gpu0+gpu1`: two).
fn members(group: &str) -> impl Iterator<Item = String> + '_ {
    group.split(GROUP_SEP).map(String::from)
}

/// Where a provider's offer stands on the solver.
enum OfferCheck {
    /// Waiting for a match.
    Open,
    /// Being made into a deal, or made into one this provider has not recorded yet:
    /// its slots are taken.
    Pending,
    /// Gone (matched and recorded, expired, failed, withdrawn, never stored).
    Ended,
}

/// One offer for several slots: their shares added up and their GPUs together.
fn combine(slots: &[&Slot]) -> Slot {
    let mut spec = MachineSpec::default();
    let mut gpu_indexes = Vec::new();
    let mut names = Vec::new();
    for s in slots {
        spec.cpu_millicores = spec.cpu_millicores.saturating_add(s.spec.cpu_millicores);
        spec.ram_mib = spec.ram_mib.saturating_add(s.spec.ram_mib);
        spec.disk_mib = spec.disk_mib.saturating_add(s.spec.disk_mib);
        spec.gpus.extend(s.spec.gpus.iter().cloned());
        gpu_indexes.extend(s.gpu_indexes.iter().copied());
        names.push(s.name.as_str());
    }
    Slot { name: names.join(&GROUP_SEP.to_string()), spec, gpu_indexes }
}

/// A fault the engine can be told to commit, for tests of the protocol's defences.
///
/// A real provider cannot be made to produce these on demand; they exist so tests can
/// check that job creators and mediators catch a dishonest provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Publish a stdout the job did not print (the results CID is then wrong).
    WrongOutput,
    /// Turn every vector of `outputs/embeddings.json` away from the computed one, to
    /// this cosine similarity (in millionths), keeping its length: to test that
    /// mediation under a tolerance upholds small deviations and rejects large ones.
    SkewEmbeddings {
        /// The cosine similarity of each published vector to the computed one, x 10^6.
        cosine_ppm: u32,
    },
}

/// How the engine offers and runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Where job inputs and results live (`deals/<id>/`).
    pub data_dir: PathBuf,
    /// The shares of the machine (`lilypad_core::slots`): each free slot keeps its
    /// own offer on the solver, and each runs its deals' jobs at the same time as
    /// the others, on its own GPUs.
    pub slots: Vec<Slot>,
    /// Modules this provider runs (its own allowlist).
    pub modules: ModulePolicy,
    /// Where deals pay this provider (payments and collateral refunds); `None` for its
    /// own signing address. Signed in every offer and kept by the contract per deal.
    pub payout: Option<Address>,
    /// Price per job, in token base units.
    pub default_price: U256,
    /// Prices of particular modules.
    pub module_prices: BTreeMap<ModuleId, U256>,
    /// Collateral escrowed per deal, slashed if no results come in time.
    pub timeout_collateral: U256,
    /// Mediators this provider trusts.
    pub mediators: BTreeSet<Address>,
    /// The solver that may turn offers into deals.
    pub solver: Address,
    /// How long each resource offer lives; a fresh one is posted when it ends.
    pub offer_ttl: Duration,
    /// How often the solver is polled (the event stream wakes the engine sooner).
    pub poll_interval: Duration,
    /// Time kept between the end of a job's run and its deal's deadline, for
    /// publishing and submitting.
    pub submit_margin: Duration,
    /// Bytes a job's outputs may hold; over it, they are rejected.
    pub max_output_bytes: u64,
    /// Memory for modules that ask for none, in MiB.
    pub default_memory_mib: u64,
    /// Set while any job runs (the CPU miner's pause flag), if mining on the CPU.
    pub mining_pause: Option<Arc<AtomicBool>>,
    /// Per GPU index (as in the slots' `gpu_indexes`): set while a job runs on that
    /// GPU (the pause flag of the miner on it), if mining on GPUs.
    pub gpu_mining_pauses: BTreeMap<u32, Arc<AtomicBool>>,
    /// Test-only misbehaviour.
    pub fault: Option<Fault>,
    /// The deal terms this provider signs (shortest job timeout and its limits on
    /// the network's parameters).
    pub bounds: ProviderBounds,
    /// Attempts at fetching a job's module, image or input files before the provider
    /// reports the job as impossible on chain (the job creator is refunded, the
    /// provider keeps its collateral); failures the job creator caused for certain
    /// (inputs that break the module's rules) are reported at once.
    pub attempts_before_report: u32,
    /// Where the engine counts and times its work (fresh ones by default; the daemon
    /// serves them on `--metrics-addr`).
    pub metrics: ProviderMetrics,
}

impl EngineConfig {
    /// A configuration with defaults: the whole `spec` as one slot, price 1 base
    /// unit, no timeout collateral, any module, offers of 10 minutes, polling every
    /// 2 s, a 30 s submit margin, 1 GiB of outputs.
    pub fn new(data_dir: impl Into<PathBuf>, spec: MachineSpec, solver: Address) -> Self {
        let gpu_indexes = (0..u32::try_from(spec.gpus.len()).unwrap_or(u32::MAX)).collect();
        Self {
            data_dir: data_dir.into(),
            slots: vec![Slot { name: "slot0".into(), spec, gpu_indexes }],
            modules: ModulePolicy::Any,
            payout: None,
            default_price: U256::from(1u8),
            module_prices: BTreeMap::new(),
            timeout_collateral: U256::ZERO,
            mediators: BTreeSet::new(),
            solver,
            offer_ttl: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            submit_margin: Duration::from_secs(30),
            max_output_bytes: 1024 * 1024 * 1024,
            default_memory_mib: 512,
            mining_pause: None,
            gpu_mining_pauses: BTreeMap::new(),
            fault: None,
            bounds: ProviderBounds::default(),
            attempts_before_report: 3,
            metrics: ProviderMetrics::new(),
        }
    }
}

/// Counts a running job for as long as it lives, holds the CPU miner's pause flag set
/// while any job runs, and the pause flags of the GPUs the job runs on.
struct PauseGuard<'a> {
    running: &'a AtomicUsize,
    flag: Option<&'a Arc<AtomicBool>>,
    gpus: Vec<&'a Arc<AtomicBool>>,
}

impl<'a> PauseGuard<'a> {
    fn new(
        running: &'a AtomicUsize,
        flag: Option<&'a Arc<AtomicBool>>,
        gpus: Vec<&'a Arc<AtomicBool>>,
    ) -> Self {
        running.fetch_add(1, Ordering::SeqCst);
        for f in flag.into_iter().chain(gpus.iter().copied()) {
            f.store(true, Ordering::SeqCst);
        }
        Self { running, flag, gpus }
    }
}

impl Drop for PauseGuard<'_> {
    fn drop(&mut self) {
        // A GPU is in one slot, and a slot runs one job at a time.
        for f in &self.gpus {
            f.store(false, Ordering::SeqCst);
        }
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1
            && let Some(f) = self.flag
        {
            f.store(false, Ordering::SeqCst);
        }
    }
}

/// Holds a gauge one higher for as long as it lives.
struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    fn inc(g: prometheus::IntGauge) -> Self {
        g.inc();
        Self(g)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What became of one attempt at a deal's step.
enum Step {
    /// Progress (or a final state) was recorded.
    Recorded,
    /// Could not go on now (a peer is down): try again on the next round.
    Retry(EngineError),
}

/// The resource provider: offers, deals, runs, results.
#[derive(Debug)]
pub struct ProviderEngine {
    client: ProviderClient,
    executor: Arc<Executor>,
    store: ProviderStore,
    config: EngineConfig,
    me: Address,
    /// Failed attempts per deal at a step that may be the job creator's fault.
    attempts: std::sync::Mutex<std::collections::HashMap<B256, u32>>,
    /// Jobs running now.
    running: AtomicUsize,
}

impl ProviderEngine {
    /// An engine for `client`'s account, running jobs on `executor`.
    pub fn new(
        client: ProviderClient,
        executor: Executor,
        store: ProviderStore,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let me = client.chain().address().ok_or_else(|| {
            EngineError::Config("the provider's chain client has no signing key".into())
        })?;
        if config.slots.is_empty() {
            return Err(EngineError::Config("a provider needs at least one slot".into()));
        }
        let mut names = HashSet::new();
        if let Some(dup) = config.slots.iter().find(|s| !names.insert(s.name.as_str())) {
            return Err(EngineError::Config(format!("two slots are named {:?}", dup.name)));
        }
        if let Some(bad) =
            config.slots.iter().find(|s| s.name.is_empty() || s.name.contains(GROUP_SEP))
        {
            return Err(EngineError::Config(format!(
                "slot name {:?} is empty or has a {GROUP_SEP:?} (it joins the names of slots offered together)",
                bad.name
            )));
        }
        Ok(Self {
            client,
            executor: Arc::new(executor),
            store,
            config,
            me,
            attempts: Default::default(),
            running: AtomicUsize::new(0),
        })
    }

    /// The provider's address.
    pub fn address(&self) -> Address {
        self.me
    }

    /// The state database.
    pub fn store(&self) -> &ProviderStore {
        &self.store
    }

    /// The engine's metrics (those of its configuration).
    pub fn metrics(&self) -> &ProviderMetrics {
        &self.config.metrics
    }

    /// Removes containers a crash left behind; returns how many. [`Self::run`] calls
    /// it first; each unfinished deal then resumes where its row says.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let removed = self.executor.cleanup_leftovers().await?;
        if removed > 0 {
            tracing::warn!(removed, "removed containers left behind by a previous run");
        }
        for row in self.store.unfinished()? {
            tracing::info!(deal = %row.deal.id, phase = row.phase.as_str(), "resuming deal");
        }
        Ok(removed)
    }

    /// Runs until `cancel` fires: recovers, then repeats a round (new deals recorded,
    /// each unfinished deal started, an offer kept on each free slot) on every solver
    /// event and every poll interval. Deals are driven concurrently, each by one task
    /// at a time; cancelling abandons the running ones (their rows say where they
    /// were, and the next start resumes them).
    pub async fn run(&self, cancel: &CancellationToken) -> Result<(), EngineError> {
        self.recover().await?;
        let after = self.store.meta(META_EVENT)?.and_then(|s| s.parse().ok());
        let mut events = self.client.solver().events(after).boxed();
        let mut in_flight = FuturesUnordered::new();
        let mut flying: HashSet<B256> = HashSet::new();
        loop {
            // The deals being driven go on while a round talks to the solver and chain.
            // The round filters its rows by a snapshot: a deal that finishes meanwhile
            // is left out (its row was read before it moved on) until the next round.
            let snapshot = flying.clone();
            let round = self.round(&snapshot);
            tokio::pin!(round);
            let started = loop {
                tokio::select! {
                    r = &mut round => break r,
                    Some((id, r)) = in_flight.next() => self.driven(&mut flying, id, r),
                    () = cancel.cancelled() => return Ok(()),
                }
            };
            match started {
                Ok(rows) => {
                    for row in rows {
                        flying.insert(row.deal.id);
                        in_flight.push(async move {
                            let r = self.drive(&row).await;
                            // A deal that did not move on (it waits for a peer, or for
                            // the job creator to judge its results) stays in flight for
                            // a poll interval: it is driven again then, not in a loop.
                            let moved = matches!(r, Ok(Step::Recorded))
                                && self
                                    .store
                                    .get(row.deal.id)
                                    .ok()
                                    .flatten()
                                    .is_some_and(|now| now.phase != row.phase);
                            if !moved {
                                tokio::time::sleep(self.config.poll_interval).await;
                            }
                            (row.deal.id, r)
                        });
                    }
                }
                Err(e) => tracing::warn!("{e}"),
            }
            // Until a deal moved on (a slot may have come free), a new deal arrived
            // on the event stream, or the poll interval passed: then a round.
            // Other events only advance the stream's cursor: a round for each would
            // answer the solver's events about this provider's own offers with more
            // requests.
            let wait = tokio::time::sleep(self.config.poll_interval);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    Some((id, r)) = in_flight.next() => {
                        self.driven(&mut flying, id, r);
                        break;
                    }
                    e = events.next() => match e {
                        Some(Ok(event)) => {
                            if self.on_event(event.seq, &event.kind)? {
                                break;
                            }
                        }
                        Some(Err(e)) => tracing::debug!("solver events: {e}"),
                        None => {
                            (&mut wait).await;
                            break;
                        }
                    },
                    () = &mut wait => break,
                    () = cancel.cancelled() => return Ok(()),
                }
            }
        }
    }

    /// Logs what became of driving a deal, which may be driven again from now on.
    fn driven(&self, flying: &mut HashSet<B256>, id: B256, r: Result<Step, EngineError>) {
        flying.remove(&id);
        if let Ok(Step::Retry(e)) | Err(e) = r {
            tracing::warn!(deal = %id, "will retry: {e}");
        }
    }

    /// Records a solver event; true when it brought a new deal.
    fn on_event(&self, seq: u64, kind: &EventKind) -> Result<bool, EngineError> {
        let mut new = false;
        if let EventKind::DealCreated { deal, .. } = kind
            && deal.members.resource_provider == self.me
            && self.store.insert(deal)?
        {
            tracing::info!(deal = %deal.id, slot = %self.slot_of(deal).name, "deal received");
            new = true;
        }
        self.store.set_meta(META_EVENT, &seq.to_string())?;
        Ok(new)
    }

    /// One round, start to finish: records new deals (polling the solver), drives
    /// every unfinished deal as far as it goes (all at once), and keeps a fresh offer
    /// on each free slot.
    pub async fn step(&self) -> Result<(), EngineError> {
        let rows = self.round(&HashSet::new()).await?;
        let results = futures::future::join_all(rows.iter().map(|r| self.drive(r))).await;
        let mut first_error = None;
        for (row, r) in rows.iter().zip(results) {
            if let Ok(Step::Retry(e)) | Err(e) = r {
                tracing::warn!(deal = %row.deal.id, "will retry: {e}");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Records the deals the event stream may have missed, keeps an offer on each
    /// free slot, and returns the unfinished deals not in `flying` (to be driven).
    async fn round(&self, flying: &HashSet<B256>) -> Result<Vec<DealRow>, EngineError> {
        let mut first_error = None;
        // A solver that is down does not stop the chain-side work (submitting
        // published results).
        match self.client.solver().deals().await {
            Ok(records) => {
                for record in records {
                    if record.deal.members.resource_provider == self.me
                        && record.status == DealStatus::Agreed
                        && self.store.insert(&record.deal)?
                    {
                        let slot = &self.slot_of(&record.deal).name;
                        tracing::info!(deal = %record.deal.id, %slot, "deal received");
                    }
                }
            }
            Err(e) => first_error = Some(e.into()),
        }
        let unfinished = self.store.unfinished()?;
        self.config
            .metrics
            .deals_in_flight
            .set(i64::try_from(unfinished.len()).unwrap_or(i64::MAX));
        // A slot is busy from the moment its deal is recorded until the job ran.
        let mut busy: HashSet<String> = unfinished
            .iter()
            .filter(|r| matches!(r.phase, DealPhase::Received | DealPhase::Running))
            .flat_map(|r| members(&self.slot_of(&r.deal).name).collect::<Vec<_>>())
            .collect();
        // Offers of several slots first: one on its way into a deal holds its slots
        // (the solver withdrew their own offers when it matched), and their offers must
        // not be posted again until the deal is recorded.
        let mut group_open = false;
        for (id, group, _) in self.store.live_group_offers(unix_now())? {
            match self.offer_check(id).await {
                Ok(OfferCheck::Open) => group_open = true,
                Ok(OfferCheck::Pending) => busy.extend(members(&group)),
                Ok(OfferCheck::Ended) => {}
                Err(e) => {
                    busy.extend(members(&group));
                    tracing::warn!(slot = %group, "offer: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut open_gpu_slots = Vec::new();
        for slot in self.config.slots.iter().filter(|s| !busy.contains(&s.name)) {
            match self.ensure_offer(&[slot]).await {
                Ok(true) if !slot.gpu_indexes.is_empty() => open_gpu_slots.push(slot),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(slot = %slot.name, "offer: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        // GPU slots whose own offers wait are also offered together, for jobs that
        // need more GPUs than one slot has. The solver withdraws the offers that share
        // a slot with the one it matches.
        if !group_open
            && open_gpu_slots.len() >= 2
            && let Err(e) = self.ensure_offer(&open_gpu_slots).await
        {
            tracing::warn!("offer of the GPU slots together: {e}");
            first_error.get_or_insert(e);
        }
        let rows: Vec<DealRow> =
            unfinished.into_iter().filter(|r| !flying.contains(&r.deal.id)).collect();
        match first_error {
            Some(e) if rows.is_empty() => Err(e),
            Some(e) => {
                tracing::warn!("{e}");
                Ok(rows)
            }
            None => Ok(rows),
        }
    }

    /// The slot a deal runs in: the one its resource offer was made for, or the slots
    /// offered together, combined (the first slot for an offer this database does not
    /// know, e.g. one made before slots).
    fn slot_of(&self, deal: &Deal) -> std::borrow::Cow<'_, Slot> {
        let name = self.store.offer_slot(deal.resource_offer_id).ok().flatten();
        let slots: Option<Vec<&Slot>> = name.and_then(|n| {
            n.split(GROUP_SEP)
                .map(|part| self.config.slots.iter().find(|s| s.name == part))
                .collect()
        });
        match slots.as_deref() {
            Some([one]) => std::borrow::Cow::Borrowed(*one),
            Some(many) if !many.is_empty() => std::borrow::Cow::Owned(combine(many)),
            _ => std::borrow::Cow::Borrowed(&self.config.slots[0]),
        }
    }

    /// Where the offer `id` stands on the solver.
    async fn offer_check(&self, id: B256) -> Result<OfferCheck, EngineError> {
        match self.client.solver().resource_offer(id).await {
            Ok(status) => Ok(match status.state {
                OfferState::Open => OfferCheck::Open,
                OfferState::Matching => OfferCheck::Pending,
                // Matched: its slots are free again only once its deal is recorded (and
                // so being run or done), never while the deal is on its way here.
                OfferState::Matched
                    if !status
                        .deal_id
                        .is_some_and(|d| matches!(self.store.get(d), Ok(Some(_)))) =>
                {
                    OfferCheck::Pending
                }
                state => {
                    tracing::info!(offer = %id, state = state.as_str(), reason = ?status.reason, "offer ended");
                    OfferCheck::Ended
                }
            }),
            // Never stored (its post failed): it cannot be matched.
            Err(crate::solver::SolverError::NotFound(_)) => {
                tracing::info!(offer = %id, "offer unknown to the solver");
                Ok(OfferCheck::Ended)
            }
            // Unknown (the solver is down or limits this provider's requests): the offer
            // may still be open, and a second one would offer the slot twice. Asked
            // again on the next round.
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps an offer of `slots` (one slot, or several together) on the solver: posts a
    /// fresh one unless the current one is still open or on its way into a deal.
    /// Returns whether an offer of them now waits for a match.
    async fn ensure_offer(&self, slots: &[&Slot]) -> Result<bool, EngineError> {
        let slot = combine(slots);
        if let Some((id, expiry)) = self.store.latest_offer(&slot.name)?
            && unix_now() < expiry
        {
            match self.offer_check(id).await? {
                OfferCheck::Open => return Ok(true),
                OfferCheck::Pending => return Ok(false),
                OfferCheck::Ended => {}
            }
        }
        let offer = ResourceOffer {
            provider: self.me,
            payout: self.config.payout.unwrap_or_default(),
            spec: slot.spec.clone(),
            modules: self.config.modules.clone(),
            default_price: self.config.default_price,
            module_prices: self.config.module_prices.clone(),
            timeout_collateral: self.config.timeout_collateral,
            bounds: self.config.bounds,
            mediators: self.config.mediators.clone(),
            solver: self.config.solver,
            expiry: unix_now().saturating_add(self.config.offer_ttl.as_secs().max(1)),
            // Random 256-bit nonces: fresh after every job and every restart, with no
            // counter to lose.
            nonce: U256::from_be_bytes(rand::random::<[u8; 32]>()),
        };
        // Recorded first: a deal made from it names its slot even if this process
        // dies before the solver answers.
        let id = offer.id(&self.client.chain().domain());
        self.store.record_offer(id, &slot.name, offer.expiry)?;
        let names: Vec<String> = slots.iter().map(|s| s.name.clone()).collect();
        let receipt =
            self.client.post_offer_taking(&offer, self.config.slots.len(), &names).await?;
        self.config.metrics.offers_posted.with_label_values(&[&slot.name]).inc();
        tracing::info!(slot = %slot.name, offer = %receipt.id, expiry = offer.expiry, state = receipt.state.as_str(), "resource offer posted");
        Ok(receipt.state == OfferState::Open)
    }

    fn deal_dir(&self, id: B256) -> PathBuf {
        self.config.data_dir.join("deals").join(format!("{id:#x}"))
    }

    /// Drives a deal one step on, counting the steps that will be retried.
    async fn drive(&self, row: &DealRow) -> Result<Step, EngineError> {
        let r = self.drive_step(row).await;
        if matches!(r, Ok(Step::Retry(_)) | Err(_)) {
            self.config.metrics.retries.with_label_values(&[row.phase.as_str()]).inc();
        }
        r
    }

    async fn drive_step(&self, row: &DealRow) -> Result<Step, EngineError> {
        let id = row.deal.id;
        match row.phase {
            DealPhase::Received | DealPhase::Running => self.execute(&row.deal).await,
            DealPhase::Published => {
                let Some(cid) = row.results_cid.as_deref() else {
                    return Err(EngineError::Store(format!("deal {id}: published without a CID")));
                };
                let cid = crate::storage::parse_cid(cid)?;
                self.submit(&row.deal, &cid).await
            }
            DealPhase::Submitted => {
                let chain = self.client.chain();
                let Some(on_chain) = chain.deal(id).await? else { return Ok(Step::Recorded) };
                if let DealStatus::Finished(o) = on_chain.status {
                    tracing::info!(deal = %id, outcome = ?o, "deal finished");
                    self.store.set(id, DealPhase::Done, None, None, Some(&format!("{o:?}")))?;
                    self.config
                        .metrics
                        .deals_completed
                        .with_label_values(&[outcome_label(o)])
                        .inc();
                    return Ok(Step::Recorded);
                }
                // Results or a failure report nobody judged in time: the provider claims
                // what it is owed (its pay, or its collateral back) itself.
                let late = || async {
                    Ok::<_, EngineError>(chain.latest_timestamp().await? > on_chain.deadline)
                };
                match on_chain.status {
                    DealStatus::ResultsSubmitted | DealStatus::FailureReported
                        if late().await? =>
                    {
                        let finished = chain.claim_timeout(id).await?;
                        tracing::info!(deal = %id, outcome = ?finished.outcome, "timeout claimed");
                    }
                    // A drawn mediator that gave no verdict in time: the next one is drawn,
                    // so a correct provider still gets paid.
                    DealStatus::ResultsChallenged | DealStatus::FailureChallenged
                        if late().await? =>
                    {
                        let mediators = chain.deal_mediators(id).await?;
                        let r = chain.redraw_mediator(id, &mediators).await?;
                        tracing::info!(deal = %id, redraw = ?r, "silent mediator replaced");
                    }
                    _ => {}
                }
                Ok(Step::Recorded)
            }
            DealPhase::Done | DealPhase::Failed => Ok(Step::Recorded),
        }
    }

    /// A step that failed in a way the job creator may have caused (its module, image
    /// or input files cannot be had): retried until `attempts_before_report` attempts
    /// failed, then reported on chain so the job creator learns why within seconds and
    /// gets its payment back, and this provider its collateral.
    async fn retry_or_report(
        &self,
        deal: &Deal,
        reason: JobFailure,
        error: EngineError,
    ) -> Result<Step, EngineError> {
        let n = {
            let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
            let n = attempts.entry(deal.id).or_insert(0);
            *n += 1;
            *n
        };
        if n < self.config.attempts_before_report.max(1) {
            return Ok(Step::Retry(error));
        }
        self.report(deal, reason, &error.to_string()).await
    }

    /// Ends a deal the job creator made impossible with an on-chain failure report.
    async fn report(
        &self,
        deal: &Deal,
        reason: JobFailure,
        detail: &str,
    ) -> Result<Step, EngineError> {
        let id = deal.id;
        if let Some(why) = self.still_open(deal).await? {
            return self.fail(
                id,
                FailReason::DealClosed,
                &format!("{reason} ({detail}), not reported: {why}"),
            );
        }
        // Reverted reasons are shown on chain to the job creator: keep them short.
        let detail: String = detail.chars().take(MAX_REPORT_DETAIL).collect();
        let tx = self.client.chain().report_failure(id, reason, &detail).await?;
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        tracing::warn!(deal = %id, %reason, %detail, "the job cannot run: failure reported on chain");
        self.config.metrics.failed(FailReason::Reported(reason));
        self.store.set(
            id,
            DealPhase::Submitted,
            None,
            Some(tx),
            Some(&format!("failure reported: {reason}: {detail}")),
        )?;
        Ok(Step::Recorded)
    }

    fn fail(&self, id: B256, why: FailReason, reason: &str) -> Result<Step, EngineError> {
        tracing::warn!(deal = %id, "deal failed: {reason}");
        self.config.metrics.failed(why);
        self.store.set(id, DealPhase::Failed, None, None, Some(reason))?;
        Ok(Step::Recorded)
    }

    /// Checks the deal can still be worked on; `Some(reason)` when it cannot.
    async fn still_open(&self, deal: &Deal) -> Result<Option<String>, EngineError> {
        let chain = self.client.chain();
        let Some(on_chain) = chain.deal(deal.id).await? else {
            return Ok(Some("the deal is not on chain".into()));
        };
        match on_chain.status {
            DealStatus::Agreed => {}
            DealStatus::Finished(o) => {
                return Ok(Some(format!("the deal ended on chain ({o:?}) before results")));
            }
            _ if on_chain.results.is_some() => return Ok(None),
            other => return Ok(Some(format!("unexpected deal state {other:?}"))),
        }
        let now = chain.latest_timestamp().await?;
        if now >= on_chain.deadline {
            return Ok(Some(format!(
                "the submit deadline {} passed (chain time {now})",
                on_chain.deadline
            )));
        }
        Ok(None)
    }

    async fn execute(&self, deal: &Deal) -> Result<Step, EngineError> {
        let id = deal.id;
        if let Some(on_chain) = self.client.chain().deal(id).await?
            && (on_chain.results.is_some() || on_chain.status == DealStatus::FailureReported)
        {
            // Submitted (or reported) before a crash that lost the row's update (not by
            // this code path normally: rows reach `published` first).
            self.store.set(id, DealPhase::Submitted, None, None, None)?;
            return Ok(Step::Recorded);
        }
        if let Some(reason) = self.still_open(deal).await? {
            return self.fail(id, FailReason::DealClosed, &reason);
        }
        let m = &self.config.metrics;
        let started = Instant::now();
        let prepared = self.client.prepare(deal).await;
        m.observe(Phase::Prepare, started);
        let job = match prepared {
            Ok(job) => job,
            Err(
                e
                @ (ProviderError::Solver(_) | ProviderError::Storage(_) | ProviderError::Chain(_)),
            ) => {
                return Ok(Step::Retry(e.into()));
            }
            // A git host may be down, or the module may not exist at that commit.
            Err(e @ ProviderError::Module(_)) => {
                return self.retry_or_report(deal, JobFailure::ModuleUnresolvable, e.into()).await;
            }
            // The module does not render with the inputs.
            Err(e @ ProviderError::Render(_)) => {
                return self.report(deal, JobFailure::ModuleUnresolvable, &e.to_string()).await;
            }
            // Inputs that do not match the deal, or a file the module does not declare.
            Err(e @ (ProviderError::Inputs(_) | ProviderError::UndeclaredFile(_))) => {
                return self.report(deal, JobFailure::InputsRejected, &e.to_string()).await;
            }
        };
        if !self.config.modules.allows(&deal.module_id) {
            return self.fail(
                id,
                FailReason::ModuleNotAllowed,
                &format!("module {} is not in this provider's allowlist", deal.module_id),
            );
        }
        if !self.client.chain().is_module_allowed(deal.module_id).await? {
            return self.fail(
                id,
                FailReason::ModuleBlocked,
                &format!("module {} is blocked by the network's registry", deal.module_id),
            );
        }
        let image = job.spec.image.clone();
        let started = Instant::now();
        let ready = self
            .executor
            .ensure_image(&image, |p| {
                tracing::debug!(layer = ?p.layer, status = %p.status, current = ?p.current, total = ?p.total, "pull");
            })
            .await;
        m.observe(Phase::Image, started);
        let ready = match ready {
            Ok(r) => r,
            // This provider's own Docker is down: its problem, never reported.
            Err(e @ ExecError::DockerUnreachable { .. }) => return Ok(Step::Retry(e.into())),
            // A registry may be down for a while; a missing image or one whose content
            // does not match the pinned digest is the job creator's.
            Err(e @ (ExecError::Pull { .. } | ExecError::PullTimeout { .. })) => {
                return self.retry_or_report(deal, JobFailure::ImageUnavailable, e.into()).await;
            }
            Err(e @ (ExecError::ImageMissing { .. } | ExecError::DigestMismatch { .. })) => {
                return self.report(deal, JobFailure::ImageUnavailable, &e.to_string()).await;
            }
            Err(e) => {
                return self.fail(
                    id,
                    FailReason::ImageError,
                    &format!("the image cannot be had: {e}"),
                );
            }
        };
        tracing::info!(deal = %id, image = %ready.reference, pulled = ready.pulled, "image ready");

        let dir = self.deal_dir(id);
        let (inputs_dir, results_dir) = (dir.join("inputs"), dir.join("results"));
        for d in [&inputs_dir, &results_dir] {
            remove_dir(d)?;
        }
        std::fs::create_dir_all(&inputs_dir).map_err(|e| EngineError::io(&inputs_dir, e))?;
        let started = Instant::now();
        let files = self.client.fetch_input_files(&job, &inputs_dir).await;
        m.observe(Phase::Inputs, started);
        let files = match files {
            Ok(f) => f,
            // Input files the job creator never published (or a store that is down).
            Err(e) => {
                return self.retry_or_report(deal, JobFailure::InputsRejected, e.into()).await;
            }
        };
        let now = self.client.chain().latest_timestamp().await?.max(unix_now());
        let left = Duration::from_secs(deal.terms_deadline().saturating_sub(now))
            .saturating_sub(self.config.submit_margin);
        if left.is_zero() {
            return self.fail(
                id,
                FailReason::NoTimeLeft,
                "no time is left before the submit deadline to run the job",
            );
        }
        let mut opts = RunOptions::new(format!("{id:#x}"), &results_dir);
        opts.input_files = files;
        opts.max_timeout = Some(left);
        opts.max_output_bytes = self.config.max_output_bytes;
        opts.default_memory_mib = self.config.default_memory_mib;
        // Pinned to its slot's GPUs (the matcher saw to it that the slot has enough).
        let slot = self.slot_of(deal);
        let gpus = usize::try_from(job.spec.resources.gpu_count).unwrap_or(usize::MAX);
        let job_gpus: Vec<u32> = slot.gpu_indexes.iter().take(gpus).copied().collect();
        if !job_gpus.is_empty() {
            opts.gpu_device_ids = Some(job_gpus.iter().map(ToString::to_string).collect());
        }

        self.store.set(id, DealPhase::Running, None, None, None)?;
        tracing::info!(deal = %id, slot = %slot.name, module = %deal.module_id, max_secs = left.as_secs(), "running the job");
        let outcome = {
            let gpu_pauses =
                job_gpus.iter().filter_map(|i| self.config.gpu_mining_pauses.get(i)).collect();
            let _pause =
                PauseGuard::new(&self.running, self.config.mining_pause.as_ref(), gpu_pauses);
            let _running = GaugeGuard::inc(m.jobs_running.with_label_values(&[&slot.name]));
            let started = Instant::now();
            let outcome = self.executor.run(&job.spec, &opts).await;
            m.observe(Phase::Run, started);
            outcome
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e @ (ExecError::DockerUnreachable { .. } | ExecError::Docker { .. })) => {
                return Ok(Step::Retry(e.into()));
            }
            Err(e) => {
                return self.fail(id, FailReason::RunError, &format!("the job could not run: {e}"));
            }
        };
        finish_results(&outcome, self.config.fault)?;
        log_outcome(&job, &outcome);
        let started = Instant::now();
        let cid = self.client.storage().publish_dir(&results_dir).await;
        m.observe(Phase::Publish, started);
        let cid = cid?;
        self.store.set(id, DealPhase::Published, Some(&cid.to_string()), None, None)?;
        tracing::info!(deal = %id, cid = %cid, "results published");
        self.submit(deal, &cid).await
    }

    async fn submit(&self, deal: &Deal, cid: &Cid) -> Result<Step, EngineError> {
        let id = deal.id;
        // The chain first: a crash between the transaction and the row's update
        // must not submit twice (the second would revert anyway).
        if let Some(on_chain) = self.client.chain().deal(id).await?
            && on_chain.results.is_some()
        {
            self.store.set(id, DealPhase::Submitted, None, Some(B256::ZERO), None)?;
            return Ok(Step::Recorded);
        }
        if let Some(reason) = self.still_open(deal).await? {
            return self.fail(
                id,
                FailReason::DealClosed,
                &format!("results {cid} were not submitted: {reason}"),
            );
        }
        let started = Instant::now();
        let submitted = self.client.chain().submit_results(id, cid).await;
        self.config.metrics.observe(Phase::Submit, started);
        let submitted = submitted?;
        self.store.set(id, DealPhase::Submitted, None, Some(submitted.tx), None)?;
        tracing::info!(deal = %id, cid = %cid, tx = %submitted.tx, "results submitted");
        Ok(Step::Recorded)
    }
}

/// The most characters of a failure report's detail put on chain.
const MAX_REPORT_DETAIL: usize = 512;

/// The deal's submit deadline (creation plus the submit window).
trait DealDeadline {
    fn terms_deadline(&self) -> u64;
}

impl DealDeadline for Deal {
    fn terms_deadline(&self) -> u64 {
        self.created_at.saturating_add(self.terms.submit_window_secs)
    }
}

fn remove_dir(d: &Path) -> Result<(), EngineError> {
    match std::fs::remove_dir_all(d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(d, e)),
    }
}

/// Appends the failure reason to `stderr` (so the job creator reads why),
/// rejects outputs that cannot be published, and commits the test fault, if any.
///
/// Outputs that break the storage tree rules (a name with `\`, folders deeper
/// than the limit, a link out of the tree, a FIFO...) would make publishing
/// fail, and a job creator could never fetch them: they are emptied, as
/// outputs over the size cap are, and the reason is appended to `stderr`. The
/// reason names paths relative to the results directory, so a mediator
/// re-running the job writes the same bytes and gets the same CID.
/// [`Fault::SkewEmbeddings`]: each vector `v` of an OpenAI-shaped embeddings file
/// becomes `|v| (c v/|v| + s u)`, `u` a unit vector orthogonal to `v`, `c` the
/// cosine and `s = sqrt(1 - c^2)`: its cosine similarity to `v` is exactly `c`.
fn skew_embeddings(path: &Path, cosine_ppm: u32) -> Result<(), EngineError> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let bad = |why: &str| EngineError::Config(format!("{}: {why}", path.display()));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(&e.to_string()))?;
    let c = f64::from(cosine_ppm.min(1_000_000)) / 1e6;
    let s = (1.0 - c * c).max(0.0).sqrt();
    let data = doc.get_mut("data").and_then(|d| d.as_array_mut()).ok_or_else(|| bad("no data"))?;
    for entry in data {
        let Some(v) = entry.get_mut("embedding").and_then(|e| e.as_array_mut()) else { continue };
        let x: Vec<f64> = v.iter().map(|n| n.as_f64().unwrap_or(0.0)).collect();
        let norm = x.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm == 0.0 || x.len() < 2 {
            continue;
        }
        // u: the first basis vector least aligned with x, made orthogonal to it.
        let k = (0..x.len()).min_by(|&i, &j| x[i].abs().total_cmp(&x[j].abs())).unwrap_or(0);
        let mut u: Vec<f64> = x.iter().map(|a| -a * x[k] / (norm * norm)).collect();
        u[k] += 1.0;
        let un = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        for (out, (a, b)) in v.iter_mut().zip(x.iter().zip(&u)) {
            *out = serde_json::json!(norm * (c * a / norm + s * b / un));
        }
    }
    let out = serde_json::to_vec(&doc).map_err(|e| bad(&e.to_string()))?;
    std::fs::write(path, out).map_err(|e| EngineError::io(path, e))
}

pub(super) fn finish_results(
    outcome: &RunOutcome,
    fault: Option<Fault>,
) -> Result<(), EngineError> {
    use std::io::Write;
    let append_to_stderr = |line: &str| -> Result<(), EngineError> {
        let path = outcome.stderr_path();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        writeln!(f, "lilypad: {line}").map_err(|e| EngineError::io(&path, e))
    };
    if let Some(reason) = outcome.reason() {
        append_to_stderr(&reason)?;
    }
    match crate::storage::check_tree(&outcome.results_dir, &crate::storage::Limits::default()) {
        Ok(()) => {}
        Err(e) if e.is_tree_rule() => {
            empty_outputs(&outcome.results_dir)?;
            append_to_stderr(&format!("outputs rejected, they cannot be published: {e}"))?;
        }
        Err(e) => return Err(e.into()),
    }
    match fault {
        Some(Fault::WrongOutput) => {
            let path = outcome.stdout_path();
            std::fs::write(&path, "not what the job printed\n")
                .map_err(|e| EngineError::io(&path, e))?;
        }
        Some(Fault::SkewEmbeddings { cosine_ppm }) => {
            skew_embeddings(&outcome.outputs_dir().join("embeddings.json"), cosine_ppm)?;
        }
        None => {}
    }
    Ok(())
}

/// Empties every output directory of a results directory (all but `stdout`,
/// `stderr` and `exitCode`), keeping the directories themselves.
fn empty_outputs(results: &Path) -> Result<(), EngineError> {
    let entries = std::fs::read_dir(results).map_err(|e| EngineError::io(results, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(results, e))?;
        let path = entry.path();
        if ["stdout", "stderr", "exitCode"].iter().any(|r| entry.file_name() == *r) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| EngineError::io(&path, e))?;
        if kind.is_dir() {
            std::fs::remove_dir_all(&path).map_err(|e| EngineError::io(&path, e))?;
            std::fs::create_dir(&path).map_err(|e| EngineError::io(&path, e))?;
        } else {
            std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
        }
    }
    Ok(())
}

fn log_outcome(job: &ProviderJob, o: &RunOutcome) {
    match o.reason() {
        None => {
            tracing::info!(deal = %job.deal.id, secs = o.duration.as_secs_f64(), "job succeeded")
        }
        Some(r) => {
            tracing::warn!(deal = %job.deal.id, exit_code = o.exit_code, "job failed in the sandbox: {r}")
        }
    }
}

#[cfg(test)]
mod tests {
    use lilypad_core::verify::{Tolerance, Verification, compare};

    use super::*;

    #[test]
    fn skewed_embeddings_have_exactly_the_asked_cosine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("embeddings.json");
        let doc = serde_json::json!({"object": "list", "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 0.8, 0.1]},
            {"object": "embedding", "index": 1, "embedding": [0.0, 0.0, 3.0, 0.0]},
        ]});
        let original = serde_json::to_vec(&doc).unwrap();
        std::fs::write(&path, &original).unwrap();
        skew_embeddings(&path, 990_000).unwrap();
        let skewed = std::fs::read(&path).unwrap();
        let mode =
            |t| Verification::EmbeddingsCosine { file: "e".into(), min_cosine: Tolerance(t) };
        let c = compare(&mode(0.98), &original, &skewed);
        assert!(c.pass && (c.score - 0.99).abs() < 1e-9, "{c:?}");
        assert!(!compare(&mode(0.995), &original, &skewed).pass);
    }
}
