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
    hash::{BuildHasherDefault, Hasher},
};

use alloy_primitives::{Address, U256};

use super::policy::NetworkModules;
use crate::{
    offer::{JobOffer, ModuleId, ModulePolicy, ResourceOffer},
    spec::{JobRequirements, MachineSpec},
};

/// Insertion sequence number: lower is older. Unique across jobs and resources.
pub(super) type Seq = u64;

/// Hasher for maps keyed by [`Seq`]. Sequence numbers are ours, not the
/// caller's, so a cheap multiplicative hash cannot be attacked.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by sequence number.
pub(super) type SeqMap<V> = HashMap<Seq, V, BuildHasherDefault<SeqHasher>>;

/// GPU counts at or above this share one class.
const GPU_COUNT_CAP: u32 = 8;

/// A coarse capability class: GPU count (capped) and a VRAM tier.
///
/// For a machine the tier is that of its largest GPU; for a job, that of the
/// VRAM it asks per GPU. A machine of class `m` can only fit a job of class
/// `j` if `j.gpus <= m.gpus` and `j.vram_tier <= m.vram_tier` (a necessary,
/// not sufficient, condition), so the ladders of other classes are skipped
/// without looking at their offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Class {
    gpus: u8,
    vram_tier: u8,
}

/// Half-octave tiers: 16 GiB, 24 GiB, 32 GiB and 48 GiB each get their own.
/// Monotone in `mib`, which is all the pruning needs.
fn vram_tier(mib: u64) -> u8 {
    if mib == 0 {
        return 0;
    }
    let bits = 64 - mib.leading_zeros();
    let half = if bits >= 2 { (mib >> (bits - 2)) & 1 } else { 0 };
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
            vram_tier: if count == 0 { 0 } else { vram_tier(max_vram) },
        }
    }

    /// The class of a job's requirements.
    pub(super) fn of_job(req: &JobRequirements) -> Self {
        if req.gpu_count == 0 {
            // `fits` ignores VRAM when no GPU is asked for.
            return Self { gpus: 0, vram_tier: 0 };
        }
        Self { gpus: capped_gpus(req.gpu_count), vram_tier: vram_tier(req.gpu_vram_mib) }
    }

    /// Whether a machine of this class may fit a job of class `job`.
    pub(super) fn may_serve(self, job: Self) -> bool {
        job.gpus <= self.gpus && job.vram_tier <= self.vram_tier
    }
}

/// Where a resource offer is filed: per solver, optionally per provider (for
/// targeted jobs), and per module or among "any module" offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LadderKey {
    solver: Address,
    provider: Option<Address>,
    module: Option<ModuleId>,
}

/// Resource offers of one key and class, cheapest then oldest first.
type PriceLadder = BTreeSet<(U256, Seq)>;

/// Resting resource offers, filed so that a job finds the cheapest compatible
/// one by walking a few price ladders in merged order.
///
/// Each offer is filed twice (under its solver, and under its solver and
/// provider) for each of:
/// - `Only(set)`: every module of the set, at its price for that module;
/// - `Any`: the "any module" ladder at its default price, plus the ladder of
///   every module it prices separately, at that price. Walking the "any"
///   ladder for module `m`, an offer with its own price for `m` is skipped:
///   it is met, at its true price, in `m`'s ladder.
#[derive(Debug, Clone, Default)]
pub(super) struct ResourceIndex {
    ladders: HashMap<LadderKey, BTreeMap<Class, PriceLadder>>,
}

/// The (module, price) filings of one resource offer.
fn filings(offer: &ResourceOffer) -> Vec<(Option<ModuleId>, U256)> {
    match &offer.modules {
        ModulePolicy::Any => std::iter::once((None, offer.default_price))
            .chain(offer.module_prices.iter().map(|(m, p)| (Some(*m), *p)))
            .collect(),
        ModulePolicy::Only(set) => set.iter().map(|m| (Some(*m), offer.price_for(m))).collect(),
    }
}

impl ResourceIndex {
    /// Files a resource offer.
    pub(super) fn insert(&mut self, seq: Seq, offer: &ResourceOffer) {
        let class = Class::of_machine(&offer.spec);
        for (module, price) in filings(offer) {
            for provider in [None, Some(offer.provider)] {
                let key = LadderKey { solver: offer.solver, provider, module };
                self.ladders.entry(key).or_default().entry(class).or_default().insert((price, seq));
            }
        }
    }

    /// Unfiles a resource offer (the same offer that was filed under `seq`).
    pub(super) fn remove(&mut self, seq: Seq, offer: &ResourceOffer) {
        let class = Class::of_machine(&offer.spec);
        for (module, price) in filings(offer) {
            for provider in [None, Some(offer.provider)] {
                let key = LadderKey { solver: offer.solver, provider, module };
                let Some(classes) = self.ladders.get_mut(&key) else { continue };
                if let Some(ladder) = classes.get_mut(&class) {
                    ladder.remove(&(price, seq));
                    if ladder.is_empty() {
                        classes.remove(&class);
                    }
                }
                if classes.is_empty() {
                    self.ladders.remove(&key);
                }
            }
        }
    }

    /// The cheapest, then oldest, filed offer for `job` that `accept` takes.
    ///
    /// Walks, merged by (price, seq), the ladders of the job's solver (and
    /// target provider, if any), for its module and for "any module", of the
    /// classes that may fit it, up to the job's max price. `accept(seq,
    /// from_any)` decides each candidate and returns the deal price.
    pub(super) fn cheapest_for(
        &self,
        job: &JobOffer,
        mut accept: impl FnMut(Seq, bool) -> Option<U256>,
    ) -> Option<(Seq, U256)> {
        let job_class = Class::of_job(&job.requirements);
        let cap = (job.max_price, Seq::MAX);
        let mut walks: Vec<(btree_set::Range<'_, (U256, Seq)>, bool)> = Vec::new();
        let mut heap = BinaryHeap::new();
        for (module, from_any) in [(Some(job.module_id), false), (None, true)] {
            let key = LadderKey { solver: job.solver, provider: job.target, module };
            let Some(classes) = self.ladders.get(&key) else { continue };
            let first_class = Class { gpus: job_class.gpus, vram_tier: 0 };
            for (class, ladder) in classes.range(first_class..) {
                if !class.may_serve(job_class) {
                    continue;
                }
                let mut walk = ladder.range(..=cap);
                if let Some(&(price, seq)) = walk.next() {
                    heap.push(Reverse((price, seq, walks.len())));
                    walks.push((walk, from_any));
                }
            }
        }
        while let Some(Reverse((_, seq, i))) = heap.pop() {
            let (walk, from_any) = walks.get_mut(i)?;
            if let Some(price) = accept(seq, *from_any) {
                return Some((seq, price));
            }
            if let Some(&(price, seq)) = walk.next() {
                heap.push(Reverse((price, seq, i)));
            }
        }
        None
    }
}

/// Resting job offers of one scope, module and class, oldest first.
type AgeLadder = BTreeSet<Seq>;

/// Resting job offers per (solver, target) scope, per module, per class.
///
/// A resource offer looks at the untargeted scope of its solver and the scope
/// of jobs targeted at its provider, at the modules it allows, at the classes
/// it may fit, and walks those age ladders merged by age.
#[derive(Debug, Clone, Default)]
pub(super) struct JobIndex {
    scopes: HashMap<(Address, Option<Address>), HashMap<ModuleId, BTreeMap<Class, AgeLadder>>>,
}

impl JobIndex {
    /// Files a job offer.
    pub(super) fn insert(&mut self, seq: Seq, job: &JobOffer) {
        self.scopes
            .entry((job.solver, job.target))
            .or_default()
            .entry(job.module_id)
            .or_default()
            .entry(Class::of_job(&job.requirements))
            .or_default()
            .insert(seq);
    }

    /// Unfiles a job offer (the same offer that was filed under `seq`).
    pub(super) fn remove(&mut self, seq: Seq, job: &JobOffer) {
        let scope = (job.solver, job.target);
        let Some(modules) = self.scopes.get_mut(&scope) else { return };
        if let Some(classes) = modules.get_mut(&job.module_id) {
            let class = Class::of_job(&job.requirements);
            if let Some(ladder) = classes.get_mut(&class) {
                ladder.remove(&seq);
                if ladder.is_empty() {
                    classes.remove(&class);
                }
            }
            if classes.is_empty() {
                modules.remove(&job.module_id);
            }
        }
        if modules.is_empty() {
            self.scopes.remove(&scope);
        }
    }

    /// The oldest filed job for `resource` that `accept` takes.
    ///
    /// Modules the network does not allow are skipped whole. `accept(seq)`
    /// decides each candidate and returns the deal price.
    pub(super) fn oldest_for(
        &self,
        resource: &ResourceOffer,
        network: &NetworkModules,
        mut accept: impl FnMut(Seq) -> Option<U256>,
    ) -> Option<(Seq, U256)> {
        let class = Class::of_machine(&resource.spec);
        let last_class = Class { gpus: class.gpus, vram_tier: u8::MAX };
        let mut walks: Vec<btree_set::Iter<'_, Seq>> = Vec::new();
        let mut heap = BinaryHeap::new();
        let mut modules_to_walk: Vec<&BTreeMap<Class, AgeLadder>> = Vec::new();
        for scope in [(resource.solver, None), (resource.solver, Some(resource.provider))] {
            let Some(modules) = self.scopes.get(&scope) else { continue };
            match &resource.modules {
                // Few allowed modules, many with jobs: look the allowed ones up.
                ModulePolicy::Only(set) if set.len() < modules.len() => {
                    modules_to_walk.extend(
                        set.iter().filter(|m| network.allows(m)).filter_map(|m| modules.get(m)),
                    );
                }
                policy => modules_to_walk.extend(
                    modules
                        .iter()
                        .filter(|(m, _)| policy.allows(m) && network.allows(m))
                        .map(|(_, classes)| classes),
                ),
            }
        }
        for classes in modules_to_walk {
            for (job_class, ladder) in classes.range(..=last_class) {
                if !class.may_serve(*job_class) {
                    continue;
                }
                let mut walk = ladder.iter();
                if let Some(&seq) = walk.next() {
                    heap.push(Reverse((seq, walks.len())));
                    walks.push(walk);
                }
            }
        }
        while let Some(Reverse((seq, i))) = heap.pop() {
            if let Some(price) = accept(seq) {
                return Some((seq, price));
            }
            if let Some(&seq) = walks.get_mut(i)?.next() {
                heap.push(Reverse((seq, i)));
            }
        }
        None
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
            let t = vram_tier(mib);
            assert!(t >= last, "tier drops at {mib}");
            last = t;
        }
        let cards = [8192, 12288, 16384, 24576, 32768, 49152, 81920];
        let tiers: BTreeSet<u8> = cards.iter().map(|&c| vram_tier(c)).collect();
        assert_eq!(tiers.len(), cards.len());
        assert_eq!(vram_tier(u64::MAX), 129);
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
