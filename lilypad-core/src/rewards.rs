//! Reward points: compute power times time on the network, less days offline.
//!
//! Everything comes from chain events: per provider, its estimated hashrate
//! (the proof-of-work estimator over the rounds it has proofs in,
//! [`crate::pow::hashrate_from_rounds`]), those *rounds present*, and the chain
//! time of its last proof; and the latest block's time. `lilypad-cli
//! leaderboard` and anything else that shows points call [`rewards`], so they
//! show the same numbers. `docs/pow.md` ("Reward points") states the formula:
//!
//! ```text
//! share_i        = hashrate_i / sum_j hashrate_j                  (0 when the sum is 0)
//! days_offline_i = floor((now - last_proof_i) / 86_400)           (0 before a first proof)
//! earned_i       = min(rounds_present_i, 100) - 25 * days_offline_i, at least 0
//! multiplier_i   = 1 + 3 * earned_i / 100                         (1x ..= 4x)
//! points_i       = 1000 * share_i * multiplier_i
//! ```
//!
//! So a provider reaches 4x after 100 rounds present, and each whole day of
//! chain time without a proof takes a quarter of the full bonus (0.75x) back:
//! four days offline and it starts again at 1x. The network's points sum to
//! between 1000 (everyone new or long offline) and 4000.

/// Rounds present at which the time-on-network multiplier reaches [`MAX_MULTIPLIER`].
pub const FULL_MULTIPLIER_ROUNDS: u64 = 100;
/// The largest time-on-network multiplier (the smallest is 1).
pub const MAX_MULTIPLIER: f64 = 4.0;
/// Points the whole network's compute power shares, before multipliers.
pub const POINTS_PER_NETWORK: f64 = 1000.0;
/// Seconds of chain time in a day offline.
pub const SECONDS_PER_DAY: u64 = 86_400;
/// Rounds of earned multiplier each whole day offline takes back (a quarter of
/// [`FULL_MULTIPLIER_ROUNDS`]: four days offline lose the whole bonus).
pub const ROUNDS_LOST_PER_DAY_OFFLINE: u64 = 25;

/// What the chain says about one provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activity {
    /// Estimated hashrate in hashes per second; a negative or non-finite value counts as 0.
    pub hashrate: f64,
    /// Proof-of-work rounds the provider has at least one proof in.
    pub rounds_present: u64,
    /// Block timestamp of its last proof, if it has one.
    pub last_proof_at: Option<u64>,
}

/// One provider's reward, in the order of the [`Activity`] list given to [`rewards`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reward {
    /// Its fraction of the network's summed hashrate, in `[0, 1]`.
    pub share: f64,
    /// Whole days of chain time since its last proof (0 without one).
    pub days_offline: u64,
    /// Its time-on-network multiplier, in `[1, MAX_MULTIPLIER]`.
    pub multiplier: f64,
    /// `POINTS_PER_NETWORK * share * multiplier`.
    pub points: f64,
}

/// Whole days of chain time from `last_proof_at` to `now` (0 without a proof or
/// when the proof is not older than `now`).
pub fn days_offline(last_proof_at: Option<u64>, now: u64) -> u64 {
    last_proof_at.map_or(0, |t| now.saturating_sub(t) / SECONDS_PER_DAY)
}

/// The multiplier: 1x at 0 rounds present, linearly to 4x at
/// [`FULL_MULTIPLIER_ROUNDS`], less [`ROUNDS_LOST_PER_DAY_OFFLINE`] rounds per day offline.
pub fn multiplier(rounds_present: u64, days_offline: u64) -> f64 {
    let earned = rounds_present
        .min(FULL_MULTIPLIER_ROUNDS)
        .saturating_sub(days_offline.saturating_mul(ROUNDS_LOST_PER_DAY_OFFLINE));
    1.0 + (MAX_MULTIPLIER - 1.0) * earned as f64 / FULL_MULTIPLIER_ROUNDS as f64
}

/// A hashrate as the formula counts it: negative, NaN and infinite count as 0.
fn counted(hashrate: f64) -> f64 {
    if hashrate.is_finite() && hashrate > 0.0 { hashrate } else { 0.0 }
}

/// A provider's share of the network's hashrate, given the sum of everyone else's.
///
/// Written as `1 / (1 + others / hashrate)` so that it never falls, even by
/// rounding, when `hashrate` rises.
pub fn share(hashrate: f64, others: f64) -> f64 {
    let (h, o) = (counted(hashrate), counted(others));
    if h == 0.0 { 0.0 } else { 1.0 / (1.0 + o / h) }
}

/// Every provider's reward at chain time `now`, in the order given.
pub fn rewards(providers: &[Activity], now: u64) -> Vec<Reward> {
    // Each provider's "others" is summed without its own hashrate (prefix plus
    // suffix sums), so raising one hashrate cannot change anyone's "others" by rounding.
    let rates: Vec<f64> = providers.iter().map(|p| counted(p.hashrate)).collect();
    let mut before = Vec::with_capacity(rates.len() + 1);
    before.push(0.0);
    for r in &rates {
        before.push(before[before.len() - 1] + r);
    }
    let mut after = vec![0.0; rates.len() + 1];
    for i in (0..rates.len()).rev() {
        after[i] = after[i + 1] + rates[i];
    }
    providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let share = share(rates[i], before[i] + after[i + 1]);
            let days_offline = days_offline(p.last_proof_at, now);
            let multiplier = multiplier(p.rounds_present, days_offline);
            Reward {
                share,
                days_offline,
                multiplier,
                points: POINTS_PER_NETWORK * share * multiplier,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn multiplier_grows_to_four_and_days_offline_take_it_back() {
        assert!(close(multiplier(0, 0), 1.0));
        assert!(close(multiplier(1, 0), 1.03));
        assert!(close(multiplier(50, 0), 2.5));
        assert!(close(multiplier(100, 0), 4.0));
        assert!(close(multiplier(1000, 0), 4.0));
        assert!(close(multiplier(1000, 1), 3.25));
        assert!(close(multiplier(1000, 3), 1.75));
        assert!(close(multiplier(1000, 4), 1.0));
        assert!(close(multiplier(1000, u64::MAX), 1.0));
        assert!(close(multiplier(20, 1), 1.0));
    }

    #[test]
    fn a_day_offline_is_86400_seconds_of_chain_time() {
        assert_eq!(days_offline(None, 1_000_000), 0);
        assert_eq!(days_offline(Some(1000), 1000 + 86_399), 0);
        assert_eq!(days_offline(Some(1000), 1000 + 86_400), 1);
        assert_eq!(days_offline(Some(1000), 1000 + 3 * 86_400 + 5), 3);
        // A proof stamped after `now` (a stale head) is not offline.
        assert_eq!(days_offline(Some(2000), 1000), 0);
    }

    #[test]
    fn two_equal_newcomers_get_515_each() {
        let a = Activity { hashrate: 5.0, rounds_present: 1, last_proof_at: Some(10) };
        let r = rewards(&[a, a], 20);
        assert_eq!(r.len(), 2);
        for x in &r {
            assert!(close(x.share, 0.5));
            assert_eq!(x.days_offline, 0);
            assert!(close(x.points, 515.0), "{x:?}");
        }
    }

    #[test]
    fn no_hashrate_no_points() {
        let idle = Activity { hashrate: 0.0, rounds_present: 0, last_proof_at: None };
        let bad = Activity { hashrate: f64::NAN, rounds_present: 3, last_proof_at: None };
        let r = rewards(&[idle, bad], 0);
        assert!(r.iter().all(|x| x.points == 0.0 && x.share == 0.0));
        assert!(rewards(&[], 0).is_empty());
        assert!(close(share(1.0, 0.0), 1.0));
        assert!(close(share(1.0, 3.0), 0.25));
        assert_eq!(share(-1.0, 3.0), 0.0);
    }

    fn activity() -> impl Strategy<Value = Activity> {
        (0.0f64..1e12, 0u64..300, proptest::option::of(0u64..2_000_000)).prop_map(
            |(hashrate, rounds_present, last_proof_at)| Activity {
                hashrate,
                rounds_present,
                last_proof_at,
            },
        )
    }

    proptest! {
        #[test]
        fn multiplier_is_between_one_and_four(rounds in any::<u64>(), days in any::<u64>()) {
            let m = multiplier(rounds, days);
            prop_assert!((1.0..=MAX_MULTIPLIER).contains(&m), "{m}");
        }

        #[test]
        fn multiplier_rises_with_rounds_and_falls_with_days(
            rounds in 0u64..1000, more in 0u64..1000, days in 0u64..10, more_days in 0u64..10,
        ) {
            prop_assert!(multiplier(rounds + more, days) >= multiplier(rounds, days));
            prop_assert!(multiplier(rounds, days + more_days) <= multiplier(rounds, days));
        }

        #[test]
        fn points_never_fall_with_more_hashrate_or_rounds_nor_rise_with_days_offline(
            net in proptest::collection::vec(activity(), 1..8),
            who in any::<prop::sample::Index>(),
            extra_rate in 0.0f64..1e12,
            extra_rounds in 0u64..200,
            offline_secs in 0u64..1_000_000,
            now in 2_000_000u64..3_000_000,
        ) {
            let i = who.index(net.len());
            let base = rewards(&net, now)[i].points;

            let mut faster = net.clone();
            faster[i].hashrate += extra_rate;
            prop_assert!(rewards(&faster, now)[i].points >= base);

            let mut longer = net.clone();
            longer[i].rounds_present += extra_rounds;
            prop_assert!(rewards(&longer, now)[i].points >= base);

            // An older last proof is more days offline.
            let mut absent = net.clone();
            absent[i].last_proof_at =
                Some(absent[i].last_proof_at.unwrap_or(now).saturating_sub(offline_secs));
            prop_assert!(rewards(&absent, now)[i].points <= base);
            // And time passing without a proof never adds points.
            prop_assert!(rewards(&net, now + offline_secs)[i].points <= base);
        }

        #[test]
        fn the_network_sums_between_1000_and_4000_points(
            net in proptest::collection::vec(activity(), 1..16),
            now in 0u64..3_000_000,
        ) {
            let r = rewards(&net, now);
            let shares: f64 = r.iter().map(|x| x.share).sum();
            let points: f64 = r.iter().map(|x| x.points).sum();
            for x in &r {
                prop_assert!((0.0..=1.0).contains(&x.share));
                prop_assert!((1.0..=MAX_MULTIPLIER).contains(&x.multiplier));
                prop_assert!(x.points >= 0.0);
            }
            if net.iter().any(|p| p.hashrate > 0.0) {
                prop_assert!(close(shares, 1.0), "{shares}");
                prop_assert!(points >= POINTS_PER_NETWORK * (1.0 - 1e-9), "{points}");
                prop_assert!(points <= POINTS_PER_NETWORK * MAX_MULTIPLIER * (1.0 + 1e-9), "{points}");
            } else {
                prop_assert_eq!(points, 0.0);
            }
        }
    }
}
