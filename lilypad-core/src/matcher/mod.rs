//! The matcher: pairs job offers with resource offers as they arrive.
//!
//! - [`policy`]: the rules ([`policy::check`]) and why a pair fails ([`Mismatch`]).
//! - [`Matcher`]: the indexed, incremental matcher the solver runs.
//! - [`naive`]: the reference O(jobs x resources) pass, kept as test oracle and
//!   benchmark baseline.
//!
//! # Semantics
//!
//! The matcher holds *resting* offers: offers that matched nothing when they
//! arrived. Each offer gets an insertion sequence number; lower is older.
//! After every call, no resting job offer is compatible with any resting
//! resource offer (at the `now` of that call; time only removes
//! compatibility, so this holds as long as `now` does not go backwards).
//! Hence a new offer is the only possible partner of any resting offer:
//!
//! - a new **job** takes the compatible resting resource offer with the lowest
//!   price for its module, the oldest among equal prices;
//! - a new **resource** offer goes to the oldest compatible resting job.
//!
//! This is exactly what [`naive::match_all`] gives on the resting offers plus
//! the new one, which the property tests check. No offer is used twice: a
//! matched offer leaves the matcher, and the new offer never rests.
//!
//! # Index and cost
//!
//! Let R be the number of resting resource offers, J of resting jobs, C the
//! number of capability classes in use (GPU count, and half-octave tiers of
//! VRAM, CPU and RAM; a few dozen with realistic machines). See
//! `matcher/index.rs` for the details.
//!
//! Resource offers are filed per solver on *shelves*: one for offers that
//! take any module (at their default price), one per module for offers that
//! name it (allowlist or own price, at their price for it). A shelf holds one
//! price ladder (`BTreeSet<(price, seq)>`, the price as a `u128` key,
//! saturated above `u128::MAX` where only invalid offers price) per class
//! and the *heads* (the cheapest entry of each ladder) in a sorted vector.
//! Shelves live in one slab, and each resting resource offer keeps its
//! filings (shelf index and price key), so that unfiling it looks nothing up. Each solver also lists its
//! offers per provider, for targeted jobs. Jobs are filed in age ladders
//! (`BTreeSet<seq>`) per (solver, target) scope, module and class, with the
//! heads of the ladders of a scope in age order.
//!
//! - `add_job`, untargeted: walks, in (price, seq) order and up to its max
//!   price, the heads of its module's shelf and of the "any module" shelf,
//!   skipping classes that cannot fit it, and checks each head with
//!   [`policy::check`]. Only a head that is turned down opens its ladder,
//!   which then joins the merge. Cost O(log R + h + c (o + log R)): h heads
//!   passed (at most 2C), c candidates checked, o ladders open (o <= c).
//!   Usually the first head is taken: c = 1, nothing is opened, nothing is
//!   allocated. Candidates that slip through are offers of a fitting class
//!   and price that fail on disk, exact CPU/RAM/GPU fit or mediators.
//! - `add_job`, targeted: checks every offer of the target provider, O(P).
//! - `add_resource`: looks at the untargeted scope of its solver and the
//!   scope of jobs targeted at its provider. For an allowlist shorter than
//!   the list of modules with resting jobs it looks its modules up;
//!   otherwise it walks the scope's heads in age order, skipping modules it
//!   does not take and classes it cannot fit, opening a ladder when its head
//!   is turned down. Cost O(h + c (log L + log J)), h heads passed (at most
//!   those older than the match), L ladders open.
//! - Filing a resource offer costs O(f log R), f = 1 + priced modules for
//!   "any module", f = allowlist length otherwise, plus a push on its
//!   provider's list; unfiling it (match or cancel) O(f log R) from its
//!   remembered filings, plus O(P) to find it in that list (P = the
//!   provider's resting offers, a handful for real providers). A job is
//!   filed once, O(log J).
//! - `expire`: O(log n) per expired offer (expiries sit in a heap; entries
//!   of offers that left are skipped then, and compacted away when they
//!   outnumber the resting offers).
//! - `explain`: scans every resting resource offer, O(R log R).
//!
//! # Slots
//!
//! A provider that splits its machine into slots may offer a slot alone and,
//! at the same time, together with others (two one-GPU slots as one two-GPU
//! offer). Such offers are added with [`Matcher::add_resource_claiming`] and
//! the names of the slots they take. When an offer is matched, the resting
//! offers of the same provider that take any of its slots are withdrawn in
//! the same call and listed in [`Matched::withdrawn`]: no slot is ever in two
//! deals. An offer taking several slots is only taken in while each of them
//! is held by a resting offer of its provider (a slot whose offer is being
//! matched, or that was never offered, is busy), so a group offer can never
//! be posted over a slot that is on its way into a deal.
//!
//! # Reputation
//!
//! The matcher holds a score per provider ([`Matcher::set_score`]; see
//! [`crate::reputation`], a provider it has no score for scores as a new one,
//! 0.5). Two things read it, and neither costs anything when unused:
//!
//! - a job added with [`Matcher::add_job_requiring`] and a minimum score is
//!   never paired with a provider that scores under it ([`Mismatch::ReputationTooLow`]);
//! - with [`Matcher::prefer_reputation`] on, a new job takes, among the
//!   compatible resting offers of the lowest price, the one whose provider
//!   scores highest (then the oldest), instead of the oldest. With it off the
//!   scores only serve minimums.
//!
//! A score change applies to the offers that arrive after it: a resting job
//! whose minimum a resting offer's provider comes to meet is paired when one of
//! them is posted again (providers post a fresh offer after every deal).

pub mod naive;
pub mod policy;

mod index;

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap},
    hash::{Hash, Hasher},
};

use alloy_primitives::{Address, U256};

use self::index::{Class, Filing, JobIndex, KeyedMap, ProviderKey, ResourceIndex, Seq};
pub use self::policy::{Mismatch, NetworkModules};
use crate::{
    deal::{Deal, DealError, NetworkParams},
    offer::{JobOffer, OfferId, ResourceOffer},
};

/// A matched pair: the deal the solver should create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Match {
    /// Id of the job offer.
    pub job: OfferId,
    /// Id of the resource offer.
    pub resource: OfferId,
    /// The provider's price for the job's module, at most the job's max price.
    pub price: U256,
}

/// Resources on offer: [`Matcher::capacity`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Capacity {
    /// Providers with at least one resting resource offer.
    pub providers: u64,
    /// Resting offers counted (offers of one slot, or made without slots).
    pub offers: u64,
    /// Their CPU, in millicores.
    pub cpu_millicores: u64,
    /// Their RAM, in MiB.
    pub ram_mib: u64,
    /// Their GPUs.
    pub gpus: u64,
}

/// A match as [`Matcher::add_job`] and [`Matcher::add_resource`] return it:
/// the ids and price, and both offers, handed back since the matcher keeps
/// neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Which offers, at what price.
    pub deal: Match,
    /// The job offer.
    pub job: JobOffer,
    /// The resource offer.
    pub resource: ResourceOffer,
    /// Resting offers of the same provider that took one of the resource offer's
    /// slots, withdrawn by this match (see [Slots](self#slots)).
    pub withdrawn: Vec<OfferId>,
}

impl Matched {
    /// The deal of this match, created at `now`.
    pub fn to_deal(&self, params: &NetworkParams, now: u64) -> Result<Deal, DealError> {
        Deal::new(&self.job, self.deal.job, &self.resource, self.deal.resource, params, now)
    }
}

/// Why an offer was not taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// An offer with this id is already resting; offer ids are signing
    /// hashes, so this is the same offer sent twice.
    #[error("offer {id} is already waiting for a match")]
    Duplicate {
        /// The offer's id.
        id: OfferId,
    },
    /// The offer takes several slots of its provider, and one of them is held
    /// by no resting offer of the provider (it is busy, or was never offered).
    #[error(
        "offer {id} takes slot {slot:?} of its provider, which none of the provider's \
         waiting offers holds (it is busy or was never offered on its own)"
    )]
    SlotTaken {
        /// The offer's id.
        id: OfferId,
        /// The slot.
        slot: String,
    },
    /// The offer's expiry has passed; it can never match.
    #[error("offer {id} expired at {expiry}, it is now {now}")]
    Expired {
        /// The offer's id.
        id: OfferId,
        /// The offer's expiry.
        expiry: u64,
        /// The time of the call.
        now: u64,
    },
}

/// Offers dropped by [`Matcher::expire`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// Ids of the expired job offers, oldest expiry first.
    pub jobs: Vec<OfferId>,
    /// Ids of the expired resource offers, oldest expiry first.
    pub resources: Vec<OfferId>,
}

#[derive(Debug, Clone)]
struct Resting<T> {
    id: OfferId,
    offer: T,
    /// Its capability class, computed once on the way in.
    class: Class,
    /// Where a resource offer is filed in the [`ResourceIndex`] (empty for
    /// a job offer).
    filings: Vec<Filing>,
}

/// An offer id as a map key, hashed as its four 8-byte words (rather than
/// byte by byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdKey(OfferId);

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let b = self.0.0;
        let word = |i: usize| {
            u64::from_le_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        state.write_u64(word(0));
        state.write_u64(word(8));
        state.write_u64(word(16));
        state.write_u64(word(24));
    }
}

/// One side of the book: resting offers in slots, by id, and their expiries.
#[derive(Debug, Clone)]
struct Side<T> {
    ids: KeyedMap<IdKey, Seq>,
    /// Resting offers, each in the slot its [`Seq`] names, in pages of
    /// [`PAGE`] slots (so that growing the storage moves no offer). Freed
    /// slots are reused (last freed first), so the storage stays as large as
    /// the most offers that ever rested at once, and an offer costs no
    /// allocation of its own.
    pages: Vec<Vec<Option<Slot<T>>>>,
    /// Number of slots in use or free.
    slot_count: u32,
    /// Free slots.
    free: Vec<u32>,
    /// Number of resting offers.
    len: usize,
    /// (expiry, seq), soonest first. Entries of offers that left are not
    /// removed (a match would pay for it); they are skipped when popped, and
    /// the heap is rebuilt when they outnumber the resting offers.
    expiries: BinaryHeap<Reverse<(u64, Seq)>>,
}

/// Slots per page of [`Side`] storage.
const PAGE: u32 = 256;

/// A slot of [`Side`]: the offer and its sequence number.
#[derive(Debug, Clone)]
struct Slot<T> {
    n: u64,
    resting: Resting<T>,
}

impl<T> Default for Side<T> {
    fn default() -> Self {
        Self {
            ids: KeyedMap::default(),
            pages: Vec::new(),
            slot_count: 0,
            free: Vec::new(),
            len: 0,
            expiries: BinaryHeap::new(),
        }
    }
}

impl<T> Side<T> {
    /// The slot the next offer goes to.
    fn next_slot(&self) -> u32 {
        match self.free.last() {
            Some(&slot) => slot,
            None => self.slot_count,
        }
    }

    fn place(&self, slot: u32) -> Option<&Option<Slot<T>>> {
        self.pages.get((slot / PAGE) as usize)?.get((slot % PAGE) as usize)
    }

    fn place_mut(&mut self, slot: u32) -> Option<&mut Option<Slot<T>>> {
        self.pages.get_mut((slot / PAGE) as usize)?.get_mut((slot % PAGE) as usize)
    }

    /// Stores an offer at `seq`, whose slot must be [`next_slot`](Self::next_slot).
    fn insert(
        &mut self,
        seq: Seq,
        id: OfferId,
        offer: T,
        class: Class,
        expiry: u64,
        filings: Vec<Filing>,
    ) {
        self.ids.insert(IdKey(id), seq);
        self.expiries.push(Reverse((expiry, seq)));
        let slot = Some(Slot { n: seq.n, resting: Resting { id, offer, class, filings } });
        if self.free.last() == Some(&seq.slot) {
            self.free.pop();
            if let Some(s) = self.place_mut(seq.slot) {
                *s = slot;
            }
        } else {
            if self.pages.last().is_none_or(|p| p.len() == PAGE as usize) {
                self.pages.push(Vec::with_capacity(PAGE as usize));
            }
            if let Some(page) = self.pages.last_mut() {
                page.push(slot);
            }
            // More than 2^32 resting offers would not fit in memory anyway.
            self.slot_count += 1;
        }
        self.len += 1;
    }

    /// The resting offer at `seq`.
    fn get(&self, seq: Seq) -> Option<&Resting<T>> {
        match self.place(seq.slot)? {
            Some(s) if s.n == seq.n => Some(&s.resting),
            _ => None,
        }
    }

    fn remove(&mut self, seq: Seq, expiry: impl Fn(&T) -> u64) -> Option<Resting<T>> {
        let place = self.place_mut(seq.slot)?;
        if place.as_ref().is_none_or(|s| s.n != seq.n) {
            return None;
        }
        let resting = place.take()?.resting;
        self.free.push(seq.slot);
        self.len -= 1;
        self.ids.remove(&IdKey(resting.id));
        if self.expiries.len() > 2 * self.len + 1024 {
            self.expiries = self.iter().map(|(seq, r)| Reverse((expiry(&r.offer), seq))).collect();
        }
        Some(resting)
    }

    /// Resting offers with their sequence numbers, in slot order.
    fn iter(&self) -> impl Iterator<Item = (Seq, &Resting<T>)> {
        self.pages
            .iter()
            .flatten()
            .zip(0u32..)
            .filter_map(|(s, slot)| s.as_ref().map(|s| (Seq { n: s.n, slot }, &s.resting)))
    }

    /// Pops the sequence numbers of the offers expired at `now`, soonest
    /// expiry first (some may have left already).
    fn pop_expired(&mut self, now: u64) -> Vec<Seq> {
        let mut out = Vec::new();
        while let Some(&Reverse((expiry, seq))) = self.expiries.peek() {
            if expiry > now {
                break;
            }
            self.expiries.pop();
            out.push(seq);
        }
        out
    }
}

/// The indexed, incremental matcher. Pure: the caller passes the time.
///
/// See the [module docs](self) for the semantics and the cost of each call.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    network: NetworkModules,
    next_seq: u64,
    jobs: Side<JobOffer>,
    resources: Side<ResourceOffer>,
    job_index: JobIndex,
    resource_index: ResourceIndex,
    /// The slots each resting resource offer takes, per provider (offers added
    /// with slots only).
    claims: HashMap<Address, Vec<(OfferId, BTreeSet<String>)>>,
    /// Each provider's reputation score; absent: [`NEW_PROVIDER_SCORE`].
    scores: KeyedMap<ProviderKey, f64>,
    /// The minimum provider score of each resting job that asks for one.
    minimums: KeyedMap<IdKey, f64>,
    /// Whether equally priced offers go to the better-scored provider.
    prefer_reputation: bool,
    /// The highest score set (0 before any): with [`NEW_PROVIDER_SCORE`], no
    /// provider scores above it, so a preference walk stops at one that does.
    top_score: f64,
}

/// The score of a provider with no scored deal: `reputation::score(0, 0, 0)`.
pub const NEW_PROVIDER_SCORE: f64 = 0.5;

impl Matcher {
    /// An empty matcher under the network's module policy.
    pub fn new(network: NetworkModules) -> Self {
        Self { network, ..Self::default() }
    }

    /// The network's module policy in force.
    pub fn network(&self) -> &NetworkModules {
        &self.network
    }

    /// Sets whether a new job takes, among the cheapest compatible offers, the
    /// one of the best-scored provider (then the oldest) rather than the oldest.
    pub fn prefer_reputation(&mut self, on: bool) {
        self.prefer_reputation = on;
    }

    /// Sets `provider`'s reputation score (see [`crate::reputation::score`]).
    pub fn set_score(&mut self, provider: Address, score: f64) {
        let old = self.scores.insert(ProviderKey(provider), score);
        if score >= self.top_score {
            self.top_score = score;
        } else if old.is_some_and(|old| old >= self.top_score) {
            // The top scorer went down: rare, and a pass over the providers.
            self.top_score = self.scores.values().copied().fold(NEW_PROVIDER_SCORE, f64::max);
        }
    }

    /// `provider`'s reputation score ([`NEW_PROVIDER_SCORE`] if none was set).
    pub fn score(&self, provider: Address) -> f64 {
        provider_score(&self.scores, provider)
    }

    /// The minimum provider score the resting job `id` asks for (0: none).
    pub fn minimum_of(&self, id: &OfferId) -> f64 {
        self.minimums.get(&IdKey(*id)).copied().unwrap_or(0.0)
    }

    /// Number of resting job offers.
    pub fn job_count(&self) -> usize {
        self.jobs.len
    }

    /// Number of resting resource offers.
    pub fn resource_count(&self) -> usize {
        self.resources.len
    }

    /// The resting job offer with this id.
    pub fn job(&self, id: &OfferId) -> Option<&JobOffer> {
        let seq = self.jobs.ids.get(&IdKey(*id))?;
        self.jobs.get(*seq).map(|r| &r.offer)
    }

    /// The resting resource offer with this id.
    pub fn resource(&self, id: &OfferId) -> Option<&ResourceOffer> {
        let seq = self.resources.ids.get(&IdKey(*id))?;
        self.resources.get(*seq).map(|r| &r.offer)
    }

    /// Resting job offers, oldest first.
    pub fn jobs(&self) -> Vec<(OfferId, &JobOffer)> {
        by_age(&self.jobs)
    }

    /// Resting resource offers, oldest first.
    pub fn resources(&self) -> Vec<(OfferId, &ResourceOffer)> {
        by_age(&self.resources)
    }

    /// What the resting resource offers put on the market together, each machine
    /// slot counted once: an offer of several slots (their sum, resting only while
    /// each of its slots rests in an offer of its own) is left out of the sums.
    /// `O(resting resource offers)`.
    pub fn capacity(&self) -> Capacity {
        let mut providers = BTreeSet::new();
        let mut c = Capacity::default();
        for (id, offer) in self.resources() {
            providers.insert(offer.provider);
            if self.slots_of(offer.provider, &id).len() > 1 {
                continue;
            }
            c.offers += 1;
            c.cpu_millicores += u64::from(offer.spec.cpu_millicores);
            c.ram_mib += offer.spec.ram_mib;
            c.gpus += offer.spec.gpus.len() as u64;
        }
        c.providers = providers.len() as u64;
        c
    }

    fn take_seq(&mut self, slot: u32) -> Seq {
        let n = self.next_seq;
        self.next_seq += 1;
        Seq { n, slot }
    }

    /// Takes in a job offer at `now`: matches it with the cheapest (then
    /// oldest) compatible resting resource offer, or leaves it resting.
    pub fn add_job(
        &mut self,
        id: OfferId,
        job: JobOffer,
        now: u64,
    ) -> Result<Option<Matched>, AddError> {
        self.add_job_requiring(id, job, 0.0, now)
    }

    /// [`add_job`](Self::add_job) for a job that only takes providers whose score
    /// is at least `min_score` (0, or anything not above it: no minimum).
    pub fn add_job_requiring(
        &mut self,
        id: OfferId,
        job: JobOffer,
        min_score: f64,
        now: u64,
    ) -> Result<Option<Matched>, AddError> {
        if self.jobs.ids.contains_key(&IdKey(id)) {
            return Err(AddError::Duplicate { id });
        }
        if job.expiry <= now {
            return Err(AddError::Expired { id, expiry: job.expiry, now });
        }
        let class = Class::of_job(&job.requirements);
        let requires = min_score > 0.0;
        let found = if self.network.allows(&job.module_id) {
            let resources = &self.resources;
            let network = &self.network;
            let scores = &self.scores;
            let score_of = |seq: Seq| {
                resources.get(seq).map_or(0.0, |r| provider_score(scores, r.offer.provider))
            };
            let rank: Option<(&dyn Fn(Seq) -> f64, f64)> = self
                .prefer_reputation
                .then_some((&score_of, self.top_score.max(NEW_PROVIDER_SCORE)));
            self.resource_index.cheapest_for(
                &job,
                class,
                |seq, from_any| {
                    let resource = &resources.get(seq)?.offer;
                    if from_any && resource.module_prices.contains_key(&job.module_id) {
                        // Filed under the module at its own price; met there.
                        return None;
                    }
                    let price = policy::check(&job, resource, network, now).ok()?;
                    if requires && provider_score(scores, resource.provider) < min_score {
                        return None;
                    }
                    Some(price)
                },
                rank,
            )
        } else {
            None
        };
        if let Some((seq, price)) = found
            && let Some((resource, slots)) = self.remove_resource_seq(seq)
        {
            let withdrawn = self.withdraw_overlapping(resource.offer.provider, &slots);
            return Ok(Some(Matched {
                deal: Match { job: id, resource: resource.id, price },
                job,
                resource: resource.offer,
                withdrawn,
            }));
        }
        if requires {
            self.minimums.insert(IdKey(id), min_score);
        }
        let seq = self.take_seq(self.jobs.next_slot());
        self.job_index.insert(seq, &job, class);
        let expiry = job.expiry;
        self.jobs.insert(seq, id, job, class, expiry, Vec::new());
        Ok(None)
    }

    /// Takes in a resource offer at `now`: matches it with the oldest
    /// compatible resting job offer, or leaves it resting.
    pub fn add_resource(
        &mut self,
        id: OfferId,
        resource: ResourceOffer,
        now: u64,
    ) -> Result<Option<Matched>, AddError> {
        self.add_resource_claiming(id, resource, BTreeSet::new(), now)
    }

    /// [`add_resource`](Self::add_resource) for an offer that takes `slots` of its
    /// provider's machine (see [Slots](self#slots)): refused with
    /// [`AddError::SlotTaken`] if it takes several and one is held by no resting
    /// offer of the provider; a match withdraws the provider's resting offers that
    /// take one of them.
    pub fn add_resource_claiming(
        &mut self,
        id: OfferId,
        resource: ResourceOffer,
        slots: BTreeSet<String>,
        now: u64,
    ) -> Result<Option<Matched>, AddError> {
        if self.resources.ids.contains_key(&IdKey(id)) {
            return Err(AddError::Duplicate { id });
        }
        if resource.expiry <= now {
            return Err(AddError::Expired { id, expiry: resource.expiry, now });
        }
        if slots.len() > 1 {
            let held = self.claims.get(&resource.provider);
            let is_held = |slot: &String| {
                held.is_some_and(|offers| offers.iter().any(|(_, s)| s.contains(slot)))
            };
            if let Some(slot) = slots.iter().find(|s| !is_held(s)) {
                return Err(AddError::SlotTaken { id, slot: slot.clone() });
            }
        }
        let class = Class::of_machine(&resource.spec);
        let jobs = &self.jobs;
        let network = &self.network;
        let minimums = &self.minimums;
        // Looked up only when some resting job asks for a minimum.
        let score = if minimums.is_empty() { 0.0 } else { self.score(resource.provider) };
        let found = self.job_index.oldest_for(&resource, class, network, |seq| {
            let job = jobs.get(seq)?;
            let price = policy::check(&job.offer, &resource, network, now).ok()?;
            if !minimums.is_empty() && minimums.get(&IdKey(job.id)).is_some_and(|&m| score < m) {
                return None;
            }
            Some(price)
        });
        if let Some((seq, price)) = found
            && let Some(job) = self.remove_job_seq(seq)
        {
            let withdrawn = self.withdraw_overlapping(resource.provider, &slots);
            return Ok(Some(Matched {
                deal: Match { job: job.id, resource: id, price },
                job: job.offer,
                resource,
                withdrawn,
            }));
        }
        if !slots.is_empty() {
            self.claims.entry(resource.provider).or_default().push((id, slots));
        }
        let seq = self.take_seq(self.resources.next_slot());
        let filings = self.resource_index.insert(seq, &resource, class);
        let expiry = resource.expiry;
        self.resources.insert(seq, id, resource, class, expiry, filings);
        Ok(None)
    }

    /// The slots a resting resource offer takes (empty if it was added without).
    pub fn slots_of(&self, provider: Address, id: &OfferId) -> BTreeSet<String> {
        self.claims
            .get(&provider)
            .and_then(|offers| offers.iter().find(|(o, _)| o == id))
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    /// Withdraws `provider`'s resting offers that take one of `slots`; their ids.
    fn withdraw_overlapping(
        &mut self,
        provider: Address,
        slots: &BTreeSet<String>,
    ) -> Vec<OfferId> {
        if slots.is_empty() {
            return Vec::new();
        }
        let overlapping: Vec<OfferId> = self
            .claims
            .get(&provider)
            .map(|offers| {
                offers.iter().filter(|(_, s)| !s.is_disjoint(slots)).map(|(id, _)| *id).collect()
            })
            .unwrap_or_default();
        for id in &overlapping {
            self.remove_resource(id);
        }
        overlapping
    }

    /// Forgets the slots of a resource offer that left; returns them.
    fn unclaim(&mut self, provider: Address, id: OfferId) -> BTreeSet<String> {
        let Some(offers) = self.claims.get_mut(&provider) else { return BTreeSet::new() };
        let slots = offers.iter().position(|(o, _)| *o == id).map(|i| offers.swap_remove(i).1);
        if offers.is_empty() {
            self.claims.remove(&provider);
        }
        slots.unwrap_or_default()
    }

    fn remove_job_seq(&mut self, seq: Seq) -> Option<Resting<JobOffer>> {
        let resting = self.jobs.remove(seq, |j| j.expiry)?;
        self.job_index.remove(seq, &resting.offer, resting.class);
        if !self.minimums.is_empty() {
            self.minimums.remove(&IdKey(resting.id));
        }
        Some(resting)
    }

    /// Removes a resting resource offer; returns it and the slots it took.
    fn remove_resource_seq(
        &mut self,
        seq: Seq,
    ) -> Option<(Resting<ResourceOffer>, BTreeSet<String>)> {
        let resting = self.resources.remove(seq, |r| r.expiry)?;
        self.resource_index.remove(seq, &resting.offer, resting.class, &resting.filings);
        let slots = self.unclaim(resting.offer.provider, resting.id);
        Some((resting, slots))
    }

    /// Withdraws a resting job offer; returns it, or `None` if it is not resting.
    pub fn remove_job(&mut self, id: &OfferId) -> Option<JobOffer> {
        let seq = *self.jobs.ids.get(&IdKey(*id))?;
        self.remove_job_seq(seq).map(|r| r.offer)
    }

    /// Withdraws a resting resource offer; returns it, or `None` if it is not resting.
    pub fn remove_resource(&mut self, id: &OfferId) -> Option<ResourceOffer> {
        let seq = *self.resources.ids.get(&IdKey(*id))?;
        self.remove_resource_seq(seq).map(|(r, _)| r.offer)
    }

    /// Drops every offer expired at `now` (expiry <= now) and says which.
    pub fn expire(&mut self, now: u64) -> Expired {
        let mut out = Expired::default();
        for seq in self.jobs.pop_expired(now) {
            if let Some(r) = self.remove_job_seq(seq) {
                out.jobs.push(r.id);
            }
        }
        for seq in self.resources.pop_expired(now) {
            if let Some((r, _)) = self.remove_resource_seq(seq) {
                out.resources.push(r.id);
            }
        }
        out
    }

    /// Why `job` matches none of the resting resource offers: the first
    /// failing rule for each one, oldest offer first.
    ///
    /// Resource offers compatible with `job` are left out, so for a resting
    /// job the list names every resting resource offer. Scans them all.
    pub fn explain(&self, job: &JobOffer, now: u64) -> Vec<(OfferId, Mismatch)> {
        self.explain_requiring(job, 0.0, now)
    }

    /// [`explain`](Self::explain) for a job that asks for providers scoring at
    /// least `min_score`: an offer that passes every rule but comes from a provider
    /// under it gets [`Mismatch::ReputationTooLow`].
    pub fn explain_requiring(
        &self,
        job: &JobOffer,
        min_score: f64,
        now: u64,
    ) -> Vec<(OfferId, Mismatch)> {
        by_age(&self.resources)
            .into_iter()
            .filter_map(|(id, resource)| {
                let why = match policy::check(job, resource, &self.network, now) {
                    Err(m) => m,
                    Ok(_) => {
                        let score = self.score(resource.provider);
                        if score >= min_score {
                            return None;
                        }
                        Mismatch::ReputationTooLow {
                            score_ppm: policy::score_ppm(score),
                            minimum_ppm: policy::score_ppm(min_score),
                        }
                    }
                };
                Some((id, why))
            })
            .collect()
    }

    /// [`explain`](Self::explain) for the resting job offer `id` (with its
    /// minimum score), or `None` if no such job is resting.
    pub fn explain_job(&self, id: &OfferId, now: u64) -> Option<Vec<(OfferId, Mismatch)>> {
        self.job(id).map(|job| self.explain_requiring(job, self.minimum_of(id), now))
    }
}

fn provider_score(scores: &KeyedMap<ProviderKey, f64>, provider: Address) -> f64 {
    if scores.is_empty() {
        return NEW_PROVIDER_SCORE;
    }
    scores.get(&ProviderKey(provider)).copied().unwrap_or(NEW_PROVIDER_SCORE)
}

fn by_age<T>(side: &Side<T>) -> Vec<(OfferId, &T)> {
    let mut all: Vec<(Seq, OfferId, &T)> =
        side.iter().map(|(seq, r)| (seq, r.id, &r.offer)).collect();
    all.sort_unstable_by_key(|&(seq, _, _)| seq);
    all.into_iter().map(|(_, id, offer)| (id, offer)).collect()
}

#[cfg(test)]
pub(crate) mod tests;
