//! Chain errors, with the contracts' custom errors decoded into readable messages.

use std::{fmt, time::Duration};

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    sol_types::{Panic as SolPanic, Revert as SolRevert, SolError, SolInterface},
    transports::{RpcError, TransportError},
};
use lilypad_core::{amount::Amount, offer::OfferError, settlement::Outcome};

use super::{
    bindings::{
        controller::LilypadController::LilypadControllerErrors as Ctl,
        example_client::ExampleClient::ExampleClientErrors as Ex,
        job_manager::LilypadJobManager::LilypadJobManagerErrors as Jm,
        modules::LilypadModuleRegistry::LilypadModuleRegistryErrors as Reg,
        pow::LilypadPow::LilypadPowErrors as Pow, token::LilypadToken::LilypadTokenErrors as Tok,
        users::LilypadUsers::LilypadUsersErrors as Usr,
    },
    config::ConfigError,
};

/// `Result` with [`ChainError`].
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

/// Anything that can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The network file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A contract refused the call; `revert` says why.
    #[error("{call} reverted: {revert}")]
    Reverted {
        /// The contract function.
        call: &'static str,
        /// The decoded reason.
        revert: Revert,
    },
    /// The node refused the request (no revert: e.g. not enough ETH for gas, nonce too low).
    #[error("{call}: the node refused it: {message} (code {code})")]
    Rejected {
        /// The contract function or RPC method.
        call: &'static str,
        /// The node's message.
        message: String,
        /// The JSON-RPC error code.
        code: i64,
    },
    /// No RPC node answered, after retries and failover.
    #[error(
        "{call}: no RPC node answered: {cause} (check the network's rpc_urls and that the node runs)"
    )]
    Rpc {
        /// The contract function or RPC method.
        call: &'static str,
        /// The last transport failure (part of the message, so not a `source()`).
        cause: TransportError,
    },
    /// A call or transaction took longer than its timeout.
    #[error("{call}: no result within {}s (raise rpc.timeout_secs or rpc.tx_timeout_secs if the node is slow)", .after.as_secs_f64())]
    Timeout {
        /// The contract function or RPC method.
        call: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The transaction was mined but failed (it passed simulation, so the state changed in between).
    #[error(
        "{call}: transaction {tx} was mined but reverted (status 0); the chain changed after simulation, retry it"
    )]
    TxFailed {
        /// The contract function.
        call: &'static str,
        /// The transaction hash.
        tx: B256,
    },
    /// A write needs a key and the client has none.
    #[error(
        "{call} sends a transaction and needs a signing key: build the client with ChainClient::with_signer"
    )]
    NoSigner {
        /// The contract function.
        call: &'static str,
    },
    /// The client's key is not the one the thing to sign names.
    #[error(
        "cannot sign this {what}: it names {expected} as its signer but this client's key is {got}"
    )]
    WrongSigner {
        /// What was to be signed.
        what: &'static str,
        /// The address the payload names.
        expected: Address,
        /// The client's address.
        got: Address,
    },
    /// Signing failed.
    #[error("signing the {what} failed: {message}")]
    Signing {
        /// What was to be signed.
        what: &'static str,
        /// The signer's error.
        message: String,
    },
    /// An offer is not well formed.
    #[error("invalid offer: {0}")]
    Offer(#[from] OfferError),
    /// The RPC node serves another chain than the network file says.
    #[error(
        "{url} serves chain {got}, but network {network} is chain {expected}: fix chain_id or rpc_urls"
    )]
    WrongChain {
        /// The network's name.
        network: String,
        /// The RPC URL.
        url: String,
        /// The configured chain id.
        expected: u64,
        /// The node's chain id.
        got: u64,
    },
    /// A receipt lacks the event the call always emits.
    #[error(
        "{call}: transaction {tx} succeeded but has no {event} event from the contract; is the address right?"
    )]
    MissingEvent {
        /// The contract function.
        call: &'static str,
        /// The missing event.
        event: &'static str,
        /// The transaction hash.
        tx: B256,
    },
    /// No on-chain job has this id (the job manager's ids are 1 to `jobCount`).
    #[error("no on-chain job {job_id}: the job manager's ids are 1 to its jobCount")]
    NoSuchJob {
        /// The id asked for.
        job_id: U256,
    },
    /// An address of the network does not hold the contract it should.
    #[error("{contract} at {address}: {problem}")]
    NotDeployed {
        /// The contract (its TOML key: `token`, `controller`, ...).
        contract: &'static str,
        /// Its address in the network.
        address: Address,
        /// What is wrong (no code, other code, a view call that fails).
        problem: String,
    },
    /// A value read from the chain does not decode.
    #[error("{call}: unexpected answer: {message}")]
    Decode {
        /// The contract function.
        call: &'static str,
        /// What did not decode.
        message: String,
    },
}

/// Which contract a call went to; its errors are tried first when decoding a revert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Controller,
    Token,
    Modules,
    Users,
    Pow,
    JobManager,
    ExampleClient,
}

/// Why a contract reverted, decoded from the revert data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revert {
    /// A `LilypadController` custom error.
    Controller(Ctl),
    /// A `LilypadToken` (OpenZeppelin ERC-20, permit, access control) error.
    Token(Tok),
    /// A `LilypadModuleRegistry` error.
    Modules(Reg),
    /// A `LilypadUsers` error.
    Users(Usr),
    /// A `LilypadPow` error.
    Pow(Pow),
    /// A `LilypadJobManager` error (its own, access control, token transfers).
    JobManager(Jm),
    /// An `ExampleClient` error.
    ExampleClient(Ex),
    /// `revert("message")`.
    Message(String),
    /// A Solidity panic code.
    Panic(U256),
    /// Revert data that matches no known error.
    Unknown(Bytes),
    /// The node reported a revert without data.
    NoData(String),
}

impl Revert {
    /// Decodes revert data, trying `first`'s errors before the other contracts'
    /// (the controller bubbles up the token's errors from its transfers).
    pub(crate) fn decode(data: &[u8], first: Target) -> Self {
        let order = [
            Target::Controller,
            Target::Token,
            Target::Modules,
            Target::Users,
            Target::Pow,
            Target::JobManager,
            Target::ExampleClient,
        ];
        for t in std::iter::once(first).chain(order.into_iter().filter(|t| *t != first)) {
            let decoded = match t {
                Target::Controller => Ctl::abi_decode(data).ok().map(Self::Controller),
                Target::Token => Tok::abi_decode(data).ok().map(Self::Token),
                Target::Modules => Reg::abi_decode(data).ok().map(Self::Modules),
                Target::Users => Usr::abi_decode(data).ok().map(Self::Users),
                Target::Pow => Pow::abi_decode(data).ok().map(Self::Pow),
                Target::JobManager => Jm::abi_decode(data).ok().map(Self::JobManager),
                Target::ExampleClient => Ex::abi_decode(data).ok().map(Self::ExampleClient),
            };
            if let Some(d) = decoded {
                return d;
            }
        }
        if let Ok(e) = SolRevert::abi_decode(data) {
            return Self::Message(e.reason);
        }
        if let Ok(p) = SolPanic::abi_decode(data) {
            return Self::Panic(p.code);
        }
        Self::Unknown(Bytes::copy_from_slice(data))
    }

    /// The error's name, e.g. `NonceUsed`.
    pub fn name(&self) -> String {
        let debug = match self {
            Self::Controller(e) => format!("{e:?}"),
            Self::Token(e) => format!("{e:?}"),
            Self::Modules(e) => format!("{e:?}"),
            Self::Users(e) => format!("{e:?}"),
            Self::Pow(e) => format!("{e:?}"),
            Self::JobManager(e) => format!("{e:?}"),
            Self::ExampleClient(e) => format!("{e:?}"),
            Self::Message(_) => return "Error".into(),
            Self::Panic(_) => return "Panic".into(),
            Self::Unknown(_) | Self::NoData(_) => return "unknown".into(),
        };
        debug.split('(').next().unwrap_or_default().to_owned()
    }
}

fn outcome_name(o: u8) -> String {
    Outcome::ALL.get(usize::from(o)).map_or_else(|| format!("outcome {o}"), |o| format!("{o:?}"))
}

fn state_name(s: u8) -> &'static str {
    [
        "None",
        "Agreed",
        "ResultsSubmitted",
        "ResultsChallenged",
        "Finished",
        "FailureReported",
        "FailureChallenged",
    ]
    .get(usize::from(s))
    .copied()
    .unwrap_or("unknown state")
}

fn action_name(a: u8) -> &'static str {
    [
        "submitResults",
        "acceptResults",
        "challengeResults",
        "mediate",
        "claimTimeout",
        "reportFailure",
        "acceptFailure",
        "challengeFailure",
        "drawMediator",
        "redrawMediator",
    ]
    .get(usize::from(a))
    .copied()
    .unwrap_or("unknown action")
}

fn term_name(t: u8) -> &'static str {
    [
        "results collateral multiple (provider's maximum)",
        "mediation fee (job creator's maximum)",
        "judge window (provider's maximum)",
        "judge window (job creator's minimum)",
        "mediate window (provider's minimum)",
    ]
    .get(usize::from(t))
    .copied()
    .unwrap_or("term")
}

fn role_name(r: u8) -> &'static str {
    ["the job creator", "the resource provider", "the chosen mediator"]
        .get(usize::from(r))
        .copied()
        .unwrap_or("unknown role")
}

fn amount_name(w: u8) -> &'static str {
    ["price", "payment collateral", "timeout collateral", "results collateral"]
        .get(usize::from(w))
        .copied()
        .unwrap_or("amount")
}

fn list_name(w: u8) -> &'static str {
    ["job offer mediators", "resource offer mediators", "resource offer modules", "module prices"]
        .get(usize::from(w))
        .copied()
        .unwrap_or("list")
}

fn fmt_controller(e: &Ctl, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e {
        Ctl::NotSolver(e) => write!(
            f,
            "NotSolver(job solver {}, resource solver {}, caller {}): only the solver both offers name may create the deal",
            e.jobSolver, e.resourceSolver, e.caller
        ),
        Ctl::OfferExpired(e) => write!(
            f,
            "OfferExpired(signer {}, expiry {}, now {}): the offer has expired; sign a new one with a later expiry",
            e.signer, e.expiry, e.now
        ),
        Ctl::NonceUsed(e) => write!(
            f,
            "NonceUsed(signer {}, nonce {}): this offer was already used (or its nonce invalidated); sign a new offer with a fresh nonce",
            e.signer, e.nonce
        ),
        Ctl::InvalidSignature(e) => write!(
            f,
            "InvalidSignature(signer {}): the signature is not the signer's over this offer (wrong key, or an EIP-712 domain of another chain or controller)",
            e.signer
        ),
        Ctl::TargetMismatch(e) => write!(
            f,
            "TargetMismatch(target {}, provider {}): the job offer is for another provider",
            e.target, e.provider
        ),
        Ctl::TimeoutTooShort(e) => write!(
            f,
            "TimeoutTooShort(timeout {} s, provider minimum {} s, network minimum {} s): the job gives the provider less time than it signed for, or than the network allows",
            e.timeoutSecs, e.providerMinimum, e.networkMinimum
        ),
        Ctl::TermsNotAccepted(e) => write!(
            f,
            "TermsNotAccepted({} {} over the bound {}): the network's current terms are outside what an offer signed; sign a new offer",
            term_name(e.term),
            e.value,
            e.bound
        ),
        Ctl::TooManyMediators(e) => write!(
            f,
            "TooManyMediators({} lists {}): an offer may trust at most 64 mediators",
            if e.which == 0 { "the job offer" } else { "the resource offer" },
            e.count
        ),
        Ctl::MediatorNotDrawn(e) => write!(
            f,
            "MediatorNotDrawn(deal {}): the mediator is not drawn yet; call drawMediator first",
            e.dealId
        ),
        Ctl::MediatorAlreadyDrawn(e) => write!(
            f,
            "MediatorAlreadyDrawn(deal {}, mediator {}): this round's mediator is fixed already",
            e.dealId, e.mediator
        ),
        Ctl::DrawNotReady(e) => write!(
            f,
            "DrawNotReady(draw block {}, now block {}): the draw block's hash is known from the next block on",
            e.drawBlock, e.blockNumber
        ),
        Ctl::MediatorsLeft(e) => write!(
            f,
            "MediatorsLeft({} untried): a silent mediator is replaced with redrawMediator until none is left",
            e.untried
        ),
        Ctl::WouldTouchEscrow(e) => write!(
            f,
            "WouldTouchEscrow(amount {}, free {}): only tokens beyond the open deals' escrow can be recovered",
            e.amount, e.free
        ),
        Ctl::ModuleNotOffered(e) => write!(
            f,
            "ModuleNotOffered(module {}): the resource offer does not run this module",
            e.moduleId
        ),
        Ctl::ModuleNotAllowed(e) => write!(
            f,
            "ModuleNotAllowed(module {}): the network's module registry does not allow this module (blocked, or not on the allowlist)",
            e.moduleId
        ),
        Ctl::PriceTooHigh(e) => write!(
            f,
            "PriceTooHigh(price {}, max price {}): the provider asks more than the job offers",
            Amount(e.price),
            Amount(e.maxPrice)
        ),
        Ctl::PaymentBelowPrice(e) => write!(
            f,
            "PaymentBelowPrice(payment collateral {}, price {}): the job creator must escrow at least the price",
            Amount(e.paymentCollateral),
            Amount(e.price)
        ),
        Ctl::AmountTooLarge(e) => write!(
            f,
            "AmountTooLarge({} {}): deal amounts are limited to 2^128 - 1 base units",
            amount_name(e.what),
            e.amount
        ),
        Ctl::NotStrictlyAscending(e) => write!(
            f,
            "NotStrictlyAscending({} at index {}): the list must be sorted ascending without duplicates",
            list_name(e.what),
            e.index
        ),
        Ctl::ZeroMediator(_) => {
            f.write_str("ZeroMediator: a mediator list contains the zero address")
        }
        Ctl::NoCommonMediator(_) => f.write_str(
            "NoCommonMediator: no mediator is trusted by both the job creator and the provider",
        ),
        Ctl::DealExists(e) => {
            write!(f, "DealExists(deal {}): these two offers already made a deal", e.dealId)
        }
        Ctl::DealNotFound(e) => write!(f, "DealNotFound(deal {}): no deal has this id", e.dealId),
        Ctl::AlreadyFinished(e) => write!(
            f,
            "AlreadyFinished(deal {}, outcome {}): the deal is over",
            e.dealId,
            outcome_name(e.outcome)
        ),
        Ctl::NotAllowed(e) => write!(
            f,
            "NotAllowed(deal {}, state {}, action {}): {} is not possible in state {}",
            e.dealId,
            state_name(e.state),
            action_name(e.action),
            action_name(e.action),
            state_name(e.state)
        ),
        Ctl::WrongSender(e) => write!(
            f,
            "WrongSender(role {}, expected {}, got {}): only {} may do this",
            role_name(e.role),
            e.expected,
            e.got,
            role_name(e.role)
        ),
        Ctl::DeadlinePassed(e) => write!(
            f,
            "DeadlinePassed(deadline {}, now {}): the window to act has closed; claim the timeout instead",
            e.deadline, e.now
        ),
        Ctl::TooEarly(e) => write!(
            f,
            "TooEarly(deadline {}, now {}): a timeout can be claimed from second {} on",
            e.deadline,
            e.now,
            u128::from(e.deadline) + 1
        ),
        Ctl::MediatorsMismatch(e) => write!(
            f,
            "MediatorsMismatch(expected hash {}, got {}): pass the deal's mediators exactly as in its DealCreated event",
            e.expected, e.got
        ),
        Ctl::EmptyResults(_) => f.write_str("EmptyResults: the results CID is empty"),
        Ctl::InvalidParams(_) => {
            f.write_str("InvalidParams: the judge and mediation windows must be positive")
        }
        Ctl::OwnableUnauthorizedAccount(e) => {
            write!(f, "OwnableUnauthorizedAccount({}): only the owner may do this", e.account)
        }
        Ctl::OwnableInvalidOwner(e) => write!(f, "OwnableInvalidOwner({})", e.owner),
        Ctl::ReentrancyGuardReentrantCall(_) => f.write_str("ReentrancyGuardReentrantCall"),
        Ctl::SafeERC20FailedOperation(e) => {
            write!(f, "SafeERC20FailedOperation(token {}): a token transfer failed", e.token)
        }
        other => write!(f, "{other:?}"),
    }
}

fn fmt_token(e: &Tok, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e {
        Tok::ERC20InsufficientAllowance(e) => write!(
            f,
            "ERC20InsufficientAllowance(spender {}, allowance {}, needed {}): approve the controller first or pass an EIP-2612 permit",
            e.spender,
            Amount(e.allowance),
            Amount(e.needed)
        ),
        Tok::ERC20InsufficientBalance(e) => write!(
            f,
            "ERC20InsufficientBalance(account {}, balance {}, needed {}): not enough tokens",
            e.sender,
            Amount(e.balance),
            Amount(e.needed)
        ),
        Tok::ERC2612ExpiredSignature(e) => {
            write!(f, "ERC2612ExpiredSignature(deadline {}): the permit has expired", e.deadline)
        }
        Tok::ERC2612InvalidSigner(e) => write!(
            f,
            "ERC2612InvalidSigner(signer {}, owner {}): the permit is not signed by the owner (or its nonce is stale)",
            e.signer, e.owner
        ),
        Tok::AccessControlUnauthorizedAccount(e) => write!(
            f,
            "AccessControlUnauthorizedAccount(account {}, role {}): the account lacks {}",
            e.account,
            e.neededRole,
            access_role_name(e.neededRole)
        ),
        other => write!(f, "{other:?}"),
    }
}

fn fmt_users(e: &Usr, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e {
        Usr::InvalidRoles(e) => write!(
            f,
            "InvalidRoles({}): roles are bits 1 (job creator), 2 (provider), 4 (solver), 8 (mediator)",
            e.roles
        ),
        Usr::UnknownRole(e) => write!(f, "UnknownRole({}): give exactly one role bit", e.role),
        Usr::UrlTooLong(e) => write!(f, "UrlTooLong(length {}, max {})", e.length, e.max),
    }
}

fn fmt_pow(e: &Pow, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e {
        Pow::NoRound(_) => f.write_str("NoRound: no proof-of-work round has started"),
        Pow::ZeroTarget(_) => f.write_str("ZeroTarget: a target of 0 can never be met"),
        Pow::ProofAboveTarget(e) => write!(
            f,
            "ProofAboveTarget(hash {}, target {}): the proof does not meet the round's target",
            e.proofHash, e.target
        ),
        Pow::ProofUsed(e) => {
            write!(f, "ProofUsed(hash {}): this proof was already submitted", e.proofHash)
        }
        Pow::OwnableUnauthorizedAccount(e) => {
            write!(f, "OwnableUnauthorizedAccount({}): only the owner may do this", e.account)
        }
        other => write!(f, "{other:?}"),
    }
}

fn job_state_name(s: u8) -> &'static str {
    ["None", "Requested", "Fulfilled", "Cancelled"]
        .get(usize::from(s))
        .copied()
        .unwrap_or("unknown")
}

/// A readable name of an AccessControl role hash (the ones the contracts use).
fn access_role_name(role: B256) -> String {
    use alloy::primitives::keccak256;
    if role == B256::ZERO {
        "the admin role (DEFAULT_ADMIN_ROLE)".into()
    } else if role == keccak256("BRIDGE_ROLE") {
        "the bridge role (BRIDGE_ROLE)".into()
    } else if role == keccak256("MINTER_ROLE") {
        "the minter role (MINTER_ROLE)".into()
    } else {
        format!("role {role}")
    }
}

fn fmt_job_manager(e: &Jm, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e {
        Jm::JobNotFound(e) => write!(f, "JobNotFound(job {}): no job has this id", e.jobId),
        Jm::JobAlreadyFinal(e) => write!(
            f,
            "JobAlreadyFinal(job {}, state {}): the job is already over; each job is fulfilled or cancelled once",
            e.jobId,
            job_state_name(e.state)
        ),
        Jm::JobExpired(e) => write!(
            f,
            "JobExpired(job {}, deadline {}, now {}): the time to fulfill is over; cancel the job instead",
            e.jobId, e.deadline, e.now
        ),
        Jm::JobNotExpired(e) => write!(
            f,
            "JobNotExpired(job {}, deadline {}, now {}): an expired job can be cancelled from second {} on",
            e.jobId,
            e.deadline,
            e.now,
            u128::from(e.deadline) + 1
        ),
        Jm::SpentExceedsPayment(e) => write!(
            f,
            "SpentExceedsPayment(job {}, spent {}, payment {}): the bridge may be reimbursed at most the job's payment",
            e.jobId,
            Amount(e.spent),
            Amount(e.payment)
        ),
        Jm::ZeroPayment(_) => f.write_str("ZeroPayment: a job must escrow a payment above 0"),
        Jm::EmptyModule(_) => f.write_str("EmptyModule: the module reference is empty"),
        Jm::ModuleTooLong(e) => {
            write!(
                f,
                "ModuleTooLong(length {}, max {}): the module reference is too long",
                e.length, e.max
            )
        }
        Jm::TooManyInputs(e) => {
            write!(f, "TooManyInputs(count {}, max {}): too many inputs", e.count, e.max)
        }
        Jm::InputTooLong(e) => write!(
            f,
            "InputTooLong(index {}, length {}, max {}): the input is too long",
            e.index, e.length, e.max
        ),
        Jm::InvalidInput(e) => write!(
            f,
            "InvalidInput(index {}): inputs are KEY=VALUE with a non-empty KEY free of spaces and control characters",
            e.index
        ),
        Jm::EmptyResults(_) => f.write_str("EmptyResults: the results CID is empty"),
        Jm::ResultsTooLong(e) => write!(
            f,
            "ResultsTooLong(length {}, max {}): the results CID is too long",
            e.length, e.max
        ),
        Jm::ReasonTooLong(e) => write!(
            f,
            "ReasonTooLong(length {}, max {}): the cancel reason is too long",
            e.length, e.max
        ),
        Jm::InsufficientGasForCallback(e) => write!(
            f,
            "InsufficientGasForCallback(gas left {}, needed {}): send the transaction with a higher gas limit",
            e.gasLeft, e.needed
        ),
        Jm::InvalidJobTimeout(e) => write!(
            f,
            "InvalidJobTimeout({}): the job timeout must be 300 to 2592000 seconds",
            e.secs
        ),
        Jm::ZeroAddress(_) => f.write_str("ZeroAddress: the token and the admin must be set"),
        Jm::AccessControlUnauthorizedAccount(e) => write!(
            f,
            "AccessControlUnauthorizedAccount(account {}, role {}): only an account with {} may do this",
            e.account,
            e.neededRole,
            access_role_name(e.neededRole)
        ),
        Jm::SafeERC20FailedOperation(e) => {
            write!(f, "SafeERC20FailedOperation(token {}): a token transfer failed", e.token)
        }
        other => write!(f, "{other:?}"),
    }
}

fn fmt_example_client(e: &Ex, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e {
        Ex::NotManager(e) => write!(
            f,
            "NotManager(caller {}): only the job manager may call the client back",
            e.caller
        ),
        Ex::NotRequested(e) => write!(
            f,
            "NotRequested(job {}, status {}): the client did not request this job or it is already over",
            e.jobId,
            job_state_name(e.status)
        ),
        Ex::OwnableUnauthorizedAccount(e) => {
            write!(f, "OwnableUnauthorizedAccount({}): only the owner may do this", e.account)
        }
        other => write!(f, "{other:?}"),
    }
}

impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Controller(e) => fmt_controller(e, f),
            Self::Token(e) => fmt_token(e, f),
            Self::Users(e) => fmt_users(e, f),
            Self::Pow(e) => fmt_pow(e, f),
            Self::JobManager(e) => fmt_job_manager(e, f),
            Self::ExampleClient(e) => fmt_example_client(e, f),
            Self::Modules(Reg::OwnableUnauthorizedAccount(e)) => {
                write!(f, "OwnableUnauthorizedAccount({}): only the owner may do this", e.account)
            }
            Self::Modules(e) => write!(f, "{e:?}"),
            Self::Message(m) => write!(f, "{m:?}"),
            Self::Panic(code) => write!(f, "Solidity panic 0x{code:x}"),
            Self::Unknown(data) => write!(f, "unknown error data {data}"),
            Self::NoData(message) => write!(f, "{message} (no revert data)"),
        }
    }
}

/// Turns an alloy contract error into a [`ChainError`] for `call` on `target`.
pub(crate) fn from_contract(
    call: &'static str,
    target: Target,
    e: alloy::contract::Error,
) -> ChainError {
    use alloy::contract::Error as E;
    match e {
        E::TransportError(t) => from_transport(call, target, t),
        E::PendingTransactionError(p) => ChainError::Decode { call, message: p.to_string() },
        other => ChainError::Decode { call, message: other.to_string() },
    }
}

/// Turns a transport error into a [`ChainError`]: reverts are decoded, other node errors kept.
pub(crate) fn from_transport(call: &'static str, target: Target, e: TransportError) -> ChainError {
    match e {
        RpcError::ErrorResp(payload) => {
            if let Some(data) = payload.as_revert_data() {
                return ChainError::Reverted { call, revert: Revert::decode(&data, target) };
            }
            let message = payload.message.to_string();
            if message.contains("revert") {
                return ChainError::Reverted { call, revert: Revert::NoData(message) };
            }
            let hint = if message.contains("nonce too low") || message.contains("already known") {
                ": another sender used this key, or a retry re-sent it; the next transaction re-reads the nonce"
            } else if message.contains("insufficient funds") {
                ": the sender needs ETH for gas"
            } else {
                ""
            };
            ChainError::Rejected { call, message: format!("{message}{hint}"), code: payload.code }
        }
        other => ChainError::Rpc { call, cause: other },
    }
}
