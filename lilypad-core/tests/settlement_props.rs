//! Property tests of the settlement table: conservation and who gets what,
//! over random U256 amounts up to 2^256 - 1 (10,000 cases each).

mod common;

use alloy_primitives::{U256, U512};
use common::{amount, valid_terms};
use lilypad_core::{
    deal::DealTerms,
    settlement::{Escrow, Outcome, Party, SettlementError, settle},
};
use proptest::prelude::*;

const CASES: u32 = 10_000;

fn wide(x: U256) -> U512 {
    U512::from(x)
}

/// What each party receives, written from the design's prose, not the table.
fn expected_total(t: &DealTerms, outcome: Outcome, party: Party) -> U512 {
    let (price, pay, tmo, res, fee) = (
        wide(t.price),
        wide(t.payment_collateral),
        wide(t.timeout_collateral),
        wide(t.results_collateral),
        wide(t.mediation_fee),
    );
    let zero = U512::ZERO;
    match (outcome, party) {
        // Results accepted (by the JC, by silence or by the mediator): the RP
        // is paid and gets its collateral back, the JC gets the change.
        (
            Outcome::Accepted | Outcome::NoJudgementInTime | Outcome::MediationAccepted,
            Party::JobCreator,
        ) => pay - price,
        (
            Outcome::Accepted | Outcome::NoJudgementInTime | Outcome::MediationAccepted,
            Party::ResourceProvider,
        ) => price + tmo + res,
        (Outcome::Accepted | Outcome::NoJudgementInTime, Party::Mediator) => zero,
        (Outcome::MediationAccepted, Party::Mediator) => fee,
        // No results: the JC gets its payment back and the slashed collateral.
        (Outcome::NoResultsInTime, Party::JobCreator) => pay + tmo,
        (Outcome::NoResultsInTime, _) => zero,
        // RP lost: it keeps only its (already returned) timeout collateral;
        // the mediator gets the fee; the JC everything else.
        (Outcome::MediationRejected, Party::JobCreator) => pay + res,
        (Outcome::MediationRejected, Party::ResourceProvider) => tmo,
        (Outcome::MediationRejected, Party::Mediator) => fee,
        // Nobody decided: each gets back what it paid in.
        (Outcome::NoMediationInTime, Party::JobCreator) => pay + fee,
        (Outcome::NoMediationInTime, Party::ResourceProvider) => tmo + res,
        (Outcome::NoMediationInTime, Party::Mediator) => zero,
        // A failure the JC caused, accepted or never mediated: each gets back what it paid in.
        (Outcome::FailureAccepted, Party::JobCreator) => pay,
        (Outcome::FailureNoMediationInTime, Party::JobCreator) => pay + fee,
        (Outcome::FailureAccepted | Outcome::FailureNoMediationInTime, Party::ResourceProvider) => {
            tmo
        }
        (Outcome::FailureAccepted | Outcome::FailureNoMediationInTime, Party::Mediator) => zero,
        // The mediator upheld the report: the JC's fee pays it, nobody else loses.
        (Outcome::FailureUpheld, Party::JobCreator) => pay,
        (Outcome::FailureUpheld, Party::ResourceProvider) => tmo,
        (Outcome::FailureUpheld, Party::Mediator) => fee,
        // The report was a lie: the RP loses its timeout collateral as if it
        // had never answered, which pays the mediator; the JC gets the rest.
        (Outcome::FailureRefuted, Party::JobCreator) => pay + tmo,
        (Outcome::FailureRefuted, Party::ResourceProvider) => zero,
        (Outcome::FailureRefuted, Party::Mediator) => fee,
    }
}

/// Which escrows exist per outcome, from the protocol steps.
fn expected_escrows(outcome: Outcome) -> Vec<Escrow> {
    let mut e = vec![Escrow::Payment, Escrow::TimeoutCollateral];
    let failure = matches!(
        outcome,
        Outcome::FailureAccepted
            | Outcome::FailureUpheld
            | Outcome::FailureRefuted
            | Outcome::FailureNoMediationInTime
    );
    if outcome != Outcome::NoResultsInTime && !failure {
        e.push(Escrow::ResultsCollateral);
    }
    if matches!(
        outcome,
        Outcome::MediationAccepted
            | Outcome::MediationRejected
            | Outcome::NoMediationInTime
            | Outcome::FailureUpheld
            | Outcome::FailureRefuted
            | Outcome::FailureNoMediationInTime
    ) {
        e.push(Escrow::MediationFee);
    }
    e
}

fn outcome() -> impl Strategy<Value = Outcome> {
    proptest::sample::select(Outcome::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every escrow pays out exactly what was paid in; no payout is zero or
    /// exceeds its source; rows are sorted; totals agree.
    #[test]
    fn conserves_funds_per_escrow_and_in_total(t in valid_terms()) {
        for outcome in Outcome::ALL {
            let s = settle(&t, outcome).expect("valid terms settle");
            let exists = expected_escrows(outcome);
            let mut total_in = U512::ZERO;
            for escrow in Escrow::ALL {
                let paid_in = if exists.contains(&escrow) { escrow.amount(&t) } else { U256::ZERO };
                prop_assert_eq!(s.paid_in(escrow), paid_in, "{:?} {:?}", outcome, escrow);
                let out: U512 = s.payouts().iter().filter(|p| p.from == escrow)
                    .map(|p| wide(p.amount)).fold(U512::ZERO, |a, b| a + b);
                prop_assert_eq!(out, wide(paid_in), "{:?} {:?} out", outcome, escrow);
                prop_assert_eq!(s.paid_out_of(escrow), paid_in);
                total_in += wide(paid_in);
            }
            prop_assert_eq!(
                s.escrows().iter().map(|(e, _)| *e).collect::<Vec<_>>(), exists
            );
            prop_assert_eq!(wide(s.total_in()), total_in);
            prop_assert_eq!(wide(s.total_out()), total_in);
            let by_party: U512 = Party::ALL.iter().map(|p| wide(s.total_to(*p))).fold(U512::ZERO, |a, b| a + b);
            prop_assert_eq!(by_party, total_in);
            for p in s.payouts() {
                prop_assert!(!p.amount.is_zero());
                prop_assert!(p.amount <= s.paid_in(p.from), "{:?} over its source", p);
            }
            prop_assert!(s.payouts().windows(2).all(|w| (w[0].from, w[0].to) < (w[1].from, w[1].to)));
            // Early release plus settlement rows are the whole table.
            prop_assert_eq!(
                s.released_at_submission().count() + s.due_at_settlement().count(),
                s.payouts().len()
            );
        }
    }

    /// Each party gets what the design's prose says, for every outcome.
    #[test]
    fn each_party_gets_what_the_design_says(t in valid_terms()) {
        for outcome in Outcome::ALL {
            let s = settle(&t, outcome).expect("valid terms settle");
            for party in Party::ALL {
                prop_assert_eq!(
                    wide(s.total_to(party)), expected_total(&t, outcome, party),
                    "{:?} {:?}", outcome, party
                );
            }
        }
    }

    /// The mediator gets exactly the fee when it mediated, and nothing otherwise.
    #[test]
    fn mediator_gets_exactly_the_fee_only_when_mediated(t in valid_terms(), o in outcome()) {
        let s = settle(&t, o).expect("valid terms settle");
        let expected = if o.mediated() { t.mediation_fee } else { U256::ZERO };
        prop_assert_eq!(s.total_to(Party::Mediator), expected);
        if o == Outcome::MediationRejected {
            // The loser (RP) pays first: the JC's fee escrow only covers a shortfall.
            let from_fee: U256 = s.payouts().iter()
                .filter(|p| p.from == Escrow::MediationFee && p.to == Party::Mediator)
                .map(|p| p.amount).sum();
            prop_assert_eq!(from_fee, t.mediation_fee.saturating_sub(t.results_collateral));
        }
    }

    /// No results in time: the JC gets payment + timeout collateral, the RP nothing.
    #[test]
    fn no_results_in_time_pays_job_creator_payment_and_timeout(t in valid_terms()) {
        let s = settle(&t, Outcome::NoResultsInTime).expect("valid terms settle");
        prop_assert_eq!(
            wide(s.total_to(Party::JobCreator)),
            wide(t.payment_collateral) + wide(t.timeout_collateral)
        );
        prop_assert_eq!(s.total_to(Party::ResourceProvider), U256::ZERO);
        prop_assert_eq!(s.released_at_submission().count(), 0);
    }

    /// On arbitrary (not necessarily valid) amounts, settle fails exactly when
    /// the terms are invalid, with the error naming the cause; no other error
    /// path (underflow) is reachable.
    #[test]
    fn fails_only_on_invalid_terms(
        price in amount(), pay in amount(), tmo in amount(), res in amount(), fee in amount(),
        o in outcome(),
    ) {
        let t = DealTerms {
            price, payment_collateral: pay, timeout_collateral: tmo,
            results_collateral: res, mediation_fee: fee,
            submit_window_secs: 1, judge_window_secs: 1, mediate_window_secs: 1,
        };
        let sum: U512 = expected_escrows(o).iter().map(|e| wide(e.amount(&t))).fold(U512::ZERO, |a, b| a + b);
        match settle(&t, o) {
            Ok(s) => {
                prop_assert!(price <= pay && sum <= wide(U256::MAX));
                prop_assert_eq!(wide(s.total_out()), sum);
            }
            Err(SettlementError::PriceOverPayment { price: p, payment_collateral: c }) => {
                prop_assert!(price > pay);
                prop_assert_eq!((p, c), (price, pay));
            }
            Err(SettlementError::EscrowsOverflow { outcome, .. }) => {
                prop_assert!(price <= pay && sum > wide(U256::MAX));
                prop_assert_eq!(outcome, o);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
