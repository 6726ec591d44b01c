//! The HTTP API: routing, authentication, limits, handlers.

use std::{collections::VecDeque, convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use alloy::primitives::{Address, B256, keccak256};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Request, State as AxState},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::Stream;
use lilypad_core::{
    matcher::{AddError, Mismatch},
    offer::{JobOffer, OfferError, ResourceOffer},
};
use tokio::sync::{broadcast, watch};
use tower_http::limit::RequestBodyLimitLayer;

use super::{
    State,
    dealer::{Parsed, add_to_book},
    now_secs,
};
use crate::solver::{
    api::{
        DealList, ErrorBody, ErrorCode, Health, JobOfferStatus, MAX_MISMATCHES, MismatchReason,
        OfferKind, OfferReceipt, OfferState, PostJobOffer, PostResourceOffer, ResourceOfferStatus,
        SolverEvent, check_min_reputation,
    },
    auth::{AuthError, RequestAuth, SignerKey, verify_with_key},
    store::{NewOffer, Store, StoreError, StoredEvent, StoredOffer},
};

type Shared = Arc<State>;

/// A refused request: status, a short code, and the reason.
#[derive(Debug)]
pub(super) enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    TooLarge(String),
    RateLimited { reason: String, retry_after_secs: u64 },
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (ErrorCode, &str) {
        match self {
            Self::BadRequest(r) => (ErrorCode::BadRequest, r),
            Self::Unauthorized(r) => (ErrorCode::Unauthorized, r),
            Self::Forbidden(r) => (ErrorCode::Forbidden, r),
            Self::NotFound(r) => (ErrorCode::NotFound, r),
            Self::Conflict(r) => (ErrorCode::Conflict, r),
            Self::TooLarge(r) => (ErrorCode::PayloadTooLarge, r),
            Self::RateLimited { reason, .. } => (ErrorCode::RateLimited, reason),
            Self::Unavailable(r) => (ErrorCode::Unavailable, r),
            Self::Internal(r) => (ErrorCode::Internal, r),
        }
    }

    /// The label of `solver_offers_rejected_total`.
    fn label(&self) -> &'static str {
        self.parts().0.as_str()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (error, reason) = self.parts();
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody { error, reason: reason.to_owned() };
        let mut resp = (status, Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs, .. } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Replay { .. } | StoreError::Duplicate { .. } => {
                Self::Conflict(e.to_string())
            }
            StoreError::Closed => Self::Unavailable(e.to_string()),
            other => {
                tracing::error!("{other}");
                Self::Internal(other.to_string())
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Unauthorized(e.to_string())
    }
}

fn rate_limited(what: &str, wait: std::time::Duration) -> ApiError {
    ApiError::RateLimited {
        reason: format!("too many requests from this {what}; retry in {:.1}s", wait.as_secs_f64()),
        retry_after_secs: wait.as_secs().max(1),
    }
}

/// The routes, with the per-peer guard, the body limit and the latency histogram.
pub(super) fn router(state: Shared) -> Router {
    let max_body = state.limits.max_body_bytes;
    let api = Router::new()
        .route("/api/v1/job_offers", post(post_job))
        .route("/api/v1/job_offers/{id}", get(get_job))
        .route("/api/v1/resource_offers", post(post_resource))
        .route("/api/v1/resource_offers/{id}", get(get_resource))
        .route("/api/v1/deals", get(list_deals))
        .route("/api/v1/deals/{id}", get(get_deal))
        .route("/api/v1/deals/{id}/inputs", get(get_inputs))
        .route("/api/v1/events", get(events))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .merge(api)
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Per-peer rate limit (the TCP peer's IP; no forwarded headers are trusted) and an
/// early 413 on a declared body over the limit; before any signature work.
async fn guard(
    AxState(state): AxState<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(wait) = state.peers.take(&peer.ip()) {
        return rate_limited("address", wait).into_response();
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > state.limits.max_body_bytes as u64
    {
        return ApiError::TooLarge(format!(
            "the body is {len} bytes; the limit is {} bytes",
            state.limits.max_body_bytes
        ))
        .into_response();
    }
    next.run(req).await
}

async fn observe(AxState(state): AxState<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state
        .metrics
        .request_seconds
        .with_label_values(&[method.as_str(), route.as_str(), resp.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// A request whose signature checked out.
struct Authed {
    auth: RequestAuth,
    key: SignerKey,
}

/// Checks the request's signature, then the signer's rate limit.
fn authenticate(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Authed, ApiError> {
    let auth = RequestAuth::from_headers(headers)?;
    let path = uri.path_and_query().map_or_else(|| uri.path(), |p| p.as_str());
    let key = auth.verify(
        &state.request_domain,
        method.as_str(),
        path,
        body,
        now_secs(),
        state.limits.max_request_ttl_secs,
    )?;
    state.signers.take(&auth.signer).map_err(|w| rate_limited("signer", w))?;
    Ok(Authed { auth, key })
}

/// Remembers the request's nonce (409 if it was used).
async fn consume_nonce(state: &State, a: &Authed) -> Result<(), ApiError> {
    let (signer, nonce, expiry) = (a.auth.signer, a.auth.nonce, a.auth.expiry);
    state.store.write(move |tx| tx.use_nonce(signer, nonce, expiry)).await?;
    Ok(())
}

fn parse_id(what: &str, text: &str) -> Result<B256, ApiError> {
    text.parse::<B256>().map_err(|e| {
        ApiError::BadRequest(format!("{what} {text:?} is not a 0x-prefixed 32-byte hex id: {e}"))
    })
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de)
        .map_err(|e| ApiError::BadRequest(format!("body: {} (at {})", e.inner(), e.path())))
}

fn wrong_solver(state: &State, named: Address) -> ApiError {
    ApiError::BadRequest(format!(
        "the offer names solver {named}, but this solver is {}: sign the offer for this solver",
        state.solver
    ))
}

// ---------------------------------------------------------------- offers

async fn post_job(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<OfferReceipt>), ApiError> {
    let r = accept_job(&state, &method, &uri, &headers, &body).await;
    count(&state, OfferKind::Job, r.as_ref().map(|_| ()));
    Ok((StatusCode::CREATED, Json(r?)))
}

fn count(state: &State, kind: OfferKind, r: Result<(), &ApiError>) {
    match r {
        Ok(()) => {
            let k = if kind == OfferKind::Job { "job" } else { "resource" };
            state.metrics.offers_accepted.with_label_values(&[k]).inc();
        }
        Err(e) => state.metrics.offers_rejected.with_label_values(&[e.label()]).inc(),
    }
}

async fn accept_job(
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<OfferReceipt, ApiError> {
    let a = authenticate(state, method, uri, headers, body)?;
    let req: PostJobOffer = json_body(body)?;
    let offer = req.offer;
    check_offer(state, &a, ("creator", offer.creator), offer.solver, offer.validate(now_secs()))?;
    let params = current_params(state).await?;
    if offer.timeout_secs < params.min_job_timeout_secs {
        return Err(ApiError::BadRequest(format!(
            "invalid offer: timeout_secs: {} s is under the network's minimum job timeout of {} s",
            offer.timeout_secs, params.min_job_timeout_secs
        )));
    }
    offer
        .bounds
        .accepts(&params)
        .map_err(|e| ApiError::BadRequest(format!("invalid offer: {e}")))?;
    let inputs = req.inputs.0;
    if inputs.len() > state.limits.max_inputs_bytes {
        return Err(ApiError::TooLarge(format!(
            "the inputs are {} bytes; the limit is {} bytes",
            inputs.len(),
            state.limits.max_inputs_bytes
        )));
    }
    let hash = keccak256(&inputs);
    if hash != offer.inputs_hash {
        return Err(ApiError::BadRequest(format!(
            "keccak256 of the inputs is {hash}, but the offer's inputs_hash is {}",
            offer.inputs_hash
        )));
    }
    let min = req
        .min_reputation
        .map(check_min_reputation)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("invalid min_reputation: {e}")))?;
    let id = offer.id(&state.offer_domain);
    let (signer, expiry, json) = (offer.creator, offer.expiry, to_json(&offer)?);
    let stored = (OfferKind::Job, signer, json, Some(inputs), expiry);
    store_and_book(state, &a, id, &req.signature, stored, Parsed::Job(offer, min.unwrap_or(0.0)))
        .await
}

/// Checks what both offer kinds need before anything else: the request's signer is
/// the offer's owner (`role`, `owner`), the offer names this solver, and it is valid.
fn check_offer(
    state: &State,
    a: &Authed,
    (role, owner): (&str, Address),
    solver: Address,
    valid: Result<(), OfferError>,
) -> Result<(), ApiError> {
    if a.auth.signer != owner {
        return Err(ApiError::Forbidden(format!(
            "the request is signed by {} but the offer's {role} is {owner}: only the {role} may post it",
            a.auth.signer
        )));
    }
    if solver != state.solver {
        return Err(wrong_solver(state, solver));
    }
    valid.map_err(|e| ApiError::BadRequest(format!("invalid offer: {e}")))
}

/// The network's parameters, or 503 when the chain cannot be read.
async fn current_params(state: &State) -> Result<lilypad_core::deal::NetworkParams, ApiError> {
    state
        .network_params()
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot read the network's parameters: {e}")))
}

fn to_json<T: serde::Serialize>(offer: &T) -> Result<String, ApiError> {
    serde_json::to_string(offer).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Verifies the offer's signature with the request's key (the owner's: no second
/// recovery), stores the offer with the request's nonce, and puts it in the book.
async fn store_and_book(
    state: &State,
    a: &Authed,
    id: B256,
    signature: &[u8],
    (kind, signer, offer_json, inputs, expiry): (OfferKind, Address, String, Option<Vec<u8>>, u64),
    parsed: Parsed,
) -> Result<OfferReceipt, ApiError> {
    verify_with_key(&a.key, &id, signature)
        .map_err(|e| ApiError::BadRequest(format!("offer signature: {e}")))?;
    let (slots, min_reputation) = match &parsed {
        Parsed::Resource(_, slots) => (slots.iter().cloned().collect(), None),
        Parsed::Job(_, min) => (Vec::new(), (*min > 0.0).then_some(*min)),
    };
    let new = NewOffer {
        id,
        kind,
        signer,
        offer_json,
        signature: signature.to_vec(),
        inputs,
        expiry,
        slots,
        min_reputation,
    };
    let seq = store_offer(state, a, new).await?;
    let st = book(state, id, parsed, seq).await;
    Ok(OfferReceipt { id, state: st })
}

/// Stores an offer with its request's nonce; returns its arrival `seq`.
async fn store_offer(state: &State, a: &Authed, new: NewOffer) -> Result<u64, ApiError> {
    let (signer, nonce, expiry) = (a.auth.signer, a.auth.nonce, a.auth.expiry);
    let seq = state
        .store
        .write(move |tx| {
            tx.use_nonce(signer, nonce, expiry)?;
            tx.insert_offer(&new)
        })
        .await?;
    Ok(seq)
}

/// Puts a stored offer into the book (on the leader; elsewhere it stays `open` for
/// the leader to pick up).
async fn book(state: &State, id: B256, offer: Parsed, seq: u64) -> OfferState {
    // A leader-only decision: written under the term it was made in.
    let record = |why: Option<String>| async move {
        let Some(term) = state.term() else { return };
        let t = term.clone();
        let written = state
            .store
            .write(move |tx| {
                t.fence(tx)?;
                match why {
                    None => tx.expire_offer(id),
                    Some(why) => tx.fail_offer(id, &why),
                }
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(offer = %id, "cannot record an offer that left the book: {e}");
            state.write_failed(&term, &e);
        }
    };
    match add_to_book(state, id, offer, now_secs(), Some(seq)) {
        Ok(st) => st,
        Err(AddError::Expired { .. }) => {
            record(None).await;
            OfferState::Expired
        }
        Err(e @ AddError::SlotTaken { .. }) => {
            let why = e.to_string();
            tracing::info!(offer = %id, "{why}");
            record(Some(why)).await;
            OfferState::Failed
        }
        Err(e) => {
            tracing::warn!(offer = %id, "not put into the book: {e}");
            OfferState::Open
        }
    }
}

async fn post_resource(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<OfferReceipt>), ApiError> {
    let r = accept_resource(&state, &method, &uri, &headers, &body).await;
    count(&state, OfferKind::Resource, r.as_ref().map(|_| ()));
    Ok((StatusCode::CREATED, Json(r?)))
}

async fn accept_resource(
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<OfferReceipt, ApiError> {
    let a = authenticate(state, method, uri, headers, body)?;
    let req: PostResourceOffer = json_body(body)?;
    let offer = req.offer;
    check_offer(state, &a, ("provider", offer.provider), offer.solver, offer.validate(now_secs()))?;
    let params = current_params(state).await?;
    offer
        .bounds
        .accepts(&params)
        .map_err(|e| ApiError::BadRequest(format!("invalid offer: {e}")))?;
    let slots = check_slots(req.slots)?;
    let id = offer.id(&state.offer_domain);
    let (signer, expiry, json) = (offer.provider, offer.expiry, to_json(&offer)?);
    let stored = (OfferKind::Resource, signer, json, None, expiry);
    store_and_book(state, &a, id, &req.signature, stored, Parsed::Resource(offer, slots)).await
}

/// The most slots one resource offer may take, and the longest slot name.
const MAX_SLOTS: usize = 64;
const MAX_SLOT_NAME: usize = 64;

/// The slots of a resource offer, checked: a few short, distinct, non-empty names.
fn check_slots(slots: Vec<String>) -> Result<std::collections::BTreeSet<String>, ApiError> {
    let bad = |why: String| Err(ApiError::BadRequest(format!("invalid slots: {why}")));
    if slots.len() > MAX_SLOTS {
        return bad(format!("{} slots; at most {MAX_SLOTS}", slots.len()));
    }
    if let Some(s) = slots.iter().find(|s| s.is_empty() || s.len() > MAX_SLOT_NAME) {
        return bad(format!("slot name {s:?} is empty or over {MAX_SLOT_NAME} bytes"));
    }
    let n = slots.len();
    let set: std::collections::BTreeSet<String> = slots.into_iter().collect();
    if set.len() != n {
        return bad("a slot is named twice".into());
    }
    Ok(set)
}

/// Authenticates a `GET` (its body is empty) and uses its nonce.
async fn authed_get(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Authed, ApiError> {
    let a = authenticate(state, method, uri, headers, &[])?;
    consume_nonce(state, &a).await?;
    Ok(a)
}

async fn own_offer(
    state: &State,
    id: B256,
    kind: OfferKind,
    signer: Address,
) -> Result<StoredOffer, ApiError> {
    let row = state
        .store
        .offer(id)
        .await?
        .filter(|o| o.kind == kind)
        .ok_or_else(|| ApiError::NotFound(format!("no {kind:?} offer {id}").to_lowercase()))?;
    if row.signer != signer {
        return Err(ApiError::Forbidden(format!(
            "offer {id} is not yours: only its signer may read it"
        )));
    }
    Ok(row)
}

async fn get_job(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<JobOfferStatus>, ApiError> {
    let a = authed_get(&state, &method, &uri, &headers).await?;
    let id = parse_id("job offer id", &id)?;
    let row = own_offer(&state, id, OfferKind::Job, a.auth.signer).await?;
    let offer: JobOffer =
        serde_json::from_str(&row.offer_json).map_err(|e| ApiError::Internal(e.to_string()))?;
    // An expired offer is explained as of its last second, so a job creator that learns
    // of the expiry first still gets the reasons it never matched.
    let at = match row.state {
        OfferState::Open => Some(now_secs()),
        OfferState::Expired => Some(now_secs().min(offer.expiry.saturating_sub(1))),
        _ => None,
    };
    let book = state.book.lock().map_err(|_| ApiError::Internal("matcher lock".into()))?;
    // Only the leader holds the book: a follower replica explains nothing.
    let mismatches = if let (Some(at), Some(_)) = (at, book.leading) {
        let min = row.min_reputation.unwrap_or(0.0);
        let why = book.explain_requiring(&offer, min, at);
        summarize(why.into_iter().take(MAX_MISMATCHES).map(|(_, m)| m))
    } else {
        Vec::new()
    };
    drop(book);
    Ok(Json(JobOfferStatus {
        id,
        offer,
        state: row.state,
        reason: row.reason,
        deal_id: row.deal_id,
        mismatches,
    }))
}

/// Counts mismatches per reason in words that name no offer, most common first.
fn summarize(mismatches: impl Iterator<Item = Mismatch>) -> Vec<MismatchReason> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for m in mismatches {
        let reason = m.for_job_creator();
        match counts.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((reason, 1)),
        }
    }
    counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    counts.into_iter().map(|(r, offers)| MismatchReason { reason: r.to_string(), offers }).collect()
}

async fn get_resource(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<ResourceOfferStatus>, ApiError> {
    let a = authed_get(&state, &method, &uri, &headers).await?;
    let id = parse_id("resource offer id", &id)?;
    let row = own_offer(&state, id, OfferKind::Resource, a.auth.signer).await?;
    let offer: ResourceOffer =
        serde_json::from_str(&row.offer_json).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(ResourceOfferStatus {
        id,
        offer,
        state: row.state,
        reason: row.reason,
        deal_id: row.deal_id,
    }))
}

// ---------------------------------------------------------------- deals

async fn get_deal(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<crate::solver::api::DealRecord>, ApiError> {
    let a = authed_get(&state, &method, &uri, &headers).await?;
    let id = parse_id("deal id", &id)?;
    let record =
        state.store.deal(id).await?.ok_or_else(|| ApiError::NotFound(format!("no deal {id}")))?;
    let m = &record.deal.members;
    if a.auth.signer != m.job_creator
        && a.auth.signer != m.resource_provider
        && !is_drawn_mediator(&state, &record, a.auth.signer).await?
    {
        return Err(ApiError::Forbidden(format!(
            "deal {id} is not yours: only its job creator, its provider and its drawn mediator may read it"
        )));
    }
    Ok(Json(record))
}

async fn list_deals(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<DealList>, ApiError> {
    let a = authed_get(&state, &method, &uri, &headers).await?;
    let deals = state.store.deals_of(a.auth.signer, 1000).await?;
    Ok(Json(DealList { deals }))
}

async fn get_inputs(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = authed_get(&state, &method, &uri, &headers).await?;
    let id = parse_id("deal id", &id)?;
    let record =
        state.store.deal(id).await?.ok_or_else(|| ApiError::NotFound(format!("no deal {id}")))?;
    // The job creator's own inputs: it may re-run the job to check the results.
    if a.auth.signer != record.deal.members.resource_provider
        && a.auth.signer != record.deal.members.job_creator
        && !is_drawn_mediator(&state, &record, a.auth.signer).await?
    {
        return Err(ApiError::Forbidden(format!(
            "only the job creator and the resource provider of deal {id} and, once its results are challenged, its drawn mediator may fetch its inputs"
        )));
    }
    let inputs = state
        .store
        .inputs(record.deal.job_offer_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("deal {id} has no stored inputs")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], inputs).into_response())
}

/// Whether `who` is the mediator drawn for a challenge of `record`'s results. The
/// follower records the draw; when it has not caught up yet, the chain decides (a
/// mediator reacting to the `ResultsChallenged` event may ask before the follower saw it).
async fn is_drawn_mediator(
    state: &State,
    record: &crate::solver::api::DealRecord,
    who: Address,
) -> Result<bool, ApiError> {
    if record.mediator == Some(who) {
        return Ok(true);
    }
    if record.mediator.is_some() {
        return Ok(false);
    }
    match state.chain.deal(record.deal.id).await {
        Ok(deal) => Ok(deal.and_then(|d| d.mediator) == Some(who)),
        Err(e) => Err(ApiError::Unavailable(format!("cannot read the deal from the chain: {e}"))),
    }
}

// ---------------------------------------------------------------- events

/// One subscriber's feed: the log from `last` on, then live events, re-reading the
/// log whenever it falls behind the live channel.
struct Feed {
    store: Store,
    who: Address,
    last: u64,
    backlog: VecDeque<SolverEvent>,
    live: broadcast::Receiver<Arc<StoredEvent>>,
    from_log: bool,
    /// Shared databases: other replicas write events too, so the feed always reads
    /// the log (in `seq` order, which is commit order) and takes live events and
    /// `log_moved` only as the signal to read it.
    log_only: bool,
    log_moved: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                if e.seq <= self.last {
                    continue;
                }
                self.last = e.seq;
                let event = Event::default().id(e.seq.to_string()).json_data(&e).ok()?;
                return Some((Ok(event), self));
            }
            if self.from_log {
                match self.store.events_after(self.who, self.last, 256).await {
                    Ok(v) if !v.is_empty() => {
                        self.backlog.extend(v);
                        continue;
                    }
                    Ok(_) => self.from_log = false,
                    Err(e) => {
                        tracing::warn!("event stream: {e}");
                        return None;
                    }
                }
            }
            tokio::select! {
                r = self.live.recv() => match r {
                    Ok(ev) => {
                        if self.log_only {
                            self.from_log = true;
                        } else if ev.visible_to(self.who) {
                            self.backlog.push_back(ev.event.clone());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => self.from_log = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                r = self.log_moved.changed(), if self.log_only => match r {
                    Ok(()) => self.from_log = true,
                    Err(_) => return None,
                },
                _ = super::stopped(&mut self.stop) => return None,
            }
        }
    }
}

async fn events(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let a = authed_get(&state, &method, &uri, &headers).await?;
    let last = match headers.get("last-event-id") {
        None => 0,
        Some(v) => v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::BadRequest("Last-Event-ID must be an event seq (a number)".into())
        })?,
    };
    // Subscribed before the log is read, so nothing committed in between is missed.
    let feed = Feed {
        live: state.store.subscribe(),
        store: state.store.clone(),
        who: a.auth.signer,
        last,
        backlog: VecDeque::new(),
        from_log: true,
        log_only: state.store.is_shared(),
        log_moved: state.log_moved.clone(),
        stop: state.shutdown.clone(),
    };
    let stream = futures::stream::unfold(feed, Feed::next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

// ---------------------------------------------------------------- ops

async fn health(AxState(state): AxState<Shared>) -> Result<Json<Health>, ApiError> {
    let (open_jobs, open_resources, offered, is_leader) = {
        let book = state.book.lock().map_err(|_| ApiError::Internal("matcher lock".into()))?;
        let counts = (book.job_count() as u64, book.resource_count() as u64, book.capacity());
        (counts.0, counts.1, counts.2, book.leading.is_some())
    };
    let shared = state.store.is_shared();
    let (open_jobs, open_resources, offered) = match (shared, is_leader) {
        // A follower has no book: the database's copy, read at most once a second.
        (true, false) => {
            let mut cached = state.follower_health.lock().await;
            match cached.as_ref() {
                Some((at, counts)) if at.elapsed() < std::time::Duration::from_secs(1) => *counts,
                _ => {
                    let counts = super::dealer::book_in_database(&state).await?;
                    *cached = Some((std::time::Instant::now(), counts));
                    counts
                }
            }
        }
        _ => (open_jobs, open_resources, offered),
    };
    let leader = match shared {
        true => state.store.leader().await?.map(|l| l.holder),
        false => None,
    };
    Ok(Json(Health {
        status: "ok".into(),
        solver: state.solver,
        chain_id: state.chain_id,
        open_jobs,
        open_resources,
        offered,
        backend: state.store.backend().into(),
        replica: shared.then(|| state.replica.to_string()),
        leader,
        is_leader,
    }))
}

async fn metrics(AxState(state): AxState<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
