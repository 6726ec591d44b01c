//! Shared fixtures for the criterion benchmarks in `benches/benches/`.
//!
//! Everything is generated from a seeded RNG, so every run (and both sides of
//! a comparison) sees the same offers.

use std::collections::{BTreeMap, BTreeSet};

use lilypad_core::{
    Address, B256, U256,
    matcher::NetworkModules,
    offer::{JobOffer, ModuleId, ModulePolicy, OfferId, ResourceOffer},
    spec::{Gpu, JobRequirements, MachineSpec},
};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Modules in the network.
pub const MODULES: u8 = 40;
/// Mediators in the network.
pub const MEDIATORS: u8 = 5;
/// The one solver every offer names.
pub const SOLVER: Address = Address::repeat_byte(0x5e);
/// The clock of the benchmarks; every offer expires well after it.
pub const NOW: u64 = 1_700_000_000;

/// One token base unit scale: prices are in milli-tokens of an 18-decimal token.
const MILLI: u64 = 1_000_000_000_000_000;

/// VRAM classes of GPU machines, MiB, with their base price in milli-tokens.
const GPU_CLASSES: [(u64, u64); 6] =
    [(8192, 40), (12288, 60), (16384, 80), (24576, 120), (49152, 300), (81920, 600)];

/// Offers for a benchmark, oldest first, with the network policy.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Job offers, oldest first.
    pub jobs: Vec<(OfferId, JobOffer)>,
    /// Resource offers, oldest first.
    pub resources: Vec<(OfferId, ResourceOffer)>,
    /// The network's module policy (blocks two modules).
    pub network: NetworkModules,
}

/// The `n`th module.
pub fn module(n: u8) -> ModuleId {
    B256::repeat_byte(n.wrapping_add(1))
}

fn mediator(n: u8) -> Address {
    Address::repeat_byte(0xa0 + n)
}

fn random_id(rng: &mut StdRng) -> OfferId {
    B256::from(rng.random::<[u8; 32]>())
}

/// A popular-first module choice: low indexes are asked for far more often.
fn popular_module(rng: &mut StdRng) -> u8 {
    let x: f64 = rng.random();
    // Squaring skews towards 0; the result is below MODULES.
    let i = (x * x * f64::from(MODULES)) as u8;
    i.min(MODULES - 1)
}

/// Mediators: almost everyone trusts the network's default mediator, plus
/// zero to two others.
fn mediators(rng: &mut StdRng) -> BTreeSet<Address> {
    let mut set = BTreeSet::new();
    if rng.random_bool(0.9) {
        set.insert(mediator(0));
    }
    for _ in 0..rng.random_range(0..=2) {
        set.insert(mediator(rng.random_range(1..MEDIATORS)));
    }
    if set.is_empty() {
        set.insert(mediator(rng.random_range(1..MEDIATORS)));
    }
    set
}

fn milli(n: u64) -> U256 {
    U256::from(n) * U256::from(MILLI)
}

/// Scales `base` by a random factor in [0.6, 1.4].
fn spread(rng: &mut StdRng, base: u64) -> u64 {
    base * rng.random_range(60..=140) / 100
}

/// A resource offer: 40% CPU-only machines, 60% GPU machines of the classes
/// above with one to eight GPUs; 70% take any module, the rest an allowlist;
/// 30% price a few modules on their own.
pub fn resource_offer(rng: &mut StdRng, providers: u32) -> ResourceOffer {
    let provider_n = rng.random_range(0..providers.max(1));
    let mut provider = [0u8; 20];
    provider[..4].copy_from_slice(&provider_n.to_be_bytes());
    provider[19] = 0x77;
    let (spec, base) = if rng.random_bool(0.4) {
        let cores = [4u32, 8, 16, 32][rng.random_range(0..4)];
        let spec = MachineSpec {
            cpu_millicores: cores * 1000,
            ram_mib: u64::from(cores) * 4096,
            disk_mib: 200_000,
            gpus: Vec::new(),
        };
        (spec, u64::from(cores) * 2)
    } else {
        let (vram_mib, price) = GPU_CLASSES[rng.random_range(0..GPU_CLASSES.len())];
        let count = [1u32, 1, 1, 2, 2, 4, 8][rng.random_range(0..7)];
        let spec = MachineSpec {
            cpu_millicores: 8000 * count,
            ram_mib: 32768 * u64::from(count),
            disk_mib: 1_000_000,
            gpus: (0..count)
                .map(|_| Gpu { vendor: "NVIDIA".into(), model: format!("{vram_mib}"), vram_mib })
                .collect(),
        };
        (spec, price * u64::from(count))
    };
    let modules = if rng.random_bool(0.7) {
        ModulePolicy::Any
    } else {
        let n = rng.random_range(3..=8);
        ModulePolicy::Only((0..n).map(|_| module(popular_module(rng))).collect())
    };
    let mut module_prices = BTreeMap::new();
    if rng.random_bool(0.3) {
        for _ in 0..rng.random_range(1..=3) {
            module_prices.insert(module(popular_module(rng)), milli(spread(rng, base)));
        }
    }
    ResourceOffer {
        provider: Address::from(provider),
        payout: Default::default(),
        spec,
        modules,
        default_price: milli(spread(rng, base)),
        module_prices,
        timeout_collateral: milli(base),
        bounds: Default::default(),
        mediators: mediators(rng),
        solver: SOLVER,
        expiry: NOW + rng.random_range(3600..86_400),
        nonce: U256::from(rng.random::<u64>()),
    }
}

/// A job offer: 55% CPU jobs, the rest ask for one (sometimes two) GPUs of
/// a VRAM class; max prices mostly above the going rate; 2% are targeted
/// at a provider.
pub fn job_offer(rng: &mut StdRng, providers: u32) -> JobOffer {
    let (requirements, base) = if rng.random_bool(0.55) {
        let cores = [1u32, 2, 4, 8][rng.random_range(0..4)];
        let req = JobRequirements {
            cpu_millicores: cores * 1000,
            ram_mib: u64::from(cores) * 2048,
            disk_mib: 10_000,
            gpu_count: 0,
            gpu_vram_mib: 0,
        };
        // CPU jobs pay around what a 16-core machine asks.
        (req, 32)
    } else {
        // Small cards are asked for more often than big ones.
        let class = popular_index(rng, GPU_CLASSES.len());
        let (vram_mib, price) = GPU_CLASSES[class];
        let gpu_count = if rng.random_bool(0.85) { 1 } else { 2 };
        let req = JobRequirements {
            cpu_millicores: 4000 * gpu_count,
            ram_mib: 16384 * u64::from(gpu_count),
            disk_mib: 50_000,
            gpu_count,
            gpu_vram_mib: vram_mib,
        };
        (req, price * u64::from(gpu_count) * 2)
    };
    let target = rng.random_bool(0.02).then(|| {
        let mut provider = [0u8; 20];
        provider[..4].copy_from_slice(&rng.random_range(0..providers.max(1)).to_be_bytes());
        provider[19] = 0x77;
        Address::from(provider)
    });
    let max_price = milli(spread(rng, base));
    JobOffer {
        creator: Address::repeat_byte(0xc0),
        module_id: module(popular_module(rng)),
        inputs_hash: random_id(rng),
        requirements,
        max_price,
        payment_collateral: max_price,
        timeout_secs: 600,
        bounds: Default::default(),
        mediators: mediators(rng),
        solver: SOLVER,
        target,
        expiry: NOW + rng.random_range(600..7200),
        nonce: U256::from(rng.random::<u64>()),
    }
}

fn popular_index(rng: &mut StdRng, n: usize) -> usize {
    let x: f64 = rng.random();
    // x * x * n < n, so the cast stays in range.
    ((x * x * n as f64) as usize).min(n - 1)
}

/// `jobs` job offers and `resources` resource offers from `seed`; one
/// provider per four resource offers. The network blocks two modules.
pub fn workload(jobs: usize, resources: usize, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let providers = u32::try_from(resources / 4).unwrap_or(u32::MAX).max(1);
    let resources = (0..resources)
        .map(|_| (random_id(&mut rng), resource_offer(&mut rng, providers)))
        .collect();
    let jobs = (0..jobs).map(|_| (random_id(&mut rng), job_offer(&mut rng, providers))).collect();
    let network = NetworkModules {
        blocked: [module(MODULES - 1), module(MODULES - 2)].into(),
        allowed: None,
    };
    Workload { jobs, resources, network }
}
