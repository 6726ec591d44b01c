//! Strategies shared by the property tests.

use alloy_primitives::U256;
use lilypad_core::deal::DealTerms;
use proptest::prelude::*;

/// Token amounts over the whole U256 range, weighted towards edges: zero,
/// small, powers of two, uniformly random, and within 2^64 of `U256::MAX`.
pub(crate) fn amount() -> impl Strategy<Value = U256> {
    prop_oneof![
        2 => Just(U256::ZERO),
        1 => Just(U256::MAX),
        3 => (0u64..1000).prop_map(U256::from),
        3 => any::<u64>().prop_map(U256::from),
        3 => any::<[u8; 32]>().prop_map(U256::from_be_bytes),
        2 => any::<u64>().prop_map(|d| U256::MAX - U256::from(d)),
        2 => (0usize..256).prop_map(|k| U256::from(1) << k),
    ]
}

/// A window or a time in seconds, weighted towards edges.
pub(crate) fn seconds() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0u64),
        3 => 1u64..10_000,
        2 => any::<u64>(),
        1 => (u64::MAX - 10_000)..=u64::MAX,
    ]
}

/// A value in `[0, bound]` from 32 random bytes.
pub(crate) fn below(bound: U256, raw: [u8; 32]) -> U256 {
    let raw = U256::from_be_bytes(raw);
    match bound.checked_add(U256::from(1)) {
        Some(m) => raw % m,
        None => raw,
    }
}

/// Terms a real deal can have: `price <= payment_collateral` and all four
/// escrows together at most `U256::MAX` (the contract holds them all at once).
///
/// A total is drawn from [`amount`] and cut at three random points (some
/// parts forced to zero), so single escrows reach `U256::MAX` and several
/// escrows are huge at once.
pub(crate) fn valid_terms() -> impl Strategy<Value = DealTerms> {
    (
        amount(),
        any::<[[u8; 32]; 3]>(),
        0usize..4,
        any::<u8>(),
        (0u8..3, any::<[u8; 32]>()),
        (seconds(), seconds(), seconds()),
    )
        .prop_map(|(total, cuts, rotate, zero_mask, (price_kind, price_raw), windows)| {
            let mut cuts = cuts.map(|c| below(total, c));
            cuts.sort();
            let mut parts = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], total - cuts[2]];
            parts.rotate_left(rotate);
            for (i, p) in parts.iter_mut().enumerate() {
                // Each part is zero with probability 1/4.
                if zero_mask >> (2 * i) & 3 == 0 {
                    *p = U256::ZERO;
                }
            }
            let [payment, timeout, results, fee] = parts;
            let price = match price_kind {
                0 => U256::ZERO,
                1 => payment,
                _ => below(payment, price_raw),
            };
            DealTerms {
                price,
                payment_collateral: payment,
                timeout_collateral: timeout,
                results_collateral: results,
                mediation_fee: fee,
                submit_window_secs: windows.0,
                judge_window_secs: windows.1,
                mediate_window_secs: windows.2,
            }
        })
}
