//! The multithreaded CPU miner, the fallback when no OpenCL device exists and
//! the baseline `lilypad-rp bench` measures the kernel against.
//!
//! Keccak-f\[1600\] is written out round by round with lane complementing,
//! and the last round computes only the four lanes of the hash: about 1.3x
//! the `keccak` crate's permutation and on par with `keccak-asm`'s assembly
//! (`benches/benches/pow_keccak.rs`, `docs/benchmarks.md`). Threads take chunks of
//! nonces in increasing order from a shared counter and stop at the lowest
//! proof any of them has found, so the result is the lowest proof of the range
//! whatever the scheduling.

use std::{
    num::NonZeroUsize,
    sync::atomic::{AtomicU64, Ordering},
};

use lilypad_sdk::core::{B256, U256};

use super::{
    Miner, Result, SearchOutcome, Segment, challenge_lanes, nonce_lanes, segments, target_limbs,
    verified,
};

/// Nonces a thread takes at a time: a few milliseconds of work.
const CHUNK: u64 = 1 << 13;

/// The round constants of keccak-f\[1600\].
pub(crate) const RC: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808a,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808b,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008a,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000a,
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];

/// Lanes kept complemented (bitwise NOT) between rounds.
///
/// Chi, `a ^ (!b & c)`, costs a NOT per lane on CPUs without an and-not
/// instruction (baseline x86-64 has none). Keeping these six lanes
/// complemented turns most of chi into `a ^ (b & c)` or `a ^ (b | c)`: 8
/// NOTs a round instead of 25 (the "lane complementing" of the Keccak team's
/// optimized implementations; the set is theirs, the formulas below follow
/// from it and are checked against the `keccak` crate).
const COMPLEMENTED: [usize; 6] = [1, 2, 8, 12, 17, 20];

fn complement(a: &mut [u64; 25]) {
    for i in COMPLEMENTED {
        a[i] = !a[i];
    }
}

/// One keccak-f\[1600\] round on a lane-complemented state, from `a` into
/// `e`: theta, then row by row rho and pi into `b*` and chi into `e`, iota.
#[inline(always)]
fn round(a: &[u64; 25], e: &mut [u64; 25], rc: u64) {
    let c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20];
    let c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21];
    let c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22];
    let c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23];
    let c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
    let d0 = c4 ^ c1.rotate_left(1);
    let d1 = c0 ^ c2.rotate_left(1);
    let d2 = c1 ^ c3.rotate_left(1);
    let d3 = c2 ^ c4.rotate_left(1);
    let d4 = c3 ^ c0.rotate_left(1);
    let b0 = a[0] ^ d0;
    let b1 = (a[6] ^ d1).rotate_left(44);
    let b2 = (a[12] ^ d2).rotate_left(43);
    let b3 = (a[18] ^ d3).rotate_left(21);
    let b4 = (a[24] ^ d4).rotate_left(14);
    e[0] = b0 ^ (b1 | b2);
    e[1] = b1 ^ (!b2 | b3);
    e[2] = b2 ^ (b3 & b4);
    e[3] = b3 ^ (b4 | b0);
    e[4] = b4 ^ (b0 & b1);
    let b5 = (a[3] ^ d3).rotate_left(28);
    let b6 = (a[9] ^ d4).rotate_left(20);
    let b7 = (a[10] ^ d0).rotate_left(3);
    let b8 = (a[16] ^ d1).rotate_left(45);
    let b9 = (a[22] ^ d2).rotate_left(61);
    e[5] = b5 ^ (b6 | b7);
    e[6] = b6 ^ (b7 & b8);
    e[7] = b7 ^ (b8 | !b9);
    e[8] = b8 ^ (b9 | b5);
    e[9] = b9 ^ (b5 & b6);
    let b10 = (a[1] ^ d1).rotate_left(1);
    let b11 = (a[7] ^ d2).rotate_left(6);
    let b12 = (a[13] ^ d3).rotate_left(25);
    let b13 = (a[19] ^ d4).rotate_left(8);
    let b14 = (a[20] ^ d0).rotate_left(18);
    e[10] = b10 ^ (b11 | b12);
    e[11] = b11 ^ (b12 & b13);
    e[12] = b12 ^ (!b13 & b14);
    e[13] = b13 ^ !(b14 | b10);
    e[14] = b14 ^ (b10 & b11);
    let b15 = (a[4] ^ d4).rotate_left(27);
    let b16 = (a[5] ^ d0).rotate_left(36);
    let b17 = (a[11] ^ d1).rotate_left(10);
    let b18 = (a[17] ^ d2).rotate_left(15);
    let b19 = (a[23] ^ d3).rotate_left(56);
    e[15] = b15 ^ (b16 & b17);
    e[16] = b16 ^ (b17 | b18);
    e[17] = b17 ^ (!b18 | b19);
    e[18] = b18 ^ !(b19 & b15);
    e[19] = b19 ^ (b15 | b16);
    let b20 = (a[2] ^ d2).rotate_left(62);
    let b21 = (a[8] ^ d3).rotate_left(55);
    let b22 = (a[14] ^ d4).rotate_left(39);
    let b23 = (a[15] ^ d0).rotate_left(41);
    let b24 = (a[21] ^ d1).rotate_left(2);
    e[20] = b20 ^ (!b21 & b22);
    e[21] = b21 ^ !(b22 | b23);
    e[22] = b22 ^ (b23 & b24);
    e[23] = b23 ^ (b24 | b20);
    e[24] = b24 ^ (b20 & b21);

    e[0] ^= rc;
}

/// Rounds `RC[..n]` on `a`, ping-ponging through a second state (no copies).
#[inline(always)]
fn rounds(a: &mut [u64; 25], n: usize) {
    let mut e = [0u64; 25];
    let mut r = 0;
    while r + 1 < n {
        round(a, &mut e, RC[r]);
        round(&e, a, RC[r + 1]);
        r += 2;
    }
    if r < n {
        round(a, &mut e, RC[r]);
        *a = e;
    }
}

/// The full keccak-f\[1600\] permutation.
pub fn keccak_f1600(a: &mut [u64; 25]) {
    complement(a);
    rounds(a, 24);
    complement(a);
}

/// Like [`keccak_f1600_hash_lanes`] on a state already in complemented form.
#[inline(always)]
fn hash_lanes_complemented(a: &mut [u64; 25]) -> [u64; 4] {
    rounds(a, 23);
    let c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20];
    let c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21];
    let c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22];
    let c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23];
    let c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
    let d0 = c4 ^ c1.rotate_left(1);
    let d1 = c0 ^ c2.rotate_left(1);
    let d2 = c1 ^ c3.rotate_left(1);
    let d3 = c2 ^ c4.rotate_left(1);
    let d4 = c3 ^ c0.rotate_left(1);
    let b0 = a[0] ^ d0;
    let b1 = (a[6] ^ d1).rotate_left(44);
    let b2 = (a[12] ^ d2).rotate_left(43);
    let b3 = (a[18] ^ d3).rotate_left(21);
    let b4 = (a[24] ^ d4).rotate_left(14);
    a[0] = b0 ^ (b1 | b2);
    a[1] = b1 ^ (!b2 | b3);
    a[2] = b2 ^ (b3 & b4);
    a[3] = b3 ^ (b4 | b0);
    // Lanes 1 and 2 are complemented.
    [a[0] ^ RC[23], !a[1], !a[2], a[3]]
}

/// The permutation, keeping only lanes 0..=3 of the result (the 256-bit hash).
///
/// The last round needs all of theta but only the five lanes that chi turns
/// into lanes 0..=4: the diagonal `a[0], a[6], a[12], a[18], a[24]`.
pub fn keccak_f1600_hash_lanes(a: &mut [u64; 25]) -> [u64; 4] {
    complement(a);
    hash_lanes_complemented(a)
}

/// The state before the permutation for `challenge ++ nonce`, padding included.
pub fn initial_state(challenge: [u64; 4], nonce: [u64; 4]) -> [u64; 25] {
    let mut a = [0u64; 25];
    a[..4].copy_from_slice(&challenge);
    a[4..8].copy_from_slice(&nonce);
    a[8] = 0x01;
    a[16] = 0x80 << 56;
    a
}

/// The first four lanes of `keccak256(challenge ++ nonce)` (see [`super::hash_bytes`]).
pub fn hash_lanes(challenge: B256, nonce: U256) -> [u64; 4] {
    let mut a = initial_state(challenge_lanes(challenge), nonce_lanes(nonce));
    keccak_f1600_hash_lanes(&mut a)
}

/// `hash < target`, the hash given by its lanes and the target by its limbs.
#[inline(always)]
fn below(out: [u64; 4], t: [u64; 4]) -> bool {
    let h = [out[3].swap_bytes(), out[2].swap_bytes(), out[1].swap_bytes(), out[0].swap_bytes()];
    (h[3], h[2], h[1], h[0]) < (t[3], t[2], t[1], t[0])
}

/// The lowest index in `range` of `seg` whose hash is below the target (`base` complemented).
fn scan(base: &[u64; 25], seg: &Segment, t: [u64; 4], range: std::ops::Range<u64>) -> Option<u64> {
    for i in range {
        let mut a = *base;
        a[7] = (seg.lo + i).swap_bytes();
        let out = hash_lanes_complemented(&mut a);
        // Most tries end at the first limb; the full comparison is for hits and ties.
        if out[0].swap_bytes() <= t[3] && below(out, t) {
            return Some(i);
        }
    }
    None
}

/// The CPU miner: one thread per core by default.
#[derive(Debug, Clone)]
pub struct CpuMiner {
    threads: NonZeroUsize,
}

impl Default for CpuMiner {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMiner {
    /// A miner with one thread per logical core.
    pub fn new() -> Self {
        Self::with_threads(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// A miner with `threads` threads.
    pub fn with_threads(threads: NonZeroUsize) -> Self {
        Self { threads }
    }

    /// The number of threads it mines with.
    pub fn threads(&self) -> usize {
        self.threads.get()
    }

    /// The lowest index of `seg` with a proof, searching with all threads.
    fn search_segment(&self, base: &[u64; 25], seg: &Segment, t: [u64; 4]) -> Option<u64> {
        let next = AtomicU64::new(0);
        let best = AtomicU64::new(u64::MAX);
        let chunks = seg.len.div_ceil(CHUNK);
        let work = || {
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= chunks {
                    return;
                }
                let start = chunk * CHUNK;
                // Chunks are taken in increasing order: once a proof is known,
                // every later chunk starts above it.
                if start > best.load(Ordering::Relaxed) {
                    return;
                }
                let end = seg.len.min(start + CHUNK);
                if let Some(i) = scan(base, seg, t, start..end) {
                    best.fetch_min(i, Ordering::Relaxed);
                    return;
                }
            }
        };
        let threads = usize::try_from(chunks).unwrap_or(usize::MAX).min(self.threads.get());
        if threads <= 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        let best = best.into_inner();
        (best != u64::MAX).then_some(best)
    }
}

impl Miner for CpuMiner {
    fn name(&self) -> String {
        format!("CPU fallback ({} threads)", self.threads)
    }

    fn search(
        &self,
        challenge: B256,
        start_nonce: U256,
        target: U256,
        max_hashes: u64,
    ) -> Result<SearchOutcome> {
        let t = target_limbs(target);
        let lanes = challenge_lanes(challenge);
        for seg in segments(start_nonce, max_hashes) {
            let mut high = [0u64; 4];
            high[1..].copy_from_slice(&seg.high);
            let mut base = initial_state(lanes, nonce_lanes(U256::from_limbs(high)));
            // Lane 7, the one that varies, is not among the complemented lanes.
            complement(&mut base);
            if let Some(i) = self.search_segment(&base, &seg, t) {
                let outcome =
                    SearchOutcome { proof: Some(seg.nonce(i)), hashes_done: seg.offset + i + 1 };
                return verified(&self.name(), challenge, target, outcome);
            }
        }
        Ok(SearchOutcome { proof: None, hashes_done: max_hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pow::hash_bytes;
    use lilypad_sdk::core::pow::{meets_target, proof_hash};

    #[test]
    fn permutation_matches_the_keccak_crate() {
        let mut a: [u64; 25] =
            std::array::from_fn(|i| (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut b = a;
        keccak_f1600(&mut a);
        keccak::Keccak::new().with_f1600(|f| f(&mut b));
        assert_eq!(a, b);
        let mut c = initial_state([1, 2, 3, 4], [5, 6, 7, 8]);
        let mut d = c;
        keccak_f1600(&mut c);
        assert_eq!(keccak_f1600_hash_lanes(&mut d), [c[0], c[1], c[2], c[3]]);
    }

    #[test]
    fn hash_matches_core() {
        let c = B256::repeat_byte(0xab);
        for n in [U256::ZERO, U256::from(1), U256::MAX, U256::from(u64::MAX) << 100] {
            assert_eq!(hash_bytes(hash_lanes(c, n)), proof_hash(c, n), "nonce {n}");
        }
    }

    /// The lowest proof by brute force with lilypad-core.
    fn first_proof(c: B256, start: U256, target: U256, n: u64) -> SearchOutcome {
        for i in 0..n {
            let nonce = start.wrapping_add(U256::from(i));
            if meets_target(c, nonce, target) {
                return SearchOutcome { proof: Some(nonce), hashes_done: i + 1 };
            }
        }
        SearchOutcome { proof: None, hashes_done: n }
    }

    #[test]
    fn finds_the_lowest_proof_across_threads_and_limb_wraps() {
        let c = B256::repeat_byte(0x42);
        let target = U256::MAX >> 12; // one proof in 4096 tries
        let miner = CpuMiner::with_threads(NonZeroUsize::new(3).unwrap());
        for start in [
            U256::ZERO,
            U256::from(u64::MAX - 5000),
            U256::MAX - U256::from(3000),
            U256::from(77) << 64,
        ] {
            for n in [0u64, 1, 2000, 40_000] {
                let want = first_proof(c, start, target, n);
                assert_eq!(miner.search(c, start, target, n).unwrap(), want, "start {start} n {n}");
            }
        }
        // Target 0 is never met; U256::MAX is met by (almost) anything.
        assert_eq!(miner.search(c, U256::ZERO, U256::ZERO, 30_000).unwrap().proof, None);
        let any = miner.search(c, U256::from(9), U256::MAX, 100).unwrap();
        assert_eq!(any, SearchOutcome { proof: Some(U256::from(9)), hashes_done: 1 });
    }
}
