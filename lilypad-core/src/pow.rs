//! Proof-of-work math: challenges, proof hashes, targets and hashrate estimates.
//!
//! Per round, a miner's challenge is
//! `keccak256(abi.encode(seed, miner, nodeId))` ([`challenge`]) and a proof is
//! a nonce whose `uint256(keccak256(challenge ++ nonce))` is below the round's
//! target ([`proof_hash`], [`meets_target`]). The contract, the OpenCL kernel
//! and the CPU miner compute exactly these bytes; the test vectors in
//! `tests/vectors/pow.json` come from an independent Python implementation.
//!
//! # Hashrate estimator
//!
//! Each hash is an independent trial that succeeds with probability
//! `p = target / 2^256`, so the number of hashes until a proof is geometric
//! with mean `1/p = 2^256 / target` ([`expected_hashes`]). A miner that found
//! `n` proofs over `t` seconds has done, in expectation, `sum(2^256 / target_i)`
//! hashes, and [`hashrate_estimate`] divides that by `t`. It is unbiased, and
//! since the geometric distribution's standard deviation is about its mean
//! (`sqrt(1-p)/p`), the estimate from `n` proofs has a relative standard
//! deviation of about `1/sqrt(n)`: 100 proofs give about 10%, 10,000 about 1%.
//! To estimate a miner's rate within a relative error `e`, a round needs about
//! `1/e^2` proofs from it, which is what retargeting aims the target at
//! ([`target_for`]).
//!
//! Floats appear only here, for estimates: they never touch money, and
//! verification ([`meets_target`]) is exact integer arithmetic.

use alloy_primitives::{Address, B256, U256, keccak256};

/// An estimate that cannot be computed; names the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PowError {
    /// A target of zero: no hash is below it, so no proof exists and the expected work is infinite.
    #[error("target 0 can never be met; targets must be at least 1")]
    ZeroTarget,
    /// No time elapsed, so there is no rate.
    #[error("elapsed time is 0 seconds; a hashrate needs a positive interval")]
    ZeroElapsed,
    /// Expected hashes that are not a finite number >= 1.
    #[error("expected hashes must be a finite number >= 1, got {0}")]
    BadExpectedHashes(f64),
}

/// `keccak256(abi.encode(seed, miner, node_id))`: 96 bytes, the address left-padded to 32.
pub fn challenge(seed: B256, miner: Address, node_id: B256) -> B256 {
    let mut buf = [0u8; 96];
    buf[..32].copy_from_slice(seed.as_slice());
    buf[44..64].copy_from_slice(miner.as_slice());
    buf[64..].copy_from_slice(node_id.as_slice());
    keccak256(buf)
}

/// `keccak256(challenge ++ nonce)`, the nonce as 32 bytes big-endian (a 64-byte message).
pub fn proof_hash(challenge: B256, nonce: U256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(challenge.as_slice());
    buf[32..].copy_from_slice(&nonce.to_be_bytes::<32>());
    keccak256(buf)
}

/// Whether `nonce` is a proof for `challenge`: `uint256(proof_hash) < target`.
pub fn meets_target(challenge: B256, nonce: U256, target: U256) -> bool {
    U256::from_be_bytes(proof_hash(challenge, nonce).0) < target
}

/// Expected hashes to find one proof below `target`: `2^256 / target`.
pub fn expected_hashes(target: U256) -> Result<f64, PowError> {
    if target.is_zero() {
        return Err(PowError::ZeroTarget);
    }
    // f64::from rounds to nearest; the relative error (2^-53) is far below
    // the estimator's own noise.
    Ok(2f64.powi(256) / f64::from(target))
}

/// Estimated hashes per second of a miner that found proofs at `targets` over `elapsed_secs`.
///
/// No proofs give 0. See the module docs for the estimator and its variance.
pub fn hashrate_estimate(
    targets: impl IntoIterator<Item = U256>,
    elapsed_secs: u64,
) -> Result<f64, PowError> {
    if elapsed_secs == 0 {
        return Err(PowError::ZeroElapsed);
    }
    let mut work = 0.0;
    for target in targets {
        work += expected_hashes(target)?;
    }
    // u64 to f64 rounds above 2^53 seconds, which is no concern.
    let secs = elapsed_secs as f64;
    Ok(work / secs)
}

/// The target at which one proof takes `expected_hashes` hashes on average: `2^256 / expected_hashes`.
///
/// Results are clamped to `[1, U256::MAX]`: 1 expected hash gives `U256::MAX`
/// (2^256 itself does not fit), and more than 2^256 expected hashes give 1,
/// the hardest target that can still be met.
pub fn target_for(expected_hashes: f64) -> Result<U256, PowError> {
    if !expected_hashes.is_finite() || expected_hashes < 1.0 {
        return Err(PowError::BadExpectedHashes(expected_hashes));
    }
    let target = 2f64.powi(256) / expected_hashes;
    // Errors only when target >= 2^256, i.e. expected_hashes rounds to 1.
    let target = U256::try_from(target).unwrap_or(U256::MAX);
    Ok(target.max(U256::from(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_abi_encoded_triple() {
        let seed = B256::repeat_byte(1);
        let miner = Address::repeat_byte(2);
        let node = B256::repeat_byte(3);
        let mut buf = vec![1u8; 32];
        buf.extend([0u8; 12]);
        buf.extend([2u8; 20]);
        buf.extend([3u8; 32]);
        assert_eq!(challenge(seed, miner, node), keccak256(&buf));
    }

    #[test]
    fn target_bounds() {
        let c = B256::repeat_byte(9);
        assert!(!meets_target(c, U256::from(1), U256::ZERO));
        let h = U256::from_be_bytes(proof_hash(c, U256::from(1)).0);
        assert!(!meets_target(c, U256::from(1), h));
        assert!(meets_target(c, U256::from(1), h + U256::from(1)));
    }

    #[test]
    fn expected_hashes_of_round_targets() {
        assert_eq!(expected_hashes(U256::from(1) << 255), Ok(2.0));
        assert_eq!(expected_hashes(U256::from(1) << 236), Ok(1_048_576.0));
        assert_eq!(expected_hashes(U256::from(1)), Ok(2f64.powi(256)));
        assert_eq!(expected_hashes(U256::ZERO), Err(PowError::ZeroTarget));
        let max = expected_hashes(U256::MAX).unwrap();
        assert!((max - 1.0).abs() < 1e-15);
    }

    #[test]
    fn hashrate_sums_expected_work_over_time() {
        let t = U256::from(1) << 236; // 2^20 hashes each
        assert_eq!(hashrate_estimate([t, t, t, t], 4), Ok(1_048_576.0));
        assert_eq!(hashrate_estimate([], 10), Ok(0.0));
        assert_eq!(hashrate_estimate([t], 0), Err(PowError::ZeroElapsed));
        assert_eq!(hashrate_estimate([t, U256::ZERO], 1), Err(PowError::ZeroTarget));
    }

    #[test]
    fn target_for_inverts_expected_hashes() {
        for k in [1u32, 2, 20, 64, 200, 255] {
            let e = 2f64.powi(k as i32);
            let t = target_for(e).unwrap();
            assert_eq!(t, U256::from(1) << (256 - k as usize), "2^{k} hashes");
            assert_eq!(expected_hashes(t), Ok(e));
        }
        assert_eq!(target_for(1.0), Ok(U256::MAX));
        assert_eq!(target_for(2f64.powi(300)), Ok(U256::from(1)));
        let t = target_for(3.0).unwrap();
        assert!((expected_hashes(t).unwrap() - 3.0).abs() < 1e-12);
        for bad in [0.0, 0.5, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(target_for(bad), Err(PowError::BadExpectedHashes(_))));
        }
    }

    /// Mines for real with an easy target and checks the estimator against
    /// the hashes actually done: within 4 relative standard deviations.
    #[test]
    fn estimator_matches_real_mining() {
        let expected = 16.0;
        let target = target_for(expected).unwrap();
        let c = challenge(B256::repeat_byte(7), Address::repeat_byte(8), B256::repeat_byte(9));
        let proofs = 2_000u32;
        let (mut found, mut hashes, mut nonce) = (0u32, 0u64, U256::ZERO);
        while found < proofs {
            hashes += 1;
            if meets_target(c, nonce, target) {
                found += 1;
            }
            nonce += U256::from(1);
        }
        // Pretend one second per hash: the estimate is then hashes done per hash.
        let estimate = hashrate_estimate(vec![target; proofs as usize], hashes).unwrap();
        let rel_sd = 1.0 / f64::from(proofs).sqrt();
        assert!((estimate - 1.0).abs() < 4.0 * rel_sd, "estimate {estimate} vs 1.0");
    }
}
