//! The deal state machine: which event may move a deal from which state, sent
//! by whom and when. The contracts enforce the same machine.
//!
//! ```text
//! Agreed { at }
//!  ├─ SubmitResults    by RP,  now <= at + submit_window ─► ResultsSubmitted { at: now, results }
//!  └─ ClaimTimeout     anyone, now >  at + submit_window ─► Finished(NoResultsInTime)
//!
//! ResultsSubmitted { at, results }
//!  ├─ AcceptResults    by JC,  now <= at + judge_window  ─► Finished(Accepted)
//!  ├─ ChallengeResults by JC,  now <= at + judge_window,
//!  │                   mediator in the deal's set         ─► ResultsChallenged { at: now, results, mediator }
//!  └─ ClaimTimeout     anyone, now >  at + judge_window  ─► Finished(NoJudgementInTime)
//!
//! ResultsChallenged { at, results, mediator, tried }
//!  ├─ Mediate          by that mediator,
//!  │                   now <= at + mediate_window        ─► Finished(MediationAccepted) if accept,
//!  │                                                        Finished(MediationRejected) if not
//!  ├─ RedrawMediator   anyone, now >  at + mediate_window,
//!  │                   an untried mediator is left        ─► ResultsChallenged { at: now, mediator: next,
//!  │                                                                             tried: tried + mediator }
//!  └─ ClaimTimeout /   anyone, now >  at + mediate_window,
//!     RedrawMediator   every mediator tried               ─► Finished(NoMediationInTime)
//!
//! Agreed { at }
//!  └─ ReportFailure    by RP,  now <= at + submit_window ─► FailureReported { at: now, reason }
//!
//! FailureReported { at, reason }
//!  ├─ AcceptFailure    by JC,  now <= at + judge_window  ─► Finished(FailureAccepted)
//!  ├─ ChallengeFailure by JC,  now <= at + judge_window  ─► FailureChallenged { at: now, mediator, tried: {} }
//!  └─ ClaimTimeout     anyone, now >  at + judge_window  ─► Finished(FailureAccepted)
//!
//! FailureChallenged { at, mediator, tried }: as ResultsChallenged, with
//! FailureUpheld / FailureRefuted / FailureNoMediationInTime.
//!
//! Finished { outcome, at }: final; every event fails with AlreadyFinished.
//! ```
//!
//! `at` is when the deal entered its current state; a state's *deadline* is
//! `at` plus that state's window from the deal's terms ([`deadline`]). Acting
//! events are allowed up to and including the deadline second; a timeout can
//! be claimed only strictly after it. So at every second exactly one of the
//! two is possible and there is no gap and no overlap. Deadlines saturate at
//! `u64::MAX` (a deadline past `u64::MAX` never passes, as in Solidity where
//! `block.timestamp` cannot reach it either).
//!
//! # Order of checks
//!
//! [`transition`] checks, in this order, and reports the first failure; the
//! contract reverts with the matching custom error in the same order:
//!
//! 1. the deal is not finished ([`TransitionError::AlreadyFinished`]);
//! 2. the event is allowed in the state ([`TransitionError::NotAllowed`]);
//! 3. the sender has the role the event needs ([`TransitionError::WrongSender`]);
//! 4. the time: acting events at or before the deadline
//!    ([`TransitionError::DeadlinePassed`]), timeouts strictly after it
//!    ([`TransitionError::TooEarly`]);
//! 5. a challenge names a mediator of the deal ([`TransitionError::MediatorNotTrusted`]).
//!
//! # Results
//!
//! The state keeps `results`, the keccak256 digest of the results CID in its
//! binary form ([`results_digest`]); the contract stores the same 32 bytes and
//! emits the full CID in its `ResultsSubmitted` event, where the job creator
//! reads it. The binary form is canonical, unlike the multibase string.
//!
//! # Mediator choice
//!
//! On chain, nobody picks the mediator. A challenge (of results or of a failure
//! report) records its own block; from the next block on, anyone fixes the draw
//! with [`choose_mediator`] over the mediators not yet tried, seeded by
//! [`mediator_seed`] of that block's hash, the deal id and the round. Nothing
//! executing in the challenge block can know its hash, so a job creator (even a
//! contract wallet that would revert a challenge whose draw it dislikes) cannot
//! choose the mediator by choosing when to challenge. A drawn mediator that gives
//! no verdict by the deadline is replaced by a redraw from the rest of the set
//! (`RedrawMediator`); the deal ends with no mediation only when every mediator was
//! tried. The machine's events carry the drawn mediator; the machine checks it is
//! one of the deal's, untried.

use std::{collections::BTreeSet, fmt};

use alloy_primitives::{Address, B256, U256, keccak256};
use serde::{Deserialize, Serialize};

use crate::{deal::Deal, settlement::Outcome};

/// Where a deal is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealState {
    /// The deal exists; the provider is running the job.
    Agreed {
        /// Unix second the deal was created.
        at: u64,
    },
    /// The provider submitted results; the job creator judges them.
    ResultsSubmitted {
        /// Unix second of the submission.
        at: u64,
        /// keccak256 of the binary results CID ([`results_digest`]).
        results: B256,
    },
    /// The job creator challenged the results; the mediator re-runs the job.
    ResultsChallenged {
        /// Unix second of the challenge.
        at: u64,
        /// keccak256 of the binary results CID, kept from the submission.
        results: B256,
        /// The mediator drawn for this round of the challenge.
        mediator: Address,
        /// Mediators drawn in earlier rounds that gave no verdict in time.
        #[serde(default)]
        tried: BTreeSet<Address>,
    },
    /// The provider reported that the job creator made the job impossible.
    FailureReported {
        /// Unix second of the report.
        at: u64,
        /// What the job creator got wrong.
        reason: JobFailure,
    },
    /// The job creator challenged the failure report; a mediator re-runs the job.
    FailureChallenged {
        /// Unix second of the challenge (or of the latest redraw).
        at: u64,
        /// The mediator drawn for this round.
        mediator: Address,
        /// Mediators drawn in earlier rounds that gave no verdict in time.
        #[serde(default)]
        tried: BTreeSet<Address>,
    },
    /// The deal is over; [`crate::settlement::settle`] gives the payouts.
    Finished {
        /// How it ended.
        outcome: Outcome,
        /// Unix second it ended.
        at: u64,
    },
}

impl DealState {
    /// The state of a freshly created deal.
    pub const fn initial(deal: &Deal) -> Self {
        Self::Agreed { at: deal.created_at }
    }

    /// The kind of state, without its data.
    pub const fn kind(&self) -> StateKind {
        self.status().kind()
    }

    /// The outcome, if the deal is finished.
    pub const fn outcome(&self) -> Option<Outcome> {
        match self {
            Self::Finished { outcome, .. } => Some(*outcome),
            _ => None,
        }
    }

    /// Where the deal is, without the data: what the chain bindings, the solver's API
    /// and the CLI show.
    pub const fn status(&self) -> DealStatus {
        match self {
            Self::Agreed { .. } => DealStatus::Agreed,
            Self::ResultsSubmitted { .. } => DealStatus::ResultsSubmitted,
            Self::ResultsChallenged { .. } => DealStatus::ResultsChallenged,
            Self::FailureReported { .. } => DealStatus::FailureReported,
            Self::FailureChallenged { .. } => DealStatus::FailureChallenged,
            Self::Finished { outcome, .. } => DealStatus::Finished(*outcome),
        }
    }
}

/// Where a deal is: its [`StateKind`] and, once finished, its [`Outcome`].
///
/// The one summary of a deal's state used outside the machine: a [`DealState`] projects
/// onto it ([`DealState::status`]), the chain bindings read it from `getDeal`, the
/// solver's API carries it (as `state` and `outcome`), and the CLI prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DealStatus {
    /// Created; the provider runs the job.
    Agreed,
    /// Results are in; the job creator judges.
    ResultsSubmitted,
    /// The results were challenged; the mediator decides.
    ResultsChallenged,
    /// The provider reported that the job cannot run because of the job itself; the
    /// job creator accepts or challenges the report.
    FailureReported,
    /// The job creator challenged the failure report; the mediator decides.
    FailureChallenged,
    /// Over, and how.
    Finished(Outcome),
}

impl DealStatus {
    /// The kind of state.
    pub const fn kind(self) -> StateKind {
        match self {
            Self::Agreed => StateKind::Agreed,
            Self::ResultsSubmitted => StateKind::ResultsSubmitted,
            Self::ResultsChallenged => StateKind::ResultsChallenged,
            Self::FailureReported => StateKind::FailureReported,
            Self::FailureChallenged => StateKind::FailureChallenged,
            Self::Finished(_) => StateKind::Finished,
        }
    }

    /// The outcome, once finished.
    pub const fn outcome(self) -> Option<Outcome> {
        match self {
            Self::Finished(o) => Some(o),
            _ => None,
        }
    }

    /// Whether the deal is over.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Finished(_))
    }

    /// The status of a `kind` and an `outcome`; `None` when they disagree (a finished
    /// kind without an outcome, or an outcome on a deal still open).
    pub const fn from_parts(kind: StateKind, outcome: Option<Outcome>) -> Option<Self> {
        Some(match (kind, outcome) {
            (StateKind::Agreed, None) => Self::Agreed,
            (StateKind::ResultsSubmitted, None) => Self::ResultsSubmitted,
            (StateKind::ResultsChallenged, None) => Self::ResultsChallenged,
            (StateKind::FailureReported, None) => Self::FailureReported,
            (StateKind::FailureChallenged, None) => Self::FailureChallenged,
            (StateKind::Finished, Some(o)) => Self::Finished(o),
            _ => return None,
        })
    }
}

impl fmt::Display for DealStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Finished(o) => write!(f, "finished ({o})"),
            other => other.kind().fmt(f),
        }
    }
}

/// The kind of a [`DealState`], for errors and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// [`DealState::Agreed`].
    Agreed,
    /// [`DealState::ResultsSubmitted`].
    ResultsSubmitted,
    /// [`DealState::ResultsChallenged`].
    ResultsChallenged,
    /// [`DealState::Finished`].
    Finished,
    /// [`DealState::FailureReported`].
    FailureReported,
    /// [`DealState::FailureChallenged`].
    FailureChallenged,
}

/// Why a job could not run, when the job creator caused it; the provider
/// reports it on chain instead of letting the deal time out. Same order as
/// the contracts' `JobFailure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFailure {
    /// The module's image does not exist or cannot be pulled by its pinned digest.
    ImageUnavailable,
    /// The module cannot be resolved or rendered.
    ModuleUnresolvable,
    /// The inputs break the module's declared rules (caps, declared files).
    InputsRejected,
}

impl JobFailure {
    /// Every reason, in the contracts' order.
    pub const ALL: [Self; 3] =
        [Self::ImageUnavailable, Self::ModuleUnresolvable, Self::InputsRejected];
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::ImageUnavailable => "the module's image is unavailable",
            Self::ModuleUnresolvable => "the module cannot be resolved",
            Self::InputsRejected => "the inputs break the module's rules",
        };
        f.write_str(s)
    }
}

impl StateKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Agreed,
        Self::ResultsSubmitted,
        Self::ResultsChallenged,
        Self::Finished,
        Self::FailureReported,
        Self::FailureChallenged,
    ];

    /// The snake_case name, as serde writes it and databases store it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Agreed => "agreed",
            Self::ResultsSubmitted => "results_submitted",
            Self::ResultsChallenged => "results_challenged",
            Self::Finished => "finished",
            Self::FailureReported => "failure_reported",
            Self::FailureChallenged => "failure_challenged",
        }
    }

    /// The kind named `s` (its [`as_str`](Self::as_str) form).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Agreed => "agreed",
            Self::ResultsSubmitted => "results submitted",
            Self::ResultsChallenged => "results challenged",
            Self::Finished => "finished",
            Self::FailureReported => "failure reported",
            Self::FailureChallenged => "failure challenged",
        };
        f.write_str(s)
    }
}

/// Something a party does to a deal; `by` is the transaction's sender (`msg.sender`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealEvent {
    /// The provider submits results (and posts results collateral).
    SubmitResults {
        /// The sender.
        by: Address,
        /// keccak256 of the binary results CID ([`results_digest`]).
        results: B256,
    },
    /// The job creator accepts the results.
    AcceptResults {
        /// The sender.
        by: Address,
    },
    /// The job creator challenges the results (and posts the mediation fee).
    ChallengeResults {
        /// The sender.
        by: Address,
        /// The mediator chosen by the contract ([`choose_mediator`]).
        mediator: Address,
    },
    /// The chosen mediator gives its verdict.
    Mediate {
        /// The sender.
        by: Address,
        /// Whether the results are right.
        accept: bool,
    },
    /// Anyone ends a deal whose current deadline has passed.
    ClaimTimeout {
        /// The sender.
        by: Address,
    },
    /// The provider reports a failure the job creator caused.
    ReportFailure {
        /// The sender.
        by: Address,
        /// What the job creator got wrong.
        reason: JobFailure,
    },
    /// The job creator accepts a failure report: both are refunded.
    AcceptFailure {
        /// The sender.
        by: Address,
    },
    /// The job creator challenges a failure report (and posts the mediation fee).
    ChallengeFailure {
        /// The sender.
        by: Address,
        /// The mediator drawn by the contract.
        mediator: Address,
    },
    /// Anyone replaces a drawn mediator that gave no verdict in time.
    RedrawMediator {
        /// The sender.
        by: Address,
        /// The mediator drawn for the next round; ignored when every mediator was tried.
        mediator: Address,
    },
}

impl DealEvent {
    /// The kind of event, without its data.
    pub const fn kind(&self) -> EventKind {
        match self {
            Self::SubmitResults { .. } => EventKind::SubmitResults,
            Self::AcceptResults { .. } => EventKind::AcceptResults,
            Self::ChallengeResults { .. } => EventKind::ChallengeResults,
            Self::Mediate { .. } => EventKind::Mediate,
            Self::ClaimTimeout { .. } => EventKind::ClaimTimeout,
            Self::ReportFailure { .. } => EventKind::ReportFailure,
            Self::AcceptFailure { .. } => EventKind::AcceptFailure,
            Self::ChallengeFailure { .. } => EventKind::ChallengeFailure,
            Self::RedrawMediator { .. } => EventKind::RedrawMediator,
        }
    }

    /// The sender.
    pub const fn by(&self) -> Address {
        match self {
            Self::SubmitResults { by, .. }
            | Self::AcceptResults { by }
            | Self::ChallengeResults { by, .. }
            | Self::Mediate { by, .. }
            | Self::ClaimTimeout { by }
            | Self::ReportFailure { by, .. }
            | Self::AcceptFailure { by }
            | Self::ChallengeFailure { by, .. }
            | Self::RedrawMediator { by, .. } => *by,
        }
    }
}

/// The kind of a [`DealEvent`], for errors and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// [`DealEvent::SubmitResults`].
    SubmitResults,
    /// [`DealEvent::AcceptResults`].
    AcceptResults,
    /// [`DealEvent::ChallengeResults`].
    ChallengeResults,
    /// [`DealEvent::Mediate`].
    Mediate,
    /// [`DealEvent::ClaimTimeout`].
    ClaimTimeout,
    /// [`DealEvent::ReportFailure`].
    ReportFailure,
    /// [`DealEvent::AcceptFailure`].
    AcceptFailure,
    /// [`DealEvent::ChallengeFailure`].
    ChallengeFailure,
    /// [`DealEvent::RedrawMediator`].
    RedrawMediator,
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::SubmitResults => "submit results",
            Self::AcceptResults => "accept results",
            Self::ChallengeResults => "challenge results",
            Self::Mediate => "mediate",
            Self::ClaimTimeout => "claim timeout",
            Self::ReportFailure => "report a failure",
            Self::AcceptFailure => "accept the failure report",
            Self::ChallengeFailure => "challenge the failure report",
            Self::RedrawMediator => "redraw the mediator",
        };
        f.write_str(s)
    }
}

/// Who may send an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The deal's job creator.
    JobCreator,
    /// The deal's resource provider.
    ResourceProvider,
    /// The mediator chosen for the challenge.
    ChosenMediator,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::JobCreator => "job creator",
            Self::ResourceProvider => "resource provider",
            Self::ChosenMediator => "chosen mediator",
        };
        f.write_str(s)
    }
}

/// Why an event cannot move a deal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The deal is over; nothing moves it any more.
    #[error("the deal is already finished ({outcome})")]
    AlreadyFinished {
        /// How it ended.
        outcome: Outcome,
    },
    /// The event has no meaning in this state.
    #[error("cannot {event} while the deal is {state}")]
    NotAllowed {
        /// The current state.
        state: StateKind,
        /// The event tried.
        event: EventKind,
    },
    /// The sender does not have the role the event needs.
    #[error("only the deal's {role} {expected} may do this, not {got}")]
    WrongSender {
        /// The role the event needs.
        role: Role,
        /// The address holding that role in this deal.
        expected: Address,
        /// The sender.
        got: Address,
    },
    /// The window to act has closed.
    #[error("the deadline {deadline} has passed (now {now}); claim the timeout instead")]
    DeadlinePassed {
        /// The last second to act.
        deadline: u64,
        /// The time of the event.
        now: u64,
    },
    /// A timeout claimed at or before the deadline.
    #[error("the deadline {deadline} has not passed yet (now {now}); a timeout can be claimed from {}", deadline.saturating_add(1))]
    TooEarly {
        /// The deadline.
        deadline: u64,
        /// The time of the claim.
        now: u64,
    },
    /// The challenge names a mediator outside the deal's mutually trusted set
    /// (or, for a redraw, one already tried).
    #[error("mediator {mediator} is not one of the deal's untried trusted mediators")]
    MediatorNotTrusted {
        /// The mediator named.
        mediator: Address,
    },
    /// A timeout claimed on a challenge while mediators are left to draw.
    #[error("{untried} mediator(s) of the deal are still untried; redraw the mediator instead")]
    MediatorsLeft {
        /// How many mediators have not been drawn yet.
        untried: usize,
    },
}

/// The last second to act in `state`, or `None` for a finished deal.
///
/// Saturates at `u64::MAX` (see the module docs).
pub const fn deadline(deal: &Deal, state: &DealState) -> Option<u64> {
    let t = &deal.terms;
    match state {
        DealState::Agreed { at } => Some(at.saturating_add(t.submit_window_secs)),
        DealState::ResultsSubmitted { at, .. } => Some(at.saturating_add(t.judge_window_secs)),
        DealState::ResultsChallenged { at, .. } | DealState::FailureChallenged { at, .. } => {
            Some(at.saturating_add(t.mediate_window_secs))
        }
        DealState::FailureReported { at, .. } => Some(at.saturating_add(t.judge_window_secs)),
        DealState::Finished { .. } => None,
    }
}

/// The state that `event`, sent at unix second `now`, moves `deal` to from `state`.
///
/// Checks run in the order given in the module docs; a rejected event leaves
/// the deal where it was.
pub fn transition(
    deal: &Deal,
    state: &DealState,
    event: &DealEvent,
    now: u64,
) -> Result<DealState, TransitionError> {
    use DealEvent as E;
    use DealState as S;

    let deadline = match (state, deadline(deal, state)) {
        (S::Finished { outcome, .. }, _) => {
            return Err(TransitionError::AlreadyFinished { outcome: *outcome });
        }
        (_, Some(d)) => d,
        // Unreachable: only a finished state has no deadline.
        (_, None) => u64::MAX,
    };
    let members = &deal.members;
    let sender = |role: Role, expected: Address| {
        let got = event.by();
        if got == expected {
            Ok(())
        } else {
            Err(TransitionError::WrongSender { role, expected, got })
        }
    };
    let before_deadline = || {
        if now <= deadline {
            Ok(())
        } else {
            Err(TransitionError::DeadlinePassed { deadline, now })
        }
    };

    match (state, event) {
        (S::Agreed { .. }, E::SubmitResults { results, .. }) => {
            sender(Role::ResourceProvider, members.resource_provider)?;
            before_deadline()?;
            Ok(S::ResultsSubmitted { at: now, results: *results })
        }
        (S::ResultsSubmitted { .. }, E::AcceptResults { .. }) => {
            sender(Role::JobCreator, members.job_creator)?;
            before_deadline()?;
            Ok(S::Finished { outcome: Outcome::Accepted, at: now })
        }
        (S::ResultsSubmitted { results, .. }, E::ChallengeResults { mediator, .. }) => {
            sender(Role::JobCreator, members.job_creator)?;
            before_deadline()?;
            if !members.mediators.contains(mediator) {
                return Err(TransitionError::MediatorNotTrusted { mediator: *mediator });
            }
            Ok(S::ResultsChallenged {
                at: now,
                results: *results,
                mediator: *mediator,
                tried: BTreeSet::new(),
            })
        }
        (S::ResultsChallenged { mediator, .. }, E::Mediate { accept, .. }) => {
            sender(Role::ChosenMediator, *mediator)?;
            before_deadline()?;
            let outcome =
                if *accept { Outcome::MediationAccepted } else { Outcome::MediationRejected };
            Ok(S::Finished { outcome, at: now })
        }
        (S::Agreed { .. }, E::ReportFailure { reason, .. }) => {
            sender(Role::ResourceProvider, members.resource_provider)?;
            before_deadline()?;
            Ok(S::FailureReported { at: now, reason: *reason })
        }
        (S::FailureReported { .. }, E::AcceptFailure { .. }) => {
            sender(Role::JobCreator, members.job_creator)?;
            before_deadline()?;
            Ok(S::Finished { outcome: Outcome::FailureAccepted, at: now })
        }
        (S::FailureReported { .. }, E::ChallengeFailure { mediator, .. }) => {
            sender(Role::JobCreator, members.job_creator)?;
            before_deadline()?;
            if !members.mediators.contains(mediator) {
                return Err(TransitionError::MediatorNotTrusted { mediator: *mediator });
            }
            Ok(S::FailureChallenged { at: now, mediator: *mediator, tried: BTreeSet::new() })
        }
        (S::FailureChallenged { mediator, .. }, E::Mediate { accept, .. }) => {
            sender(Role::ChosenMediator, *mediator)?;
            before_deadline()?;
            let outcome = if *accept { Outcome::FailureUpheld } else { Outcome::FailureRefuted };
            Ok(S::Finished { outcome, at: now })
        }
        (
            S::ResultsChallenged { mediator: current, tried, .. }
            | S::FailureChallenged { mediator: current, tried, .. },
            E::RedrawMediator { mediator: next, .. },
        ) => {
            if now <= deadline {
                return Err(TransitionError::TooEarly { deadline, now });
            }
            let mut tried = tried.clone();
            tried.insert(*current);
            let failure = matches!(state, S::FailureChallenged { .. });
            if untried(&members.mediators, &tried) == 0 {
                return Ok(S::Finished { outcome: no_mediation(failure), at: now });
            }
            if !members.mediators.contains(next) || tried.contains(next) {
                return Err(TransitionError::MediatorNotTrusted { mediator: *next });
            }
            Ok(match state {
                S::ResultsChallenged { results, .. } => {
                    S::ResultsChallenged { at: now, results: *results, mediator: *next, tried }
                }
                _ => S::FailureChallenged { at: now, mediator: *next, tried },
            })
        }
        (_, E::ClaimTimeout { .. }) => {
            if now <= deadline {
                return Err(TransitionError::TooEarly { deadline, now });
            }
            let outcome = match state {
                S::Agreed { .. } => Outcome::NoResultsInTime,
                S::ResultsSubmitted { .. } => Outcome::NoJudgementInTime,
                S::FailureReported { .. } => Outcome::FailureAccepted,
                S::ResultsChallenged { mediator, tried, .. }
                | S::FailureChallenged { mediator, tried, .. } => {
                    let mut tried = tried.clone();
                    tried.insert(*mediator);
                    let left = untried(&members.mediators, &tried);
                    if left > 0 {
                        return Err(TransitionError::MediatorsLeft { untried: left });
                    }
                    no_mediation(matches!(state, S::FailureChallenged { .. }))
                }
                // Unreachable: finished deals returned above.
                S::Finished { outcome, .. } => *outcome,
            };
            Ok(S::Finished { outcome, at: now })
        }
        _ => Err(TransitionError::NotAllowed { state: state.kind(), event: event.kind() }),
    }
}

fn untried(mediators: &BTreeSet<Address>, tried: &BTreeSet<Address>) -> usize {
    mediators.difference(tried).count()
}

const fn no_mediation(failure: bool) -> Outcome {
    if failure { Outcome::FailureNoMediationInTime } else { Outcome::NoMediationInTime }
}

/// keccak256 of a results CID in its binary form: what the state and the contract keep.
pub fn results_digest(cid: &cid::Cid) -> B256 {
    keccak256(cid.to_bytes())
}

/// The seed of round `round` of a challenge's mediator draw:
/// `keccak256(abi.encode(blockhash(drawBlock), dealId, round))`, where
/// `drawBlock` is the block of the challenge (or of the redraw).
///
/// Nothing executing in that block can know its hash, so a job creator (even
/// a contract wallet that checks the draw and reverts) cannot choose when to
/// challenge; the hash is fixed once the block is sealed and the contract
/// reads it lazily from the next block on (`drawMediator`). See docs/contracts.md.
pub fn mediator_seed(draw_blockhash: B256, deal_id: B256, round: u8) -> B256 {
    let mut buf = [0u8; 96];
    buf[..32].copy_from_slice(draw_blockhash.as_slice());
    buf[32..64].copy_from_slice(deal_id.as_slice());
    buf[95] = round;
    keccak256(buf)
}

/// Picks a mediator: the one at index `uint256(seed) mod n` of the deal's
/// mediators not yet `tried`, in ascending address order (the order of the
/// contract's `uint160` comparison); `None` when none is left.
pub fn choose_mediator(
    mediators: &BTreeSet<Address>,
    tried: &BTreeSet<Address>,
    seed: B256,
) -> Option<Address> {
    let left = untried(mediators, tried);
    if left == 0 {
        return None;
    }
    let index = U256::from_be_bytes(seed.0) % U256::from(left);
    // index < left, which came from a usize.
    let index = usize::try_from(index).ok()?;
    mediators.difference(tried).nth(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deal::{DealMembers, DealTerms};

    fn addr(b: u8) -> Address {
        Address::repeat_byte(b)
    }
    const JC: u8 = 1;
    const RP: u8 = 2;
    const M1: u8 = 10;
    const M2: u8 = 11;
    const STRANGER: u8 = 99;

    fn deal() -> Deal {
        Deal {
            id: B256::repeat_byte(0xd),
            job_offer_id: B256::repeat_byte(1),
            resource_offer_id: B256::repeat_byte(2),
            module_id: B256::repeat_byte(3),
            inputs_hash: B256::repeat_byte(4),
            members: DealMembers {
                job_creator: addr(JC),
                resource_provider: addr(RP),
                solver: addr(5),
                mediators: [addr(M1), addr(M2)].into(),
            },
            terms: DealTerms {
                price: U256::from(30),
                payment_collateral: U256::from(100),
                timeout_collateral: U256::from(7),
                results_collateral: U256::from(60),
                mediation_fee: U256::from(10),
                submit_window_secs: 100,
                judge_window_secs: 50,
                mediate_window_secs: 20,
            },
            created_at: 1000,
        }
    }

    const R: B256 = B256::repeat_byte(0xaa);
    fn submitted() -> DealState {
        DealState::ResultsSubmitted { at: 1050, results: R }
    }
    fn challenged() -> DealState {
        DealState::ResultsChallenged { at: 1060, results: R, mediator: addr(M2), tried: [].into() }
    }
    /// Challenged in the last round: M1 was drawn first and never answered.
    fn last_round() -> DealState {
        DealState::ResultsChallenged {
            at: 1060,
            results: R,
            mediator: addr(M2),
            tried: [addr(M1)].into(),
        }
    }
    fn submit(by: u8) -> DealEvent {
        DealEvent::SubmitResults { by: addr(by), results: R }
    }
    fn accept(by: u8) -> DealEvent {
        DealEvent::AcceptResults { by: addr(by) }
    }
    fn challenge(by: u8, m: u8) -> DealEvent {
        DealEvent::ChallengeResults { by: addr(by), mediator: addr(m) }
    }
    fn mediate(by: u8, accept: bool) -> DealEvent {
        DealEvent::Mediate { by: addr(by), accept }
    }
    fn timeout(by: u8) -> DealEvent {
        DealEvent::ClaimTimeout { by: addr(by) }
    }
    fn finished(outcome: Outcome, at: u64) -> DealState {
        DealState::Finished { outcome, at }
    }

    #[test]
    fn deadlines_per_state() {
        let d = deal();
        assert_eq!(deadline(&d, &DealState::initial(&d)), Some(1100));
        assert_eq!(deadline(&d, &submitted()), Some(1100));
        assert_eq!(deadline(&d, &challenged()), Some(1080));
        assert_eq!(deadline(&d, &finished(Outcome::Accepted, 1)), None);
        let late = DealState::Agreed { at: u64::MAX - 1 };
        assert_eq!(deadline(&d, &late), Some(u64::MAX));
    }

    #[test]
    fn provider_submits_results_up_to_the_deadline() {
        let d = deal();
        let s = DealState::initial(&d);
        assert_eq!(
            transition(&d, &s, &submit(RP), 1100),
            Ok(DealState::ResultsSubmitted { at: 1100, results: R })
        );
        assert_eq!(
            transition(&d, &s, &submit(RP), 1101),
            Err(TransitionError::DeadlinePassed { deadline: 1100, now: 1101 })
        );
    }

    #[test]
    fn only_the_provider_submits() {
        let d = deal();
        let e = transition(&d, &DealState::initial(&d), &submit(JC), 1001).unwrap_err();
        assert_eq!(
            e,
            TransitionError::WrongSender {
                role: Role::ResourceProvider,
                expected: addr(RP),
                got: addr(JC)
            }
        );
        assert!(e.to_string().starts_with("only the deal's resource provider 0x0202"));
    }

    #[test]
    fn job_creator_accepts() {
        let d = deal();
        assert_eq!(
            transition(&d, &submitted(), &accept(JC), 1100),
            Ok(finished(Outcome::Accepted, 1100))
        );
        assert_eq!(
            transition(&d, &submitted(), &accept(JC), 1101),
            Err(TransitionError::DeadlinePassed { deadline: 1100, now: 1101 })
        );
        assert!(matches!(
            transition(&d, &submitted(), &accept(RP), 1060),
            Err(TransitionError::WrongSender { role: Role::JobCreator, .. })
        ));
    }

    #[test]
    fn job_creator_challenges_with_a_trusted_mediator() {
        let d = deal();
        assert_eq!(transition(&d, &submitted(), &challenge(JC, M2), 1060), Ok(challenged()));
        assert_eq!(
            transition(&d, &submitted(), &challenge(JC, STRANGER), 1060),
            Err(TransitionError::MediatorNotTrusted { mediator: addr(STRANGER) })
        );
        assert!(matches!(
            transition(&d, &submitted(), &challenge(M1, M1), 1060),
            Err(TransitionError::WrongSender { role: Role::JobCreator, .. })
        ));
        assert_eq!(
            transition(&d, &submitted(), &challenge(JC, M1), 1101),
            Err(TransitionError::DeadlinePassed { deadline: 1100, now: 1101 })
        );
    }

    #[test]
    fn chosen_mediator_decides() {
        let d = deal();
        assert_eq!(
            transition(&d, &challenged(), &mediate(M2, true), 1080),
            Ok(finished(Outcome::MediationAccepted, 1080))
        );
        assert_eq!(
            transition(&d, &challenged(), &mediate(M2, false), 1070),
            Ok(finished(Outcome::MediationRejected, 1070))
        );
        // Another trusted mediator is still the wrong sender.
        assert_eq!(
            transition(&d, &challenged(), &mediate(M1, true), 1070),
            Err(TransitionError::WrongSender {
                role: Role::ChosenMediator,
                expected: addr(M2),
                got: addr(M1)
            })
        );
        assert_eq!(
            transition(&d, &challenged(), &mediate(M2, true), 1081),
            Err(TransitionError::DeadlinePassed { deadline: 1080, now: 1081 })
        );
    }

    #[test]
    fn anyone_claims_each_timeout_strictly_after_the_deadline() {
        let d = deal();
        let cases = [
            (DealState::initial(&d), 1100, Outcome::NoResultsInTime),
            (submitted(), 1100, Outcome::NoJudgementInTime),
            (last_round(), 1080, Outcome::NoMediationInTime),
            (
                DealState::FailureReported { at: 1010, reason: JobFailure::ImageUnavailable },
                1060,
                Outcome::FailureAccepted,
            ),
        ];
        for (s, dl, outcome) in cases {
            assert_eq!(
                transition(&d, &s, &timeout(STRANGER), dl),
                Err(TransitionError::TooEarly { deadline: dl, now: dl })
            );
            assert_eq!(
                transition(&d, &s, &timeout(STRANGER), dl + 1),
                Ok(finished(outcome, dl + 1))
            );
            assert_eq!(transition(&d, &s, &timeout(JC), dl + 1), Ok(finished(outcome, dl + 1)));
        }
    }

    #[test]
    fn a_silent_mediator_is_redrawn_until_none_is_left() {
        let d = deal();
        let redraw = |m: u8| DealEvent::RedrawMediator { by: addr(STRANGER), mediator: addr(m) };
        // M2 drawn first, silent past 1080: only M1 is left.
        assert_eq!(
            transition(&d, &challenged(), &timeout(STRANGER), 1081),
            Err(TransitionError::MediatorsLeft { untried: 1 })
        );
        assert_eq!(
            transition(&d, &challenged(), &redraw(M1), 1080),
            Err(TransitionError::TooEarly { deadline: 1080, now: 1080 })
        );
        assert_eq!(
            transition(&d, &challenged(), &redraw(M2), 1081),
            Err(TransitionError::MediatorNotTrusted { mediator: addr(M2) })
        );
        let next = transition(&d, &challenged(), &redraw(M1), 1081).unwrap();
        let expected = DealState::ResultsChallenged {
            at: 1081,
            results: R,
            mediator: addr(M1),
            tried: [addr(M2)].into(),
        };
        assert_eq!(next, expected);
        // The second mediator pays the correct provider.
        assert_eq!(
            transition(&d, &next, &mediate(M1, true), 1101),
            Ok(finished(Outcome::MediationAccepted, 1101))
        );
        // Both silent: the last redraw ends the deal, as a timeout would.
        assert_eq!(
            transition(&d, &next, &redraw(M2), 1102),
            Ok(finished(Outcome::NoMediationInTime, 1102))
        );
        assert_eq!(
            transition(&d, &next, &timeout(JC), 1102),
            Ok(finished(Outcome::NoMediationInTime, 1102))
        );
    }

    #[test]
    fn a_failure_report_is_accepted_or_mediated() {
        let d = deal();
        let report = DealEvent::ReportFailure { by: addr(RP), reason: JobFailure::InputsRejected };
        let reported = DealState::FailureReported { at: 1010, reason: JobFailure::InputsRejected };
        assert_eq!(transition(&d, &DealState::initial(&d), &report, 1010), Ok(reported.clone()));
        let by_jc = DealEvent::ReportFailure { by: addr(JC), reason: JobFailure::InputsRejected };
        assert!(matches!(
            transition(&d, &DealState::initial(&d), &by_jc, 1010),
            Err(TransitionError::WrongSender { role: Role::ResourceProvider, .. })
        ));
        assert!(matches!(
            transition(&d, &DealState::initial(&d), &report, 1101),
            Err(TransitionError::DeadlinePassed { .. })
        ));
        assert!(matches!(
            transition(&d, &submitted(), &report, 1051),
            Err(TransitionError::NotAllowed { .. })
        ));
        let accept_failure = |by: u8| DealEvent::AcceptFailure { by: addr(by) };
        assert_eq!(
            transition(&d, &reported, &accept_failure(JC), 1060),
            Ok(finished(Outcome::FailureAccepted, 1060))
        );
        assert!(matches!(
            transition(&d, &reported, &accept_failure(RP), 1060),
            Err(TransitionError::WrongSender { .. })
        ));
        let challenge_failure = DealEvent::ChallengeFailure { by: addr(JC), mediator: addr(M1) };
        let challenged =
            DealState::FailureChallenged { at: 1020, mediator: addr(M1), tried: [].into() };
        assert_eq!(transition(&d, &reported, &challenge_failure, 1020), Ok(challenged.clone()));
        assert_eq!(
            transition(&d, &challenged, &mediate(M1, true), 1040),
            Ok(finished(Outcome::FailureUpheld, 1040))
        );
        assert_eq!(
            transition(&d, &challenged, &mediate(M1, false), 1040),
            Ok(finished(Outcome::FailureRefuted, 1040))
        );
        let redraw = DealEvent::RedrawMediator { by: addr(RP), mediator: addr(M2) };
        let next = transition(&d, &challenged, &redraw, 1041).unwrap();
        assert_eq!(
            transition(&d, &next, &timeout(RP), 1062),
            Ok(finished(Outcome::FailureNoMediationInTime, 1062))
        );
    }

    #[test]
    fn events_out_of_place_are_not_allowed() {
        let d = deal();
        let e = transition(&d, &DealState::initial(&d), &accept(JC), 1001).unwrap_err();
        assert_eq!(
            e,
            TransitionError::NotAllowed {
                state: StateKind::Agreed,
                event: EventKind::AcceptResults
            }
        );
        assert_eq!(e.to_string(), "cannot accept results while the deal is agreed");
        assert!(matches!(
            transition(&d, &submitted(), &submit(RP), 1060),
            Err(TransitionError::NotAllowed { .. })
        ));
        assert!(matches!(
            transition(&d, &challenged(), &accept(JC), 1061),
            Err(TransitionError::NotAllowed { .. })
        ));
        assert!(matches!(
            transition(&d, &submitted(), &mediate(M1, true), 1060),
            Err(TransitionError::NotAllowed { .. })
        ));
        // Not allowed takes precedence over sender and time.
        assert!(matches!(
            transition(&d, &challenged(), &challenge(STRANGER, STRANGER), u64::MAX),
            Err(TransitionError::NotAllowed { .. })
        ));
    }

    #[test]
    fn finished_deals_never_move() {
        let d = deal();
        let s = finished(Outcome::NoResultsInTime, 1200);
        for ev in [submit(RP), accept(JC), challenge(JC, M1), mediate(M1, true), timeout(JC)] {
            assert_eq!(
                transition(&d, &s, &ev, 1300),
                Err(TransitionError::AlreadyFinished { outcome: Outcome::NoResultsInTime })
            );
        }
    }

    #[test]
    fn sender_is_checked_before_time_and_time_before_mediator() {
        let d = deal();
        assert!(matches!(
            transition(&d, &submitted(), &challenge(STRANGER, STRANGER), 5000),
            Err(TransitionError::WrongSender { .. })
        ));
        assert!(matches!(
            transition(&d, &submitted(), &challenge(JC, STRANGER), 5000),
            Err(TransitionError::DeadlinePassed { .. })
        ));
    }

    #[test]
    fn choose_mediator_is_seed_mod_untried_over_ascending_set() {
        let set: BTreeSet<Address> = [addr(30), addr(10), addr(20)].into();
        let none = BTreeSet::new();
        let seed = |n: u64| B256::from(U256::from(n));
        assert_eq!(choose_mediator(&set, &none, seed(0)), Some(addr(10)));
        assert_eq!(choose_mediator(&set, &none, seed(1)), Some(addr(20)));
        assert_eq!(choose_mediator(&set, &none, seed(5)), Some(addr(30)));
        // 2^256 - 1 = 0 mod 3 (since 2^256 = 1 mod 3).
        assert_eq!(choose_mediator(&set, &none, B256::repeat_byte(0xff)), Some(addr(10)));
        assert_eq!(choose_mediator(&BTreeSet::new(), &none, seed(1)), None);
        // Tried mediators are skipped: {20, 30} left.
        let tried = [addr(10)].into();
        assert_eq!(choose_mediator(&set, &tried, seed(0)), Some(addr(20)));
        assert_eq!(choose_mediator(&set, &tried, seed(3)), Some(addr(30)));
        assert_eq!(choose_mediator(&set, &set, seed(3)), None);
    }

    #[test]
    fn mediator_seed_is_keccak_of_abi_encoded_triple() {
        let h = B256::repeat_byte(1);
        let id = B256::repeat_byte(2);
        let mut buf = vec![1u8; 32];
        buf.extend([2u8; 32]);
        buf.extend([0u8; 31]);
        buf.push(3);
        assert_eq!(mediator_seed(h, id, 3), keccak256(&buf));
        assert_ne!(mediator_seed(h, id, 3), mediator_seed(id, h, 3));
        assert_ne!(mediator_seed(h, id, 0), mediator_seed(h, id, 1));
    }

    #[test]
    fn results_digest_hashes_binary_cid() {
        let cid: cid::Cid =
            "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".parse().unwrap();
        assert_eq!(results_digest(&cid), keccak256(cid.to_bytes()));
    }

    #[test]
    fn status_kind_and_outcome_round_trip() {
        for kind in StateKind::ALL {
            assert_eq!(StateKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            let open = DealStatus::from_parts(kind, None);
            assert_eq!(open.is_some(), kind != StateKind::Finished, "{kind}");
            if let Some(status) = open {
                assert_eq!((status.kind(), status.outcome()), (kind, None));
            }
            for outcome in Outcome::ALL {
                let status = DealStatus::from_parts(kind, Some(outcome));
                assert_eq!(status.is_some(), kind == StateKind::Finished, "{kind} {outcome}");
                if let Some(status) = status {
                    assert_eq!((status.kind(), status.outcome()), (kind, Some(outcome)));
                    assert!(status.is_finished());
                }
            }
        }
        assert_eq!(StateKind::parse("done"), None);
    }
}
