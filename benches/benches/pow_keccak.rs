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

/// Median nanoseconds per hash over 15 samples of `rounds` batches.
fn median_ns(mut f: impl FnMut(u64) -> u64, rounds: u64) -> f64 {
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for r in 0..rounds {
                black_box(f(black_box(r * BATCH)));
            }
            start.elapsed().as_secs_f64() * 1e9 / (rounds * BATCH) as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
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

    // Interleaved medians so background load falls on all alike.
    let (mut o, mut k, mut s, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        o.push(median_ns(|r| ours(&base, r), 200));
        k.push(median_ns(|r| keccak_crate(&base, r), 200));
        s.push(median_ns(|r| keccak_asm(&msg, r), 200));
        p.push(median_ns(|r| core(c, r), 200));
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (o, k, s, p) = (best(&o), best(&k), best(&s), best(&p));
    println!("pow_cpu_hash_ns={o:.1}");
    println!("pow_keccak_crate_ns={k:.1}");
    println!("pow_keccak_asm_ns={s:.1}");
    println!("pow_core_proof_hash_ns={p:.1}");
    println!("pow_cpu_vs_keccak_crate={:.2}", k / o);
    println!("pow_cpu_vs_keccak_asm={:.2}", s / o);
}
