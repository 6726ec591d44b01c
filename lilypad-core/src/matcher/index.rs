//! The indexes behind [`Matcher`](super::Matcher): resting resource offers in
//! price ladders, resting job offers in age ladders, both partitioned by
//! capability class.
//!
//! An index only prunes: it yields a superset of the compatible candidates,
//! in priority order, and the caller decides each one with
//! [`policy::check`](super::policy::check).

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, btree_set},
    hash::{BuildHasher, Hash, Hasher, RandomState},
    iter::Peekable,
};

use alloy_primitives::{Address, U256};

use super::policy::NetworkModules;
use crate::{
    offer::{JobOffer, ModuleId, ModulePolicy, ResourceOffer},
    spec::{JobRequirements, MachineSpec},
};

/// A resting offer as the indexes see it: its insertion sequence number
/// (lower is older; unique across jobs and resources), which alone orders
/// it, and its slot in the matcher's storage, so that a candidate is found
/// without a lookup by sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Seq {
    /// Insertion sequence number.
    pub(super) n: u64,
    /// Slot in the storage of its side of the book.
    pub(super) slot: u32,
}

/// Builds [`KeyedHasher`]s under two keys drawn from the standard library's
/// random source, fresh for every map.
///
/// SipHash (the standard hasher) costs a few hundred instructions per
/// lookup here, a tenth of the cost of an insertion. This one folds each
/// 64-bit word into its state with a keyed 64 x 64 -> 128-bit multiply (the
/// scheme of `foldhash` and `ahash`'s fallback): a few instructions per
/// word. Its keys are secret and random, so offer ids, addresses or module
/// ids cannot be crafted to land in one bucket without first learning them.
#[derive(Debug, Clone, Copy)]
pub(super) struct RandomKeys {
    start: u64,
    mul: u64,
}

impl Default for RandomKeys {
    fn default() -> Self {
        let random = RandomState::new();
        Self { start: random.hash_one(0x243f_6a88_85a3_08d3_u64), mul: random.hash_one(1u64) | 1 }
    }
}

impl BuildHasher for RandomKeys {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { state: self.start, mul: self.mul }
    }
}

/// The hasher of [`RandomKeys`].
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyedHasher {
    state: u64,
    mul: u64,
}

impl Hasher for KeyedHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length tells "ab" from "ab\0" apart.
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let product = u128::from(self.state ^ n) * u128::from(self.mul);
        // Truncations intended: fold the high half onto the low one.
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A hash map under [`RandomKeys`].
pub(super) type KeyedMap<K, V> = HashMap<K, V, RandomKeys>;

/// GPU counts at or above this share one class.
const GPU_COUNT_CAP: u32 = 8;

/// A coarse capability class: GPU count (capped), VRAM tier, CPU tier, RAM tier.
///
/// For a machine the VRAM tier is that of its largest GPU; for a job, that of
/// the VRAM it asks per GPU. Tiers are half octaves of the amount. A machine
/// of class `m` can only fit a job of class `j` if every field of `j` is at
/// most that of `m` (a necessary, not sufficient, condition), so the ladders
/// of other classes are skipped without looking at their offers: a job that
/// needs a big GPU, or many cores, does not wade through small machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Class {
    gpus: u8,
    vram_tier: u8,
    cpu_tier: u8,
    ram_tier: u8,
}

/// Half-octave tiers: 16, 24, 32 and 48 (GiB, cores) each get their own.
/// Monotone in `amount`, which is all the pruning needs.
fn tier(amount: u64) -> u8 {
    if amount == 0 {
        return 0;
    }
    let bits = 64 - amount.leading_zeros();
    let half = if bits >= 2 { (amount >> (bits - 2)) & 1 } else { 0 };
    // bits <= 64, so the tier is at most 129.
    u8::try_from(2 * u64::from(bits) + half).unwrap_or(u8::MAX)
}

fn capped_gpus(n: u32) -> u8 {
    // GPU_COUNT_CAP fits in a u8.
    u8::try_from(n.min(GPU_COUNT_CAP)).unwrap_or(u8::MAX)
}

impl Class {
    /// The class of a machine.
    pub(super) fn of_machine(spec: &MachineSpec) -> Self {
        let count = u32::try_from(spec.gpus.len()).unwrap_or(u32::MAX);
        let max_vram = spec.gpus.iter().map(|g| g.vram_mib).max().unwrap_or(0);
        Self {
            gpus: capped_gpus(count),
            vram_tier: if count == 0 { 0 } else { tier(max_vram) },
            cpu_tier: tier(u64::from(spec.cpu_millicores)),
            ram_tier: tier(spec.ram_mib),
        }
    }

    /// The class of a job's requirements.
    pub(super) fn of_job(req: &JobRequirements) -> Self {
        // `fits` ignores VRAM when no GPU is asked for.
        let vram_tier = if req.gpu_count == 0 { 0 } else { tier(req.gpu_vram_mib) };
        Self {
            gpus: capped_gpus(req.gpu_count),
            vram_tier,
            cpu_tier: tier(u64::from(req.cpu_millicores)),
            ram_tier: tier(req.ram_mib),
        }
    }

    /// Whether a machine of this class may fit a job of class `job`.
    pub(super) fn may_serve(self, job: Self) -> bool {
        job.gpus <= self.gpus
            && job.vram_tier <= self.vram_tier
            && job.cpu_tier <= self.cpu_tier
            && job.ram_tier <= self.ram_tier
    }
}

/// Merges two sorted iterators into one sorted iterator.
struct Merge<A: Iterator, B: Iterator<Item = A::Item>> {
    a: Peekable<A>,
    b: Peekable<B>,
}

fn merge<A, B>(a: A, b: B) -> Merge<A, B>
where
    A: Iterator,
    B: Iterator<Item = A::Item>,
{
    Merge { a: a.peekable(), b: b.peekable() }
}

impl<A, B> Iterator for Merge<A, B>
where
    A: Iterator,
    B: Iterator<Item = A::Item>,
    A::Item: Ord,
{
    type Item = A::Item;

    fn next(&mut self) -> Option<A::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y < x => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// A price as a ladder key: exact up to `u128::MAX`, saturated above.
///
/// Valid offers price at most [`MAX_AMOUNT`](crate::offer::MAX_AMOUNT) =
/// `u128::MAX`, so the keys of valid offers order them exactly; half the
/// width of a `U256` means cheaper compares and fewer bytes shifted in the
/// B-tree nodes. Saturation is monotone, so `price <= max` implies
/// `key(price) <= key(max)` and pruning by key keeps every candidate; the
/// search orders saturated keys exactly itself (see
/// [`ResourceIndex::cheapest_for`]).
pub(super) fn price_key(price: U256) -> u128 {
    let [a, b, c, d] = *price.as_limbs();
    if c | d != 0 { u128::MAX } else { u128::from(a) | (u128::from(b) << 64) }
}

/// Resource offers of one key and class, cheapest then oldest first.
type PriceLadder = BTreeSet<(u128, Seq)>;

/// A price ladder being walked: its next entry, the rest, and whether it is
/// on the "any module" shelf.
type OpenLadder<'a> = ((u128, Seq), btree_set::Iter<'a, (u128, Seq)>, bool);

/// The price ladders of one solver and module (or "any module"), by class,
/// and the head (cheapest entry) of each ladder in price order: a search
/// opens a ladder only when the merge reaches its head, so ladders dearer
/// than the match are never touched.
#[derive(Debug, Clone, Default)]
struct Shelf {
    ladders: BTreeMap<Class, PriceLadder>,
    /// Sorted; a shelf has a ladder per class in use, a few dozen at most,
    /// so a sorted vector beats a B-tree.
    heads: Vec<(u128, Seq, Class)>,
    /// The module of the shelf; `None` for an "any module" shelf.
    module: Option<ModuleId>,
}

impl Shelf {
    fn insert_head(&mut self, head: (u128, Seq, Class)) {
        if let Err(i) = self.heads.binary_search(&head) {
            self.heads.insert(i, head);
        }
    }

    fn remove_head(&mut self, head: (u128, Seq, Class)) {
        if let Ok(i) = self.heads.binary_search(&head) {
            self.heads.remove(i);
        }
    }

    fn insert(&mut self, class: Class, entry: (u128, Seq)) {
        let ladder = self.ladders.entry(class).or_default();
        let old = ladder.first().copied();
        ladder.insert(entry);
        if old.is_none_or(|old| entry < old) {
            if let Some((price, seq)) = old {
                self.remove_head((price, seq, class));
            }
            self.insert_head((entry.0, entry.1, class));
        }
    }

    fn remove(&mut self, class: Class, entry: (u128, Seq)) {
        let Some(ladder) = self.ladders.get_mut(&class) else { return };
        let was_head = ladder.first() == Some(&entry);
        if !ladder.remove(&entry) {
            return;
        }
        if was_head {
            let next = ladder.first().copied();
            self.remove_head((entry.0, entry.1, class));
            match next {
                Some((price, seq)) => {
                    self.insert_head((price, seq, class));
                }
                None => {
                    self.ladders.remove(&class);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.ladders.is_empty()
    }
}

/// A provider address as a map key, hashed as three words rather than
/// byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProviderKey(pub(super) Address);

impl Hash for ProviderKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t] = self.0.0.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
        state.write_u64(u64::from_le_bytes([i, j, k, l, m, n, o, p]));
        state.write_u32(u32::from_le_bytes([q, r, s, t]));
    }
}

/// The shelves of one solver, as indexes into [`ResourceIndex::shelves`].
#[derive(Debug, Clone)]
struct SolverShelves {
    /// Offers that take any module, at their default price.
    any: u32,
    /// Offers that name the module: in their allowlist, or priced on its own.
    modules: KeyedMap<ModuleId, u32>,
    /// Every offer, by provider, for targeted jobs (a provider has a few).
    providers: KeyedMap<ProviderKey, Vec<Seq>>,
}

impl SolverShelves {
    fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

/// Resting resource offers, filed so that a job finds the cheapest compatible
/// one by walking a few price ladders in merged order.
///
/// Under its solver, an offer is filed for:
/// - `Only(set)`: every module of the set, at its price for that module;
/// - `Any`: the "any module" shelf at its default price, plus the shelf of
///   every module it prices on its own, at that price. Walking the "any"
///   shelf for module `m`, an offer with its own price for `m` is skipped:
///   it is met, at its true price, on `m`'s shelf.
///
/// It is also filed, once, under its solver and provider for targeted jobs.
/// Maps keyed by caller-chosen bytes are B-trees or hash maps under secret
/// random keys ([`RandomKeys`]), so crafted module ids or addresses cannot
/// degrade them.
#[derive(Debug, Clone, Default)]
pub(super) struct ResourceIndex {
    solvers: BTreeMap<Address, SolverShelves>,
    /// Every shelf, addressed by index, so that an offer's [`Filing`]s
    /// reach their shelves without a lookup.
    shelves: Vec<Shelf>,
    /// Indexes of freed shelves, reused first.
    free_shelves: Vec<u32>,
}

/// Where a resting resource offer is filed: a shelf (its index in
/// [`ResourceIndex::shelves`]) and its price key there. Kept with the
/// offer, so that unfiling it recomputes no price and looks up no module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Filing {
    shelf: u32,
    price: u128,
}

/// Takes a free shelf (or a new one) for `module`; returns its index.
fn new_shelf(shelves: &mut Vec<Shelf>, free: &mut Vec<u32>, module: Option<ModuleId>) -> u32 {
    let shelf = Shelf { module, ..Shelf::default() };
    match free.pop() {
        Some(i) => {
            if let Some(s) = shelves.get_mut(i as usize) {
                *s = shelf;
            }
            i
        }
        None => {
            shelves.push(shelf);
            // More than 2^32 shelves would not fit in memory anyway.
            u32::try_from(shelves.len() - 1).unwrap_or(u32::MAX)
        }
    }
}

/// The heads of the ladders of a shelf whose class may fit `job`, each
/// tagged with `from_any`.
fn tagged_heads(
    shelf: Option<&Shelf>,
    from_any: bool,
    job: Class,
) -> impl Iterator<Item = (u128, Seq, Class, bool)> + '_ {
    shelf
        .into_iter()
        .flat_map(|s| s.heads.iter())
        .filter(move |(_, _, class)| class.may_serve(job))
        .map(move |&(price, seq, class)| (price, seq, class, from_any))
}

/// Calls `f(module, price)` for each filing of a resource offer; `None` is
/// the "any module" shelf.
fn for_each_filing(offer: &ResourceOffer, mut f: impl FnMut(Option<&ModuleId>, u128)) {
    match &offer.modules {
        ModulePolicy::Any => {
            f(None, price_key(offer.default_price));
            for (module, price) in &offer.module_prices {
                f(Some(module), price_key(*price));
            }
        }
        ModulePolicy::Only(set) => {
            for module in set {
                f(Some(module), price_key(offer.price_for(module)));
            }
        }
    }
}

impl ResourceIndex {
    /// Files a resource offer; returns its filings, for [`remove`](Self::remove).
    pub(super) fn insert(&mut self, seq: Seq, offer: &ResourceOffer, class: Class) -> Vec<Filing> {
        let Self { solvers, shelves, free_shelves } = self;
        let solver = solvers.entry(offer.solver).or_insert_with(|| SolverShelves {
            any: new_shelf(shelves, free_shelves, None),
            modules: KeyedMap::default(),
            providers: KeyedMap::default(),
        });
        let count = match &offer.modules {
            ModulePolicy::Any => 1 + offer.module_prices.len(),
            ModulePolicy::Only(set) => set.len(),
        };
        let mut filings = Vec::with_capacity(count);
        for_each_filing(offer, |module, price| {
            let index = match module {
                None => solver.any,
                Some(m) => *solver
                    .modules
                    .entry(*m)
                    .or_insert_with(|| new_shelf(shelves, free_shelves, Some(*m))),
            };
            if let Some(shelf) = shelves.get_mut(index as usize) {
                shelf.insert(class, (price, seq));
            }
            filings.push(Filing { shelf: index, price });
        });
        solver.providers.entry(ProviderKey(offer.provider)).or_default().push(seq);
        filings
    }

    /// Unfiles a resource offer (the same offer and class that were filed
    /// under `seq`, with the filings [`insert`](Self::insert) returned).
    pub(super) fn remove(
        &mut self,
        seq: Seq,
        offer: &ResourceOffer,
        class: Class,
        filings: &[Filing],
    ) {
        let Some(solver) = self.solvers.get_mut(&offer.solver) else { return };
        for filing in filings {
            let Some(shelf) = self.shelves.get_mut(filing.shelf as usize) else { continue };
            shelf.remove(class, (filing.price, seq));
            if shelf.is_empty()
                && let Some(module) = shelf.module
            {
                solver.modules.remove(&module);
                self.free_shelves.push(filing.shelf);
            }
        }
        let key = ProviderKey(offer.provider);
        if let Some(seqs) = solver.providers.get_mut(&key) {
            seqs.retain(|&s| s != seq);
            if seqs.is_empty() {
                solver.providers.remove(&key);
            }
        }
        if solver.is_empty() {
            self.free_shelves.push(solver.any);
            for &index in solver.modules.values() {
                self.free_shelves.push(index);
            }
            self.solvers.remove(&offer.solver);
        }
    }

    /// The cheapest, then oldest, filed offer for `job` that `accept` takes.
    ///
    /// `accept(seq, from_any)` decides each candidate and returns the deal
    /// price; `from_any` says the candidate was met on the "any module"
    /// shelf (at its default price).
    ///
    /// An untargeted job merges, by (price, seq) and up to its max price, the
    /// ladders of its solver's shelves for its module and for "any module",
    /// of the classes that may fit it; a ladder is opened only when the merge
    /// reaches its head and the head is turned down. A targeted job checks
    /// every offer of its provider.
    ///
    /// Ladders order by [`price_key`], exact for prices up to `u128::MAX`.
    /// Dearer prices (only invalid offers have them) share the saturated key
    /// and come last; once a candidate with that key is taken, every one
    /// left has it too, so the search takes the least (exact price, seq) of
    /// them all.
    ///
    /// With `rank` (a score per candidate, and a ceiling no candidate scores
    /// above), an untargeted job goes on past the first taken candidate
    /// through the candidates of the same price and takes the one `rank`
    /// scores highest (the oldest among equal scores); the first taken
    /// candidate's price bounds that walk, and a candidate at the ceiling
    /// ends it.
    pub(super) fn cheapest_for(
        &self,
        job: &JobOffer,
        job_class: Class,
        mut accept: impl FnMut(Seq, bool) -> Option<U256>,
        rank: Option<(&dyn Fn(Seq) -> f64, f64)>,
    ) -> Option<(Seq, U256)> {
        if let Some(provider) = job.target {
            let seqs = self.solvers.get(&job.solver)?.providers.get(&ProviderKey(provider))?;
            let mut best: Option<(U256, Seq)> = None;
            for &seq in seqs {
                if let Some(price) = accept(seq, false)
                    && best.is_none_or(|best| (price, seq) < best)
                {
                    best = Some((price, seq));
                }
            }
            return best.map(|(price, seq)| (seq, price));
        }
        let solver = self.solvers.get(&job.solver)?;
        let own = solver.modules.get(&job.module_id).and_then(|&i| self.shelves.get(i as usize));
        let any = self.shelves.get(solver.any as usize)?;
        let max_key = price_key(job.max_price);
        // The best taken candidate with a saturated key, exactly ordered.
        let mut saturated: Option<(U256, Seq)> = None;
        let mut take = |seq: Seq, price: U256| {
            if price_key(price) < u128::MAX {
                return Some((seq, price));
            }
            if saturated.is_none_or(|best| (price, seq) < best) {
                saturated = Some((price, seq));
            }
            None
        };
        let mut heads =
            merge(tagged_heads(own, false, job_class), tagged_heads(Some(any), true, job_class))
                .peekable();
        // Ladders whose head was turned down: (next entry, rest, from_any).
        // Usually the first head is taken and nothing is opened; otherwise a
        // few are, so a linear scan beats a heap.
        let mut open: Vec<OpenLadder<'_>> = Vec::new();
        // With `rank`: the best taken candidate so far (seq, price, score)
        // and its price key.
        let mut best: Option<(Seq, U256, f64, u128)> = None;
        loop {
            let next_head = heads.peek().copied().filter(|h| h.0 <= max_key);
            let next_open = open
                .iter()
                .enumerate()
                .min_by_key(|(_, (key, _, _))| *key)
                .map(|(i, (key, _, _))| (i, *key));
            if let Some((seq, price, _, key)) = best {
                let next_key = match (next_head, next_open) {
                    (Some(h), Some((_, o))) => Some(h.0.min(o.0)),
                    (Some(h), None) => Some(h.0),
                    (None, Some((_, o))) => Some(o.0),
                    (None, None) => None,
                };
                if next_key.is_none_or(|k| k > key) {
                    return Some((seq, price));
                }
            }
            match (next_head, next_open) {
                (Some((price, seq, class, from_any)), next_open)
                    if next_open.is_none_or(|(_, key)| (price, seq) < key) =>
                {
                    heads.next();
                    if let Some(price) = accept(seq, from_any)
                        && let Some(found) = take(seq, price)
                        && let Some(chosen) = consider(rank, &mut best, found)
                    {
                        return Some(chosen);
                    }
                    let shelf = if from_any { any } else { own? };
                    let mut rest = shelf.ladders.get(&class)?.iter();
                    // The head itself.
                    rest.next();
                    if let Some(&next) = rest.next()
                        && next.0 <= max_key
                    {
                        open.push((next, rest, from_any));
                    }
                }
                (_, Some((i, (_, seq)))) => {
                    let (key, rest, from_any) = open.get_mut(i)?;
                    if let Some(price) = accept(seq, *from_any)
                        && let Some(found) = take(seq, price)
                        && let Some(chosen) = consider(rank, &mut best, found)
                    {
                        return Some(chosen);
                    }
                    match rest.next() {
                        Some(&next) if next.0 <= max_key => *key = next,
                        _ => {
                            drop(open.swap_remove(i));
                        }
                    }
                }
                (_, None) => return saturated.map(|(price, seq)| (seq, price)),
            }
        }
    }
}

/// A candidate `found` (seq, price): to be taken now (no `rank`, or it has the
/// top score), or else kept as the best if it scores higher than `best` (an
/// earlier candidate wins a tie: it is older at the same price).
fn consider(
    rank: Option<(&dyn Fn(Seq) -> f64, f64)>,
    best: &mut Option<(Seq, U256, f64, u128)>,
    found: (Seq, U256),
) -> Option<(Seq, U256)> {
    let Some((rank, ceiling)) = rank else { return Some(found) };
    let score = rank(found.0);
    if score >= ceiling {
        return Some(found);
    }
    if best.is_none_or(|(_, _, s, _)| score > s) {
        *best = Some((found.0, found.1, score, price_key(found.1)));
    }
    None
}

/// Resting job offers of one scope, module and class, oldest first.
type AgeLadder = BTreeSet<Seq>;

/// The resting jobs of one (solver, target) scope: age ladders per module
/// and class, and the head (oldest job) of each ladder in age order.
#[derive(Debug, Clone, Default)]
struct Scope {
    modules: KeyedMap<ModuleId, BTreeMap<Class, AgeLadder>>,
    heads: BTreeSet<(Seq, ModuleId, Class)>,
}

impl Scope {
    fn ladder(&self, module: &ModuleId, class: &Class) -> Option<&AgeLadder> {
        self.modules.get(module)?.get(class)
    }
}

/// Resting job offers per (solver, target) scope, per module, per class.
///
/// A resource offer looks at the untargeted scope of its solver and the scope
/// of jobs targeted at its provider, at the modules it allows, at the classes
/// it may fit, and merges those age ladders, opening each one lazily.
#[derive(Debug, Clone, Default)]
pub(super) struct JobIndex {
    scopes: KeyedMap<(Address, Option<Address>), Scope>,
}

impl JobIndex {
    /// Files a job offer.
    pub(super) fn insert(&mut self, seq: Seq, job: &JobOffer, class: Class) {
        let scope = self.scopes.entry((job.solver, job.target)).or_default();
        let ladder = scope.modules.entry(job.module_id).or_default().entry(class).or_default();
        let old = ladder.first().copied();
        ladder.insert(seq);
        if old.is_none_or(|old| seq < old) {
            if let Some(old) = old {
                scope.heads.remove(&(old, job.module_id, class));
            }
            scope.heads.insert((seq, job.module_id, class));
        }
    }

    /// Unfiles a job offer (the same offer and class that were filed under
    /// `seq`).
    pub(super) fn remove(&mut self, seq: Seq, job: &JobOffer, class: Class) {
        let key = (job.solver, job.target);
        let Some(scope) = self.scopes.get_mut(&key) else { return };
        let Some(classes) = scope.modules.get_mut(&job.module_id) else { return };
        let Some(ladder) = classes.get_mut(&class) else { return };
        let was_head = ladder.first() == Some(&seq);
        if !ladder.remove(&seq) {
            return;
        }
        if was_head {
            scope.heads.remove(&(seq, job.module_id, class));
            if let Some(&next) = ladder.first() {
                scope.heads.insert((next, job.module_id, class));
            }
        }
        if ladder.is_empty() {
            classes.remove(&class);
            if classes.is_empty() {
                scope.modules.remove(&job.module_id);
                if scope.modules.is_empty() {
                    self.scopes.remove(&key);
                }
            }
        }
    }

    /// The oldest filed job for `resource` that `accept` takes.
    ///
    /// Modules the network does not allow are skipped. `accept(seq)` decides
    /// each candidate and returns the deal price.
    pub(super) fn oldest_for(
        &self,
        resource: &ResourceOffer,
        class: Class,
        network: &NetworkModules,
        accept: impl FnMut(Seq) -> Option<U256>,
    ) -> Option<(Seq, U256)> {
        if self.scopes.is_empty() {
            return None;
        }
        let scopes = [
            self.scopes.get(&(resource.solver, None)),
            self.scopes.get(&(resource.solver, Some(resource.provider))),
        ];
        let wanted = |module: &ModuleId, job_class: &Class| {
            class.may_serve(*job_class) && resource.modules.allows(module) && network.allows(module)
        };
        match &resource.modules {
            // An allowlist shorter than the list of modules with resting
            // jobs: look its modules up rather than wade through the heads
            // of every module.
            ModulePolicy::Only(set)
                if set.len() < scopes.iter().flatten().map(|s| s.modules.len()).sum() =>
            {
                let mut heads = Vec::new();
                for (i, scope) in scopes.iter().enumerate() {
                    let Some(scope) = scope else { continue };
                    for module in set {
                        let Some(classes) = scope.modules.get(module) else { continue };
                        for (job_class, ladder) in classes {
                            if let Some(&seq) = ladder.first()
                                && wanted(module, job_class)
                            {
                                heads.push((seq, *module, *job_class, i == 1));
                            }
                        }
                    }
                }
                heads.sort_unstable();
                walk_jobs(scopes, heads.into_iter(), accept)
            }
            _ => {
                let heads = |i: usize| {
                    scopes[i]
                        .into_iter()
                        .flat_map(|s| s.heads.iter())
                        .filter(|(_, module, job_class)| wanted(module, job_class))
                        .map(move |&(seq, module, job_class)| (seq, module, job_class, i == 1))
                };
                walk_jobs(scopes, merge(heads(0), heads(1)), accept)
            }
        }
    }
}

/// Merges the age ladders whose heads `heads` yields (oldest first, each
/// tagged with its scope: untargeted or targeted), opening each ladder only
/// when the merge reaches its head; returns the first job `accept` takes.
fn walk_jobs(
    scopes: [Option<&Scope>; 2],
    heads: impl Iterator<Item = (Seq, ModuleId, Class, bool)>,
    mut accept: impl FnMut(Seq) -> Option<U256>,
) -> Option<(Seq, U256)> {
    let mut heads = heads.peekable();
    let mut walks: Vec<btree_set::Iter<'_, Seq>> = Vec::new();
    let mut heap = BinaryHeap::new();
    loop {
        while let Some(&(seq, module, class, targeted)) = heads.peek() {
            if heap.peek().is_some_and(|Reverse((top, _)): &Reverse<(Seq, usize)>| *top < seq) {
                break;
            }
            heads.next();
            let mut walk = scopes[usize::from(targeted)]?.ladder(&module, &class)?.iter();
            // The head itself.
            walk.next();
            heap.push(Reverse((seq, walks.len())));
            walks.push(walk);
        }
        let Reverse((seq, i)) = heap.pop()?;
        if let Some(price) = accept(seq) {
            return Some((seq, price));
        }
        if let Some(&seq) = walks.get_mut(i)?.next() {
            heap.push(Reverse((seq, i)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Gpu;

    fn machine(vrams: &[u64]) -> MachineSpec {
        MachineSpec {
            cpu_millicores: 1000,
            ram_mib: 1024,
            disk_mib: 0,
            gpus: vrams
                .iter()
                .map(|&v| Gpu { vendor: "NVIDIA".into(), model: "X".into(), vram_mib: v })
                .collect(),
        }
    }

    fn needs(gpu_count: u32, gpu_vram_mib: u64) -> JobRequirements {
        JobRequirements { gpu_count, gpu_vram_mib, ..Default::default() }
    }

    #[test]
    fn tiers_are_monotone_and_split_common_cards() {
        let mut last = 0;
        for mib in 0..200_000u64 {
            let t = tier(mib);
            assert!(t >= last, "tier drops at {mib}");
            last = t;
        }
        let cards = [8192, 12288, 16384, 24576, 32768, 49152, 81920];
        let tiers: BTreeSet<u8> = cards.iter().map(|&c| tier(c)).collect();
        assert_eq!(tiers.len(), cards.len());
        assert_eq!(tier(u64::MAX), 129);
    }

    #[test]
    fn class_is_necessary_for_fit() {
        let machines =
            [machine(&[]), machine(&[8192]), machine(&[24576, 8192]), machine(&[81920; 9])];
        let jobs = [needs(0, 0), needs(0, 99), needs(1, 8192), needs(1, 24576), needs(2, 8192)];
        for m in &machines {
            for j in &jobs {
                if m.fits(j).is_ok() {
                    assert!(Class::of_machine(m).may_serve(Class::of_job(j)), "{m:?} {j:?}");
                }
            }
        }
        assert!(!Class::of_machine(&machines[0]).may_serve(Class::of_job(&jobs[2])));
        assert!(!Class::of_machine(&machines[1]).may_serve(Class::of_job(&jobs[3])));
    }
}
