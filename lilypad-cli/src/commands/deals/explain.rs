//! Why a deal command cannot run now, and when it can: the core's deal state machine
//! ([`transition`]) run on the deal as the chain holds it, put into words.
//!
//! Pure: the deal, the account and the time are parameters, so every message is
//! unit-tested. The chain stays the authority: the commands send their transaction
//! anyway and show the contract's own error next to these words.

use lilypad_sdk::{
    chain::{DealStatus, OnChainDeal},
    core::{
        Address, B256, U256,
        deal::{Deal, DealMembers, DealTerms},
        state::{DealEvent, DealState, TransitionError, transition},
    },
};

use crate::{amounts, when};

/// A command that moves a deal on chain.
///
/// To add one (say `accept-failure`): a variant here with its [`Action::event`],
/// [`Action::command`] and [`Action::what`], a subcommand in `deals/mod.rs`, and its
/// transaction in `deals/act.rs` `send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `acceptResults`: pays the provider.
    Accept,
    /// `challengeResults`: the job creator pays the mediation fee, a mediator decides.
    Challenge,
    /// `claimTimeout`: anyone ends a deal whose deadline has passed.
    ClaimTimeout,
    /// `acceptFailure`: the job creator accepts a failure report; both are refunded.
    AcceptFailure,
    /// `challengeFailure`: the job creator pays the mediation fee, a mediator decides.
    ChallengeFailure,
    /// `redrawMediator`: anyone replaces a mediator that gave no verdict in time.
    RedrawMediator,
}

impl Action {
    /// The core machine's event for this action sent by `by`.
    fn event(self, by: Address) -> DealEvent {
        match self {
            Self::Accept => DealEvent::AcceptResults { by },
            // The contract draws the mediator; see [`machine`].
            Self::Challenge => DealEvent::ChallengeResults { by, mediator: Address::ZERO },
            Self::ClaimTimeout => DealEvent::ClaimTimeout { by },
            Self::AcceptFailure => DealEvent::AcceptFailure { by },
            Self::ChallengeFailure => DealEvent::ChallengeFailure { by, mediator: Address::ZERO },
            // The next mediator is drawn by the contract too.
            Self::RedrawMediator => DealEvent::RedrawMediator { by, mediator: Address::ZERO },
        }
    }

    /// The `lilypad-cli deals` subcommand.
    pub(crate) const fn command(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Challenge => "challenge",
            Self::ClaimTimeout => "claim-timeout",
            Self::AcceptFailure => "accept-failure",
            Self::ChallengeFailure => "challenge-failure",
            Self::RedrawMediator => "redraw-mediator",
        }
    }

    /// What it does, after "cannot".
    const fn what(self) -> &'static str {
        match self {
            Self::Accept => "accept the results",
            Self::Challenge => "challenge the results",
            Self::ClaimTimeout => "claim the timeout",
            Self::AcceptFailure => "accept the failure report",
            Self::ChallengeFailure => "challenge the failure report",
            Self::RedrawMediator => "redraw the mediator",
        }
    }
}

/// Why an action cannot run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blocker {
    /// A stable name for JSON: `finished`, `wrong_state`, `wrong_account`, `too_late`,
    /// `too_early`.
    pub(crate) kind: &'static str,
    /// The explanation, with what to do instead.
    pub(crate) message: String,
    /// The first unix second the action can succeed, when waiting is all it takes.
    pub(crate) retry_at: Option<u64>,
}

/// The deal and its state as the core's machine sees them.
///
/// The chain stores each state's deadline, not when the state was entered, and the
/// machine only ever uses `entered + window`: so every window is zero and each state
/// is entered at its deadline. Amounts do not enter the machine. The challenge's
/// mediator is drawn by the contract, not named by the sender, so the zero address
/// stands for it in both the event and the deal's set.
fn machine(d: &OnChainDeal) -> (Deal, DealState) {
    let deal = Deal {
        id: d.id,
        job_offer_id: B256::ZERO,
        resource_offer_id: B256::ZERO,
        module_id: B256::ZERO,
        inputs_hash: B256::ZERO,
        members: DealMembers {
            job_creator: d.job_creator,
            resource_provider: d.provider,
            solver: Address::ZERO,
            mediators: [Address::ZERO].into_iter().collect(),
        },
        terms: DealTerms {
            price: d.price,
            payment_collateral: d.payment_collateral,
            timeout_collateral: U256::ZERO,
            results_collateral: d.results_collateral,
            mediation_fee: d.mediation_fee,
            submit_window_secs: 0,
            judge_window_secs: 0,
            mediate_window_secs: 0,
        },
        created_at: d.deadline,
    };
    let at = d.deadline;
    let results = d.results.unwrap_or_default();
    let state = match d.status {
        DealStatus::Agreed => DealState::Agreed { at },
        DealStatus::ResultsSubmitted => DealState::ResultsSubmitted { at, results },
        DealStatus::ResultsChallenged => DealState::ResultsChallenged {
            at,
            results,
            mediator: d.mediator.unwrap_or_default(),
            tried: Default::default(),
        },
        DealStatus::FailureReported => DealState::FailureReported {
            at,
            // The reason does not enter the machine.
            reason: lilypad_sdk::core::state::JobFailure::ImageUnavailable,
        },
        DealStatus::FailureChallenged => DealState::FailureChallenged {
            at,
            mediator: d.mediator.unwrap_or_default(),
            tried: Default::default(),
        },
        DealStatus::Finished(outcome) => DealState::Finished { outcome, at },
    };
    (deal, state)
}

/// `lilypad-cli deals SUB ID`, with the network option when one was given.
pub(crate) fn command(sub: &str, id: impl std::fmt::Display, network: Option<&str>) -> String {
    match network {
        Some(n) => format!("lilypad-cli deals {sub} {id} --network {n}"),
        None => format!("lilypad-cli deals {sub} {id}"),
    }
}

/// Where the deal is, what it waits for and until when, in one sentence.
pub(crate) fn situation(d: &OnChainDeal, now: u64) -> String {
    let at = when::utc_relative(d.deadline, now);
    let open = now <= d.deadline;
    match (d.status, open) {
        (DealStatus::Agreed, true) => {
            format!("the provider is running the job; its results are due by {at}")
        }
        (DealStatus::Agreed, false) => format!(
            "the provider did not submit results by {at}; claiming the timeout refunds the job \
             creator and gives it the provider's timeout collateral"
        ),
        (DealStatus::ResultsSubmitted, true) => format!(
            "results are in; the job creator has until {at} to accept or challenge them (if it \
             does neither, they count as accepted)"
        ),
        (DealStatus::ResultsSubmitted, false) => format!(
            "results are in and the time to judge them ended {at}; claiming the timeout pays the \
             provider as if they were accepted"
        ),
        (DealStatus::ResultsChallenged, true) => format!(
            "the results are challenged; the mediator{} decides by {at}",
            d.mediator.map(|m| format!(" {m}")).unwrap_or_default()
        ),
        (DealStatus::ResultsChallenged | DealStatus::FailureChallenged, false) => format!(
            "the mediator gave no verdict by {at}; redrawing the mediator draws the next one of \
             the deal's mediators (once every one was tried, it refunds the job creator with the \
             mediation fee and returns the provider's collateral)"
        ),
        (DealStatus::FailureReported, true) => format!(
            "the provider reported that the job cannot run; the job creator has until {at} to \
             accept the report (both are refunded) or challenge it (if it does neither, the \
             report counts as accepted)"
        ),
        (DealStatus::FailureReported, false) => format!(
            "the provider reported that the job cannot run and the time to answer ended {at}; \
             claiming the timeout refunds both as if the report was accepted"
        ),
        (DealStatus::FailureChallenged, true) => format!(
            "the failure report is challenged; the mediator{} decides by {at}",
            d.mediator.map(|m| format!(" {m}")).unwrap_or_default()
        ),
        (DealStatus::Finished(o), _) => format!("the deal is over ({o})"),
    }
}

/// Why `me` cannot run `action` on `d` at `now` (by the core's machine), or `None` when
/// it can.
pub(crate) fn blocker(
    action: Action,
    d: &OnChainDeal,
    me: Address,
    now: u64,
    network: Option<&str>,
) -> Option<Blocker> {
    let (deal, state) = machine(d);
    let err = transition(&deal, &state, &action.event(me), now).err()?;
    let what = action.what();
    let claim = command("claim-timeout", d.id, network);
    Some(match err {
        TransitionError::AlreadyFinished { outcome } => Blocker {
            kind: "finished",
            message: format!(
                "cannot {what}: the deal is over ({outcome}); there is nothing left to do"
            ),
            retry_at: None,
        },
        TransitionError::WrongSender { role, expected, got } => Blocker {
            kind: "wrong_account",
            message: format!(
                "cannot {what} from this account: only the deal's {role} {expected} can, and \
                 this account is {got} (set WEB3_PRIVATE_KEY to the {role}'s key)"
            ),
            retry_at: None,
        },
        TransitionError::DeadlinePassed { deadline, now } => Blocker {
            kind: "too_late",
            message: format!(
                "too late to {what}: the deadline was {}; {}: run `{claim}`",
                when::utc_relative(deadline, now),
                situation(d, now)
            ),
            retry_at: None,
        },
        TransitionError::TooEarly { deadline, now } => Blocker {
            kind: "too_early",
            message: format!(
                "too early to {what}: the deadline is {}, and until then {}; run this again \
                 after it",
                when::utc_relative(deadline, now),
                still_possible(d.status)
            ),
            retry_at: Some(deadline.saturating_add(1)),
        },
        // NotAllowed, and anything the machine learns to refuse later.
        _ => not_now(action, d, now, network),
    })
}

/// What the deal's state still allows before its deadline.
fn still_possible(status: DealStatus) -> &'static str {
    match status {
        DealStatus::Agreed => "the provider can still submit results",
        DealStatus::ResultsSubmitted => "the job creator can still accept or challenge the results",
        DealStatus::ResultsChallenged | DealStatus::FailureChallenged => {
            "the mediator can still give its verdict"
        }
        DealStatus::FailureReported => "the job creator can still accept or challenge the report",
        DealStatus::Finished(_) => "nothing can happen",
    }
}

/// The action has no meaning in the deal's state: say what the deal waits for and
/// whether waiting makes the action possible.
fn not_now(action: Action, d: &OnChainDeal, now: u64, network: Option<&str>) -> Blocker {
    let what = action.what();
    let open = now <= d.deadline;
    let (kind, hint, retry_at) = match (action, d.status) {
        (Action::Accept | Action::Challenge, DealStatus::Agreed) if open => (
            "too_early",
            format!(
                "there are no results yet; wait for them ({}) and run this again",
                command("show", d.id, network)
            ),
            None,
        ),
        (Action::Accept | Action::Challenge, DealStatus::Agreed) => (
            "too_late",
            format!(
                "no results came, and none can any more: run `{}`",
                command("claim-timeout", d.id, network)
            ),
            None,
        ),
        (_, DealStatus::ResultsChallenged) if open => {
            ("wrong_state", "the mediator decides now; follow it with `deals show`".into(), None)
        }
        _ => ("wrong_state", String::new(), None),
    };
    let sentence = situation(d, now);
    let message = if hint.is_empty() {
        format!("cannot {what} now: {sentence}")
    } else {
        format!("cannot {what} now: {sentence}; {hint}")
    };
    Blocker { kind, message, retry_at }
}

/// What `me` can do next about `d`: `(why, command)` pairs, most useful first.
pub(crate) fn next_steps(
    d: &OnChainDeal,
    me: Address,
    now: u64,
    network: Option<&str>,
) -> Vec<(String, String)> {
    let open = now <= d.deadline;
    let at = when::utc(d.deadline);
    let show = ("follow it".to_owned(), command("show", d.id, network));
    let claim = command("claim-timeout", d.id, network);
    let creator = me == d.job_creator;
    match d.status {
        DealStatus::Agreed if open => {
            vec![show, (format!("if no results come by {at}, get your money back after it"), claim)]
        }
        DealStatus::ResultsSubmitted if open && creator => vec![
            ("see the results CID".to_owned(), command("show", d.id, network)),
            (format!("accept them by {at} (pays the provider)"), command("accept", d.id, network)),
            (
                format!(
                    "or challenge them by {at} (pays the mediation fee of {})",
                    amounts::show(d.mediation_fee)
                ),
                command("challenge", d.id, network),
            ),
        ],
        DealStatus::ResultsSubmitted | DealStatus::ResultsChallenged if open => vec![show],
        DealStatus::Agreed | DealStatus::ResultsSubmitted | DealStatus::ResultsChallenged => {
            vec![("end it now (anyone can)".to_owned(), claim)]
        }
        DealStatus::Finished(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use lilypad_sdk::core::settlement::Outcome;

    use super::*;

    const DEADLINE: u64 = 1_796_472_003; // 2026-12-05 12:00:03 UTC

    fn jc() -> Address {
        Address::repeat_byte(0xc1)
    }

    fn rp() -> Address {
        Address::repeat_byte(0x9a)
    }

    fn deal(status: DealStatus) -> OnChainDeal {
        OnChainDeal {
            id: B256::repeat_byte(0xd1),
            status,
            job_creator: jc(),
            provider: rp(),
            mediator: None,
            mediators_hash: None,
            deadline: DEADLINE,
            price: U256::from(10u64).pow(U256::from(18u8)),
            payment_collateral: U256::from(10u64).pow(U256::from(18u8)),
            provider_collateral: U256::ZERO,
            results_collateral: U256::ZERO,
            mediation_fee: U256::from(10u64).pow(U256::from(15u8)),
            judge_window_secs: 60,
            mediate_window_secs: 60,
            results: None,
        }
    }

    #[test]
    fn a_timeout_claimed_too_early_says_when_it_can_be() {
        let d = deal(DealStatus::Agreed);
        let b = blocker(Action::ClaimTimeout, &d, jc(), DEADLINE - 252, None).expect("blocked");
        assert_eq!(b.kind, "too_early");
        assert_eq!(b.retry_at, Some(DEADLINE + 1));
        assert_eq!(
            b.message,
            "too early to claim the timeout: the deadline is 2026-12-05 12:00:03 UTC (in 4m 12s), \
             and until then the provider can still submit results; run this again after it"
        );
        // The deadline second itself is still the provider's.
        assert!(blocker(Action::ClaimTimeout, &d, jc(), DEADLINE, None).is_some());
        assert_eq!(blocker(Action::ClaimTimeout, &d, rp(), DEADLINE + 1, None), None);
    }

    #[test]
    fn accepting_before_results_says_the_deal_waits_for_them() {
        let d = deal(DealStatus::Agreed);
        let b =
            blocker(Action::Accept, &d, jc(), DEADLINE - 60, Some("net.toml")).expect("blocked");
        assert_eq!(b.kind, "too_early");
        assert!(b.message.starts_with("cannot accept the results now: the provider is running the job; its results are due by 2026-12-05 12:00:03 UTC (in 1m)"), "{}", b.message);
        assert!(
            b.message.contains(&format!("lilypad-cli deals show {} --network net.toml", d.id)),
            "{}",
            b.message
        );
        let late = blocker(Action::Accept, &d, jc(), DEADLINE + 5, None).expect("blocked");
        assert_eq!(late.kind, "too_late");
        assert!(late.message.contains("deals claim-timeout"), "{}", late.message);
    }

    #[test]
    fn judging_is_the_job_creators_and_ends_at_the_deadline() {
        let d = deal(DealStatus::ResultsSubmitted);
        assert_eq!(blocker(Action::Accept, &d, jc(), DEADLINE, None), None);
        assert_eq!(blocker(Action::Challenge, &d, jc(), DEADLINE, None), None);
        let b = blocker(Action::Accept, &d, rp(), DEADLINE, None).expect("blocked");
        assert_eq!(b.kind, "wrong_account");
        assert!(b.message.contains(&format!("job creator {}", jc())), "{}", b.message);
        let b = blocker(Action::Challenge, &d, jc(), DEADLINE + 61, None).expect("blocked");
        assert_eq!(b.kind, "too_late");
        assert!(
            b.message.starts_with(
                "too late to challenge the results: the deadline was 2026-12-05 12:00:03 UTC (1m 1s ago); \
                 results are in and the time to judge them ended"
            ),
            "{}",
            b.message
        );
    }

    #[test]
    fn a_finished_deal_has_nothing_left() {
        let d = deal(DealStatus::Finished(Outcome::Accepted));
        let b = blocker(Action::ClaimTimeout, &d, jc(), DEADLINE + 1000, None).expect("blocked");
        assert_eq!(b.kind, "finished");
        assert_eq!(
            b.message,
            "cannot claim the timeout: the deal is over (accepted); there is nothing left to do"
        );
        assert!(next_steps(&d, jc(), DEADLINE, None).is_empty());
    }

    #[test]
    fn next_steps_name_the_exact_commands() {
        let d = deal(DealStatus::Agreed);
        let id = d.id;
        let steps = next_steps(&d, jc(), DEADLINE - 10, None);
        assert_eq!(
            steps,
            vec![
                ("follow it".to_owned(), format!("lilypad-cli deals show {id}")),
                (
                    "if no results come by 2026-12-05 12:00:03 UTC, get your money back after it"
                        .to_owned(),
                    format!("lilypad-cli deals claim-timeout {id}")
                ),
            ]
        );
        let d = deal(DealStatus::ResultsSubmitted);
        let steps = next_steps(&d, jc(), DEADLINE - 10, None);
        assert_eq!(steps[1].1, format!("lilypad-cli deals accept {id}"));
        assert_eq!(steps[2].1, format!("lilypad-cli deals challenge {id}"));
        assert!(steps[2].0.contains("0.001 LP"), "{steps:?}");
        // The provider only follows; after the deadline anyone ends it.
        assert_eq!(next_steps(&d, rp(), DEADLINE - 10, None).len(), 1);
        assert_eq!(
            next_steps(&d, rp(), DEADLINE + 1, None),
            vec![(
                "end it now (anyone can)".to_owned(),
                format!("lilypad-cli deals claim-timeout {id}")
            )]
        );
    }
}
