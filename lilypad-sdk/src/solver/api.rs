//! The solver's HTTP API types, shared by the server and the client.
//!
//! Every body is JSON. Addresses, hashes, byte strings and `U256` amounts are
//! `0x` hex strings (alloy's serde); job inputs are base64 (the server also
//! accepts `0x` hex). See `docs/solver.md` for the endpoints.

use std::fmt;

use alloy::primitives::{Address, B256, Bytes};
use base64::Engine as _;
use lilypad_core::{
    deal::{Deal, DealId},
    offer::{JobOffer, OfferId, ResourceOffer},
    settlement::Outcome,
    state::{DealStatus, JobFailure, StateKind},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every endpoint's path starts with this.
pub const API_PREFIX: &str = "/api/v1";

/// Header names of a signed request (see [`super::auth`]).
pub mod headers {
    /// The address that signed the request.
    pub const SIGNER: &str = "x-lilypad-signer";
    /// The request's nonce (decimal or `0x` hex `uint256`), never reused by a signer.
    pub const NONCE: &str = "x-lilypad-nonce";
    /// Unix second after which the request is void.
    pub const EXPIRY: &str = "x-lilypad-expiry";
    /// 65-byte `r ++ s ++ v` EIP-712 signature, `0x` hex.
    pub const SIGNATURE: &str = "x-lilypad-signature";
}

/// Opaque job inputs: base64 in JSON (standard alphabet, padded); `0x` hex is accepted too.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Inputs(pub Vec<u8>);

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Inputs({} bytes)", self.0.len())
    }
}

impl Serialize for Inputs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode_inputs(&text).map(Self).map_err(serde::de::Error::custom)
    }
}

/// Decodes job inputs given as `0x` hex or base64.
pub fn decode_inputs(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("0x") {
        return alloy::hex::decode(hex).map_err(|e| format!("inputs: not valid 0x hex: {e}"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("inputs: neither 0x hex nor valid base64: {e}"))
}

/// Body of `POST /api/v1/job_offers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostJobOffer {
    /// The offer.
    pub offer: JobOffer,
    /// The creator's 65-byte EIP-712 signature of the offer (controller domain).
    pub signature: Bytes,
    /// The job's inputs; their keccak256 must be `offer.inputs_hash`.
    pub inputs: Inputs,
    /// The least reputation score (in `[0, 1]`, see `lilypad_core::reputation`) a
    /// provider needs for the solver to pair it with this job; absent: any. The
    /// request's signature covers it (not the offer's: the chain never sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_reputation: Option<f64>,
}

/// Checks a minimum reputation score: a finite number in `[0, 1]`.
pub fn check_min_reputation(min: f64) -> Result<f64, String> {
    if min.is_finite() && (0.0..=1.0).contains(&min) {
        Ok(min)
    } else {
        Err(format!(
            "minimum reputation {min} is not a number from 0 to 1 (scores are (completed + 1) / \
             (completed + timed out + lost + 2); a new provider scores 0.5)"
        ))
    }
}

/// Body of `POST /api/v1/resource_offers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostResourceOffer {
    /// The offer.
    pub offer: ResourceOffer,
    /// The provider's 65-byte EIP-712 signature of the offer (controller domain).
    pub signature: Bytes,
    /// The provider's slots the offer takes (names the provider chose), when it
    /// offers a slot both alone and together with others: a match withdraws the
    /// provider's waiting offers that share a slot with it, and an offer of several
    /// slots is refused unless each is held by a waiting offer of the provider.
    /// Empty: the offer shares nothing. The request's signature covers it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<String>,
}

/// Which side an offer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    /// A job creator's offer.
    Job,
    /// A resource provider's offer.
    Resource,
}

/// Where an offer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferState {
    /// Waiting for a match.
    Open,
    /// Matched; the solver is creating the deal on chain.
    Matching,
    /// A deal was created from it.
    Matched,
    /// Its expiry passed before it matched.
    Expired,
    /// It can never match (e.g. `createDeal` reverted because of it); `reason` says why.
    Failed,
}

impl OfferState {
    /// The name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Matching => "matching",
            Self::Matched => "matched",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "matching" => Self::Matching,
            "matched" => Self::Matched,
            "expired" => Self::Expired,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for OfferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Answer of a successful offer `POST` (201): the offer is stored durably.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferReceipt {
    /// The offer's id (its EIP-712 signing hash under the controller's domain).
    pub id: OfferId,
    /// Its state when the answer was written (`open`, or `matching` when it matched at once).
    pub state: OfferState,
}

/// Why some resting resource offers do not fit a job: one reason and how many
/// offers fail on it. It names no offer and no figure of one, so a job
/// creator learns nothing of other providers' offers beyond the count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MismatchReason {
    /// The first rule the offers fail, in words
    /// ([`Mismatch::for_job_creator`](lilypad_core::matcher::Mismatch::for_job_creator)).
    pub reason: String,
    /// How many resting offers fail on it.
    pub offers: usize,
}

/// Answer of `GET /api/v1/job_offers/{id}` (the creator only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOfferStatus {
    /// The offer's id.
    pub id: OfferId,
    /// The offer.
    pub offer: JobOffer,
    /// Where it is.
    pub state: OfferState,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its deal, once matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<DealId>,
    /// While open: why the waiting resource offers do not match it, one entry per
    /// reason, the most common first (from at most [`MAX_MISMATCHES`] offers); empty
    /// when no resource offer waits.
    #[serde(default)]
    pub mismatches: Vec<MismatchReason>,
}

/// The most mismatch reasons [`JobOfferStatus`] lists.
pub const MAX_MISMATCHES: usize = 100;

/// Answer of `GET /api/v1/resource_offers/{id}` (the provider only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceOfferStatus {
    /// The offer's id.
    pub id: OfferId,
    /// The offer.
    pub offer: ResourceOffer,
    /// Where it is.
    pub state: OfferState,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its deal, once matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<DealId>,
}

/// A deal the solver created, with its latest known state.
///
/// On the wire the status is two fields, `state` (a [`StateKind`] name) and, once
/// finished, `outcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "DealRecordWire", try_from = "DealRecordWire")]
pub struct DealRecord {
    /// The deal's terms and members.
    pub deal: Deal,
    /// Where it is, as the solver last saw it on chain.
    pub status: DealStatus,
    /// The mutually trusted mediators in the contract's (ascending) order.
    pub mediators: Vec<Address>,
    /// The results CID in binary form, once submitted.
    pub results_cid: Option<Bytes>,
    /// The drawn mediator, once challenged.
    pub mediator: Option<Address>,
    /// The `createDeal` transaction.
    pub tx: B256,
}

/// [`DealRecord`] as JSON carries it.
#[derive(Serialize, Deserialize)]
struct DealRecordWire {
    deal: Deal,
    state: StateKind,
    mediators: Vec<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    results_cid: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mediator: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    tx: B256,
}

impl From<DealRecord> for DealRecordWire {
    fn from(r: DealRecord) -> Self {
        Self {
            deal: r.deal,
            state: r.status.kind(),
            mediators: r.mediators,
            results_cid: r.results_cid,
            mediator: r.mediator,
            outcome: r.status.outcome(),
            tx: r.tx,
        }
    }
}

impl TryFrom<DealRecordWire> for DealRecord {
    type Error = String;

    fn try_from(w: DealRecordWire) -> Result<Self, String> {
        let status = DealStatus::from_parts(w.state, w.outcome).ok_or_else(|| match w.outcome {
            Some(o) => format!("a deal in state {} cannot have an outcome ({o})", w.state),
            None => "a finished deal needs its outcome".to_owned(),
        })?;
        Ok(Self {
            deal: w.deal,
            status,
            mediators: w.mediators,
            results_cid: w.results_cid,
            mediator: w.mediator,
            tx: w.tx,
        })
    }
}

/// Answer of `GET /api/v1/deals`: the signer's deals, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealList {
    /// The deals.
    pub deals: Vec<DealRecord>,
}

/// One entry of the event stream (`GET /api/v1/events`, server-sent events).
///
/// `seq` is the SSE `id`: a durable, increasing sequence number; reconnect with
/// `Last-Event-ID: <seq>` to get every later event of yours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolverEvent {
    /// Position in the solver's event log.
    pub seq: u64,
    /// Unix second it was recorded.
    pub at: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened to one of your offers or deals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// Your offer was stored.
    OfferAccepted {
        /// The offer.
        offer_id: OfferId,
        /// Its side.
        kind: OfferKind,
    },
    /// Your offer can never match; it left the book.
    OfferFailed {
        /// The offer.
        offer_id: OfferId,
        /// Why.
        reason: String,
    },
    /// Your offer expired before it matched.
    OfferExpired {
        /// The offer.
        offer_id: OfferId,
    },
    /// A deal with you was created on chain.
    DealCreated {
        /// The deal.
        deal: Box<Deal>,
        /// The `createDeal` transaction.
        tx: B256,
    },
    /// The provider submitted results.
    ResultsSubmitted {
        /// The deal.
        deal_id: DealId,
        /// The results CID in binary form.
        results_cid: Bytes,
    },
    /// The job creator challenged the results; a mediator is drawn from `draw_block`'s hash.
    ResultsChallenged {
        /// The deal.
        deal_id: DealId,
        /// The block whose hash draws the mediator.
        draw_block: u64,
    },
    /// The provider reported that the job cannot run because of the job itself.
    FailureReported {
        /// The deal.
        deal_id: DealId,
        /// What the job creator got wrong.
        reason: JobFailure,
        /// The provider's details.
        detail: String,
    },
    /// The job creator challenged a failure report; a mediator is drawn from `draw_block`'s hash.
    FailureChallenged {
        /// The deal.
        deal_id: DealId,
        /// The block whose hash draws the mediator.
        draw_block: u64,
    },
    /// A challenge's mediator was fixed; only it may give the verdict.
    MediatorDrawn {
        /// The deal.
        deal_id: DealId,
        /// The mediator.
        mediator: Address,
    },
    /// A silent mediator was replaced: a new draw started.
    MediatorRedrawn {
        /// The deal.
        deal_id: DealId,
        /// The mediator that gave no verdict in time.
        previous: Address,
    },
    /// The deal ended.
    DealFinished {
        /// The deal.
        deal_id: DealId,
        /// How.
        outcome: Outcome,
    },
}

/// What went wrong, as the `error` field of an [`ErrorBody`] names it: the one list of
/// codes, with their HTTP statuses, that the server answers and the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request or offer is malformed or invalid.
    BadRequest,
    /// 401: missing, bad or expired request signature.
    Unauthorized,
    /// 403: signed by someone who may not do this.
    Forbidden,
    /// 404.
    NotFound,
    /// 409: a replayed request nonce, or an offer posted twice.
    Conflict,
    /// 413: the body or the inputs are over the solver's limit.
    PayloadTooLarge,
    /// 429: slow down (`Retry-After` says for how long).
    RateLimited,
    /// 503: the solver is shutting down or its store is closed.
    Unavailable,
    /// 500.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [Self; 9] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The HTTP status answered with it.
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The code answered with HTTP status `status`, if any is.
    pub fn from_status(status: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.status() == status)
    }

    /// The name on the wire, e.g. `payload_too_large`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, as a code.
    pub error: ErrorCode,
    /// What went wrong, in words.
    pub reason: String,
}

/// Answer of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"` when the service answers.
    pub status: String,
    /// The solver's address.
    pub solver: Address,
    /// The chain id.
    pub chain_id: u64,
    /// Job offers waiting for a match.
    pub open_jobs: u64,
    /// Resource offers waiting for a match.
    pub open_resources: u64,
    /// What those offers put on the market together, each machine slot counted once
    /// (no offer's own terms: those stay readable by their signer only). Absent from
    /// solvers older than this field: zero.
    #[serde(default)]
    pub offered: lilypad_core::matcher::Capacity,
    /// Where the solver keeps its state: `sqlite` or `postgres` (empty from solvers
    /// older than this field).
    #[serde(default)]
    pub backend: String,
    /// On a shared (Postgres) database: this replica's id (`host:pid:tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// On a shared database: the replica that holds the lease and matches (`None`:
    /// none now, e.g. during a takeover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Whether this replica matches offers (always on SQLite). The open counts and
    /// `offered` above are the leader's book; a replica that does not lead reads
    /// the same from the database (at most once a second).
    #[serde(default)]
    pub is_leader: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_have_one_status_and_one_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_status(code.status()), Some(code));
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        assert_eq!(ErrorCode::from_status(418), None);
    }

    #[test]
    fn inputs_are_base64_and_accept_hex() {
        let i = Inputs(b"hello".to_vec());
        assert_eq!(serde_json::to_string(&i).unwrap(), "\"aGVsbG8=\"");
        assert_eq!(serde_json::from_str::<Inputs>("\"aGVsbG8=\"").unwrap(), i);
        assert_eq!(serde_json::from_str::<Inputs>("\"0x68656c6c6f\"").unwrap(), i);
        let e = serde_json::from_str::<Inputs>("\"not base64!\"").unwrap_err().to_string();
        assert!(e.contains("neither 0x hex nor valid base64"), "{e}");
    }

    #[test]
    fn events_are_tagged() {
        let e = SolverEvent {
            seq: 7,
            at: 9,
            kind: EventKind::OfferExpired { offer_id: B256::repeat_byte(1) },
        };
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"type\":\"offer_expired\""), "{s}");
        assert_eq!(serde_json::from_str::<SolverEvent>(&s).unwrap(), e);
    }
}
