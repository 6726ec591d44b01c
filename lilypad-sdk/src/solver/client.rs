//! [`SolverClient`]: a typed client of the solver's HTTP API that signs every request.
//!
//! ```no_run
//! use futures::StreamExt;
//! use lilypad_sdk::{chain::{ChainClient, NetworkConfig}, solver::client::SolverClient};
//!
//! async fn provider(chain: ChainClient, solver_url: &str) -> Result<(), Box<dyn std::error::Error>> {
//!     let key = chain.signer().cloned().ok_or("no key")?;
//!     let solver = lilypad_sdk::devnet::anvil_address(lilypad_sdk::devnet::SOLVER);
//!     let client = SolverClient::new(solver_url, key, chain.config().chain_id, solver)?;
//!     let mut events = client.events(None);
//!     while let Some(event) = events.next().await {
//!         println!("{:?}", event?);
//!     }
//!     Ok(())
//! }
//! ```

use std::{
    collections::VecDeque,
    hash::{BuildHasher, Hasher},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::{
    api::{
        DealList, DealRecord, ErrorBody, ErrorCode, Health, Inputs, JobOfferStatus, OfferReceipt,
        PostJobOffer, PostResourceOffer, ResourceOfferStatus, SolverEvent,
    },
    auth::{RequestAuth, request_domain},
};
use crate::chain::{SignedJobOffer, SignedResourceOffer};

/// What a solver call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SolverError {
    /// 400: the request or offer is malformed or invalid.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: missing, bad or expired request signature.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: signed by someone who may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: a replayed request nonce, or an offer posted twice.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: the body or the inputs are over the solver's limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 429: slow down.
    #[error("rate limited: {reason}")]
    RateLimited {
        /// The solver's message.
        reason: String,
        /// Seconds to wait, if the solver said.
        retry_after_secs: Option<u64>,
    },
    /// Any other error status.
    #[error("solver answered {status}: {reason}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The solver's message.
        reason: String,
    },
    /// No answer (connection refused, timeout, ...).
    #[error("cannot reach the solver at {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// An answer that does not decode.
    #[error("unexpected answer from the solver: {0}")]
    Decode(String),
    /// Signing the request failed.
    #[error("signing the request failed: {0}")]
    Signing(String),
}

/// `Result` with [`SolverError`].
pub type Result<T, E = SolverError> = std::result::Result<T, E>;

/// An answer as received, for callers that inspect statuses themselves ([`SolverClient::send`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The typed error of a non-2xx answer.
    pub fn error(&self, retry_after_secs: Option<u64>) -> SolverError {
        // The body's code when it has one (a proxy in between may answer without).
        let (code, reason) = match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(b) => (Some(b.error), b.reason),
            Err(_) => (
                ErrorCode::from_status(self.status),
                String::from_utf8_lossy(&self.body).into_owned(),
            ),
        };
        match code {
            Some(ErrorCode::BadRequest) => SolverError::BadRequest(reason),
            Some(ErrorCode::Unauthorized) => SolverError::Unauthorized(reason),
            Some(ErrorCode::Forbidden) => SolverError::Forbidden(reason),
            Some(ErrorCode::NotFound) => SolverError::NotFound(reason),
            Some(ErrorCode::Conflict) => SolverError::Conflict(reason),
            Some(ErrorCode::PayloadTooLarge) => SolverError::PayloadTooLarge(reason),
            Some(ErrorCode::RateLimited) => SolverError::RateLimited { reason, retry_after_secs },
            Some(ErrorCode::Unavailable | ErrorCode::Internal) | None => {
                SolverError::Server { status: self.status, reason }
            }
        }
    }
}

/// A client of one solver, signing as one key.
#[derive(Debug, Clone)]
pub struct SolverClient {
    http: reqwest::Client,
    base: String,
    signer: PrivateKeySigner,
    domain: Eip712Domain,
    ttl_secs: u64,
    timeout: Duration,
    nonces: Arc<NonceSource>,
}

/// Request nonces: the time in nanoseconds, a per-process random word and a counter,
/// so that two clients of one key (even in two processes) never pick the same nonce.
#[derive(Debug)]
struct NonceSource {
    random: u64,
    counter: AtomicU64,
}

impl NonceSource {
    fn new() -> Self {
        // std's RandomState is seeded from the OS's randomness; one word is enough here.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Self { random, counter: AtomicU64::new(0) }
    }

    fn next(&self) -> U256 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        (U256::from(nanos) << 128) | (U256::from(self.random) << 64) | U256::from(n)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SolverClient {
    /// A client of the solver at `url` (e.g. `http://127.0.0.1:8080`) whose key is
    /// `solver` on chain `chain_id`, signing as `signer`.
    pub fn new(
        url: &str,
        signer: PrivateKeySigner,
        chain_id: u64,
        solver: Address,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SolverError::Http { url: url.to_owned(), message: e.to_string() })?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_owned(),
            signer,
            domain: request_domain(chain_id, solver),
            ttl_secs: 60,
            timeout: Duration::from_secs(30),
            nonces: Arc::new(NonceSource::new()),
        })
    }

    /// The same client with another timeout for each (non-streaming) call (30 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same client signing requests valid for `secs` (60 by default; the solver
    /// refuses more than its `max_request_ttl_secs`, 600 by default).
    pub fn with_request_ttl(mut self, secs: u64) -> Self {
        self.ttl_secs = secs;
        self
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The solver's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Signs a request to `path` (path and query, e.g. `/api/v1/deals`) with a fresh
    /// nonce, valid for the client's request lifetime.
    pub fn sign(&self, method: &str, path: &str, body: &[u8]) -> Result<RequestAuth> {
        RequestAuth::sign(
            &self.signer,
            &self.domain,
            method,
            path,
            body,
            self.nonces.next(),
            unix_now() + self.ttl_secs,
        )
        .map_err(|e| SolverError::Signing(e.to_string()))
    }

    /// Sends one request as given (signed by `auth`, or unsigned) and returns the raw
    /// answer, whatever its status. For tools and tests; the typed methods are simpler.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        auth: Option<&RequestAuth>,
    ) -> Result<RawResponse> {
        self.send_inner(method, path, body, auth).await.map(|(r, _)| r)
    }

    async fn send_inner(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        auth: Option<&RequestAuth>,
    ) -> Result<(RawResponse, Option<u64>)> {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| SolverError::Signing(format!("method {method}: {e}")))?;
        let mut req = self.http.request(m, &url).timeout(self.timeout);
        if !body.is_empty() {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        if let Some(auth) = auth {
            for (k, v) in auth.to_headers() {
                req = req.header(k, v);
            }
        }
        let http =
            |e: reqwest::Error| SolverError::Http { url: url.clone(), message: e.to_string() };
        let resp = req.send().await.map_err(http)?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = resp.bytes().await.map_err(http)?.to_vec();
        Ok((RawResponse { status, content_type, body }, retry_after))
    }

    /// A signed call; the body of a 2xx answer, or the typed error.
    async fn call(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        let auth = self.sign(method, path, &body)?;
        let (r, retry_after) = self.send_inner(method, path, body, Some(&auth)).await?;
        if (200..300).contains(&r.status) { Ok(r.body) } else { Err(r.error(retry_after)) }
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| SolverError::Decode(e.to_string()))
    }

    // ------------------------------------------------------------ endpoints

    /// `GET /healthz` (unsigned).
    pub async fn health(&self) -> Result<Health> {
        let (r, retry) = self.send_inner("GET", "/healthz", Vec::new(), None).await?;
        if r.status != 200 {
            return Err(r.error(retry));
        }
        serde_json::from_slice(&r.body).map_err(|e| SolverError::Decode(e.to_string()))
    }

    /// `GET /metrics` (unsigned): the Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        let (r, retry) = self.send_inner("GET", "/metrics", Vec::new(), None).await?;
        if r.status != 200 {
            return Err(r.error(retry));
        }
        String::from_utf8(r.body).map_err(|e| SolverError::Decode(e.to_string()))
    }

    /// The JSON body of [`Self::post_job_offer`] (for tools that send it themselves).
    pub fn job_offer_body(job: &SignedJobOffer, inputs: &[u8]) -> Result<Vec<u8>> {
        Self::job_offer_body_requiring(job, inputs, None)
    }

    /// The JSON body of [`Self::post_job_offer_requiring`].
    pub fn job_offer_body_requiring(
        job: &SignedJobOffer,
        inputs: &[u8],
        min_reputation: Option<f64>,
    ) -> Result<Vec<u8>> {
        let body = PostJobOffer {
            offer: job.offer.clone(),
            signature: job.signature.clone(),
            inputs: Inputs(inputs.to_vec()),
            min_reputation,
        };
        serde_json::to_vec(&body).map_err(|e| SolverError::Decode(e.to_string()))
    }

    /// The JSON body of [`Self::post_resource_offer`].
    pub fn resource_offer_body(offer: &SignedResourceOffer) -> Result<Vec<u8>> {
        Self::resource_offer_body_taking(offer, &[])
    }

    /// The JSON body of [`Self::post_resource_offer_taking`].
    pub fn resource_offer_body_taking(
        offer: &SignedResourceOffer,
        slots: &[String],
    ) -> Result<Vec<u8>> {
        let body = PostResourceOffer {
            offer: offer.offer.clone(),
            signature: offer.signature.clone(),
            slots: slots.to_vec(),
        };
        serde_json::to_vec(&body).map_err(|e| SolverError::Decode(e.to_string()))
    }

    /// `POST /api/v1/job_offers`: posts a signed job offer with its inputs (the
    /// client's key must be the creator's).
    pub async fn post_job_offer(
        &self,
        job: &SignedJobOffer,
        inputs: &[u8],
    ) -> Result<OfferReceipt> {
        self.post_job_offer_requiring(job, inputs, None).await
    }

    /// [`Self::post_job_offer`] for a job that only takes providers whose reputation
    /// score is at least `min_reputation` (see `PostJobOffer::min_reputation`).
    pub async fn post_job_offer_requiring(
        &self,
        job: &SignedJobOffer,
        inputs: &[u8],
        min_reputation: Option<f64>,
    ) -> Result<OfferReceipt> {
        let body = Self::job_offer_body_requiring(job, inputs, min_reputation)?;
        self.call_json("POST", "/api/v1/job_offers", body).await
    }

    /// `POST /api/v1/resource_offers`: posts a signed resource offer (the client's key must
    /// be the provider's).
    pub async fn post_resource_offer(&self, offer: &SignedResourceOffer) -> Result<OfferReceipt> {
        self.post_resource_offer_taking(offer, &[]).await
    }

    /// [`Self::post_resource_offer`] for an offer that takes `slots` of the provider's
    /// machine, which it also offers alone or in other groups: the solver never puts
    /// two offers sharing a slot into deals (see `PostResourceOffer::slots`).
    pub async fn post_resource_offer_taking(
        &self,
        offer: &SignedResourceOffer,
        slots: &[String],
    ) -> Result<OfferReceipt> {
        let body = Self::resource_offer_body_taking(offer, slots)?;
        self.call_json("POST", "/api/v1/resource_offers", body).await
    }

    /// `GET /api/v1/job_offers/{id}`: the state of your job offer and, while it is open,
    /// why each waiting resource offer does not match it.
    pub async fn job_offer(&self, id: B256) -> Result<JobOfferStatus> {
        self.call_json("GET", &format!("/api/v1/job_offers/{id}"), Vec::new()).await
    }

    /// `GET /api/v1/resource_offers/{id}`: the state of your resource offer.
    pub async fn resource_offer(&self, id: B256) -> Result<ResourceOfferStatus> {
        self.call_json("GET", &format!("/api/v1/resource_offers/{id}"), Vec::new()).await
    }

    /// `GET /api/v1/deals/{id}`: a deal you are a party of.
    pub async fn deal(&self, id: B256) -> Result<DealRecord> {
        self.call_json("GET", &format!("/api/v1/deals/{id}"), Vec::new()).await
    }

    /// `GET /api/v1/deals`: your deals, newest first.
    pub async fn deals(&self) -> Result<Vec<DealRecord>> {
        let list: DealList = self.call_json("GET", "/api/v1/deals", Vec::new()).await?;
        Ok(list.deals)
    }

    /// `GET /api/v1/deals/{id}/inputs`: the job's inputs (the deal's provider only).
    /// The solver checked them against the offer's `inputs_hash`; so does this call.
    pub async fn job_inputs(&self, deal_id: B256) -> Result<Vec<u8>> {
        let bytes =
            self.call("GET", &format!("/api/v1/deals/{deal_id}/inputs"), Vec::new()).await?;
        let deal = self.deal(deal_id).await?;
        let hash = alloy::primitives::keccak256(&bytes);
        if hash != deal.deal.inputs_hash {
            return Err(SolverError::Decode(format!(
                "the inputs hash to {hash}, but the deal's inputs_hash is {}",
                deal.deal.inputs_hash
            )));
        }
        Ok(bytes)
    }

    /// Opens the event stream once, from after `last` (`Last-Event-ID`).
    async fn open_events(&self, last: Option<u64>) -> Result<reqwest::Response> {
        let path = "/api/v1/events";
        let auth = self.sign("GET", path, &[])?;
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url).header(reqwest::header::ACCEPT, "text/event-stream");
        for (k, v) in auth.to_headers() {
            req = req.header(k, v);
        }
        if let Some(last) = last {
            req = req.header("last-event-id", last.to_string());
        }
        let http =
            |e: reqwest::Error| SolverError::Http { url: url.clone(), message: e.to_string() };
        let resp = tokio::time::timeout(self.timeout, req.send())
            .await
            .map_err(|_| SolverError::Http { url: url.clone(), message: "timed out".into() })?
            .map_err(http)?;
        if resp.status() != StatusCode::OK {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            return Err(RawResponse { status, content_type: None, body }.error(None));
        }
        Ok(resp)
    }

    /// Your events (`GET /api/v1/events`), after `after` (an event `seq`; `None`: from the
    /// start of the log). The stream never ends by itself: when the connection drops or
    /// goes silent (no keep-alive for 45 s), it reconnects with `Last-Event-ID` set to
    /// the last event it yielded, so no event is lost or repeated. Failed connection
    /// attempts are yielded as errors (with a growing pause between attempts, up to 5 s);
    /// drop the stream to stop.
    pub fn events(
        &self,
        after: Option<u64>,
    ) -> impl Stream<Item = Result<SolverEvent>> + Send + 'static {
        let feed = EventFeed {
            client: self.clone(),
            last: after,
            resp: None,
            buf: Vec::new(),
            pending: VecDeque::new(),
            pause: Duration::from_millis(250),
        };
        futures::stream::unfold(feed, EventFeed::next).boxed()
    }
}

struct EventFeed {
    client: SolverClient,
    last: Option<u64>,
    resp: Option<reqwest::Response>,
    buf: Vec<u8>,
    pending: VecDeque<SolverEvent>,
    pause: Duration,
}

/// How long a stream may stay silent: the server sends a keep-alive every 15 s.
const SILENCE: Duration = Duration::from_secs(45);

impl EventFeed {
    async fn next(mut self) -> Option<(Result<SolverEvent>, Self)> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                if self.last.is_some_and(|l| e.seq <= l) {
                    continue;
                }
                self.last = Some(e.seq);
                return Some((Ok(e), self));
            }
            let Some(resp) = self.resp.as_mut() else {
                match self.client.open_events(self.last).await {
                    Ok(r) => {
                        self.resp = Some(r);
                        self.buf.clear();
                        self.pause = Duration::from_millis(250);
                        continue;
                    }
                    Err(e) => {
                        tokio::time::sleep(self.pause).await;
                        self.pause = (self.pause * 2).min(Duration::from_secs(5));
                        return Some((Err(e), self));
                    }
                }
            };
            match tokio::time::timeout(SILENCE, resp.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    self.buf.extend_from_slice(&bytes);
                    if let Err(e) = self.parse() {
                        self.resp = None;
                        return Some((Err(e), self));
                    }
                }
                // Ended, failed or silent: reconnect from the last event.
                _ => self.resp = None,
            }
        }
    }

    /// Takes every complete frame out of the buffer. Server-sent events are parsed
    /// here rather than with a crate: the solver's frames are `id:` and one `data:`
    /// line (or a `:` keep-alive comment), ended by a blank line.
    fn parse(&mut self) -> Result<()> {
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&frame);
            let data: String = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect::<Vec<_>>()
                .join("\n");
            if data.is_empty() {
                continue;
            }
            let event: SolverEvent = serde_json::from_str(&data)
                .map_err(|e| SolverError::Decode(format!("event {data:?}: {e}")))?;
            self.pending.push_back(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_distinct() {
        let n = NonceSource::new();
        let a = n.next();
        let b = n.next();
        assert_ne!(a, b);
        assert_ne!(NonceSource::new().next(), a);
    }
}
