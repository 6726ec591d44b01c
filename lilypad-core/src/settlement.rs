//! Settlement: who gets which escrowed funds in each final outcome of a deal.
//!
//! [`settle`] is the single source of truth for the payout table. The
//! Solidity contract implements the same table (one internal function per
//! [`Outcome`]) and the cross-implementation tests hold the two equal, so the
//! table is deliberately small and has no arithmetic beyond one subtraction
//! and one `min`.
//!
//! # Escrows
//!
//! Each escrow is paid in by exactly one party and is held per deal (never
//! pooled):
//!
//! | escrow | paid in by | amount | when |
//! |---|---|---|---|
//! | [`Escrow::Payment`] | job creator | `terms.payment_collateral` | deal creation |
//! | [`Escrow::TimeoutCollateral`] | resource provider | `terms.timeout_collateral` | deal creation |
//! | [`Escrow::ResultsCollateral`] | resource provider | `terms.results_collateral` | with the results |
//! | [`Escrow::MediationFee`] | job creator | `terms.mediation_fee` | with a challenge |
//!
//! # Payout table
//!
//! `price`, `payment`, `timeout`, `results` and `fee` are the deal's terms;
//! `m = min(fee, results)`. A dash means the escrow does not exist in that
//! outcome (it was never paid in).
//!
//! | outcome | Payment | TimeoutCollateral | ResultsCollateral | MediationFee |
//! |---|---|---|---|---|
//! | `Accepted` | RP: `price`; JC: `payment - price` | RP: `timeout` | RP: `results` | - |
//! | `NoJudgementInTime` | RP: `price`; JC: `payment - price` | RP: `timeout` | RP: `results` | - |
//! | `NoResultsInTime` | JC: `payment` | JC: `timeout` (slashed) | - | - |
//! | `MediationAccepted` | RP: `price`; JC: `payment - price` | RP: `timeout` | RP: `results` | Mediator: `fee` |
//! | `MediationRejected` | JC: `payment` | RP: `timeout` | Mediator: `m`; JC: `results - m` | Mediator: `fee - m`; JC: `m` |
//! | `NoMediationInTime` | JC: `payment` | RP: `timeout` | RP: `results` | JC: `fee` |
//! | `FailureAccepted` | JC: `payment` | RP: `timeout` | - | - |
//! | `FailureUpheld` | JC: `payment` | RP: `timeout` | - | Mediator: `fee` |
//! | `FailureRefuted` | JC: `payment` | Mediator: `t`; JC: `timeout - t` | - | Mediator: `fee - t`; JC: `t` |
//! | `FailureNoMediationInTime` | JC: `payment` | RP: `timeout` | - | JC: `fee` |
//!
//! The four `Failure*` outcomes follow a failure report: the provider says
//! the job creator made the job impossible (a missing image, an unresolvable
//! module, inputs that break the module's rules). Accepted, both get their
//! money back. Challenged, a mediator re-runs the job: a report it upholds
//! costs the job creator the fee; a report it refutes costs the provider its
//! timeout collateral exactly as if it had never answered, with
//! `t = min(fee, timeout)` paying the mediator first. Lying about a failure
//! therefore never pays better than running the job.
//!
//! In `MediationRejected` the provider lost, so the provider pays the
//! mediator: the mediator gets exactly `fee` in total, from the provider's
//! results collateral first (`m`), and only a shortfall (`fee - m`, non-zero
//! only when `results < fee`) comes out of the job creator's fee escrow. The
//! job creator gets the rest of both escrows back. In `MediationAccepted` the
//! job creator lost and its fee escrow pays the mediator.
//!
//! Rows of amount zero are omitted; rows are sorted by `(from, to)` in the
//! declaration order of [`Escrow`] and [`Party`].
//!
//! # When rows are paid on chain
//!
//! The provider's timeout collateral goes back to it when it submits results,
//! so in every outcome reached after a submission (all but `NoResultsInTime`)
//! the `TimeoutCollateral -> RP` row was paid at `submitResults`, not by the
//! settling transaction. [`Settlement::released_at_submission`] and
//! [`Settlement::due_at_settlement`] split the table that way; the Solidity
//! outcome functions pay only the rows of `due_at_settlement`.
//!
//! # Validity
//!
//! Terms settle iff `price <= payment_collateral` and the escrows that exist
//! in the outcome add up to at most `U256::MAX` (on chain they are all held
//! at once by the contract, so their sum is bounded by the token's total
//! supply). For such terms [`settle`] never fails and every total fits.

use std::fmt;

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use crate::deal::DealTerms;

/// How a deal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The job creator accepted the results.
    Accepted,
    /// The provider submitted no results before the submit deadline.
    NoResultsInTime,
    /// The job creator neither accepted nor challenged in time; the results count as accepted.
    NoJudgementInTime,
    /// The mediator found the results right; the job creator lost the challenge.
    MediationAccepted,
    /// The mediator found the results wrong; the provider lost.
    MediationRejected,
    /// The mediator gave no verdict in time; everyone is refunded.
    NoMediationInTime,
    /// The provider reported a failure the job creator caused (a missing
    /// image, an unresolvable module, inputs that break the module's rules)
    /// and the job creator accepted it, or did not answer in time: both are refunded.
    FailureAccepted,
    /// The job creator challenged a failure report and the mediator found it right.
    FailureUpheld,
    /// The job creator challenged a failure report and the mediator could run
    /// the job: the provider lied and loses its timeout collateral.
    FailureRefuted,
    /// A challenged failure report got no verdict from any mediator in time; everyone is refunded.
    FailureNoMediationInTime,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Accepted,
        Self::NoResultsInTime,
        Self::NoJudgementInTime,
        Self::MediationAccepted,
        Self::MediationRejected,
        Self::NoMediationInTime,
        Self::FailureAccepted,
        Self::FailureUpheld,
        Self::FailureRefuted,
        Self::FailureNoMediationInTime,
    ];

    /// The escrows that were paid in before a deal reaches this outcome.
    pub const fn escrows(self) -> &'static [Escrow] {
        match self {
            Self::NoResultsInTime | Self::FailureAccepted => {
                &[Escrow::Payment, Escrow::TimeoutCollateral]
            }
            Self::FailureUpheld | Self::FailureRefuted | Self::FailureNoMediationInTime => {
                &[Escrow::Payment, Escrow::TimeoutCollateral, Escrow::MediationFee]
            }
            Self::Accepted | Self::NoJudgementInTime => {
                &[Escrow::Payment, Escrow::TimeoutCollateral, Escrow::ResultsCollateral]
            }
            Self::MediationAccepted | Self::MediationRejected | Self::NoMediationInTime => &[
                Escrow::Payment,
                Escrow::TimeoutCollateral,
                Escrow::ResultsCollateral,
                Escrow::MediationFee,
            ],
        }
    }

    /// Whether the provider submitted results before this outcome.
    pub const fn results_submitted(self) -> bool {
        matches!(
            self,
            Self::Accepted
                | Self::NoJudgementInTime
                | Self::MediationAccepted
                | Self::MediationRejected
                | Self::NoMediationInTime
        )
    }

    /// Whether the provider reported a failure the job creator caused.
    pub const fn failure_reported(self) -> bool {
        matches!(
            self,
            Self::FailureAccepted
                | Self::FailureUpheld
                | Self::FailureRefuted
                | Self::FailureNoMediationInTime
        )
    }

    /// Whether a mediator was involved (and is paid the fee).
    pub const fn mediated(self) -> bool {
        matches!(
            self,
            Self::MediationAccepted
                | Self::MediationRejected
                | Self::FailureUpheld
                | Self::FailureRefuted
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Accepted => "accepted",
            Self::NoResultsInTime => "no results in time",
            Self::NoJudgementInTime => "no judgement in time",
            Self::MediationAccepted => "mediation accepted the results",
            Self::MediationRejected => "mediation rejected the results",
            Self::NoMediationInTime => "no mediation in time",
            Self::FailureAccepted => "failure report accepted",
            Self::FailureUpheld => "mediation upheld the failure report",
            Self::FailureRefuted => "mediation refuted the failure report",
            Self::FailureNoMediationInTime => "no mediation of the failure report in time",
        };
        f.write_str(s)
    }
}

/// A per-deal escrow, each paid in by one party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escrow {
    /// The job creator's payment collateral, escrowed at deal creation.
    Payment,
    /// The provider's timeout collateral, escrowed at deal creation.
    TimeoutCollateral,
    /// The provider's results collateral, escrowed with its results.
    ResultsCollateral,
    /// The job creator's mediation fee, escrowed with a challenge.
    MediationFee,
}

impl Escrow {
    /// Every escrow, in declaration order.
    pub const ALL: [Self; 4] =
        [Self::Payment, Self::TimeoutCollateral, Self::ResultsCollateral, Self::MediationFee];

    /// The party that pays this escrow in.
    pub const fn payer(self) -> Party {
        match self {
            Self::Payment | Self::MediationFee => Party::JobCreator,
            Self::TimeoutCollateral | Self::ResultsCollateral => Party::ResourceProvider,
        }
    }

    /// The amount of this escrow under `terms`.
    pub const fn amount(self, terms: &DealTerms) -> U256 {
        match self {
            Self::Payment => terms.payment_collateral,
            Self::TimeoutCollateral => terms.timeout_collateral,
            Self::ResultsCollateral => terms.results_collateral,
            Self::MediationFee => terms.mediation_fee,
        }
    }
}

impl fmt::Display for Escrow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Payment => "payment collateral",
            Self::TimeoutCollateral => "timeout collateral",
            Self::ResultsCollateral => "results collateral",
            Self::MediationFee => "mediation fee",
        };
        f.write_str(s)
    }
}

/// Someone who can receive a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The job creator.
    JobCreator,
    /// The resource provider.
    ResourceProvider,
    /// The mediator chosen for the challenge.
    Mediator,
}

impl Party {
    /// Every party, in declaration order.
    pub const ALL: [Self; 3] = [Self::JobCreator, Self::ResourceProvider, Self::Mediator];
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::JobCreator => "job creator",
            Self::ResourceProvider => "resource provider",
            Self::Mediator => "mediator",
        };
        f.write_str(s)
    }
}

/// One row of a settlement: `amount` from escrow `from` to party `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Payout {
    /// The escrow the funds come from.
    pub from: Escrow,
    /// Who receives them.
    pub to: Party,
    /// How much, in token base units (never zero).
    pub amount: U256,
}

/// Terms that cannot be settled; such a deal cannot exist on chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettlementError {
    /// The price is more than the job creator escrowed.
    #[error(
        "price {price} is over the payment collateral {payment_collateral}; \
         the job creator must escrow at least the price"
    )]
    PriceOverPayment {
        /// The deal's price.
        price: U256,
        /// The job creator's payment collateral.
        payment_collateral: U256,
    },
    /// The escrows of the outcome add up to more than `U256::MAX` token units.
    #[error(
        "the escrows of a deal settled as '{outcome}' add up to more than 2^256-1 \
         (the {escrow} of {amount} overflows); no token supply can fund them"
    )]
    EscrowsOverflow {
        /// The outcome being settled.
        outcome: Outcome,
        /// The escrow whose addition overflowed.
        escrow: Escrow,
        /// Its amount.
        amount: U256,
    },
}

/// The payouts of one final outcome of one deal; only [`settle`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    outcome: Outcome,
    paid_in: Vec<(Escrow, U256)>,
    payouts: Vec<Payout>,
    total_in: U256,
}

impl Settlement {
    /// The outcome settled.
    pub const fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Every non-zero payout, sorted by `(from, to)`.
    pub fn payouts(&self) -> &[Payout] {
        &self.payouts
    }

    /// The escrows that exist in this outcome with what was paid into each (zeros included).
    pub fn escrows(&self) -> &[(Escrow, U256)] {
        &self.paid_in
    }

    /// What was paid into `escrow`; zero for an escrow that does not exist in this outcome.
    pub fn paid_in(&self, escrow: Escrow) -> U256 {
        self.paid_in.iter().find(|(e, _)| *e == escrow).map_or(U256::ZERO, |(_, a)| *a)
    }

    /// What was paid out of `escrow`; equals [`Self::paid_in`] for every escrow.
    pub fn paid_out_of(&self, escrow: Escrow) -> U256 {
        self.sum(|p| p.from == escrow)
    }

    /// Everything `party` receives, across escrows.
    pub fn total_to(&self, party: Party) -> U256 {
        self.sum(|p| p.to == party)
    }

    /// Everything paid in, across escrows.
    pub const fn total_in(&self) -> U256 {
        self.total_in
    }

    /// Everything paid out; equals [`Self::total_in`].
    pub fn total_out(&self) -> U256 {
        self.sum(|_| true)
    }

    /// Rows the contract pays when the provider submits results (its timeout collateral back).
    pub fn released_at_submission(&self) -> impl Iterator<Item = &Payout> {
        let submitted = self.outcome.results_submitted();
        self.payouts.iter().filter(move |p| submitted && p.from == Escrow::TimeoutCollateral)
    }

    /// Rows the settling transaction pays: all but [`Self::released_at_submission`].
    pub fn due_at_settlement(&self) -> impl Iterator<Item = &Payout> {
        let submitted = self.outcome.results_submitted();
        self.payouts.iter().filter(move |p| !(submitted && p.from == Escrow::TimeoutCollateral))
    }

    fn sum(&self, pred: impl Fn(&Payout) -> bool) -> U256 {
        // Any subset of the payouts sums to at most `total_in`, which `settle`
        // checked fits in 256 bits, so this cannot saturate.
        self.payouts
            .iter()
            .filter(|p| pred(p))
            .fold(U256::ZERO, |acc, p| acc.saturating_add(p.amount))
    }
}

/// The payout table of `outcome` under `terms` (see the module docs).
pub fn settle(terms: &DealTerms, outcome: Outcome) -> Result<Settlement, SettlementError> {
    let DealTerms {
        price,
        payment_collateral: payment,
        timeout_collateral: timeout,
        results_collateral: results,
        mediation_fee: fee,
        ..
    } = *terms;
    let payment_rest = payment
        .checked_sub(price)
        .ok_or(SettlementError::PriceOverPayment { price, payment_collateral: payment })?;

    let mut paid_in = Vec::with_capacity(4);
    let mut total_in = U256::ZERO;
    for &escrow in outcome.escrows() {
        let amount = escrow.amount(terms);
        total_in = total_in.checked_add(amount).ok_or(SettlementError::EscrowsOverflow {
            outcome,
            escrow,
            amount,
        })?;
        paid_in.push((escrow, amount));
    }

    use Escrow::{MediationFee, Payment, ResultsCollateral, TimeoutCollateral};
    use Party::{JobCreator as Jc, Mediator, ResourceProvider as Rp};
    let rows: Vec<(Escrow, Party, U256)> = match outcome {
        Outcome::Accepted | Outcome::NoJudgementInTime => vec![
            (Payment, Rp, price),
            (Payment, Jc, payment_rest),
            (TimeoutCollateral, Rp, timeout),
            (ResultsCollateral, Rp, results),
        ],
        Outcome::NoResultsInTime => vec![(Payment, Jc, payment), (TimeoutCollateral, Jc, timeout)],
        Outcome::MediationAccepted => vec![
            (Payment, Rp, price),
            (Payment, Jc, payment_rest),
            (TimeoutCollateral, Rp, timeout),
            (ResultsCollateral, Rp, results),
            (MediationFee, Mediator, fee),
        ],
        Outcome::MediationRejected => {
            // The provider lost: its results collateral pays the mediator
            // first; only a shortfall comes out of the job creator's fee.
            let from_results = fee.min(results);
            vec![
                (Payment, Jc, payment),
                (TimeoutCollateral, Rp, timeout),
                (ResultsCollateral, Mediator, from_results),
                // Cannot underflow: from_results <= results and <= fee.
                (ResultsCollateral, Jc, results - from_results),
                (MediationFee, Mediator, fee - from_results),
                (MediationFee, Jc, from_results),
            ]
        }
        Outcome::NoMediationInTime => vec![
            (Payment, Jc, payment),
            (TimeoutCollateral, Rp, timeout),
            (ResultsCollateral, Rp, results),
            (MediationFee, Jc, fee),
        ],
        Outcome::FailureAccepted => vec![(Payment, Jc, payment), (TimeoutCollateral, Rp, timeout)],
        Outcome::FailureUpheld => vec![
            (Payment, Jc, payment),
            (TimeoutCollateral, Rp, timeout),
            (MediationFee, Mediator, fee),
        ],
        Outcome::FailureRefuted => {
            // As MediationRejected, with the timeout collateral (still held:
            // no results were submitted) in place of the results collateral.
            let from_timeout = fee.min(timeout);
            vec![
                (Payment, Jc, payment),
                (TimeoutCollateral, Mediator, from_timeout),
                // Cannot underflow: from_timeout <= timeout and <= fee.
                (TimeoutCollateral, Jc, timeout - from_timeout),
                (MediationFee, Mediator, fee - from_timeout),
                (MediationFee, Jc, from_timeout),
            ]
        }
        Outcome::FailureNoMediationInTime => {
            vec![(Payment, Jc, payment), (TimeoutCollateral, Rp, timeout), (MediationFee, Jc, fee)]
        }
    };
    let mut payouts: Vec<Payout> = rows
        .into_iter()
        .filter(|(_, _, amount)| !amount.is_zero())
        .map(|(from, to, amount)| Payout { from, to, amount })
        .collect();
    payouts.sort();
    Ok(Settlement { outcome, paid_in, payouts, total_in })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(price: u64, payment: u64, timeout: u64, results: u64, fee: u64) -> DealTerms {
        DealTerms {
            price: U256::from(price),
            payment_collateral: U256::from(payment),
            timeout_collateral: U256::from(timeout),
            results_collateral: U256::from(results),
            mediation_fee: U256::from(fee),
            submit_window_secs: 60,
            judge_window_secs: 60,
            mediate_window_secs: 60,
        }
    }

    fn rows(s: &Settlement) -> Vec<(Escrow, Party, u64)> {
        s.payouts().iter().map(|p| (p.from, p.to, p.amount.to::<u64>())).collect()
    }

    use Escrow::{
        MediationFee as Fee, Payment as Pay, ResultsCollateral as Res, TimeoutCollateral as Tmo,
    };
    use Party::{JobCreator as Jc, Mediator as Med, ResourceProvider as Rp};

    // price 30, payment 100, timeout 7, results 60, fee 10
    fn t() -> DealTerms {
        terms(30, 100, 7, 60, 10)
    }

    #[test]
    fn accepted_pays_price_and_returns_collateral() {
        let s = settle(&t(), Outcome::Accepted).unwrap();
        assert_eq!(rows(&s), vec![(Pay, Jc, 70), (Pay, Rp, 30), (Tmo, Rp, 7), (Res, Rp, 60)]);
        assert_eq!(s.total_to(Rp), U256::from(97));
        assert_eq!(s.total_to(Jc), U256::from(70));
        assert_eq!(s.total_to(Med), U256::ZERO);
        assert_eq!(s.total_in(), U256::from(167));
        assert_eq!(s.total_out(), U256::from(167));
        assert_eq!(s.paid_in(Fee), U256::ZERO);
        assert_eq!(s.escrows().len(), 3);
    }

    #[test]
    fn no_judgement_in_time_is_paid_like_accepted() {
        let a = settle(&t(), Outcome::Accepted).unwrap();
        let n = settle(&t(), Outcome::NoJudgementInTime).unwrap();
        assert_eq!(a.payouts(), n.payouts());
        assert_eq!(n.outcome(), Outcome::NoJudgementInTime);
    }

    #[test]
    fn no_results_in_time_slashes_timeout_collateral_to_job_creator() {
        let s = settle(&t(), Outcome::NoResultsInTime).unwrap();
        assert_eq!(rows(&s), vec![(Pay, Jc, 100), (Tmo, Jc, 7)]);
        assert_eq!(s.total_to(Jc), U256::from(107));
        assert_eq!(s.total_to(Rp), U256::ZERO);
        assert_eq!(s.escrows(), &[(Pay, U256::from(100)), (Tmo, U256::from(7))]);
        // Nothing was released early: the provider never submitted.
        assert_eq!(s.released_at_submission().count(), 0);
        assert_eq!(s.due_at_settlement().count(), 2);
    }

    #[test]
    fn mediation_accepted_pays_provider_and_mediator_from_job_creator_fee() {
        let s = settle(&t(), Outcome::MediationAccepted).unwrap();
        assert_eq!(
            rows(&s),
            vec![(Pay, Jc, 70), (Pay, Rp, 30), (Tmo, Rp, 7), (Res, Rp, 60), (Fee, Med, 10)]
        );
        assert_eq!(s.total_to(Med), U256::from(10));
        assert_eq!(s.total_to(Jc), U256::from(70));
    }

    #[test]
    fn mediation_rejected_provider_collateral_pays_mediator() {
        let s = settle(&t(), Outcome::MediationRejected).unwrap();
        assert_eq!(
            rows(&s),
            vec![(Pay, Jc, 100), (Tmo, Rp, 7), (Res, Jc, 50), (Res, Med, 10), (Fee, Jc, 10)]
        );
        assert_eq!(s.total_to(Med), U256::from(10));
        assert_eq!(s.total_to(Jc), U256::from(160));
        assert_eq!(s.total_to(Rp), U256::from(7));
    }

    #[test]
    fn mediation_rejected_shortfall_comes_from_fee_escrow() {
        // results collateral 4 < fee 10: the mediator gets 4 + 6.
        let s = settle(&terms(2, 5, 1, 4, 10), Outcome::MediationRejected).unwrap();
        assert_eq!(
            rows(&s),
            vec![(Pay, Jc, 5), (Tmo, Rp, 1), (Res, Med, 4), (Fee, Jc, 4), (Fee, Med, 6)]
        );
        assert_eq!(s.total_to(Med), U256::from(10));
        // No results collateral at all: the fee escrow pays everything.
        let s = settle(&terms(0, 5, 1, 0, 10), Outcome::MediationRejected).unwrap();
        assert_eq!(rows(&s), vec![(Pay, Jc, 5), (Tmo, Rp, 1), (Fee, Med, 10)]);
    }

    #[test]
    fn no_mediation_in_time_refunds_everyone() {
        let s = settle(&t(), Outcome::NoMediationInTime).unwrap();
        assert_eq!(rows(&s), vec![(Pay, Jc, 100), (Tmo, Rp, 7), (Res, Rp, 60), (Fee, Jc, 10)]);
        assert_eq!(s.total_to(Med), U256::ZERO);
    }

    #[test]
    fn zero_rows_are_omitted() {
        let s = settle(&terms(100, 100, 0, 0, 0), Outcome::Accepted).unwrap();
        assert_eq!(rows(&s), vec![(Pay, Rp, 100)]);
        let s = settle(&terms(0, 0, 0, 0, 0), Outcome::MediationRejected).unwrap();
        assert!(s.payouts().is_empty());
        assert_eq!(s.escrows().len(), 4);
    }

    #[test]
    fn timeout_collateral_released_at_submission_after_results() {
        for outcome in Outcome::ALL.into_iter().filter(|o| o.results_submitted()) {
            let s = settle(&t(), outcome).unwrap();
            let early: Vec<_> = s.released_at_submission().copied().collect();
            assert_eq!(early, vec![Payout { from: Tmo, to: Rp, amount: U256::from(7) }]);
            assert_eq!(s.due_at_settlement().count() + 1, s.payouts().len());
        }
    }

    #[test]
    fn price_over_payment_is_an_error_naming_both() {
        let e = settle(&terms(11, 10, 0, 0, 0), Outcome::Accepted).unwrap_err();
        assert_eq!(
            e,
            SettlementError::PriceOverPayment {
                price: U256::from(11),
                payment_collateral: U256::from(10)
            }
        );
        assert!(e.to_string().contains("price 11 is over the payment collateral 10"));
    }

    #[test]
    fn escrows_that_overflow_are_an_error_only_where_they_exist() {
        let mut t = terms(0, 1, 0, 0, 0);
        t.results_collateral = U256::MAX;
        assert_eq!(
            settle(&t, Outcome::Accepted).unwrap_err(),
            SettlementError::EscrowsOverflow {
                outcome: Outcome::Accepted,
                escrow: Res,
                amount: U256::MAX
            }
        );
        // The provider never posted results collateral in this outcome.
        assert!(settle(&t, Outcome::NoResultsInTime).is_ok());
    }

    #[test]
    fn max_amounts_settle_when_they_fit() {
        let mut t = terms(0, 0, 0, 0, 0);
        t.payment_collateral = U256::MAX;
        t.price = U256::MAX;
        let s = settle(&t, Outcome::MediationAccepted).unwrap();
        assert_eq!(s.total_to(Rp), U256::MAX);
        assert_eq!(s.total_out(), U256::MAX);
    }
}
