//! The dashboard's HTTP routes: the embedded page, the JSON API and the live feed.

use std::{convert::Infallible, str::FromStr, sync::Arc, time::Duration};

use alloy::{providers::Provider, signers::local::PrivateKeySigner};
use axum::{
    Json, Router,
    extract::{Path, State as AxState},
    http::{StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures::Stream;
use lilypad_sdk::{
    core::{Address, B256},
    solver::SolverClient,
};
use serde_json::{Value, json};

use super::{State, model::SolverView};

/// Where the page links transactions and results.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    /// A block explorer's base URL.
    pub(crate) explorer: Option<String>,
    /// An IPFS gateway's base URL.
    pub(crate) ipfs_gateway: String,
}

/// The solver's unauthenticated endpoints.
pub(crate) struct PublicSolver {
    url: String,
    client: SolverClient,
}

impl PublicSolver {
    /// A client of the solver at `url` for its public endpoints only.
    pub(crate) fn new(url: &str, chain_id: u64) -> anyhow::Result<Self> {
        // The client wants a signer; `/healthz` takes no signature, so a fixed
        // throwaway key that signs nothing will do.
        let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x11))?;
        let client = SolverClient::new(url, signer, chain_id, Address::ZERO)?;
        Ok(Self { url: url.to_owned(), client })
    }
}

/// The solver's public numbers now; unreachable (with why) when it does not answer.
pub(crate) async fn solver_view(solver: Option<&PublicSolver>) -> SolverView {
    let Some(s) = solver else {
        return SolverView {
            error: Some("the network file names no solver_url".into()),
            ..Default::default()
        };
    };
    match tokio::time::timeout(Duration::from_secs(5), s.client.health()).await {
        Ok(Ok(h)) => SolverView {
            url: Some(s.url.clone()),
            reachable: true,
            open_job_offers: Some(h.open_jobs),
            open_resource_offers: Some(h.open_resources),
            offered: Some(h.offered),
            error: None,
        },
        Ok(Err(e)) => SolverView {
            url: Some(s.url.clone()),
            error: Some(e.to_string()),
            ..Default::default()
        },
        Err(_) => SolverView {
            url: Some(s.url.clone()),
            error: Some("no answer within 5 s".into()),
            ..Default::default()
        },
    }
}

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// The routes.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/api/status", get(status))
        .route("/api/leaderboard", get(leaderboard))
        .route("/api/providers/{addr}", get(provider))
        .route("/api/network", get(network))
        .route("/api/deals/{id}", get(deal))
        .route("/api/offers/{id}", get(offer))
        .route("/api/address/{addr}", get(address))
        .route("/api/tx/{hash}", get(tx))
        .route("/api/events", get(events))
        .fallback(|| async { ApiError::NotFound("no such page: see / for the dashboard".into()) })
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

/// An API error: its status and a message saying what was wrong.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(String),
    NotFound(String),
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

fn parse_address(s: &str) -> Result<Address, ApiError> {
    if s.len() != 42 || !s.starts_with("0x") {
        return Err(ApiError::BadRequest(format!(
            "{s:?} is not an address: expected 0x and 40 hex digits"
        )));
    }
    Address::from_str(s).map_err(|e| ApiError::BadRequest(format!("{s:?} is not an address: {e}")))
}

fn parse_id(what: &str, s: &str) -> Result<B256, ApiError> {
    if s.len() != 66 || !s.starts_with("0x") {
        return Err(ApiError::BadRequest(format!(
            "{s:?} is not a {what}: expected 0x and 64 hex digits"
        )));
    }
    B256::from_str(s).map_err(|e| ApiError::BadRequest(format!("{s:?} is not a {what}: {e}")))
}

async fn status(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    let s = state.snapshot.read().await.clone();
    Json(json!({
        "version": s.version,
        "head": s.head,
        "now": s.now,
        "chain_id": state.client.config().chain_id,
        "network": state.client.config().name,
        "explorer": state.links.explorer,
        "ipfs_gateway": state.links.ipfs_gateway,
    }))
}

async fn leaderboard(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    Json(state.snapshot.read().await.leaderboard.clone())
}

async fn provider(
    AxState(state): AxState<Arc<State>>,
    Path(addr): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = parse_address(&addr)?;
    state.snapshot.read().await.provider(who).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!("{who} is not on the leaderboard: no proof of work or deal yet"))
    })
}

async fn network(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    Json(state.snapshot.read().await.network())
}

async fn deal(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("deal id", &id)?;
    let s = state.snapshot.read().await.clone();
    let d = s.deals.get(&id).ok_or_else(|| {
        ApiError::NotFound(format!("no deal {id} on chain (as of block {})", s.head))
    })?;
    Ok(Json(serde_json::to_value(d).map_err(|e| ApiError::Unavailable(e.to_string()))?))
}

async fn offer(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("offer id", &id)?;
    let s = state.snapshot.read().await.clone();
    let ids = s.offers.get(&id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no deal of offer {id} on chain (as of block {}); an offer not matched yet is known only to the solver and its signer",
            s.head
        ))
    })?;
    let deals: Vec<Value> = ids
        .iter()
        .filter_map(|d| s.deals.get(d))
        .map(|d| {
            let role = if d.job_offer == id { "job" } else { "resource" };
            json!({ "deal": d.id, "kind": role, "state": d.state, "outcome": d.outcome, "provider": d.provider.to_string(), "job_creator": d.job_creator.to_string() })
        })
        .collect();
    Ok(Json(json!({ "offer": id, "deals": deals })))
}

async fn address(
    AxState(state): AxState<Arc<State>>,
    Path(addr): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = parse_address(&addr)?;
    Ok(Json(state.snapshot.read().await.address(who)))
}

/// A transaction's receipt from the RPC node (the link target without `--explorer`).
async fn tx(
    AxState(state): AxState<Arc<State>>,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let hash = parse_id("transaction hash", &hash)?;
    let receipt = tokio::time::timeout(
        Duration::from_secs(10),
        state.client.provider().get_transaction_receipt(hash),
    )
    .await
    .map_err(|_| ApiError::Unavailable("the RPC node did not answer within 10 s".into()))?
    .map_err(|e| ApiError::Unavailable(format!("reading the receipt: {e}")))?
    .ok_or_else(|| ApiError::NotFound(format!("no transaction {hash}")))?;
    Ok(Json(serde_json::to_value(receipt).map_err(|e| ApiError::Unavailable(e.to_string()))?))
}

/// Server-sent events: `update` with `{"version", "head"}` now and after each new
/// snapshot; the page re-reads what it shows.
async fn events(
    AxState(state): AxState<Arc<State>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = state.version.clone();
    rx.mark_changed();
    let stream = futures::stream::unfold((rx, state), |(mut rx, state)| async move {
        rx.changed().await.ok()?;
        let version = *rx.borrow_and_update();
        let head = state.snapshot.read().await.head;
        let event = Event::default()
            .event("update")
            .id(version.to_string())
            .json_data(json!({ "version": version, "head": head }))
            .ok()?;
        Some((Ok(event), (rx, state)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
