//! Proof-of-work miners: an OpenCL kernel and a multithreaded CPU fallback.
//!
//! A proof for `challenge` is a nonce with
//! `uint256(keccak256(challenge ++ nonce)) < target`, the nonce as 32 bytes
//! big-endian (see [`lilypad_sdk::core::pow`]). The 64-byte message fits in
//! one Keccak-256 block, so one try is one keccak-f\[1600\] permutation.
//!
//! # Message and nonce layout
//!
//! The sponge state is 25 little-endian 64-bit lanes. Before the permutation:
//!
//! | lanes | content |
//! |---|---|
//! | 0..=3 | the challenge, bytes 0..32 |
//! | 4..=7 | the nonce's 32 big-endian bytes; lane `4 + k` is limb `3 - k` byte-swapped (limb 0 = least significant 64 bits) |
//! | 8 | `0x01`, Keccak's first padding byte (message byte 64) |
//! | 16 | `0x80 << 56`, the last padding byte (byte 135, the end of the 136-byte rate) |
//! | others | 0 |
//!
//! After the permutation the hash is lanes 0..=3 as little-endian bytes, so
//! the hash as a `uint256` has lane 0 byte-swapped as its most significant
//! limb. The miners compare that limb with the target's first and finish
//! the comparison only on a tie or a hit.
//!
//! A search covers `max_hashes` consecutive nonces from `start_nonce`
//! (wrapping at 2^256). It is split into *segments* in which only the lowest
//! limb changes (at most two: the low limb wraps at most once in 2^64 nonces),
//! so within a segment only lane 7 varies. Both miners return the **lowest**
//! proof of the range and count `hashes_done` as the nonces up to and
//! including it (or the whole range when there is none), so for the same
//! range they return equal [`SearchOutcome`]s.

pub mod cpu;
#[cfg(feature = "opencl")]
pub mod opencl;

use lilypad_sdk::core::{B256, U256, pow::meets_target};

pub use cpu::CpuMiner;

/// The result of a search: the lowest proof in the range, if any, and the nonces it covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOutcome {
    /// The lowest nonce of the range whose proof hash is below the target.
    pub proof: Option<U256>,
    /// Nonces from the start up to and including the proof, or all of the range without one.
    pub hashes_done: u64,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinerError {
    /// No OpenCL platform (driver) is installed.
    #[error(
        "no OpenCL platform found ({0}); install one, on Debian: \
         apt-get install pocl-opencl-icd ocl-icd-opencl-dev (or your GPU vendor's OpenCL driver), \
         then check with `clinfo -l`"
    )]
    NoPlatform(String),
    /// OpenCL platforms exist but none has a device.
    #[error(
        "OpenCL platforms found ({0}) but no device; pocl hides its CPU device when it cannot \
         write its kernel cache (make $HOME/.cache writable or set POCL_CACHE_DIR), \
         and GPU drivers when the GPU is not accessible; check with `clinfo -l`"
    )]
    NoDevice(String),
    /// The requested device does not exist.
    #[error("no OpenCL device {0}; `lilypad-rp bench` lists the devices and their ids")]
    NoSuchDevice(String),
    /// Work sizes the kernel cannot run with.
    #[error("invalid OpenCL tuning {tuning}: {why}")]
    BadTuning {
        /// The tuning given.
        tuning: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An OpenCL call failed.
    #[error("OpenCL {context}: {message}")]
    OpenCl {
        /// What was being done.
        context: String,
        /// The driver's error.
        message: String,
    },
    /// A miner returned a nonce that does not meet the target (a bug or a hardware fault).
    #[error(
        "the {miner} miner returned nonce {nonce} for challenge {challenge}, but its hash is not \
         below target {target:#x}; this is a miner bug or a hardware fault, the proof was dropped"
    )]
    InvalidProof {
        /// Which miner.
        miner: String,
        /// The challenge searched.
        challenge: B256,
        /// The nonce it returned.
        nonce: U256,
        /// The target.
        target: U256,
    },
}

/// A `Result` with a [`MinerError`].
pub type Result<T, E = MinerError> = std::result::Result<T, E>;

/// Something that searches nonces for proofs of work.
pub trait Miner: Send + Sync {
    /// A short name for messages and benchmarks (e.g. the device name).
    fn name(&self) -> String;

    /// Searches `max_hashes` nonces from `start_nonce` for the lowest one whose
    /// proof hash for `challenge` is below `target`.
    ///
    /// Every returned proof has been re-checked on the host with
    /// [`meets_target`]. A target of 0 can never be met (useful to measure
    /// hashrate: the whole range is searched).
    fn search(
        &self,
        challenge: B256,
        start_nonce: U256,
        target: U256,
        max_hashes: u64,
    ) -> Result<SearchOutcome>;
}

/// Checks a miner's proof on the host before anyone relies on it.
pub(crate) fn verified(
    miner: &str,
    challenge: B256,
    target: U256,
    outcome: SearchOutcome,
) -> Result<SearchOutcome> {
    match outcome.proof {
        Some(nonce) if !meets_target(challenge, nonce, target) => {
            Err(MinerError::InvalidProof { miner: miner.to_owned(), challenge, nonce, target })
        }
        _ => Ok(outcome),
    }
}

/// Lanes 0..=3 of the state: the challenge as little-endian 64-bit words.
pub fn challenge_lanes(challenge: B256) -> [u64; 4] {
    let mut lanes = [0u64; 4];
    for (lane, bytes) in lanes.iter_mut().zip(challenge.0.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        *lane = u64::from_le_bytes(word);
    }
    lanes
}

/// Lanes 4..=7 of the state: the nonce's big-endian bytes as little-endian words.
pub fn nonce_lanes(nonce: U256) -> [u64; 4] {
    let limbs = nonce.as_limbs();
    [limbs[3].swap_bytes(), limbs[2].swap_bytes(), limbs[1].swap_bytes(), limbs[0].swap_bytes()]
}

/// The hash as a `uint256` from the first four lanes of the permuted state.
pub fn hash_value(out: [u64; 4]) -> U256 {
    U256::from_limbs([
        out[3].swap_bytes(),
        out[2].swap_bytes(),
        out[1].swap_bytes(),
        out[0].swap_bytes(),
    ])
}

/// The hash bytes from the first four lanes of the permuted state.
pub fn hash_bytes(out: [u64; 4]) -> B256 {
    B256::from(hash_value(out).to_be_bytes::<32>())
}

/// A run of nonces in which only the lowest limb changes: `high ++ (lo + i)` for `i < len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Nonces before this segment in the search.
    pub(crate) offset: u64,
    /// Limbs 1..=3 of every nonce in the segment.
    pub(crate) high: [u64; 3],
    /// The lowest limb of the first nonce.
    pub(crate) lo: u64,
    /// Nonces in the segment; `lo + len <= 2^64`.
    pub(crate) len: u64,
}

impl Segment {
    /// The nonce at index `i` of the segment.
    pub(crate) fn nonce(&self, i: u64) -> U256 {
        U256::from_limbs([self.lo + i, self.high[0], self.high[1], self.high[2]])
    }
}

/// Splits `max_hashes` nonces from `start` where the low limb wraps (at most two segments).
pub(crate) fn segments(start: U256, max_hashes: u64) -> Vec<Segment> {
    let mut out = Vec::with_capacity(2);
    let (mut nonce, mut offset) = (start, 0u64);
    while offset < max_hashes {
        let limbs = nonce.as_limbs();
        let lo = limbs[0];
        let room = u64::MAX - lo; // nonces after the first before the low limb wraps
        let len = (max_hashes - offset).min(room.saturating_add(1));
        out.push(Segment { offset, high: [limbs[1], limbs[2], limbs[3]], lo, len });
        offset += len;
        nonce = nonce.wrapping_add(U256::from(len));
    }
    out
}

/// The target as limbs, most significant last (as [`U256::as_limbs`]).
pub(crate) fn target_limbs(target: U256) -> [u64; 4] {
    *target.as_limbs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lilypad_sdk::core::pow::proof_hash;

    #[test]
    fn segments_split_where_the_low_limb_wraps() {
        let s = segments(U256::from(5), 10);
        assert_eq!(s, vec![Segment { offset: 0, high: [0; 3], lo: 5, len: 10 }]);
        let start = U256::from(u64::MAX - 2);
        let s = segments(start, 10);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].lo, s[0].len, s[0].offset), (u64::MAX - 2, 3, 0));
        assert_eq!((s[1].lo, s[1].len, s[1].offset, s[1].high), (0, 7, 3, [1, 0, 0]));
        assert_eq!(s[1].nonce(0), start + U256::from(3));
        // 2^256 wraps to 0.
        let s = segments(U256::MAX, 2);
        assert_eq!(s[0].nonce(0), U256::MAX);
        assert_eq!(s[1].nonce(0), U256::ZERO);
        assert!(segments(U256::ZERO, 0).is_empty());
        let s = segments(U256::ZERO, u64::MAX);
        assert_eq!(s, vec![Segment { offset: 0, high: [0; 3], lo: 0, len: u64::MAX }]);
    }

    #[test]
    fn lanes_are_the_message_words() {
        let c = B256::from(U256::from(0x0102_0304_0506_0708u64) << 192);
        assert_eq!(challenge_lanes(c)[0], 0x0807_0605_0403_0201);
        let n = U256::from(0x1122u64);
        assert_eq!(nonce_lanes(n), [0, 0, 0, 0x2211u64 << 48]);
        let h = proof_hash(c, n);
        let v = U256::from_be_bytes(h.0);
        let out = nonce_lanes(v); // the same byte order as the hash's lanes
        assert_eq!(hash_value(out), v);
        assert_eq!(hash_bytes(out), h);
    }

    #[test]
    fn verified_drops_a_bad_proof() {
        let c = B256::repeat_byte(1);
        let good = SearchOutcome { proof: None, hashes_done: 3 };
        assert_eq!(verified("t", c, U256::ZERO, good).unwrap(), good);
        let bad = SearchOutcome { proof: Some(U256::from(1)), hashes_done: 2 };
        let err = verified("t", c, U256::ZERO, bad).unwrap_err();
        assert!(err.to_string().contains("hardware fault"), "{err}");
    }
}
