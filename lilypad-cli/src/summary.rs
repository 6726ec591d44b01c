//! What a finished deal paid whom, as lines a person reads.
//!
//! Built on the core's payout table ([`settle`]), so every outcome (and every escrow
//! an outcome adds later) is described by the same few rows: the price the provider
//! was paid, the provider's collateral returned to it, what the job creator got back,
//! the provider's collateral the job creator received instead, and the mediator's pay.

use lilypad_sdk::core::{
    U256,
    amount::AmountStyle,
    settlement::{Escrow, Party, Settlement},
};

/// One line of a summary: a label and its amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Payment -> provider: the price.
    ProviderPaid,
    /// Provider collateral -> provider.
    ReturnedCollateral,
    /// Job creator's escrows -> job creator.
    Refunded,
    /// Provider collateral -> job creator.
    Slashed,
    /// Anything -> mediator.
    MediatorPaid,
}

impl Line {
    fn of(from: Escrow, to: Party) -> Self {
        match (to, from.payer()) {
            (Party::Mediator, _) => Self::MediatorPaid,
            (Party::ResourceProvider, Party::JobCreator) => Self::ProviderPaid,
            (Party::ResourceProvider, _) => Self::ReturnedCollateral,
            (Party::JobCreator, Party::JobCreator) => Self::Refunded,
            (Party::JobCreator, _) => Self::Slashed,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::ProviderPaid => "provider paid",
            Self::ReturnedCollateral => "returned collateral",
            Self::Refunded => "refunded",
            Self::Slashed => "slashed collateral",
            Self::MediatorPaid => "mediator paid",
        }
    }

    fn note(self) -> &'static str {
        match self {
            Self::ProviderPaid => "the price of the job",
            Self::ReturnedCollateral => "to the provider",
            Self::Refunded => "to the job creator",
            Self::Slashed => "of the provider's, to the job creator",
            Self::MediatorPaid => "the mediation fee",
        }
    }
}

/// The order lines are printed in; "provider paid" and "refunded" always appear (a
/// zero says as much), the others only when something moved.
const LINES: [(Line, bool); 5] = [
    (Line::ProviderPaid, true),
    (Line::ReturnedCollateral, false),
    (Line::Refunded, true),
    (Line::Slashed, false),
    (Line::MediatorPaid, false),
];

/// The summary of a settlement: the outcome, then one aligned line per kind of payout.
pub(crate) fn settlement_lines(s: &Settlement, style: AmountStyle) -> Vec<String> {
    let mut out = vec![format!("{:<21}{}", "outcome", s.outcome())];
    for (line, always) in LINES {
        let total = s
            .payouts()
            .iter()
            .filter(|p| Line::of(p.from, p.to) == line)
            .fold(U256::ZERO, |acc, p| acc.saturating_add(p.amount));
        if always || !total.is_zero() {
            out.push(format!("{:<21}{} ({})", line.label(), style.format(total), line.note()));
        }
    }
    out
}

/// The same payouts as JSON (base units as decimal strings), for `--json`.
pub(crate) fn settlement_json(s: &Settlement) -> serde_json::Value {
    let mut v = serde_json::json!({ "outcome": s.outcome() });
    for (line, _) in LINES {
        let total = s
            .payouts()
            .iter()
            .filter(|p| Line::of(p.from, p.to) == line)
            .fold(U256::ZERO, |acc, p| acc.saturating_add(p.amount));
        v[line.label().replace(' ', "_")] = serde_json::json!(total.to_string());
    }
    v
}

#[cfg(test)]
mod tests {
    use lilypad_sdk::core::{
        deal::DealTerms,
        settlement::{Outcome, settle},
    };

    use super::*;

    fn lp(milli: u64) -> U256 {
        U256::from(milli) * U256::from(10u64).pow(U256::from(15u8))
    }

    /// price 1 LP, payment 1.5 LP, timeout collateral 0.1 LP, results collateral 2 LP,
    /// mediation fee 0.25 LP.
    fn terms() -> DealTerms {
        DealTerms {
            price: lp(1000),
            payment_collateral: lp(1500),
            timeout_collateral: lp(100),
            results_collateral: lp(2000),
            mediation_fee: lp(250),
            submit_window_secs: 600,
            judge_window_secs: 60,
            mediate_window_secs: 60,
        }
    }

    fn text(outcome: Outcome, style: AmountStyle) -> String {
        settlement_lines(&settle(&terms(), outcome).expect("settles"), style).join("\n")
    }

    #[test]
    fn accepted_results_pay_the_price_and_return_the_collateral() {
        assert_eq!(
            text(Outcome::Accepted, AmountStyle::Tokens),
            "\
outcome              accepted
provider paid        1 LP (the price of the job)
returned collateral  2.1 LP (to the provider)
refunded             0.5 LP (to the job creator)"
        );
    }

    #[test]
    fn accepted_results_in_base_units() {
        assert_eq!(
            text(Outcome::Accepted, AmountStyle::BaseUnits),
            "\
outcome              accepted
provider paid        1000000000000000000 wei (the price of the job)
returned collateral  2100000000000000000 wei (to the provider)
refunded             500000000000000000 wei (to the job creator)"
        );
    }

    #[test]
    fn a_timeout_refunds_the_job_creator_with_the_slashed_collateral() {
        assert_eq!(
            text(Outcome::NoResultsInTime, AmountStyle::Tokens),
            "\
outcome              no results in time
provider paid        0 LP (the price of the job)
refunded             1.5 LP (to the job creator)
slashed collateral   0.1 LP (of the provider's, to the job creator)"
        );
    }

    #[test]
    fn a_rejected_challenge_pays_the_mediator_from_the_provider() {
        assert_eq!(
            text(Outcome::MediationRejected, AmountStyle::Tokens),
            "\
outcome              mediation rejected the results
provider paid        0 LP (the price of the job)
returned collateral  0.1 LP (to the provider)
refunded             1.75 LP (to the job creator)
slashed collateral   1.75 LP (of the provider's, to the job creator)
mediator paid        0.25 LP (the mediation fee)"
        );
    }

    #[test]
    fn json_keeps_base_units() {
        let s = settle(&terms(), Outcome::Accepted).expect("settles");
        let v = settlement_json(&s);
        assert_eq!(v["provider_paid"], "1000000000000000000");
        assert_eq!(v["returned_collateral"], "2100000000000000000");
        assert_eq!(v["refunded"], "500000000000000000");
        assert_eq!(v["mediator_paid"], "0");
        assert_eq!(v["outcome"], "accepted");
    }
}
