//! Running a job as a job creator, from a module reference to verified results.
//!
//! [`JobCreator::run`] walks the whole protocol:
//!
//! 1. resolve the module to an exact version (git commit or local template hash)
//!    and render it with the inputs, so errors surface before anything is paid;
//! 2. upload input files to the network's storage (they travel by CID);
//! 3. check the balance, approve the controller for the payment collateral if needed;
//! 4. sign the job offer and post it, with its inputs, to the solver;
//! 5. wait for the deal (the solver's event stream, with a polling fallback);
//! 6. wait for the results on chain (the CID is read from the chain, never from the
//!    solver or the provider);
//! 7. download the results, verifying every block against the CID;
//! 8. accept them, or challenge them when they fail verification.
//!
//! Progress is reported as a stream of typed [`JobEvent`]s through a callback.
//! The flow honours timeouts (no match before the offer expires, no results before
//! the deal's deadline) and cancellation: before a deal, the offer's nonce is
//! invalidated on chain so it can never become one; after a deal, the refund path is
//! a timeout claim once the provider's deadline has passed.

mod creator;
mod provider;

pub use creator::{JobCreator, JobOptions};
pub use provider::{ProviderClient, ProviderError, ProviderJob};

use std::{collections::BTreeMap, path::PathBuf};

use alloy::primitives::{Address, B256, U256};
use lilypad_core::amount::Amount;
use serde::Serialize;

use crate::{chain::ChainError, module::ResolveError, solver::SolverError, storage::StorageError};
use lilypad_core::{offer::TermsRefused, state::JobFailure};

/// What the user asks for.
#[derive(Debug, Clone, Default)]
pub struct JobRequest {
    /// The module as typed: `cowsay:v0.0.4`, `github.com/o/r:ref`, or a local path.
    pub module: String,
    /// Template inputs (`-i KEY=VALUE`).
    pub values: BTreeMap<String, String>,
    /// Input files (`--input-file KEY=PATH`).
    pub files: BTreeMap<String, PathBuf>,
    /// A provider the job must go to.
    pub target: Option<Address>,
    /// The most to pay, in token base units; `None` uses [`JobOptions::default_max_price`].
    pub max_price: Option<U256>,
    /// Where the results go: `<output_dir>/<deal id>/`.
    pub output_dir: PathBuf,
    /// The least reputation score (`0..=1`, see `lilypad_core::reputation`) a provider
    /// needs for the solver to pair it with the job; `None`: any.
    pub min_reputation: Option<f64>,
}

/// A step of the flow, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobEvent {
    /// The module is pinned to an exact version and renders with the inputs.
    ModuleResolved {
        /// Module id.
        module_id: B256,
        /// Human-readable source (URL at commit, or local path).
        source: String,
        /// Inputs the template looks up that were not given (rendered as Go's "no value").
        missing_inputs: Vec<String>,
    },
    /// An input file is in storage.
    InputUploaded {
        /// The input key.
        key: String,
        /// Its CID.
        cid: String,
    },
    /// The controller was approved to take the payment collateral.
    Approved {
        /// The new allowance.
        amount: U256,
    },
    /// The solver stored the signed offer.
    OfferPosted {
        /// The offer id (its EIP-712 hash).
        offer_id: B256,
        /// Unix second the offer expires.
        expiry: u64,
    },
    /// A deal exists on chain: collateral escrowed, the provider is running the job.
    DealAgreed {
        /// The deal id.
        deal_id: B256,
        /// The provider.
        provider: Address,
        /// The price.
        price: U256,
        /// Last second for the provider to submit results.
        deadline: u64,
    },
    /// The provider submitted a results CID on chain.
    ResultsSubmitted {
        /// The CID.
        cid: String,
    },
    /// Every byte of the results matched the CID; the files are on disk.
    ResultsVerified {
        /// Where.
        path: PathBuf,
    },
    /// The results were accepted on chain: the provider is paid, the rest refunded.
    Accepted {
        /// What the provider was paid for the job: the price.
        paid: U256,
        /// The provider's collateral the acceptance returned to it (its results
        /// collateral; the timeout collateral came back with the results).
        returned_collateral: U256,
        /// Refunded to the job creator (its payment collateral above the price).
        refunded: U256,
    },
    /// The results failed verification and were challenged.
    Challenged {
        /// Why.
        reason: String,
        /// The block whose hash draws the mediator.
        draw_block: u64,
    },
    /// Something the job creator should know that does not stop the job.
    Warning {
        /// What.
        message: String,
    },
    /// The provider could not run the job because of the job itself (a missing image,
    /// an unresolvable module, inputs that break the module's rules) and said so on chain.
    FailureReported {
        /// What the provider says the job creator got wrong.
        reason: JobFailure,
        /// The provider's details.
        detail: String,
    },
    /// The failure report was accepted: the payment collateral came back.
    FailureAccepted {
        /// Refunded to the job creator.
        refunded: U256,
    },
    /// The job was cancelled before it became a deal; nothing was paid.
    OfferWithdrawn,
    /// The provider missed its deadline; the timeout was claimed and the job creator refunded.
    TimedOut {
        /// Refunded to the job creator (its collateral plus the provider's timeout collateral).
        refunded: U256,
    },
}

/// A finished job.
#[derive(Debug, Clone, Serialize)]
pub struct JobOutcome {
    /// The offer id.
    pub offer_id: B256,
    /// The deal id.
    pub deal_id: B256,
    /// The module id.
    pub module_id: B256,
    /// The provider that ran it.
    pub provider: Address,
    /// The price paid.
    pub price: U256,
    /// The verified results CID.
    pub results_cid: String,
    /// The results directory (`stdout`, `stderr`, `exitCode`, `outputs/`).
    pub results_dir: PathBuf,
    /// The job's exit code, if the results carry one.
    pub exit_code: Option<i64>,
}

/// Why a job did not produce accepted results.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The module could not be resolved or rendered.
    #[error(transparent)]
    Module(#[from] ResolveError),
    /// The module renders, but not to a valid module.
    #[error(transparent)]
    Load(#[from] crate::module::LoadError),
    /// A file input given that cannot be read.
    #[error("input file {key}={}: {source}", .path.display())]
    InputFile {
        /// The key.
        key: String,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not enough tokens for the payment collateral; nothing was posted.
    #[error(
        "insufficient funds: the job needs {} of payment collateral, {account} has {}; nothing was posted",
        Amount(*.need),
        Amount(*.have)
    )]
    InsufficientFunds {
        /// The account.
        account: Address,
        /// What the offer needs.
        need: U256,
        /// The balance.
        have: U256,
    },
    /// Allowance too low and approving was turned off; nothing was posted.
    #[error(
        "insufficient allowance: the controller may take {} from {account}, the job needs {}; approve the controller for it (JobOptions::approve); nothing was posted",
        Amount(*.have),
        Amount(*.need)
    )]
    InsufficientAllowance {
        /// The account.
        account: Address,
        /// What the offer needs.
        need: U256,
        /// The allowance.
        have: U256,
    },
    /// No provider took the job before the offer expired.
    #[error("no provider matched the job before its offer expired{}", fmt_reasons(.reasons))]
    NoMatch {
        /// The offer.
        offer_id: B256,
        /// The matcher's reasons, one per resource offer considered.
        reasons: Vec<String>,
    },
    /// An input file the module does not declare; a provider would refuse the job.
    #[error(
        "input file {key:?} is not declared by the module (it declares {})",
        if declared.is_empty() { "no input files".to_owned() } else { declared.join(", ") }
    )]
    UndeclaredInputFile {
        /// The key given.
        key: String,
        /// The keys the module declares.
        declared: Vec<String>,
    },
    /// The inputs are over the size every solver and provider accepts.
    #[error(
        "the job's inputs are {bytes} bytes, over the {limit}-byte limit: send large values as input files"
    )]
    InputsTooLarge {
        /// Their size in canonical form.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A git module's image is not pinned by digest.
    #[error(
        "image {image} is not pinned by digest (name@sha256:...): a mediator could not re-run the same image; pin it in the module"
    )]
    ImageNotPinned {
        /// The image as the module names it.
        image: String,
    },
    /// The network's current parameters are outside what this job creator signs.
    #[error("the network's terms are outside this job's bounds: {0}")]
    TermsRefused(#[from] TermsRefused),
    /// The request's minimum reputation is not a number from 0 to 1.
    #[error("{0}")]
    InvalidMinReputation(String),
    /// The provider reported that the job cannot run because of the job itself.
    #[error(
        "provider {provider} could not run the job of deal {deal_id}: {reason}: {detail}{}",
        if *accepted { "; the failure report was accepted and the payment collateral refunded" } else { "; the report is open: accept it or challenge it before its window closes" }
    )]
    ProviderCouldNotRun {
        /// The deal.
        deal_id: B256,
        /// The provider.
        provider: Address,
        /// What the provider says the job creator got wrong.
        reason: JobFailure,
        /// The provider's details.
        detail: String,
        /// Whether this job creator accepted the report (and was refunded).
        accepted: bool,
    },
    /// The solver refused the offer or failed to create its deal.
    #[error("the solver rejected the job: {0}")]
    Rejected(String),
    /// The provider did not submit results in time; the timeout was claimed.
    #[error(
        "provider {provider} did not submit results for deal {deal_id} in time; refunded {}",
        Amount(*.refunded)
    )]
    ProviderTimedOut {
        /// The deal.
        deal_id: B256,
        /// The provider.
        provider: Address,
        /// Refunded to the job creator.
        refunded: U256,
    },
    /// The results failed verification; they were challenged.
    #[error(
        "results {cid} of deal {deal_id} failed verification and were challenged (a mediator is drawn from the hash of block {draw_block}): {reason}"
    )]
    ResultsRejected {
        /// The deal.
        deal_id: B256,
        /// The CID the provider submitted.
        cid: String,
        /// What was wrong.
        reason: String,
        /// The block whose hash draws the mediator.
        draw_block: u64,
    },
    /// Cancelled by the caller.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// Chain failure.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Solver failure.
    #[error(transparent)]
    Solver(#[from] SolverError),
    /// Storage failure (not a verification failure of the results).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

fn fmt_reasons(reasons: &[String]) -> String {
    if reasons.is_empty() {
        " (no resource offer was available)".to_owned()
    } else {
        let mut s = String::from(":");
        for r in reasons {
            s.push_str("\n  - ");
            s.push_str(r);
        }
        s
    }
}
