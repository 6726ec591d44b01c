//! The CPU miner's proof hash against the other keccak-f\[1600\] implementations
//! a Rust miner could use, one thread, same 64-byte messages.
//!
//! The CPU fallback is the baseline `lilypad-rp bench` measures the OpenCL
//! kernel against, so it must be the fastest CPU implementation we have:
//! this prints how it compares with the `keccak` crate's permutation,
//! `keccak-asm` (OpenSSL/CRYPTOGAMS x86-64 assembly behind a `Digest`) and
//! `lilypad_core::pow::proof_hash` (alloy's keccak256).

use std::{hint::black_box, time::Instant};

use criterion::Criterion;
use lilypad_core::{
    B256, U256,
    pow::{challenge, proof_hash},
};
use lilypad_rp::pow::{
    challenge_lanes,
    cpu::{initial_state, keccak_f1600_hash_lanes},
    nonce_lanes,
};

/// Hashes per iteration of each measured closure.
const BATCH: u64 = 1024;

fn ours(base: &[u64; 25], from: u64) -> u64 {
    let mut acc = 0;
    for i in from..from + BATCH {
        let mut a = *base;
        a[7] = i.swap_bytes();
        acc ^= keccak_f1600_hash_lanes(&mut a)[0];
    }
    acc
}

fn keccak_crate(base: &[u64; 25], from: u64) -> u64 {
    let k = keccak::Keccak::new();
    let mut acc = 0;
    for i in from..from + BATCH {
        let mut a = *base;
        a[7] = i.swap_bytes();
        k.with_f1600(|f| f(&mut a));
        acc ^= a[0];
    }
    acc
}

fn keccak_asm(msg: &[u8; 64], from: u64) -> u64 {
    let mut m = *msg;
    let mut acc = 0;
    for i in from..from + BATCH {
        m[56..].copy_from_slice(&i.to_be_bytes());
        acc ^= u64::from(keccak_asm::Keccak256::digest(m)[0]);
    }
    acc
}

fn core(c: B256, from: u64) -> u64 {
    (from..from + BATCH).fold(0, |acc, i| acc ^ u64::from(proof_hash(c, U256::from(i))[0]))
}

/// Nanoseconds per hash of one sample of `rounds` batches.
fn sample_ns(f: &mut dyn FnMut(u64) -> u64, rounds: u64) -> f64 {
    let start = Instant::now();
    for r in 0..rounds {
        black_box(f(black_box(r * BATCH)));
    }
    start.elapsed().as_secs_f64() * 1e9 / (rounds * BATCH) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let c = challenge(B256::repeat_byte(1), lilypad_core::Address::repeat_byte(2), B256::ZERO);
    let base = initial_state(challenge_lanes(c), nonce_lanes(U256::ZERO));
    let mut msg = [0u8; 64];
    msg[..32].copy_from_slice(c.as_slice());
    // The same hash from all four, or the comparison means nothing.
    let mut a = base;
    a[7] = 5u64.swap_bytes();
    let lanes = keccak_f1600_hash_lanes(&mut a);
    let mut m = msg;
    m[56..].copy_from_slice(&5u64.to_be_bytes());
    let want = proof_hash(c, U256::from(5));
    assert_eq!(lilypad_rp::pow::hash_bytes(lanes), want);
    assert_eq!(<[u8; 32]>::from(keccak_asm::Keccak256::digest(m)), want.0);

    let mut cr = Criterion::default().configure_from_args();
    let mut g = cr.benchmark_group("pow_proof_hash_x1024");
    g.bench_function("lilypad_rp_cpu", |b| b.iter(|| ours(black_box(&base), 0)));
    g.bench_function("keccak_crate_f1600", |b| b.iter(|| keccak_crate(black_box(&base), 0)));
    g.bench_function("keccak_asm_digest", |b| b.iter(|| keccak_asm(black_box(&msg), 0)));
    g.bench_function("lilypad_core_proof_hash", |b| b.iter(|| core(black_box(c), 0)));
    g.finish();
    cr.final_summary();

    // Short samples of all four back to back, in rotating order, so
    // background load (this machine is shared) falls on all alike; the
    // ratios are medians of per-sample ratios.
    let mut fs: [Box<dyn FnMut(u64) -> u64>; 4] = [
        Box::new(|r| ours(&base, r)),
        Box::new(|r| keccak_crate(&base, r)),
        Box::new(|r| keccak_asm(&msg, r)),
        Box::new(|r| core(c, r)),
    ];
    let mut ns: [Vec<f64>; 4] = Default::default();
    for i in 0..61 {
        for j in 0..4 {
            let k = (i + j) % 4;
            ns[k].push(sample_ns(&mut *fs[k], 20));
        }
    }
    let ratio = |k: usize| median(ns[k].iter().zip(&ns[0]).map(|(x, o)| x / o).collect());
    let (vs_crate, vs_asm) = (ratio(1), ratio(2));
    let [o, k, s, p] = ns.map(median);
    println!("pow_cpu_hash_ns={o:.1}");
    println!("pow_keccak_crate_ns={k:.1}");
    println!("pow_keccak_asm_ns={s:.1}");
    println!("pow_core_proof_hash_ns={p:.1}");
    println!("pow_cpu_vs_keccak_crate={vs_crate:.2}");
    println!("pow_cpu_vs_keccak_asm={vs_asm:.2}");
}
