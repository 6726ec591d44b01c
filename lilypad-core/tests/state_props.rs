//! Property tests of the deal state machine against an independent model:
//! random event sequences with random senders and times, 10,000 deals.

mod common;

use std::{cell::RefCell, collections::BTreeSet};

use alloy_primitives::{Address, B256, U256};
use common::{seconds, valid_terms};
use lilypad_core::{
    deal::{Deal, DealMembers, DealTerms},
    settlement::{Escrow, Outcome, settle},
    state::{DealEvent, DealState, JobFailure, StateKind, TransitionError, deadline, transition},
};
use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};

const CASES: u32 = 10_000;

const JC: Address = Address::repeat_byte(1);
const RP: Address = Address::repeat_byte(2);
const SOLVER: Address = Address::repeat_byte(3);
const M: [Address; 3] =
    [Address::repeat_byte(0x10), Address::repeat_byte(0x11), Address::repeat_byte(0x12)];
const STRANGER: Address = Address::repeat_byte(0x99);
/// Everyone who may try to send an event.
const POOL: [Address; 7] = [JC, RP, SOLVER, M[0], M[1], M[2], STRANGER];

/// The event kinds of the model; `Mediate` split by verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Submit,
    Accept,
    Challenge,
    MediateYes,
    MediateNo,
    Timeout,
    Report,
    AcceptFailure,
    ChallengeFailure,
    Redraw,
}

/// Who may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Jc,
    Rp,
    ChosenMediator,
    Anyone,
}

/// When, relative to the current state's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// `now <= deadline`.
    AtOrBefore,
    /// `now > deadline`.
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    To(StateKind),
    Done(Outcome),
}

/// The design's transitions, as data (DESIGN.md, protocol steps 4-6).
/// Anything not listed is not allowed.
const TABLE: &[(StateKind, Ev, Who, When, Next)] = &[
    (
        StateKind::Agreed,
        Ev::Submit,
        Who::Rp,
        When::AtOrBefore,
        Next::To(StateKind::ResultsSubmitted),
    ),
    (
        StateKind::Agreed,
        Ev::Timeout,
        Who::Anyone,
        When::After,
        Next::Done(Outcome::NoResultsInTime),
    ),
    (
        StateKind::ResultsSubmitted,
        Ev::Accept,
        Who::Jc,
        When::AtOrBefore,
        Next::Done(Outcome::Accepted),
    ),
    (
        StateKind::ResultsSubmitted,
        Ev::Challenge,
        Who::Jc,
        When::AtOrBefore,
        Next::To(StateKind::ResultsChallenged),
    ),
    (
        StateKind::ResultsSubmitted,
        Ev::Timeout,
        Who::Anyone,
        When::After,
        Next::Done(Outcome::NoJudgementInTime),
    ),
    (
        StateKind::ResultsChallenged,
        Ev::MediateYes,
        Who::ChosenMediator,
        When::AtOrBefore,
        Next::Done(Outcome::MediationAccepted),
    ),
    (
        StateKind::ResultsChallenged,
        Ev::MediateNo,
        Who::ChosenMediator,
        When::AtOrBefore,
        Next::Done(Outcome::MediationRejected),
    ),
    // A timeout or redraw in a challenged state ends the deal only when no
    // mediator is left to draw (`check` works that out); otherwise a redraw
    // moves to the same state with the next mediator.
    (
        StateKind::ResultsChallenged,
        Ev::Timeout,
        Who::Anyone,
        When::After,
        Next::Done(Outcome::NoMediationInTime),
    ),
    (
        StateKind::ResultsChallenged,
        Ev::Redraw,
        Who::Anyone,
        When::After,
        Next::Done(Outcome::NoMediationInTime),
    ),
    (
        StateKind::Agreed,
        Ev::Report,
        Who::Rp,
        When::AtOrBefore,
        Next::To(StateKind::FailureReported),
    ),
    (
        StateKind::FailureReported,
        Ev::AcceptFailure,
        Who::Jc,
        When::AtOrBefore,
        Next::Done(Outcome::FailureAccepted),
    ),
    (
        StateKind::FailureReported,
        Ev::ChallengeFailure,
        Who::Jc,
        When::AtOrBefore,
        Next::To(StateKind::FailureChallenged),
    ),
    (
        StateKind::FailureReported,
        Ev::Timeout,
        Who::Anyone,
        When::After,
        Next::Done(Outcome::FailureAccepted),
    ),
    (
        StateKind::FailureChallenged,
        Ev::MediateYes,
        Who::ChosenMediator,
        When::AtOrBefore,
        Next::Done(Outcome::FailureUpheld),
    ),
    (
        StateKind::FailureChallenged,
        Ev::MediateNo,
        Who::ChosenMediator,
        When::AtOrBefore,
        Next::Done(Outcome::FailureRefuted),
    ),
    (
        StateKind::FailureChallenged,
        Ev::Timeout,
        Who::Anyone,
        When::After,
        Next::Done(Outcome::FailureNoMediationInTime),
    ),
    (
        StateKind::FailureChallenged,
        Ev::Redraw,
        Who::Anyone,
        When::After,
        Next::Done(Outcome::FailureNoMediationInTime),
    ),
];

/// The model's own view of a deal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    Open {
        kind: StateKind,
        at: u64,
        results: Option<B256>,
        mediator: Option<Address>,
        tried: BTreeSet<Address>,
    },
    Done {
        outcome: Outcome,
        at: u64,
    },
}

/// How a step picks its sender.
#[derive(Debug, Clone)]
enum SenderSpec {
    /// Whoever the model says is allowed (a random pool member for `Anyone`).
    Right(usize),
    /// A pool member.
    Pool(usize),
}

/// How a step picks its time.
#[derive(Debug, Clone)]
enum TimeSpec {
    /// The deadline plus -1, 0 or +1 (saturating): the boundaries.
    Boundary(i8),
    /// `at` plus an offset.
    After(u64),
    /// Any second at all, even before `at`.
    Any(u64),
}

#[derive(Debug, Clone)]
struct Step {
    ev: Ev,
    sender: SenderSpec,
    time: TimeSpec,
    /// Index into the mediator candidates (the deal's, then outsiders).
    mediator: usize,
    results: B256,
}

#[derive(Debug, Clone)]
struct Case {
    deal: Deal,
    steps: Vec<Step>,
}

fn step() -> impl Strategy<Value = Step> {
    let ev = proptest::sample::select(vec![
        Ev::Submit,
        Ev::Accept,
        Ev::Challenge,
        Ev::MediateYes,
        Ev::MediateNo,
        Ev::Timeout,
        Ev::Report,
        Ev::AcceptFailure,
        Ev::ChallengeFailure,
        Ev::Redraw,
    ]);
    let sender = prop_oneof![
        2 => any::<usize>().prop_map(SenderSpec::Right),
        1 => (0..POOL.len()).prop_map(SenderSpec::Pool),
    ];
    let time = prop_oneof![
        3 => (-1i8..=1).prop_map(TimeSpec::Boundary),
        2 => (0u64..20_000).prop_map(TimeSpec::After),
        1 => seconds().prop_map(TimeSpec::Any),
    ];
    (ev, sender, time, 0usize..5, any::<[u8; 32]>()).prop_map(|(ev, sender, time, mediator, r)| {
        Step { ev, sender, time, mediator, results: B256::from(r) }
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        valid_terms(),
        proptest::sample::subsequence(M.to_vec(), 1..=3),
        seconds(),
        proptest::collection::vec(step(), 1..10),
    )
        .prop_map(|(terms, mediators, created_at, steps)| Case {
            deal: deal(terms, mediators.into_iter().collect(), created_at),
            steps,
        })
}

fn deal(terms: DealTerms, mediators: BTreeSet<Address>, created_at: u64) -> Deal {
    Deal {
        id: B256::repeat_byte(0xde),
        job_offer_id: B256::repeat_byte(1),
        resource_offer_id: B256::repeat_byte(2),
        module_id: B256::repeat_byte(3),
        inputs_hash: B256::repeat_byte(4),
        members: DealMembers { job_creator: JC, resource_provider: RP, solver: SOLVER, mediators },
        terms,
        created_at,
    }
}

/// The model's deadline, computed in u128 so it cannot wrap.
fn model_deadline(terms: &DealTerms, kind: StateKind, at: u64) -> u128 {
    let window = match kind {
        StateKind::Agreed => terms.submit_window_secs,
        StateKind::ResultsSubmitted | StateKind::FailureReported => terms.judge_window_secs,
        _ => terms.mediate_window_secs,
    };
    u128::from(at) + u128::from(window)
}

fn to_event(ev: Ev, by: Address, mediator: Address, results: B256) -> DealEvent {
    match ev {
        Ev::Submit => DealEvent::SubmitResults { by, results },
        Ev::Accept => DealEvent::AcceptResults { by },
        Ev::Challenge => DealEvent::ChallengeResults { by, mediator },
        Ev::MediateYes => DealEvent::Mediate { by, accept: true },
        Ev::MediateNo => DealEvent::Mediate { by, accept: false },
        Ev::Timeout => DealEvent::ClaimTimeout { by },
        Ev::Report => DealEvent::ReportFailure { by, reason: JobFailure::ImageUnavailable },
        Ev::AcceptFailure => DealEvent::AcceptFailure { by },
        Ev::ChallengeFailure => DealEvent::ChallengeFailure { by, mediator },
        Ev::Redraw => DealEvent::RedrawMediator { by, mediator },
    }
}

/// The error classes, for coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Ok,
    AlreadyFinished,
    NotAllowed,
    WrongSender,
    DeadlinePassed,
    TooEarly,
    MediatorNotTrusted,
    MediatorsLeft,
}

fn class(r: &Result<DealState, TransitionError>) -> Class {
    match r {
        Ok(_) => Class::Ok,
        Err(TransitionError::AlreadyFinished { .. }) => Class::AlreadyFinished,
        Err(TransitionError::NotAllowed { .. }) => Class::NotAllowed,
        Err(TransitionError::WrongSender { .. }) => Class::WrongSender,
        Err(TransitionError::DeadlinePassed { .. }) => Class::DeadlinePassed,
        Err(TransitionError::TooEarly { .. }) => Class::TooEarly,
        Err(TransitionError::MediatorNotTrusted { .. }) => Class::MediatorNotTrusted,
        Err(TransitionError::MediatorsLeft { .. }) => Class::MediatorsLeft,
        Err(e) => panic!("unknown error {e}"),
    }
}

#[derive(Default)]
struct Seen {
    outcomes: BTreeSet<Outcome>,
    classes: BTreeSet<Class>,
    boundary_ok: usize,
    boundary_rejected: usize,
}

/// Runs one deal through its steps, checking every result against the model.
fn check(case: &Case, seen: &RefCell<Seen>) -> Result<(), TestCaseError> {
    let deal = &case.deal;
    let terms = &deal.terms;
    let mut state = DealState::initial(deal);
    let mut model = Model::Open {
        kind: StateKind::Agreed,
        at: deal.created_at,
        results: None,
        mediator: None,
        tried: BTreeSet::new(),
    };
    let candidates: Vec<Address> =
        deal.members.mediators.iter().copied().chain([STRANGER, JC]).collect();

    for step in &case.steps {
        let row = match &model {
            Model::Open { kind, .. } => TABLE.iter().find(|r| r.0 == *kind && r.1 == step.ev),
            Model::Done { .. } => None,
        };
        // Sender.
        let chosen = match &model {
            Model::Open { mediator, .. } => *mediator,
            Model::Done { .. } => None,
        };
        let by = match (&step.sender, row) {
            (SenderSpec::Right(i), Some((_, _, who, _, _))) => match who {
                Who::Jc => JC,
                Who::Rp => RP,
                Who::ChosenMediator => chosen.unwrap_or(STRANGER),
                Who::Anyone => POOL[i % POOL.len()],
            },
            (SenderSpec::Right(i) | SenderSpec::Pool(i), _) => POOL[i % POOL.len()],
        };
        // Time.
        let dl = match &model {
            Model::Open { kind, at, .. } => Some(model_deadline(terms, *kind, *at)),
            Model::Done { .. } => None,
        };
        let at = match &model {
            Model::Open { at, .. } | Model::Done { at, .. } => *at,
        };
        let now = match (&step.time, dl) {
            (TimeSpec::Boundary(d), Some(dl)) => {
                let t = (dl as i128 + i128::from(*d)).clamp(0, i128::from(u64::MAX));
                t as u64
            }
            (TimeSpec::Boundary(_), None) => at,
            (TimeSpec::After(o), _) => at.saturating_add(*o),
            (TimeSpec::Any(t), _) => *t,
        };
        let mediator = candidates[step.mediator % candidates.len()];
        let event = to_event(step.ev, by, mediator, step.results);

        // The machine's deadline agrees with the model's (saturated to u64).
        prop_assert_eq!(deadline(deal, &state), dl.map(|d| d.min(u128::from(u64::MAX)) as u64));

        let got = transition(deal, &state, &event, now);

        // What the model expects, checks in the documented order.
        let expected: Result<Model, Class> = match (&model, row) {
            (Model::Done { .. }, _) => Err(Class::AlreadyFinished),
            (Model::Open { .. }, None) => Err(Class::NotAllowed),
            (
                Model::Open { kind, results, mediator: current, tried, .. },
                Some(&(_, _, who, when, next)),
            ) => {
                // After a silent mediator: who would still be left to draw.
                let mut tried_next = tried.clone();
                tried_next.extend(*current);
                let left: BTreeSet<Address> =
                    deal.members.mediators.difference(&tried_next).copied().collect();
                let sender_ok = match who {
                    Who::Jc => by == JC,
                    Who::Rp => by == RP,
                    Who::ChosenMediator => Some(by) == chosen,
                    Who::Anyone => true,
                };
                let dl = dl.unwrap_or(u128::MAX);
                let in_time = match when {
                    When::AtOrBefore => u128::from(now) <= dl,
                    When::After => u128::from(now) > dl,
                };
                if !sender_ok {
                    Err(Class::WrongSender)
                } else if !in_time {
                    Err(if when == When::AtOrBefore {
                        Class::DeadlinePassed
                    } else {
                        Class::TooEarly
                    })
                } else if matches!(step.ev, Ev::Challenge | Ev::ChallengeFailure)
                    && !deal.members.mediators.contains(&mediator)
                {
                    Err(Class::MediatorNotTrusted)
                } else if step.ev == Ev::Timeout && current.is_some() && !left.is_empty() {
                    Err(Class::MediatorsLeft)
                } else if step.ev == Ev::Redraw && !left.is_empty() && !left.contains(&mediator) {
                    Err(Class::MediatorNotTrusted)
                } else if step.ev == Ev::Redraw && !left.is_empty() {
                    Ok(Model::Open {
                        kind: *kind,
                        at: now,
                        results: *results,
                        mediator: Some(mediator),
                        tried: tried_next,
                    })
                } else {
                    Ok(match next {
                        Next::Done(outcome) => Model::Done { outcome, at: now },
                        Next::To(kind) => Model::Open {
                            kind,
                            at: now,
                            results: if step.ev == Ev::Submit {
                                Some(step.results)
                            } else {
                                *results
                            },
                            mediator: if matches!(step.ev, Ev::Challenge | Ev::ChallengeFailure) {
                                Some(mediator)
                            } else {
                                None
                            },
                            tried: BTreeSet::new(),
                        },
                    })
                }
            }
        };

        let got_class = class(&got);
        {
            let mut s = seen.borrow_mut();
            s.classes.insert(got_class);
            if matches!(step.time, TimeSpec::Boundary(_)) && dl.is_some() {
                if got_class == Class::Ok {
                    s.boundary_ok += 1;
                } else if matches!(got_class, Class::DeadlinePassed | Class::TooEarly) {
                    s.boundary_rejected += 1;
                }
            }
        }
        match (expected, got) {
            (Err(want), got) => {
                prop_assert_eq!(
                    got_class,
                    want,
                    "{:?} in {:?} at {} by {}",
                    step.ev,
                    model,
                    now,
                    by
                );
                // Errors carry the right values.
                match got {
                    Err(TransitionError::DeadlinePassed { deadline: d, now: n })
                    | Err(TransitionError::TooEarly { deadline: d, now: n }) => {
                        prop_assert_eq!(
                            Some(u128::from(d)),
                            dl.map(|x| x.min(u128::from(u64::MAX)))
                        );
                        prop_assert_eq!(n, now);
                    }
                    Err(TransitionError::WrongSender { got: g, .. }) => prop_assert_eq!(g, by),
                    Err(TransitionError::MediatorNotTrusted { mediator: m }) => {
                        prop_assert_eq!(m, mediator)
                    }
                    Err(TransitionError::NotAllowed { state: s, .. }) => {
                        prop_assert_eq!(s, state.kind())
                    }
                    _ => {}
                }
                // A rejected event leaves the state as it was (the caller keeps it).
            }
            (Ok(next_model), Ok(next)) => {
                let matches = match (&next_model, &next) {
                    (Model::Done { outcome, at }, DealState::Finished { outcome: o, at: a }) => {
                        outcome == o && at == a
                    }
                    (Model::Open { kind, at, results, mediator, tried }, s) => {
                        s.kind() == *kind
                            && match s {
                                DealState::ResultsSubmitted { at: a, results: r } => {
                                    a == at && Some(*r) == *results
                                }
                                DealState::ResultsChallenged {
                                    at: a,
                                    results: r,
                                    mediator: m,
                                    tried: t,
                                } => {
                                    a == at
                                        && Some(*r) == *results
                                        && Some(*m) == *mediator
                                        && t == tried
                                }
                                DealState::FailureReported { at: a, .. } => a == at,
                                DealState::FailureChallenged { at: a, mediator: m, tried: t } => {
                                    a == at && Some(*m) == *mediator && t == tried
                                }
                                _ => false,
                            }
                    }
                    _ => false,
                };
                prop_assert!(matches, "model {:?} but machine {:?}", next_model, next);
                model = next_model;
                state = next;
            }
            (Ok(m), Err(e)) => {
                prop_assert!(
                    false,
                    "{:?} in {:?} at {}: model allows ({:?}), machine says {}",
                    step.ev,
                    state,
                    now,
                    m,
                    e
                );
            }
        }
    }

    // A finished deal settles and conserves funds.
    if let Some(outcome) = state.outcome() {
        seen.borrow_mut().outcomes.insert(outcome);
        let s = settle(terms, outcome).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for escrow in Escrow::ALL {
            prop_assert_eq!(s.paid_out_of(escrow), s.paid_in(escrow));
        }
        prop_assert_eq!(s.total_out(), s.total_in());
    }
    Ok(())
}

/// Random sequences against the model; also asserts the generator reached
/// every outcome, every error class and both sides of the time boundaries.
#[test]
fn machine_follows_the_design_table() {
    // A fixed seed: the coverage asserted below (every outcome, every error class) is a
    // property of the generator over these cases, so it must not depend on the run's
    // luck. A random seed reached every outcome in most runs but not all (one CI run
    // missed NoMediationInTime).
    let mut runner = TestRunner::new_with_rng(
        Config { cases: CASES, failure_persistence: None, ..Config::default() },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let seen = RefCell::new(Seen::default());
    if let Err(e) = runner.run(&case(), |c| check(&c, &seen)) {
        panic!("{e}");
    }
    let seen = seen.into_inner();
    assert_eq!(seen.outcomes, Outcome::ALL.into_iter().collect(), "outcomes reached");
    assert_eq!(seen.classes.len(), 8, "classes seen: {:?}", seen.classes);
    assert!(
        seen.boundary_ok > 1000 && seen.boundary_rejected > 1000,
        "boundaries: {} ok, {} rejected",
        seen.boundary_ok,
        seen.boundary_rejected
    );
}

/// The terms' amounts don't matter to the machine, only to settlement; a
/// state machine run on zero-amount deals must still settle.
#[test]
fn zero_amount_deal_settles_every_outcome() {
    let t = DealTerms {
        price: U256::ZERO,
        payment_collateral: U256::ZERO,
        timeout_collateral: U256::ZERO,
        results_collateral: U256::ZERO,
        mediation_fee: U256::ZERO,
        submit_window_secs: 0,
        judge_window_secs: 0,
        mediate_window_secs: 0,
    };
    let d = deal(t, [M[0]].into(), 5);
    let s = DealState::initial(&d);
    let s =
        transition(&d, &s, &DealEvent::SubmitResults { by: RP, results: B256::ZERO }, 5).unwrap();
    let s = transition(&d, &s, &DealEvent::ChallengeResults { by: JC, mediator: M[0] }, 5).unwrap();
    let s = transition(&d, &s, &DealEvent::ClaimTimeout { by: STRANGER }, 6).unwrap();
    assert_eq!(s.outcome(), Some(Outcome::NoMediationInTime));
    assert!(settle(&d.terms, Outcome::NoMediationInTime).unwrap().payouts().is_empty());
}
