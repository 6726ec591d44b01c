//! Property tests of the indexed matcher against the naive reference pass.
//!
//! Offers are drawn from small spaces (4 modules, 3 mediators, 2 solvers,
//! 3 providers, prices 0..=4, a few specs) so that collisions and ties on
//! price are frequent; each case is a short random interleaving of job and
//! resource insertions, cancellations, clock advances and expiry sweeps.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use lilypad_core::{
    Address, B256, U256,
    matcher::{AddError, Match, Matched, Matcher, NetworkModules, naive, policy},
    offer::{JobOffer, ModuleId, ModulePolicy, OfferId, ProviderBounds, ResourceOffer},
    spec::{Gpu, JobRequirements, MachineSpec},
};
use proptest::prelude::*;

const CASES: u32 = 10_000;

fn module(n: u8) -> ModuleId {
    B256::repeat_byte(0x10 + n)
}

fn mediator(n: u8) -> Address {
    Address::repeat_byte(0x20 + n)
}

fn solver(n: u8) -> Address {
    Address::repeat_byte(0x30 + n)
}

fn provider(n: u8) -> Address {
    Address::repeat_byte(0x40 + n)
}

fn modules() -> impl Strategy<Value = BTreeSet<ModuleId>> {
    prop::collection::btree_set((0u8..4).prop_map(module), 0..=3)
}

fn mediators() -> impl Strategy<Value = BTreeSet<Address>> {
    // Mostly non-empty; an empty set exercises "no common mediator".
    prop_oneof![
        9 => prop::collection::btree_set((0u8..3).prop_map(mediator), 1..=2),
        1 => Just(BTreeSet::new()),
    ]
}

fn solver_choice() -> impl Strategy<Value = Address> {
    prop_oneof![6 => Just(solver(0)), 1 => Just(solver(1))]
}

fn price() -> impl Strategy<Value = U256> {
    (0u64..=4).prop_map(U256::from)
}

fn expiry() -> impl Strategy<Value = u64> {
    1u64..=60
}

fn machine() -> impl Strategy<Value = MachineSpec> {
    (
        prop::sample::select(vec![1000u32, 2000, 4000]),
        prop::sample::select(vec![1024u64, 4096]),
        prop::sample::select(vec![0u64, 1000]),
        prop::collection::vec(prop::sample::select(vec![8192u64, 16384, 24576]), 0..=2),
    )
        .prop_map(|(cpu_millicores, ram_mib, disk_mib, vrams)| MachineSpec {
            cpu_millicores,
            ram_mib,
            disk_mib,
            gpus: vrams
                .into_iter()
                .map(|vram_mib| Gpu { vendor: "NVIDIA".into(), model: "T".into(), vram_mib })
                .collect(),
        })
}

fn requirements() -> impl Strategy<Value = JobRequirements> {
    (
        prop::sample::select(vec![500u32, 1000, 2000, 4000]),
        prop::sample::select(vec![512u64, 1024, 4096]),
        prop::sample::select(vec![0u64, 1000]),
        0u32..=2,
        prop::sample::select(vec![0u64, 8192, 16384, 24576]),
    )
        .prop_map(|(cpu_millicores, ram_mib, disk_mib, gpu_count, gpu_vram_mib)| {
            JobRequirements { cpu_millicores, ram_mib, disk_mib, gpu_count, gpu_vram_mib }
        })
}

fn job_offer() -> impl Strategy<Value = JobOffer> {
    (
        (0u8..4).prop_map(module),
        requirements(),
        price(),
        mediators(),
        solver_choice(),
        prop_oneof![3 => Just(None), 1 => (0u8..3).prop_map(|p| Some(provider(p)))],
        expiry(),
        prop::sample::select(vec![30u64, 60, 600]),
    )
        .prop_map(
            |(
                module_id,
                requirements,
                max_price,
                mediators,
                solver,
                target,
                expiry,
                timeout_secs,
            )| {
                JobOffer {
                    creator: Address::repeat_byte(1),
                    module_id,
                    inputs_hash: B256::ZERO,
                    requirements,
                    max_price,
                    payment_collateral: max_price,
                    timeout_secs,
                    bounds: Default::default(),
                    mediators,
                    solver,
                    target,
                    expiry,
                    nonce: U256::ZERO,
                }
            },
        )
}

fn resource_offer() -> impl Strategy<Value = ResourceOffer> {
    (
        (0u8..3).prop_map(provider),
        machine(),
        prop_oneof![
            3 => Just(ModulePolicy::Any),
            2 => prop::collection::btree_set((0u8..4).prop_map(module), 1..=2)
                .prop_map(ModulePolicy::Only),
        ],
        price(),
        prop::collection::btree_map((0u8..4).prop_map(module), price(), 0..=2),
        mediators(),
        solver_choice(),
        expiry(),
        prop::sample::select(vec![1u64, 60, 300]),
    )
        .prop_map(
            |(
                provider,
                spec,
                modules,
                default_price,
                module_prices,
                mediators,
                solver,
                expiry,
                min_timeout_secs,
            )| {
                ResourceOffer {
                    provider,
                    payout: Default::default(),
                    spec,
                    modules,
                    default_price,
                    module_prices,
                    timeout_collateral: U256::ZERO,
                    bounds: ProviderBounds { min_timeout_secs, ..Default::default() },
                    mediators,
                    solver,
                    expiry,
                    nonce: U256::ZERO,
                }
            },
        )
}

fn network() -> impl Strategy<Value = NetworkModules> {
    prop_oneof![
        3 => Just(NetworkModules::open()),
        1 => (modules(), prop::option::of(modules()))
            .prop_map(|(blocked, allowed)| NetworkModules { blocked, allowed }),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Job(JobOffer),
    Resource(ResourceOffer),
    /// Advance the clock by this many seconds.
    Tick(u64),
    /// Cancel the resting job at this index (modulo the count), oldest first.
    CancelJob(usize),
    /// Cancel the resting resource offer at this index (modulo the count).
    CancelResource(usize),
    /// Sweep expired offers.
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => job_offer().prop_map(Op::Job),
        8 => resource_offer().prop_map(Op::Resource),
        2 => (1u64..=10).prop_map(Op::Tick),
        1 => any::<usize>().prop_map(Op::CancelJob),
        1 => any::<usize>().prop_map(Op::CancelResource),
        1 => Just(Op::Expire),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..=16)
}

/// What one step did.
#[derive(Debug)]
struct Step {
    /// The match made by this step, if any.
    made: Option<Match>,
    /// The clock at the step.
    now: u64,
}

/// Drives a [`Matcher`] through `ops`, calling `after` after every step.
///
/// Offer ids are fresh for every insertion; `offers` keeps every job and
/// resource offer ever inserted, by id.
struct Run {
    matcher: Matcher,
    network: NetworkModules,
    now: u64,
    next_id: u64,
    jobs: BTreeMap<OfferId, JobOffer>,
    resources: BTreeMap<OfferId, ResourceOffer>,
    /// The minimum provider score each job asks for, drawn from the job.
    minimum: fn(&JobOffer) -> f64,
}

impl Run {
    fn new(network: NetworkModules) -> Self {
        Self {
            matcher: Matcher::new(network.clone()),
            network,
            now: 0,
            next_id: 0,
            jobs: BTreeMap::new(),
            resources: BTreeMap::new(),
            minimum: |_| 0.0,
        }
    }

    fn fresh_id(&mut self) -> OfferId {
        self.next_id += 1;
        B256::from(U256::from(self.next_id))
    }

    /// Checks the offers handed back are the ones inserted under those ids.
    fn handed_back(&self, m: &Matched) -> Match {
        assert_eq!(Some(&m.job), self.jobs.get(&m.deal.job));
        assert_eq!(Some(&m.resource), self.resources.get(&m.deal.resource));
        m.deal
    }

    fn step(&mut self, op: &Op) -> Step {
        let now = self.now;
        let made = match op {
            Op::Job(job) => {
                let id = self.fresh_id();
                self.jobs.insert(id, job.clone());
                let added = match (self.minimum)(job) {
                    0.0 => self.matcher.add_job(id, job.clone(), now),
                    min => self.matcher.add_job_requiring(id, job.clone(), min, now),
                };
                match added {
                    Ok(m) => m.map(|m| self.handed_back(&m)),
                    Err(AddError::Expired { .. }) if job.expiry <= now => None,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::Resource(resource) => {
                let id = self.fresh_id();
                self.resources.insert(id, resource.clone());
                match self.matcher.add_resource(id, resource.clone(), now) {
                    Ok(m) => m.map(|m| self.handed_back(&m)),
                    Err(AddError::Expired { .. }) if resource.expiry <= now => None,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::Tick(dt) => {
                self.now += dt;
                None
            }
            Op::CancelJob(i) => {
                let resting = self.matcher.jobs();
                if !resting.is_empty() {
                    let id = resting[i % resting.len()].0;
                    let offer = self.matcher.remove_job(&id);
                    assert_eq!(offer.as_ref(), self.jobs.get(&id));
                }
                None
            }
            Op::CancelResource(i) => {
                let resting = self.matcher.resources();
                if !resting.is_empty() {
                    let id = resting[i % resting.len()].0;
                    let offer = self.matcher.remove_resource(&id);
                    assert_eq!(offer.as_ref(), self.resources.get(&id));
                }
                None
            }
            Op::Expire => {
                let before_jobs = self.matcher.jobs().len();
                let before_resources = self.matcher.resources().len();
                let gone = self.matcher.expire(now);
                for id in &gone.jobs {
                    assert!(self.jobs[id].expiry <= now);
                }
                for id in &gone.resources {
                    assert!(self.resources[id].expiry <= now);
                }
                assert_eq!(self.matcher.job_count() + gone.jobs.len(), before_jobs);
                assert_eq!(self.matcher.resource_count() + gone.resources.len(), before_resources);
                assert!(self.matcher.jobs().iter().all(|(_, j)| j.expiry > now));
                assert!(self.matcher.resources().iter().all(|(_, r)| r.expiry > now));
                None
            }
        };
        Step { made, now }
    }
}

/// Every rule, written out again independently of `policy::check`.
fn satisfies_every_rule(
    job: &JobOffer,
    resource: &ResourceOffer,
    network: &NetworkModules,
    now: u64,
    price: U256,
) -> bool {
    let m = &job.module_id;
    let r = &job.requirements;
    let gpus_ok = r.gpu_count == 0
        || resource.spec.gpus.iter().filter(|g| g.vram_mib >= r.gpu_vram_mib).count()
            >= r.gpu_count as usize;
    let provider_allows = match &resource.modules {
        ModulePolicy::Any => true,
        ModulePolicy::Only(set) => set.contains(m),
    };
    let network_allows =
        !network.blocked.contains(m) && network.allowed.as_ref().is_none_or(|a| a.contains(m));
    let expected_price = resource.module_prices.get(m).copied().unwrap_or(resource.default_price);
    job.expiry > now
        && resource.expiry > now
        && job.solver == resource.solver
        && job.target.is_none_or(|t| t == resource.provider)
        && network_allows
        && provider_allows
        && resource.spec.cpu_millicores >= r.cpu_millicores
        && resource.spec.ram_mib >= r.ram_mib
        && resource.spec.disk_mib >= r.disk_mib
        && gpus_ok
        && price == expected_price
        && price <= job.max_price
        && job.mediators.iter().any(|x| resource.mediators.contains(x))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// (a) No offer is ever booked twice, and a booked offer no longer rests.
    #[test]
    fn never_books_an_offer_twice(network in network(), ops in ops()) {
        let mut run = Run::new(network);
        let mut booked_jobs = HashSet::new();
        let mut booked_resources = HashSet::new();
        for op in &ops {
            if let Some(m) = run.step(op).made {
                prop_assert!(booked_jobs.insert(m.job), "job {} booked twice", m.job);
                prop_assert!(booked_resources.insert(m.resource), "resource {} booked twice", m.resource);
                prop_assert!(run.matcher.job(&m.job).is_none());
                prop_assert!(run.matcher.resource(&m.resource).is_none());
            }
        }
        let resting_jobs: HashSet<_> = run.matcher.jobs().iter().map(|(id, _)| *id).collect();
        let resting_resources: HashSet<_> =
            run.matcher.resources().iter().map(|(id, _)| *id).collect();
        prop_assert!(resting_jobs.is_disjoint(&booked_jobs));
        prop_assert!(resting_resources.is_disjoint(&booked_resources));
    }

    /// (b) Every match satisfies every rule, checked independently of the policy code.
    #[test]
    fn every_match_satisfies_every_rule(network in network(), ops in ops()) {
        let mut run = Run::new(network);
        for op in &ops {
            let step = run.step(op);
            if let Some(m) = step.made {
                let job = &run.jobs[&m.job];
                let resource = &run.resources[&m.resource];
                prop_assert!(
                    satisfies_every_rule(job, resource, &run.network, step.now, m.price),
                    "{m:?} breaks a rule: {job:?} {resource:?}"
                );
                prop_assert_eq!(policy::check(job, resource, &run.network, step.now), Ok(m.price));
            }
        }
    }

    /// (c) After every insertion, the match made equals what the naive pass
    /// gives on the resting offers plus the new one.
    #[test]
    fn agrees_with_naive_reference_after_every_insertion(network in network(), ops in ops()) {
        let mut run = Run::new(network);
        for op in &ops {
            let jobs_before: Vec<_> =
                run.matcher.jobs().into_iter().map(|(id, j)| (id, j.clone())).collect();
            let resources_before: Vec<_> =
                run.matcher.resources().into_iter().map(|(id, r)| (id, r.clone())).collect();
            let now = run.now;
            let id = B256::from(U256::from(run.next_id + 1));
            let step = run.step(op);
            let expected = match op {
                Op::Job(job) => {
                    let mut jobs = jobs_before;
                    jobs.push((id, job.clone()));
                    naive::match_all(&jobs, &resources_before, &run.network, now)
                }
                Op::Resource(resource) => {
                    let mut resources = resources_before;
                    resources.push((id, resource.clone()));
                    naive::match_all(&jobs_before, &resources, &run.network, now)
                }
                _ => continue,
            };
            prop_assert_eq!(step.made.into_iter().collect::<Vec<_>>(), expected, "{:?}", op);
        }
    }

    /// (d) No resting job offer is compatible with any resting resource offer.
    #[test]
    fn no_resting_pair_is_compatible(network in network(), ops in ops()) {
        let mut run = Run::new(network);
        for op in &ops {
            let step = run.step(op);
            let resources = run.matcher.resources();
            for (job_id, job) in run.matcher.jobs() {
                for (resource_id, resource) in &resources {
                    prop_assert!(
                        !policy::compatible(job, resource, &run.network, step.now),
                        "resting {job_id} and {resource_id} are compatible"
                    );
                }
            }
        }
    }

    /// (e) `explain` gives, for every resting resource offer a job does not
    /// match, the policy's reason, oldest first, and nothing else.
    #[test]
    fn explain_agrees_with_the_policy(
        network in network(),
        ops in ops(),
        probes in prop::collection::vec(job_offer(), 1..=3),
    ) {
        let mut run = Run::new(network);
        for op in &ops {
            let step = run.step(op);
            let resources = run.matcher.resources();
            let expected = |job: &JobOffer| -> Vec<_> {
                resources
                    .iter()
                    .filter_map(|(id, r)| {
                        policy::check(job, r, &run.network, step.now).err().map(|e| (*id, e))
                    })
                    .collect()
            };
            for (job_id, job) in run.matcher.jobs() {
                let why = run.matcher.explain_job(&job_id, step.now);
                prop_assert_eq!(why.as_ref().map(Vec::len), Some(resources.len()));
                prop_assert_eq!(why, Some(expected(job)));
            }
            for probe in &probes {
                prop_assert_eq!(run.matcher.explain(probe, step.now), expected(probe));
            }
        }
    }
}

/// A step of a provider with slots "a", "b", "c" and its job creators.
#[derive(Debug, Clone)]
enum SlotOp {
    /// Offer these slots (one alone, or several as one offer), unless one is busy
    /// on the provider's side (as the provider does).
    Offer(BTreeSet<u8>),
    /// A job needing this many slots' worth of CPU.
    Job(u32),
    /// The job on this slot ended: the slot is free.
    Finish(u8),
}

fn slot_op() -> impl Strategy<Value = SlotOp> {
    prop_oneof![
        4 => prop::collection::btree_set(0u8..3, 1..=3).prop_map(SlotOp::Offer),
        4 => (1u32..=3).prop_map(SlotOp::Job),
        2 => (0u8..3).prop_map(SlotOp::Finish),
    ]
}

fn slot_name(n: u8) -> String {
    ["a", "b", "c"][usize::from(n)].to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// (e) Offers over shared slots: no slot is ever in two deals at once, and a
    /// match withdraws exactly the provider's resting offers that share a slot.
    #[test]
    fn no_slot_is_booked_twice(ops in prop::collection::vec(slot_op(), 1..=24)) {
        let mut m = Matcher::default();
        let mut busy: BTreeSet<String> = BTreeSet::new();
        let mut slots_of: BTreeMap<OfferId, BTreeSet<String>> = BTreeMap::new();
        for (n, op) in ops.iter().enumerate() {
            let id = B256::from(U256::from(n + 1));
            let matched = match op {
                SlotOp::Offer(set) => {
                    let names: BTreeSet<String> = set.iter().copied().map(slot_name).collect();
                    if !names.is_disjoint(&busy) {
                        continue;
                    }
                    let k = u32::try_from(names.len()).unwrap();
                    let offer = ResourceOffer {
                        provider: provider(0),
                        payout: Address::ZERO,
                        spec: MachineSpec { cpu_millicores: 1000 * k, ram_mib: 1024, disk_mib: 0, gpus: vec![] },
                        modules: ModulePolicy::Any,
                        default_price: U256::from(1),
                        module_prices: BTreeMap::new(),
                        timeout_collateral: U256::ZERO,
                        bounds: ProviderBounds::default(),
                        mediators: [mediator(0)].into(),
                        solver: solver(0),
                        expiry: 100,
                        nonce: U256::from(n),
                    };
                    let held_by_resting = names.iter().all(|s| {
                        m.resources().iter().any(|(o, _)| slots_of[o].contains(s))
                    });
                    match m.add_resource_claiming(id, offer, names.clone(), 0) {
                        Err(AddError::SlotTaken { slot, .. }) => {
                            prop_assert!(names.len() > 1 && !held_by_resting, "{slot} refused");
                            continue;
                        }
                        r => {
                            prop_assert!(names.len() == 1 || held_by_resting);
                            slots_of.insert(id, names);
                            r.unwrap()
                        }
                    }
                }
                SlotOp::Job(k) => {
                    let job = JobOffer {
                        creator: Address::repeat_byte(1),
                        module_id: module(0),
                        inputs_hash: B256::ZERO,
                        requirements: JobRequirements { cpu_millicores: 1000 * k, ram_mib: 512, ..Default::default() },
                        max_price: U256::from(1),
                        payment_collateral: U256::from(1),
                        timeout_secs: 600,
                        bounds: Default::default(),
                        mediators: [mediator(0)].into(),
                        solver: solver(0),
                        target: None,
                        expiry: 100,
                        nonce: U256::from(n),
                    };
                    m.add_job(id, job, 0).unwrap()
                }
                SlotOp::Finish(s) => {
                    busy.remove(&slot_name(*s));
                    continue;
                }
            };
            let Some(matched) = matched else { continue };
            let taken = &slots_of[&matched.deal.resource];
            prop_assert!(taken.is_disjoint(&busy), "{taken:?} booked while {busy:?} are busy");
            busy.extend(taken.iter().cloned());
            // Exactly the overlapping resting offers were withdrawn.
            for w in &matched.withdrawn {
                prop_assert!(!slots_of[w].is_disjoint(taken));
            }
            for (o, _) in m.resources() {
                prop_assert!(slots_of[&o].is_disjoint(taken), "{o} still rests over {taken:?}");
            }
        }
    }
}

/// Scores for providers 0, 1 and 2, from few values so that ties are frequent.
fn scores() -> impl Strategy<Value = [f64; 3]> {
    let score = || prop::sample::select(vec![0.2, 0.5, 0.8]);
    (score(), score(), score()).prop_map(|(a, b, c)| [a, b, c])
}

fn with_scores(network: NetworkModules, scores: [f64; 3], prefer: bool) -> Run {
    let mut run = Run::new(network);
    for (p, score) in (0u8..).zip(scores) {
        run.matcher.set_score(provider(p), score);
    }
    run.matcher.prefer_reputation(prefer);
    run
}

/// A job's minimum score, from its expiry (random in the strategy).
fn minimum_of(job: &JobOffer) -> f64 {
    [0.0, 0.4, 0.6, 0.9][(job.expiry % 4) as usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// (f) Scores without `prefer_reputation` and without minimums change no match.
    #[test]
    fn scores_alone_change_nothing(network in network(), ops in ops(), scores in scores()) {
        let mut plain = Run::new(network.clone());
        let mut scored = with_scores(network, scores, false);
        for op in &ops {
            prop_assert_eq!(plain.step(op).made, scored.step(op).made, "{:?}", op);
        }
    }

    /// (g) With `prefer_reputation`, a new job matches exactly when some resting
    /// offer is compatible, at the lowest price among them, and with a provider
    /// that scores highest among those at that price.
    #[test]
    fn preference_takes_the_best_scored_of_the_cheapest(
        network in network(),
        ops in ops(),
        scores in scores(),
    ) {
        let mut run = with_scores(network, scores, true);
        for op in &ops {
            let now = run.now;
            let eligible: Vec<(U256, f64)> = match op {
                Op::Job(job) => run
                    .matcher
                    .resources()
                    .into_iter()
                    .filter_map(|(_, r)| {
                        policy::check(job, r, &run.network, now)
                            .ok()
                            .map(|price| (price, run.matcher.score(r.provider)))
                    })
                    .collect(),
                _ => {
                    run.step(op);
                    continue;
                }
            };
            let step = run.step(op);
            let Some(cheapest) = eligible.iter().map(|(p, _)| *p).min() else {
                prop_assert_eq!(step.made, None);
                continue;
            };
            let best = eligible
                .iter()
                .filter(|(p, _)| *p == cheapest)
                .map(|(_, s)| *s)
                .fold(f64::MIN, f64::max);
            let made = step.made.expect("a compatible offer was resting");
            prop_assert_eq!(made.price, cheapest);
            let provider = run.resources[&made.resource].provider;
            prop_assert_eq!(run.matcher.score(provider), best);
        }
    }

    /// (h) A job with a minimum score is never paired with a provider under it,
    /// and no resting pair that meets every rule and the minimum is left.
    #[test]
    fn minimum_score_is_never_undercut(
        network in network(),
        ops in ops(),
        scores in scores(),
        prefer in any::<bool>(),
    ) {
        let mut run = with_scores(network, scores, prefer);
        run.minimum = minimum_of;
        for op in &ops {
            let step = run.step(op);
            if let Some(m) = step.made {
                let job = &run.jobs[&m.job];
                let provider = run.resources[&m.resource].provider;
                prop_assert!(run.matcher.score(provider) >= minimum_of(job));
            }
            let resources = run.matcher.resources();
            for (job_id, job) in run.matcher.jobs() {
                prop_assert_eq!(run.matcher.minimum_of(&job_id), minimum_of(job));
                for (resource_id, r) in &resources {
                    let fits = policy::compatible(job, r, &run.network, step.now);
                    prop_assert!(
                        !fits || run.matcher.score(r.provider) < minimum_of(job),
                        "resting {job_id} and {resource_id} are compatible"
                    );
                }
                let why = run.matcher.explain_job(&job_id, step.now).unwrap_or_default();
                prop_assert_eq!(why.len(), resources.len());
            }
        }
    }
}
