//! A provider's reputation from its deals' chain events: how many it completed,
//! let time out, had challenged and lost, how fast it returns results, and a
//! score in `(0, 1)`.
//!
//! The controller's events say all of it: `DealCreated` (the provider, and its
//! block time), `ResultsSubmitted` (its block time), `ResultsChallenged` /
//! `FailureChallenged`, and `DealFinished` (the [`Outcome`]). Callers turn them
//! into [`DealEvent`]s in chain order and call [`by_provider`]. Outcomes count as:
//!
//! - *completed*: `Accepted`, `NoJudgementInTime`, `MediationAccepted` (the provider was paid);
//! - *timed out*: `NoResultsInTime`;
//! - *lost*: `MediationRejected`, `FailureRefuted` (a mediator found the provider wrong);
//! - *refunded*: `NoMediationInTime`, `FailureAccepted`, `FailureUpheld`,
//!   `FailureNoMediationInTime` (the job creator's doing or nobody's: not scored);
//! - *open*: not finished yet.
//!
//! *Challenged* counts deals with a challenge of results or of a failure report,
//! whatever came of it. The score is the share of good deals among the scored
//! ones, with a prior of one good and one bad deal (Laplace's rule), so a new
//! provider scores 0.5 and no finite record reaches 0 or 1:
//!
//! ```text
//! score = (completed + 1) / (completed + timed_out + lost + 2)
//! ```

use std::collections::BTreeMap;

use crate::{Address, B256, settlement::Outcome};

/// Good deals every provider starts with in the score.
pub const PRIOR_COMPLETED: u64 = 1;
/// Bad deals every provider starts with in the score.
pub const PRIOR_FAILED: u64 = 1;

/// How a deal counts for its provider's reputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The provider was paid for results.
    Completed,
    /// The provider submitted nothing in time.
    TimedOut,
    /// A mediator found the provider's results or failure report wrong.
    Lost,
    /// Everyone was refunded; the provider is not to blame.
    Refunded,
    /// Not finished.
    Open,
}

impl Standing {
    /// How a deal with this outcome (`None`: not finished) counts.
    pub const fn of(outcome: Option<Outcome>) -> Self {
        match outcome {
            None => Self::Open,
            Some(Outcome::Accepted | Outcome::NoJudgementInTime | Outcome::MediationAccepted) => {
                Self::Completed
            }
            Some(Outcome::NoResultsInTime) => Self::TimedOut,
            Some(Outcome::MediationRejected | Outcome::FailureRefuted) => Self::Lost,
            Some(
                Outcome::NoMediationInTime
                | Outcome::FailureAccepted
                | Outcome::FailureUpheld
                | Outcome::FailureNoMediationInTime,
            ) => Self::Refunded,
        }
    }
}

/// One deal as its provider's reputation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DealRecord {
    /// Block time of `DealCreated`.
    pub created_at: u64,
    /// Block time of `ResultsSubmitted`, if the provider submitted.
    pub results_at: Option<u64>,
    /// Whether the job creator challenged the results or a failure report.
    pub challenged: bool,
    /// How it ended, if it has.
    pub outcome: Option<Outcome>,
}

/// A provider's reputation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reputation {
    /// Deals that paid the provider for results.
    pub completed: u64,
    /// Deals with no results in time.
    pub timed_out: u64,
    /// Deals with a challenge of results or of a failure report.
    pub challenged: u64,
    /// Deals a mediator decided against the provider.
    pub lost: u64,
    /// Deals that refunded everyone.
    pub refunded: u64,
    /// Deals not finished.
    pub open: u64,
    /// Median seconds from `DealCreated` to `ResultsSubmitted` (the mean of the
    /// two middle ones, rounded down, for an even count); `None` without results.
    pub median_secs_to_results: Option<u64>,
    /// [`score`] of the counts above.
    pub score: f64,
}

/// `(completed + 1) / (completed + timed_out + lost + 2)`: in `(0, 1)`, 0.5 for a new provider.
pub fn score(completed: u64, timed_out: u64, lost: u64) -> f64 {
    let good = completed.saturating_add(PRIOR_COMPLETED) as f64;
    let bad = timed_out.saturating_add(lost).saturating_add(PRIOR_FAILED) as f64;
    good / (good + bad)
}

/// The median of some durations (the mean of the two middle ones, rounded down, for an even count).
pub fn median(mut secs: Vec<u64>) -> Option<u64> {
    secs.sort_unstable();
    let n = secs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(secs[n / 2]),
        _ => {
            let (a, b) = (secs[n / 2 - 1], secs[n / 2]);
            Some(a + (b - a) / 2)
        }
    }
}

/// The reputation of a provider with these deals.
pub fn reputation<'a>(deals: impl IntoIterator<Item = &'a DealRecord>) -> Reputation {
    let mut r = Reputation::default();
    let mut to_results = Vec::new();
    for d in deals {
        match Standing::of(d.outcome) {
            Standing::Completed => r.completed += 1,
            Standing::TimedOut => r.timed_out += 1,
            Standing::Lost => r.lost += 1,
            Standing::Refunded => r.refunded += 1,
            Standing::Open => r.open += 1,
        }
        let mediated_outcome = d.outcome.is_some_and(|o| {
            o.mediated()
                || matches!(o, Outcome::NoMediationInTime | Outcome::FailureNoMediationInTime)
        });
        if d.challenged || mediated_outcome {
            r.challenged += 1;
        }
        if let Some(t) = d.results_at {
            to_results.push(t.saturating_sub(d.created_at));
        }
    }
    r.median_secs_to_results = median(to_results);
    r.score = score(r.completed, r.timed_out, r.lost);
    r
}

/// A controller event, as reputation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealEvent {
    /// `DealCreated` of `deal` with `provider`, in a block of time `at`.
    Created {
        /// The deal id.
        deal: B256,
        /// The deal's provider.
        provider: Address,
        /// The block's timestamp.
        at: u64,
    },
    /// `ResultsSubmitted` of `deal`, in a block of time `at`.
    ResultsSubmitted {
        /// The deal id.
        deal: B256,
        /// The block's timestamp.
        at: u64,
    },
    /// `ResultsChallenged` or `FailureChallenged` of `deal`.
    Challenged {
        /// The deal id.
        deal: B256,
    },
    /// `DealFinished` of `deal` with `outcome`.
    Finished {
        /// The deal id.
        deal: B256,
        /// How it ended.
        outcome: Outcome,
    },
}

/// Each provider's reputation from the controller's events in chain order.
/// Events of deals whose `DealCreated` is not among them are ignored.
pub fn by_provider(events: impl IntoIterator<Item = DealEvent>) -> BTreeMap<Address, Reputation> {
    let mut deals: BTreeMap<B256, (Address, DealRecord)> = BTreeMap::new();
    for e in events {
        match e {
            DealEvent::Created { deal, provider, at } => {
                deals.insert(deal, (provider, DealRecord { created_at: at, ..Default::default() }));
            }
            DealEvent::ResultsSubmitted { deal, at } => {
                if let Some((_, d)) = deals.get_mut(&deal) {
                    d.results_at = Some(at);
                }
            }
            DealEvent::Challenged { deal } => {
                if let Some((_, d)) = deals.get_mut(&deal) {
                    d.challenged = true;
                }
            }
            DealEvent::Finished { deal, outcome } => {
                if let Some((_, d)) = deals.get_mut(&deal) {
                    d.outcome = Some(outcome);
                }
            }
        }
    }
    let mut per: BTreeMap<Address, Vec<DealRecord>> = BTreeMap::new();
    for (provider, d) in deals.into_values() {
        per.entry(provider).or_default().push(d);
    }
    per.into_iter().map(|(p, ds)| (p, reputation(&ds))).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn finished(outcome: Outcome) -> DealRecord {
        DealRecord { outcome: Some(outcome), ..Default::default() }
    }

    #[test]
    fn every_outcome_counts_once() {
        let deals: Vec<DealRecord> = Outcome::ALL.iter().map(|o| finished(*o)).collect();
        let r = reputation(&deals);
        assert_eq!((r.completed, r.timed_out, r.lost, r.refunded, r.open), (3, 1, 2, 4, 0));
        // MediationAccepted/Rejected, NoMediationInTime, FailureUpheld/Refuted/NoMediationInTime.
        assert_eq!(r.challenged, 6);
        assert!((r.score - 4.0 / 8.0).abs() < 1e-12);
        assert_eq!(r.median_secs_to_results, None);
    }

    #[test]
    fn a_new_provider_scores_one_half() {
        let r = reputation(&[]);
        assert_eq!(r.score, 0.5);
        assert!((score(1, 0, 0) - 2.0 / 3.0).abs() < 1e-12);
        assert!((score(0, 1, 1) - 1.0 / 4.0).abs() < 1e-12);
        assert!(score(u64::MAX, 0, 0) <= 1.0);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![7]), Some(7));
        assert_eq!(median(vec![30, 10, 20]), Some(20));
        assert_eq!(median(vec![40, 10, 20, 30]), Some(25));
        assert_eq!(median(vec![u64::MAX, u64::MAX - 1]), Some(u64::MAX - 1));
    }

    #[test]
    fn events_fold_into_each_providers_deals() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let id = B256::repeat_byte;
        let events = [
            DealEvent::Created { deal: id(1), provider: a, at: 100 },
            DealEvent::Created { deal: id(2), provider: a, at: 100 },
            DealEvent::Created { deal: id(3), provider: b, at: 100 },
            DealEvent::ResultsSubmitted { deal: id(1), at: 110 },
            DealEvent::ResultsSubmitted { deal: id(2), at: 130 },
            DealEvent::Finished { deal: id(1), outcome: Outcome::Accepted },
            DealEvent::Challenged { deal: id(2) },
            DealEvent::Finished { deal: id(3), outcome: Outcome::NoResultsInTime },
            // A deal created before the events read: ignored.
            DealEvent::Finished { deal: id(9), outcome: Outcome::Accepted },
        ];
        let r = by_provider(events);
        assert_eq!(r.len(), 2);
        let ra = r[&a];
        assert_eq!((ra.completed, ra.challenged, ra.open), (1, 1, 1));
        assert_eq!(ra.median_secs_to_results, Some(20));
        let rb = r[&b];
        assert_eq!((rb.timed_out, rb.completed), (1, 0));
        assert_eq!(rb.median_secs_to_results, None);
        assert!((rb.score - 1.0 / 3.0).abs() < 1e-12);
    }

    fn outcome() -> impl Strategy<Value = Option<Outcome>> {
        proptest::option::of(proptest::sample::select(Outcome::ALL.to_vec()))
    }

    proptest! {
        #[test]
        fn score_is_in_the_open_unit_interval(c in 0u64..1 << 40, t in 0u64..1 << 40, l in 0u64..1 << 40) {
            let s = score(c, t, l);
            prop_assert!(s > 0.0 && s < 1.0, "{s}");
        }

        #[test]
        fn a_good_deal_never_lowers_it_and_a_bad_one_never_raises_it(
            c in 0u64..1 << 32, t in 0u64..1 << 32, l in 0u64..1 << 32,
        ) {
            let s = score(c, t, l);
            prop_assert!(score(c + 1, t, l) >= s);
            prop_assert!(score(c, t + 1, l) <= s);
            prop_assert!(score(c, t, l + 1) <= s);
        }

        #[test]
        fn one_more_deal_moves_the_score_its_way(
            outcomes in proptest::collection::vec(outcome(), 0..40),
            next in outcome(),
        ) {
            let mut deals: Vec<DealRecord> =
                outcomes.iter().map(|o| DealRecord { outcome: *o, ..Default::default() }).collect();
            let before = reputation(&deals);
            deals.push(DealRecord { outcome: next, ..Default::default() });
            let after = reputation(&deals);
            prop_assert!(after.score > 0.0 && after.score < 1.0);
            match Standing::of(next) {
                Standing::Completed => prop_assert!(after.score >= before.score),
                Standing::TimedOut | Standing::Lost => prop_assert!(after.score <= before.score),
                Standing::Refunded | Standing::Open => prop_assert_eq!(after.score, before.score),
            }
            let total = after.completed + after.timed_out + after.lost + after.refunded + after.open;
            prop_assert_eq!(total, deals.len() as u64);
        }

        #[test]
        fn the_median_lies_between_the_fastest_and_slowest(
            secs in proptest::collection::vec(0u64..1_000_000, 1..30),
        ) {
            let m = median(secs.clone()).unwrap();
            prop_assert!(m >= *secs.iter().min().unwrap() && m <= *secs.iter().max().unwrap());
        }
    }
}
