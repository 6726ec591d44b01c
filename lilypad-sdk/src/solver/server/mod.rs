//! The solver service: HTTP API, matching, deal creation, chain following.
//!
//! ```text
//!  POST offer ──> verify request + offer ──> Store (group commit) ──> Matcher
//!                                                                     │ match
//!  chain events ──> ChainFollower ──> Store          Dealer <─────────┘
//!  (DealCreated, results, ...)                        │ record pair, createDeal, record deal
//! ```
//!
//! - Every offer is stored before it is answered and before it enters the
//!   matcher; after a restart, open offers are loaded back into the matcher in
//!   arrival order and pairs whose deal was being created are retried
//!   (`DealExists` counts as done).
//! - A match is recorded (both offers `matching`) before `createDeal` is sent, so
//!   no offer is used twice. A revert that names a party fails that party's offer
//!   and puts the other back into the book; a transient failure (RPC down) is
//!   retried with backoff until an offer expires.
//! - The chain follower scans the controller's logs from a block cursor kept in
//!   the database, in the same transaction as the deal updates it makes.

mod dealer;
mod follower;
mod http;
mod limits;
mod metrics;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{primitives::Address, sol_types::Eip712Domain};
use lilypad_core::{
    deal::NetworkParams,
    matcher::{Matched, Matcher, NetworkModules},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

pub use self::limits::Rate;
use self::{limits::Buckets, metrics::Metrics};
use super::{
    auth,
    store::{Database, Store, StoreError},
};
use crate::chain::{ChainClient, ChainError};

/// Limits that protect the solver.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest job inputs, in bytes (413 beyond).
    pub max_inputs_bytes: usize,
    /// Longest a signed request may live: its expiry at most this far ahead (and the
    /// time its nonce is remembered).
    pub max_request_ttl_secs: u64,
    /// Per recovered signer.
    pub per_signer: Rate,
    /// Per peer IP address (of the TCP connection; `X-Forwarded-For` is never read).
    pub per_peer: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 << 20,
            max_inputs_bytes: 1 << 20,
            max_request_ttl_secs: 600,
            per_signer: Rate { per_sec: 50.0, burst: 200.0 },
            per_peer: Rate { per_sec: 500.0, burst: 2000.0 },
        }
    }
}

/// How to run a solver.
#[derive(Debug, Clone)]
pub struct SolverOptions {
    /// The database: a SQLite file (created if missing) or, with feature
    /// `solver-postgres`, a PostgreSQL URL.
    pub db: Database,
    /// Where to listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Request limits.
    pub limits: Limits,
    /// How often expired offers are swept and failed pairs retried.
    pub sweep_interval: Duration,
    /// Pause between chain log scans that found nothing new.
    pub chain_poll_interval: Duration,
    /// The network's module policy the matcher applies (the chain's registry is the
    /// final word: `createDeal` reverts on a module it does not allow).
    pub network_modules: NetworkModules,
    /// Among equally priced offers for a job, prefer the provider with the better
    /// reputation score (then the oldest offer) rather than the oldest offer.
    pub prefer_reputation: bool,
}

impl SolverOptions {
    /// Defaults with the database at `db` (a path, or a `postgres://` URL given as a
    /// string), listening on `listen`.
    pub fn new(db: impl Into<Database>, listen: SocketAddr) -> Self {
        Self {
            db: db.into(),
            listen,
            limits: Limits::default(),
            sweep_interval: Duration::from_secs(1),
            chain_poll_interval: Duration::from_millis(250),
            network_modules: NetworkModules::open(),
            prefer_reputation: false,
        }
    }
}

/// Why the solver could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The chain client has no key: the solver signs `createDeal`.
    #[error("the solver needs its key (WEB3_PRIVATE_KEY) to create deals")]
    NoKey,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain failed at startup.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The listen address could not be bound, or serving failed.
    #[error("{what} {addr}: {cause}")]
    Io {
        /// What failed.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The failure (part of the message, so not a `source()`).
        cause: std::io::Error,
    },
    /// The metrics registry refused a metric (a bug).
    #[error("metrics: {0}")]
    Metrics(String),
}

/// What every part of the service shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) chain: ChainClient,
    pub(crate) solver: Address,
    pub(crate) chain_id: u64,
    /// The controller's domain: offers are signed under it.
    pub(crate) offer_domain: Eip712Domain,
    /// The domain requests are signed under.
    pub(crate) request_domain: Eip712Domain,
    pub(crate) store: Store,
    pub(crate) book: Mutex<Matcher>,
    pub(crate) matches: mpsc::UnboundedSender<Matched>,
    pub(crate) limits: Limits,
    pub(crate) signers: Buckets<Address>,
    pub(crate) peers: Buckets<std::net::IpAddr>,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The controller's network parameters and when they were read: offers are
    /// checked against them, re-read at most every [`PARAMS_TTL`].
    pub(crate) params: tokio::sync::Mutex<Option<(std::time::Instant, NetworkParams)>>,
}

/// How long the solver trusts its copy of the network parameters.
pub(crate) const PARAMS_TTL: Duration = Duration::from_secs(10);

impl State {
    /// The controller's current network parameters (cached for [`PARAMS_TTL`]).
    pub(crate) async fn network_params(&self) -> Result<NetworkParams, ChainError> {
        let mut cached = self.params.lock().await;
        if let Some((at, p)) = cached.as_ref()
            && at.elapsed() < PARAMS_TTL
        {
            return Ok(p.clone());
        }
        let p = self.chain.network_params().await?;
        *cached = Some((std::time::Instant::now(), p.clone()));
        Ok(p)
    }

    /// Hands a match to the dealer.
    pub(crate) fn matched(&self, m: Matched) {
        // The dealer lives as long as the service; a send after shutdown is moot.
        let _ = self.matches.send(m);
    }
}

/// Resolves once the service is shutting down.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The current unix second.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A running solver.
#[derive(Debug)]
pub struct RunningSolver {
    addr: SocketAddr,
    solver: Address,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
    store: Store,
}

impl RunningSolver {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The solver's address (its key).
    pub fn solver(&self) -> Address {
        self.solver
    }

    /// Waits until the server stops (it runs until [`Self::shutdown`] or an I/O failure).
    pub async fn wait(&mut self) -> Result<(), ServeError> {
        let addr = self.addr;
        match (&mut self.server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(cause)) => Err(ServeError::Io { what: "serving on", addr, cause }),
            Err(e) => Err(ServeError::Io {
                what: "serving on",
                addr,
                cause: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// Stops accepting requests, ends event streams, stops the background tasks and
    /// lets queued database writes finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
        self.server.abort();
        for t in &self.tasks {
            t.abort();
        }
        self.store.close();
    }
}

/// Starts a solver: opens the database, catches up with the chain, reloads open offers
/// into the matcher, starts the dealer, the chain follower and the sweeper, and serves.
///
/// `chain` must carry the solver's key ([`ChainClient::with_signer`]).
pub async fn start(chain: ChainClient, opts: SolverOptions) -> Result<RunningSolver, ServeError> {
    let solver = chain.address().ok_or(ServeError::NoKey)?;
    let config = chain.config().clone();
    let store = match &opts.db {
        Database::Sqlite(path) => {
            Store::open(path, solver, config.chain_id, config.contracts.controller)?
        }
        // Connecting may take seconds: not on an async worker.
        db => {
            let (db, controller) = (db.clone(), config.contracts.controller);
            let chain_id = config.chain_id;
            tokio::task::spawn_blocking(move || {
                Store::open_database(&db, solver, chain_id, controller)
            })
            .await
            .map_err(|e| StoreError::Sql { context: "open", message: e.to_string() })??
        }
    };
    let metrics = Metrics::new().map_err(|e| ServeError::Metrics(e.to_string()))?;
    let (stop, shutdown) = watch::channel(false);
    let (matches, matches_rx) = mpsc::unbounded_channel();
    let mut book = Matcher::new(opts.network_modules.clone());
    book.prefer_reputation(opts.prefer_reputation);
    let state = Arc::new(State {
        offer_domain: chain.domain(),
        request_domain: auth::request_domain(config.chain_id, solver),
        chain_id: config.chain_id,
        solver,
        chain,
        store: store.clone(),
        book: Mutex::new(book),
        matches,
        signers: Buckets::new(opts.limits.per_signer),
        peers: Buckets::new(opts.limits.per_peer),
        limits: opts.limits.clone(),
        metrics,
        shutdown,
        params: tokio::sync::Mutex::new(None),
    });

    // Deals created before a crash are recorded from their DealCreated events first,
    // so that the pairs still pending afterwards are exactly the ones to retry.
    // Scores come first, so that the offers reloaded below meet them.
    follower::load_scores(&state, None).await?;
    let mut follower = follower::Follower::new(state.clone()).await?;
    follower.catch_up().await?;
    dealer::reload(&state).await?;

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|cause| ServeError::Io { what: "cannot listen on", addr: opts.listen, cause })?;
    let addr = listener.local_addr().map_err(|cause| ServeError::Io {
        what: "cannot read the address of",
        addr: opts.listen,
        cause,
    })?;

    let tasks = vec![
        tokio::spawn(dealer::run(state.clone(), matches_rx, opts.sweep_interval)),
        tokio::spawn(follower.run(opts.chain_poll_interval)),
        tokio::spawn(dealer::sweep(state.clone(), opts.sweep_interval)),
    ];
    let app = http::router(state.clone());
    let mut stop_rx = state.shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { stopped(&mut stop_rx).await })
            .await
    });
    tracing::info!(%addr, %solver, "solver listening");
    Ok(RunningSolver { addr, solver, stop, tasks, server, store })
}
