//! The OpenCL kernel on a real device (pocl's CPU device in CI) against the
//! CPU miner and `lilypad_core::pow`.
//!
//! These tests never skip: without an OpenCL platform they fail, naming the
//! packages to install (`scripts/setup-opencl.sh` installs them).

#![cfg(feature = "opencl")]

use std::{
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use lilypad_rp::pow::{
    CpuMiner, Miner, SearchOutcome, cpu, hash_bytes,
    opencl::{self, OpenClDevice, OpenClMiner, Tuning},
};
use lilypad_sdk::core::{
    B256, U256,
    pow::{meets_target, proof_hash},
};

/// The first OpenCL device, or a failure that says what to install.
fn device() -> OpenClDevice {
    match opencl::devices() {
        Ok(mut all) => all.swap_remove(0),
        Err(e) => panic!("{e} (scripts/setup-opencl.sh installs and checks it)"),
    }
}

fn tuned(lanes: u32, iters: u32) -> OpenClMiner {
    let d = device();
    let tuning =
        Tuning { lanes, local_size: 1, global_size: 2 * d.info.compute_units as usize, iters };
    OpenClMiner::with_tuning(&d, tuning).unwrap_or_else(|e| panic!("LANES={lanes}: {e}"))
}

/// SplitMix64: deterministic, and fast in the unoptimized test build.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn u256(&mut self) -> U256 {
        U256::from_limbs([self.next(), self.next(), self.next(), self.next()])
    }

    fn b256(&mut self) -> B256 {
        B256::from(self.u256())
    }
}

fn random_pairs(rng: &mut Rng, n: usize) -> Vec<(B256, U256)> {
    (0..n).map(|_| (rng.b256(), rng.u256())).collect()
}

/// The lowest proof of a range by brute force with lilypad-core.
fn brute_force(c: B256, start: U256, target: U256, n: u64) -> SearchOutcome {
    for i in 0..n {
        let nonce = start.wrapping_add(U256::from(i));
        if meets_target(c, nonce, target) {
            return SearchOutcome { proof: Some(nonce), hashes_done: i + 1 };
        }
    }
    SearchOutcome { proof: None, hashes_done: n }
}

#[test]
fn kernel_equals_cpu_and_core_on_a_million_random_pairs() {
    let miner = OpenClMiner::new(&device()).unwrap();
    let mut rng = Rng(0x5eed_0001);
    let mut pairs = random_pairs(&mut rng, 1_000_000);
    // Nonces at the edges of the limbs and of the range.
    let c = pairs[0].0;
    for n in [
        U256::ZERO,
        U256::from(1),
        U256::MAX,
        U256::from(u64::MAX),
        U256::from(1) << 64,
        U256::from(1) << 255,
    ] {
        pairs.push((c, n));
    }
    let start = Instant::now();
    let mut kernel = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(1 << 17) {
        kernel.extend(miner.hash_pairs(chunk).unwrap());
    }
    let kernel_time = start.elapsed();
    // Check on all cores: the unoptimized test build hashes slowly.
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let per = pairs.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (p, k) in pairs.chunks(per).zip(kernel.chunks(per)) {
            s.spawn(move || {
                for ((c, n), out) in p.iter().zip(k) {
                    assert_eq!(
                        *out,
                        cpu::hash_lanes(*c, *n),
                        "kernel vs CPU, challenge {c} nonce {n}"
                    );
                    assert_eq!(
                        hash_bytes(*out),
                        proof_hash(*c, *n),
                        "kernel vs core, challenge {c} nonce {n}"
                    );
                }
            });
        }
    });
    eprintln!("{} pairs: kernel {kernel_time:?}, checked in {:?}", pairs.len(), start.elapsed());
}

#[test]
fn every_vector_width_hashes_and_searches_alike() {
    let mut rng = Rng(7);
    let pairs = random_pairs(&mut rng, 1000);
    let want: Vec<_> = pairs.iter().map(|(c, n)| cpu::hash_lanes(*c, *n)).collect();
    let c = pairs[0].0;
    let target = U256::MAX >> 10;
    let start = U256::from(u64::MAX - 3000);
    let cpu_outcome = CpuMiner::new().search(c, start, target, 20_000).unwrap();
    assert!(cpu_outcome.proof.is_some());
    for lanes in [1, 2, 4, 8, 16] {
        let miner = tuned(lanes, 8);
        assert_eq!(miner.hash_pairs(&pairs).unwrap(), want, "LANES={lanes}");
        assert_eq!(miner.search(c, start, target, 20_000).unwrap(), cpu_outcome, "LANES={lanes}");
    }
}

#[test]
fn finds_a_proof_the_host_verifies() {
    let miner = OpenClMiner::new(&device()).unwrap();
    let mut rng = Rng(11);
    let target = U256::MAX >> 16; // one proof in 65,536 tries
    for _ in 0..5 {
        let c = rng.b256();
        let start = rng.u256();
        let out = miner.search(c, start, target, 4_000_000).unwrap();
        let nonce = out.proof.expect("a proof within 61 expected proofs' work");
        assert!(meets_target(c, nonce, target));
        assert_eq!(nonce, start.wrapping_add(U256::from(out.hashes_done - 1)));
        assert_eq!(out, brute_force(c, start, target, out.hashes_done), "not the lowest proof");
    }
}

#[test]
fn early_exit_stops_a_long_launch() {
    // One launch is 2^31 nonces: minutes of work on a CPU device. A proof
    // near the start must end it within a fraction of that.
    let miner = tuned(8, u32::MAX);
    assert_eq!(miner.tuning().launch_hashes(), 1 << 31);
    let c = B256::repeat_byte(0x5a);
    let target = U256::MAX >> 12;
    let want = brute_force(c, U256::ZERO, target, 100_000);
    let start = Instant::now();
    let out = miner.search(c, U256::ZERO, target, u64::MAX).unwrap();
    let took = start.elapsed();
    assert_eq!(out, want);
    assert!(took < Duration::from_secs(10), "took {took:?}: the kernel did not stop at the proof");
    // And without a proof in range, the same launch runs to its end.
    let out = miner.search(c, U256::ZERO, U256::ZERO, 1 << 20).unwrap();
    assert_eq!(out, SearchOutcome { proof: None, hashes_done: 1 << 20 });
}

#[test]
fn cpu_fallback_finds_the_same_first_proof() {
    let miner = OpenClMiner::new(&device()).unwrap();
    let cpu = CpuMiner::new();
    let mut rng = Rng(13);
    let starts = [
        U256::ZERO,
        U256::from(u64::MAX - 100_000), // the low limb wraps inside the range
        U256::MAX - U256::from(50_000), // the nonce wraps at 2^256
        rng.u256(),
    ];
    for (i, start) in starts.into_iter().enumerate() {
        for bits in [8u32, 14, 30] {
            let c = rng.b256();
            let target = U256::MAX >> bits;
            let n = 300_000;
            let gpu = miner.search(c, start, target, n).unwrap();
            assert_eq!(gpu, cpu.search(c, start, target, n).unwrap(), "start #{i}, 2^{bits}");
            if bits < 30 {
                assert!(gpu.proof.is_some(), "start #{i}, 2^{bits}: expected a proof");
            }
        }
    }
    // Extremes: nothing meets 0; everything (almost surely) meets U256::MAX.
    let c = B256::repeat_byte(1);
    let none = SearchOutcome { proof: None, hashes_done: 5000 };
    assert_eq!(miner.search(c, U256::ZERO, U256::ZERO, 5000).unwrap(), none);
    let first = SearchOutcome { proof: Some(U256::from(3)), hashes_done: 1 };
    assert_eq!(miner.search(c, U256::from(3), U256::MAX, 5000).unwrap(), first);
    assert_eq!(
        miner.search(c, U256::ZERO, U256::MAX, 0).unwrap(),
        SearchOutcome { proof: None, hashes_done: 0 }
    );
}

#[test]
fn invalid_tuning_is_an_error() {
    let d = device();
    for bad in [
        Tuning { lanes: 3, local_size: 1, global_size: 1, iters: 1 },
        Tuning { lanes: 8, local_size: 0, global_size: 1, iters: 1 },
        Tuning { lanes: 8, local_size: 1, global_size: 1, iters: 0 },
        Tuning { lanes: 16, local_size: 1, global_size: 1 << 28, iters: 1 },
    ] {
        let e = OpenClMiner::with_tuning(&d, bad).unwrap_err().to_string();
        assert!(e.contains("lanes must be"), "{bad}: {e}");
    }
}
