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
mod lease;
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
    pub(crate) book: Mutex<Book>,
    /// Where matches go: the dealer of this replica's current term.
    pub(crate) matches: Mutex<mpsc::UnboundedSender<Matched>>,
    /// This process's id among the replicas of one database.
    pub(crate) replica: Arc<str>,
    /// A leader-only write was refused (`NotLeader`): the epoch it was made under.
    pub(crate) step_down: mpsc::UnboundedSender<u64>,
    /// The newest event `seq` other replicas may have written (Postgres: polled),
    /// so that event streams on this replica see them.
    pub(crate) log_moved: watch::Receiver<u64>,
    /// The module policy and preference of every matcher this replica builds.
    pub(crate) network_modules: NetworkModules,
    pub(crate) prefer_reputation: bool,
    /// A follower's `/healthz` counts (from the database) and when they were read.
    pub(crate) follower_health: tokio::sync::Mutex<Option<(std::time::Instant, BookCounts)>>,
    pub(crate) limits: Limits,
    pub(crate) signers: Buckets<Address>,
    pub(crate) peers: Buckets<std::net::IpAddr>,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The controller's network parameters and when they were read: offers are
    /// checked against them, re-read at most every [`PARAMS_TTL`].
    pub(crate) params: tokio::sync::Mutex<Option<(std::time::Instant, NetworkParams)>>,
}

/// Open job offers, open resource offers, and what the latter put on the market.
pub(crate) type BookCounts = (u64, u64, lilypad_core::matcher::Capacity);

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
        // The dealer lives as long as the term; a send after it ended is moot (the
        // pair was not recorded, so the next term reloads both offers).
        if let Ok(tx) = self.matches.lock() {
            let _ = tx.send(m);
        }
    }

    /// An empty matcher with this solver's policy.
    pub(crate) fn fresh_matcher(&self) -> Matcher {
        let mut m = Matcher::new(self.network_modules.clone());
        m.prefer_reputation(self.prefer_reputation);
        m
    }

    /// The term this replica leads now, if any.
    pub(crate) fn term(&self) -> Option<Term> {
        let epoch = self.book.lock().ok()?.leading?;
        Some(Term { replica: self.replica.clone(), epoch })
    }

    /// Notes a failed write of `term`: a refused fence makes this replica step down.
    pub(crate) fn write_failed(&self, term: &Term, e: &StoreError) {
        if matches!(e, StoreError::NotLeader { .. }) {
            let _ = self.step_down.send(term.epoch);
        }
    }
}

/// The matcher and what this replica knows of its leadership, under one lock.
#[derive(Debug)]
pub(crate) struct Book {
    pub(crate) matcher: Matcher,
    /// The epoch of the lease this replica leads under (always `Some(0)` on SQLite);
    /// `None`: a follower, which stores offers but leaves matching to the leader.
    pub(crate) leading: Option<u64>,
    /// Shared databases: offers up to this `seq` were read by the leader's tail
    /// (or its reload); later ones come in through the tail or this replica's API.
    pub(crate) tailed: Option<u64>,
    /// Offers past `tailed` that this replica's API put in the book already (the
    /// tail skips them once, then forgets them).
    pub(crate) admitted: std::collections::HashSet<lilypad_core::offer::OfferId>,
}

impl std::ops::Deref for Book {
    type Target = Matcher;
    fn deref(&self) -> &Matcher {
        &self.matcher
    }
}

impl std::ops::DerefMut for Book {
    fn deref_mut(&mut self) -> &mut Matcher {
        &mut self.matcher
    }
}

/// A term of leadership: the replica and the epoch of its lease. Leader-only writes
/// check it first ([`Term::fence`]).
#[derive(Debug, Clone)]
pub(crate) struct Term {
    pub(crate) replica: Arc<str>,
    pub(crate) epoch: u64,
}

impl Term {
    /// Refuses the write unless the lease is still this term's (no-op on SQLite).
    pub(crate) fn fence(&self, tx: &mut super::store::Tx<'_>) -> super::store::Result<()> {
        tx.fence(&self.replica, self.epoch)
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
    /// Shared databases: the task that holds the lease and runs the terms.
    lease: Option<JoinHandle<()>>,
    /// Keeps event streams' wake-up channel open on SQLite (nothing else sends).
    _log: Option<watch::Sender<u64>>,
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

    /// Stops accepting requests, ends event streams, stops the background tasks,
    /// gives the lease up (shared databases: another replica takes over at once) and
    /// lets queued database writes finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
        self.server.abort();
        if let Some(mut lease) = self.lease.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut lease).await.is_err()
        {
            lease.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
        self.store.close();
    }
}

/// This process's id among replicas: `host:pid:random`.
fn replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "solver".to_owned());
    // Tells apart two processes of one host and pid (a restart in a fresh container).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tag = alloy::primitives::keccak256(format!("{host}:{}:{nanos}", std::process::id()));
    format!("{host}:{}:{}", std::process::id(), alloy::hex::encode(&tag[..3]))
}

/// Starts a solver: opens the database and serves. On SQLite it leads at once
/// ([`lead`]); on a shared (Postgres) database it leads while it holds the lease
/// (module `lease`), and serves the API either way.
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
    // Each term makes its own dealer channel; this one is never read.
    let (matches, _) = mpsc::unbounded_channel();
    let (step_down, step_down_rx) = mpsc::unbounded_channel();
    let (log_tx, log_moved) = watch::channel(0u64);
    let book = Matcher::new(opts.network_modules.clone());
    let state = Arc::new(State {
        offer_domain: chain.domain(),
        request_domain: auth::request_domain(config.chain_id, solver),
        chain_id: config.chain_id,
        solver,
        chain,
        store: store.clone(),
        book: Mutex::new(Book::follower(book)),
        matches: Mutex::new(matches),
        replica: replica_id().into(),
        step_down,
        log_moved,
        network_modules: opts.network_modules.clone(),
        prefer_reputation: opts.prefer_reputation,
        follower_health: tokio::sync::Mutex::new(None),
        signers: Buckets::new(opts.limits.per_signer),
        peers: Buckets::new(opts.limits.per_peer),
        limits: opts.limits.clone(),
        metrics,
        shutdown,
        params: tokio::sync::Mutex::new(None),
    });

    let (mut tasks, mut lease, mut log) = (Vec::new(), None, None);
    let timing = lease::Timing { tick: opts.sweep_interval, poll: opts.chain_poll_interval };
    if store.is_shared() {
        lease = Some(tokio::spawn(lease::run(state.clone(), step_down_rx, timing)));
        tasks.push(tokio::spawn(lease::watch_log(state.clone(), log_tx)));
    } else {
        let term = Term { replica: state.replica.clone(), epoch: 0 };
        tasks = lead(&state, term, timing).await?;
        log = Some(log_tx);
    }

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|cause| ServeError::Io { what: "cannot listen on", addr: opts.listen, cause })?;
    let addr = listener.local_addr().map_err(|cause| ServeError::Io {
        what: "cannot read the address of",
        addr: opts.listen,
        cause,
    })?;

    let app = http::router(state.clone());
    let mut stop_rx = state.shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { stopped(&mut stop_rx).await })
            .await
    });
    tracing::info!(%addr, %solver, replica = %state.replica, backend = store.backend(), "solver listening");
    Ok(RunningSolver { addr, solver, stop, tasks, lease, _log: log, server, store })
}

impl Book {
    /// A follower's book: empty, not leading.
    fn follower(matcher: Matcher) -> Self {
        Self { matcher, leading: None, tailed: None, admitted: Default::default() }
    }
}

/// Makes this replica the one that matches, for `term`: catches up with the chain
/// (deals created before a crash are recorded from their `DealCreated` events, so the
/// pairs still pending afterwards are exactly the ones to retry), builds a fresh
/// matcher from the providers' scores and the stored open offers (in arrival order),
/// and starts the dealer, the chain follower, the sweeper and, on a shared database,
/// the tail of the offers other replicas store. Returns the term's tasks.
pub(crate) async fn lead(
    state: &Arc<State>,
    term: Term,
    timing: lease::Timing,
) -> Result<Vec<JoinHandle<()>>, ServeError> {
    // Writes this process queued under an earlier term commit before anything is read.
    state.store.write(|_| Ok(())).await?;
    let mut follower = follower::Follower::new(state.clone(), term.clone()).await?;
    follower.catch_up().await?;
    let tailed = match state.store.is_shared() {
        true => Some(state.store.heads().await?.0),
        false => None,
    };
    let mut matcher = state.fresh_matcher();
    for (provider, r) in state.store.reputations(None).await? {
        matcher.set_score(provider, r.score);
    }
    let (matches, matches_rx) = mpsc::unbounded_channel();
    if let Ok(mut m) = state.matches.lock() {
        *m = matches;
    }
    if let Ok(mut book) = state.book.lock() {
        *book = Book { matcher, leading: Some(term.epoch), tailed, admitted: Default::default() };
    }
    dealer::reload(state, &term, tailed).await?;
    let mut tasks = vec![
        tokio::spawn(dealer::run(state.clone(), term.clone(), matches_rx, timing.tick)),
        tokio::spawn(follower.run(timing.poll)),
        tokio::spawn(dealer::sweep(state.clone(), term.clone(), timing.tick)),
    ];
    if tailed.is_some() {
        tasks.push(tokio::spawn(dealer::tail(state.clone(), term)));
    }
    state.metrics.leader.set(1);
    Ok(tasks)
}

/// Ends a term: stops its tasks and empties the book (matching is the leader's).
pub(crate) async fn step_aside(state: &State, tasks: Vec<JoinHandle<()>>) {
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Ok(mut book) = state.book.lock() {
        *book = Book::follower(state.fresh_matcher());
    }
    state.metrics.leader.set(0);
    for kind in ["job", "resource"] {
        state.metrics.open_offers.with_label_values(&[kind]).set(0);
    }
}
