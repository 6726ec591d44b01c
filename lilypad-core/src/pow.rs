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
//! When the target changed between rounds, [`hashrate_from_rounds`] (proofs
//! over the expected proofs per unit rate, rounds without proofs included)
//! keeps that `1/sqrt(n)`; the sum of expected work does not, as one proof at
//! a target `k` times too hard weighs as much as `k` proofs.
//! To estimate a miner's rate within a relative error `e` at `z` standard
//! deviations, the estimate needs about `(z/e)^2` proofs from it: 900 for 10%
//! at 3 sigma ([`proofs_needed`]).
//!
//! # Retargeting
//!
//! The target sets how many proofs a round produces: a network of total rate
//! `H` mining for `T` seconds at target `t` expects `H * T * t / 2^256`
//! proofs. [`retarget`] steers it each round toward a desired count `D`:
//! `t' = t * D / observed`, the factor clamped to `[1/F, F]` so one unlucky
//! round (or a burst of new miners) cannot swing it far. That is exactly
//! retargeting to the network rate estimated over the last round, so it
//! converges from any starting target within `log_F(error)` rounds and then
//! wanders by about `1/sqrt(D)` per round. A miner with a share `s` of the
//! network rate then finds about `s * D` proofs a round, so its estimate
//! reaches the precision above after [`rounds_needed`] rounds:
//! `ceil((z/e)^2 / (s * D))`. `docs/pow.md` has the derivations and a table,
//! and `tests/pow_retarget_sim.rs` checks all of it by simulation.
//!
//! Floats appear only here, for estimates: they never touch money, and
//! verification ([`meets_target`]) is exact integer arithmetic.

use alloy_primitives::{Address, B256, U256, U512, keccak256};

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
    /// Retargeting toward zero proofs per round: the target would have to be 0.
    #[error("the desired proofs per round must be at least 1")]
    ZeroDesiredProofs,
    /// A retarget clamp below 1 (the factor is clamped to `[1/F, F]`).
    #[error("the retarget clamp factor must be at least 1, got {0}")]
    BadClampFactor(u64),
    /// A parameter of [`rounds_needed`] or [`proofs_needed`] out of its range.
    #[error("{name} must be {range}, got {value}")]
    OutOfRange {
        /// Which parameter.
        name: &'static str,
        /// What it must be.
        range: &'static str,
        /// What it was.
        value: f64,
    },
}

/// The clamp the network retargets with: the target changes by at most 4x per round.
pub const RETARGET_CLAMP: u64 = 4;

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

/// What a miner did in one round: the round's target, the seconds it mined and the proofs it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinedRound {
    /// The round's target.
    pub target: U256,
    /// Seconds the miner mined in the round.
    pub secs: u64,
    /// Proofs it found.
    pub proofs: u64,
}

/// Estimated hashes per second from whole rounds, proofs or not: `sum(proofs) / sum(secs / expected_hashes(target))`.
///
/// The maximum-likelihood estimate for proofs arriving as a Poisson process
/// whose rate changes with the target. With one target it equals
/// [`hashrate_estimate`]; when targets differ (retargeting, the first rounds
/// of a network) its relative standard deviation stays `1/sqrt(proofs)`,
/// while a sum of expected work lets one lucky proof at a hard target weigh
/// as much as many. It needs the rounds without proofs too (the chain has
/// them: each round's target, and the miner's uptime). No mining time is an
/// error; time without proofs gives 0.
pub fn hashrate_from_rounds(rounds: impl IntoIterator<Item = MinedRound>) -> Result<f64, PowError> {
    let (mut proofs, mut exposure) = (0u64, 0.0f64);
    for r in rounds {
        proofs = proofs.saturating_add(r.proofs);
        // Expected proofs per unit of hashrate: secs / expected hashes per proof.
        exposure += r.secs as f64 / expected_hashes(r.target)?;
    }
    if exposure == 0.0 {
        return Err(PowError::ZeroElapsed);
    }
    Ok(proofs as f64 / exposure)
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

/// The next round's target: `target * desired / observed`, the factor clamped to `[1/clamp, clamp]`.
///
/// `observed` is the number of proofs the round at `target` produced; none
/// eases the target by the full `clamp`. Exact integer arithmetic (512-bit
/// intermediate), so any implementation, the contract included, gets the
/// same target; the result is at least 1 and saturates at `U256::MAX`.
pub fn retarget(target: U256, observed: u64, desired: u64, clamp: u64) -> Result<U256, PowError> {
    if target.is_zero() {
        return Err(PowError::ZeroTarget);
    }
    if desired == 0 {
        return Err(PowError::ZeroDesiredProofs);
    }
    if clamp == 0 {
        return Err(PowError::BadClampFactor(clamp));
    }
    let wide = U512::from(target);
    let hardest = (wide / U512::from(clamp)).max(U512::from(1u64));
    let easiest = wide * U512::from(clamp);
    let next = if observed == 0 {
        easiest
    } else {
        (wide * U512::from(desired) / U512::from(observed)).clamp(hardest, easiest)
    };
    Ok(next.saturating_to::<U256>())
}

/// Proofs an estimate needs to be within `rel_error` of the true rate at `z` standard deviations: `(z / rel_error)^2`.
///
/// Rounded up. 10% at 3 sigma (about 99.7% of estimates) needs 900.
pub fn proofs_needed(rel_error: f64, z: f64) -> Result<u64, PowError> {
    if !(rel_error > 0.0 && rel_error < 1.0) {
        return Err(PowError::OutOfRange {
            name: "rel_error",
            range: "in (0, 1)",
            value: rel_error,
        });
    }
    if !(z.is_finite() && z > 0.0) {
        return Err(PowError::OutOfRange { name: "z", range: "a positive number", value: z });
    }
    // A positive finite float below 2^64 here: (z/e)^2 with e in (0,1).
    Ok((z / rel_error).powi(2).ceil() as u64)
}

/// Rounds until the estimate of a miner with `share` of the network rate is within `rel_error` at `z` sigma.
///
/// With retargeting holding the network at `proofs_per_round`, the miner
/// finds `share * proofs_per_round` proofs a round on average, so it needs
/// `ceil(proofs_needed / (share * proofs_per_round))` rounds (after the
/// target has converged).
pub fn rounds_needed(
    share: f64,
    proofs_per_round: u64,
    rel_error: f64,
    z: f64,
) -> Result<u64, PowError> {
    if !(share > 0.0 && share <= 1.0) {
        return Err(PowError::OutOfRange { name: "share", range: "in (0, 1]", value: share });
    }
    if proofs_per_round == 0 {
        return Err(PowError::ZeroDesiredProofs);
    }
    let proofs = proofs_needed(rel_error, z)? as f64;
    // u64 to f64 is exact for any realistic proofs per round.
    let per_round = share * proofs_per_round as f64;
    Ok((proofs / per_round).ceil() as u64)
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

    #[test]
    fn retarget_scales_by_desired_over_observed_within_the_clamp() {
        let t = U256::from(1) << 200;
        assert_eq!(retarget(t, 100, 100, 4), Ok(t));
        assert_eq!(retarget(t, 200, 100, 4), Ok(t >> 1)); // twice the proofs: twice as hard
        assert_eq!(retarget(t, 50, 100, 4), Ok(t << 1));
        assert_eq!(retarget(t, 3, 2, 4), Ok(t * U256::from(2) / U256::from(3)));
        // Clamped to [t/4, 4t]; no proof at all eases by the full clamp.
        assert_eq!(retarget(t, 10_000, 1, 4), Ok(t >> 2));
        assert_eq!(retarget(t, 1, 10_000, 4), Ok(t << 2));
        assert_eq!(retarget(t, 0, 100, 4), Ok(t << 2));
        assert_eq!(retarget(t, 7, 100, 1), Ok(t));
        // Saturates at U256::MAX, never reaches 0.
        assert_eq!(retarget(U256::MAX, 1, 100, 4), Ok(U256::MAX));
        assert_eq!(retarget(U256::MAX >> 1, 1, 3, 4), Ok(U256::MAX));
        assert_eq!(retarget(U256::from(1), 100, 1, 4), Ok(U256::from(1)));
        assert_eq!(retarget(U256::from(3), 100, 1, 4), Ok(U256::from(1)));
        // No intermediate overflow: U256::MAX * u64::MAX needs 320 bits.
        assert_eq!(retarget(U256::MAX, u64::MAX, u64::MAX, 4), Ok(U256::MAX));
        assert_eq!(retarget(U256::ZERO, 1, 1, 4), Err(PowError::ZeroTarget));
        assert_eq!(retarget(t, 1, 0, 4), Err(PowError::ZeroDesiredProofs));
        assert_eq!(retarget(t, 1, 1, 0), Err(PowError::BadClampFactor(0)));
    }

    #[test]
    fn rounds_estimate_is_proofs_over_exposure() {
        let t = U256::from(1) << 236; // 2^20 hashes per proof
        let r = |target, secs, proofs| MinedRound { target, secs, proofs };
        // One target: the same as the sum of expected work.
        assert_eq!(hashrate_from_rounds([r(t, 2, 3), r(t, 2, 1)]), hashrate_estimate([t; 4], 4));
        // A round at a 4x harder target counts 4x less exposure.
        let rate = hashrate_from_rounds([r(t, 10, 5), r(t >> 2, 10, 0)]).unwrap();
        assert_eq!(rate, 5.0 * 1_048_576.0 / (10.0 + 2.5));
        assert_eq!(hashrate_from_rounds([r(t, 10, 0)]), Ok(0.0));
        assert_eq!(hashrate_from_rounds([]), Err(PowError::ZeroElapsed));
        assert_eq!(hashrate_from_rounds([r(t, 0, 1)]), Err(PowError::ZeroElapsed));
        assert_eq!(hashrate_from_rounds([r(U256::ZERO, 1, 0)]), Err(PowError::ZeroTarget));
    }

    #[test]
    fn proofs_and_rounds_needed() {
        assert_eq!(proofs_needed(0.1, 3.0), Ok(900));
        assert_eq!(proofs_needed(0.1, 2.0), Ok(400));
        assert_eq!(proofs_needed(0.01, 1.0), Ok(10_000));
        assert_eq!(rounds_needed(0.01, 1000, 0.1, 3.0), Ok(90));
        assert_eq!(rounds_needed(1.0, 1000, 0.1, 3.0), Ok(1));
        assert_eq!(rounds_needed(0.05, 200, 0.1, 3.0), Ok(90));
        assert_eq!(rounds_needed(0.03, 100, 0.1, 2.0), Ok(134));
        for bad in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(matches!(proofs_needed(bad, 3.0), Err(PowError::OutOfRange { .. })), "{bad}");
        }
        assert!(matches!(proofs_needed(0.1, 0.0), Err(PowError::OutOfRange { .. })));
        assert!(matches!(rounds_needed(0.0, 10, 0.1, 3.0), Err(PowError::OutOfRange { .. })));
        assert!(matches!(rounds_needed(1.5, 10, 0.1, 3.0), Err(PowError::OutOfRange { .. })));
        assert_eq!(rounds_needed(0.5, 0, 0.1, 3.0), Err(PowError::ZeroDesiredProofs));
    }
}
