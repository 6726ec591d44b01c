//! The solver's durable state in SQLite: offers (with their signatures and
//! inputs), matched pairs, deals, request nonces, the event log and the chain
//! cursor.
//!
//! **Writes** go through one writer thread that owns the only writing connection
//! and commits in groups: it takes every write waiting in its queue (up to
//! [`MAX_BATCH`]), runs each in its own savepoint (a failing write, e.g. a
//! replayed nonce, undoes only itself), commits once, and only then answers each
//! caller. A successful [`Store::write`] therefore means the row is on disk
//! (`synchronous = FULL` in WAL mode), and one fsync is shared by every write of
//! the group, which is what lets many concurrent requests be stored per second.
//! Events written in a committed group are then published to subscribers.
//!
//! **Reads** use a small pool of read-only connections on blocking threads; WAL
//! lets them run beside the writer.
//!
//! With feature `solver-postgres`, [`Store::open_postgres`] keeps the same state,
//! with the same model (one writer thread, group commit, savepoints, reader
//! pool), in PostgreSQL (`pg`; design: `docs/dev/postgres-solver.md`). Every
//! public method behaves the same on both backends.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    thread,
};

use alloy::primitives::{Address, B256, U256};
use lilypad_core::{
    offer::OfferId,
    reputation::{self, Reputation},
    settlement::Outcome,
    state::DealStatus,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{broadcast, oneshot};

use super::api::{DealRecord, EventKind, OfferKind, OfferState, SolverEvent};

#[cfg(feature = "solver-postgres")]
mod pg;

/// The most writes committed in one transaction.
pub const MAX_BATCH: usize = 1024;
/// Events kept for live subscribers that fall behind (they re-read the log beyond).
const EVENT_BUFFER: usize = 4096;

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("database {context}: {message}")]
    Sql {
        /// What was being done.
        context: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The signer used this request nonce already.
    #[error(
        "nonce {nonce} of {signer} was used already: the request is a replay (sign it again with a fresh nonce)"
    )]
    Replay {
        /// The signer.
        signer: Address,
        /// The nonce.
        nonce: U256,
    },
    /// An offer with this id is stored already.
    #[error("offer {id} was posted already (it is {state})")]
    Duplicate {
        /// The offer id.
        id: OfferId,
        /// Its state.
        state: OfferState,
    },
    /// The database belongs to another solver or chain.
    #[error("{}: this database belongs to {what} {stored}, not {given}: use another database file", .path.display())]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// `solver`, `chain_id` or `controller`.
        what: &'static str,
        /// What it holds.
        stored: String,
        /// What this solver is.
        given: String,
    },
    /// The Postgres database belongs to another solver or chain.
    #[error("{url}: this database belongs to {what} {stored}, not {given}: use another database")]
    ForeignDatabase {
        /// The database URL, password hidden.
        url: String,
        /// `solver`, `chain_id` or `controller`.
        what: &'static str,
        /// What it holds.
        stored: String,
        /// What this solver is.
        given: String,
    },
    /// A `postgres://` database was given to a build without Postgres support.
    #[error(
        "{url}: this build has no PostgreSQL support (lilypad-sdk feature solver-postgres): \
         use a SQLite file, or a build with the feature"
    )]
    NoPostgres {
        /// The database URL, password hidden.
        url: String,
    },
    /// This replica does not hold the lease it names (another took over): the
    /// write that needs it is refused.
    #[error("{holder} does not hold the lease of epoch {epoch} any more: another replica leads")]
    NotLeader {
        /// This replica.
        holder: String,
        /// The lease it thought it held.
        epoch: u64,
    },
    /// A pair names an offer that is not open (matched already, failed, expired or
    /// unknown): the pair is refused, so no offer is in two pairs.
    #[error("offer {id} cannot be matched: it is {}", .state.map_or("not stored", |s| s.as_str()))]
    NotOpen {
        /// The offer.
        id: OfferId,
        /// Its state (`None`: not stored).
        state: Option<OfferState>,
    },
    /// [`Store::read`] hands out SQLite connections; this store is on Postgres.
    #[error("a raw SQLite read on a Postgres store (use the Store's own read methods)")]
    NotSqlite,
    /// The writer thread is gone (the service is shutting down).
    #[error("the database writer stopped")]
    Closed,
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::Sql { context, message: e.to_string() }
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the solver keeps its state: a SQLite file (the default) or a PostgreSQL
/// database (feature `solver-postgres`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// A SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl Database {
    /// A `postgres://` or `postgresql://` URL names a Postgres database; anything
    /// else is a SQLite file's path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Self::Postgres(s.to_owned())
        } else {
            Self::Sqlite(PathBuf::from(s))
        }
    }
}

impl std::str::FromStr for Database {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl std::fmt::Display for Database {
    /// The path, or the URL with its password hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "{}", p.display()),
            Self::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

impl From<PathBuf> for Database {
    fn from(p: PathBuf) -> Self {
        Self::Sqlite(p)
    }
}

impl From<&PathBuf> for Database {
    fn from(p: &PathBuf) -> Self {
        Self::Sqlite(p.clone())
    }
}

impl From<&Path> for Database {
    fn from(p: &Path) -> Self {
        Self::Sqlite(p.to_owned())
    }
}

impl From<&str> for Database {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl From<String> for Database {
    fn from(s: String) -> Self {
        Self::parse(&s)
    }
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
fn redact_url(url: &str) -> String {
    // scheme://user:password@host/...: the password sits between the first ':'
    // of the user part and the last '@' before the path.
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (auth, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((user_pass, host)) => match user_pass.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A lease held: this replica matches and creates deals until it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Grows by one at each change of holder: the fence of leader-only writes.
    pub epoch: u64,
    /// How long it lasts from when it was taken or renewed.
    pub ttl: std::time::Duration,
}

/// Who leads (holds an unexpired lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The replica's id.
    pub holder: String,
    /// The lease's epoch.
    pub epoch: u64,
    /// Time left on it (by the database's clock).
    pub expires_in: std::time::Duration,
}

/// An event as committed: its parties and its body, published after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Who may see it.
    pub parties: (Address, Option<Address>),
    /// The event.
    pub event: SolverEvent,
}

impl StoredEvent {
    /// Whether `who` may see it.
    pub fn visible_to(&self, who: Address) -> bool {
        self.parties.0 == who || self.parties.1 == Some(who)
    }
}

/// An offer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOffer {
    /// Arrival order.
    pub seq: u64,
    /// The offer id.
    pub id: OfferId,
    /// Its side.
    pub kind: OfferKind,
    /// Its signer (creator or provider).
    pub signer: Address,
    /// The offer as JSON ([`lilypad_core::offer::JobOffer`] or `ResourceOffer`).
    pub offer_json: String,
    /// The signer's signature of the offer.
    pub signature: Vec<u8>,
    /// Where it is.
    pub state: OfferState,
    /// Why it failed.
    pub reason: Option<String>,
    /// Its deal (or the deal being created).
    pub deal_id: Option<B256>,
    /// The provider's slots it takes (resource offers; see `PostResourceOffer::slots`).
    pub slots: Vec<String>,
    /// The least provider score the job takes (job offers; see `PostJobOffer::min_reputation`).
    pub min_reputation: Option<f64>,
}

/// A new offer to store.
#[derive(Debug, Clone)]
pub struct NewOffer {
    /// The offer id.
    pub id: OfferId,
    /// Its side.
    pub kind: OfferKind,
    /// Its signer.
    pub signer: Address,
    /// The offer as JSON.
    pub offer_json: String,
    /// The signature.
    pub signature: Vec<u8>,
    /// The job's inputs (job offers).
    pub inputs: Option<Vec<u8>>,
    /// The offer's expiry.
    pub expiry: u64,
    /// The provider's slots it takes (resource offers).
    pub slots: Vec<String>,
    /// The least provider score the job takes (job offers).
    pub min_reputation: Option<f64>,
}

/// A matched pair whose deal is being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The deal id.
    pub deal_id: B256,
    /// The job offer.
    pub job: OfferId,
    /// The resource offer.
    pub resource: OfferId,
}

/// What the writer hands each write: the open transaction, the time, and the event log.
pub struct Tx<'a> {
    conn: Conn<'a>,
    now: u64,
    events: &'a mut Vec<StoredEvent>,
}

/// The connection a group transaction runs on.
enum Conn<'a> {
    Sqlite(&'a Connection),
    #[cfg(feature = "solver-postgres")]
    Postgres(&'a mut pg::Writer),
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").field("now", &self.now).finish_non_exhaustive()
    }
}

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
/// A queued write: run in the group transaction (`None`: the transaction could not
/// begin), it says whether it succeeded and how to answer once the group committed.
type Op = Box<dyn FnOnce(Option<&mut Tx<'_>>) -> (bool, Completion) + Send>;

/// The solver's database.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    writer: Mutex<Option<mpsc::Sender<Op>>>,
    events: broadcast::Sender<Arc<StoredEvent>>,
}

/// Where the state lives, and the read side of it.
#[derive(Debug)]
enum Backend {
    Sqlite {
        path: PathBuf,
        readers: Mutex<Vec<Connection>>,
    },
    #[cfg(feature = "solver-postgres")]
    Postgres(Box<pg::Readers>),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offers (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    signer BLOB NOT NULL,
    offer TEXT NOT NULL,
    signature BLOB NOT NULL,
    inputs BLOB,
    expiry INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    deal_id BLOB,
    created_at INTEGER NOT NULL,
    slots TEXT,
    min_reputation REAL
);
CREATE INDEX IF NOT EXISTS offers_live ON offers(state) WHERE state IN ('open', 'matching');
CREATE TABLE IF NOT EXISTS pairs (
    deal_id BLOB PRIMARY KEY,
    job_id BLOB NOT NULL,
    resource_id BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS deals (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    job_creator BLOB NOT NULL,
    provider BLOB NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deals_jc ON deals(job_creator);
CREATE INDEX IF NOT EXISTS deals_rp ON deals(provider);
CREATE TABLE IF NOT EXISTS nonces (
    signer BLOB NOT NULL,
    nonce BLOB NOT NULL,
    expiry INTEGER NOT NULL,
    PRIMARY KEY (signer, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces(expiry);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    party_a BLOB NOT NULL,
    party_b BLOB,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_a ON events(party_a, seq);
CREATE INDEX IF NOT EXISTS events_b ON events(party_b, seq) WHERE party_b IS NOT NULL;
CREATE TABLE IF NOT EXISTS provider_deals (
    deal_id BLOB PRIMARY KEY,
    provider BLOB NOT NULL,
    created_at INTEGER,
    results_at INTEGER,
    challenged INTEGER NOT NULL DEFAULT 0,
    outcome INTEGER
);
CREATE INDEX IF NOT EXISTS provider_deals_rp ON provider_deals(provider);
";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SQLite integers are signed; our times and sequence numbers fit.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn kind_code(k: OfferKind) -> i64 {
    match k {
        OfferKind::Job => 0,
        OfferKind::Resource => 1,
    }
}

fn b256(v: &[u8]) -> B256 {
    B256::try_from(v).unwrap_or_default()
}

fn address(v: &[u8]) -> Address {
    Address::try_from(v).unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) the database at `path` for the solver `solver` on
    /// chain `chain_id` with controller `controller`; refuses a database of another.
    pub fn open(path: &Path, solver: Address, chain_id: u64, controller: Address) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Sql {
                context: "directory",
                message: format!("{}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(sql("open"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
        )
        .map_err(sql("pragmas"))?;
        conn.execute_batch(SCHEMA).map_err(sql("schema"))?;
        migrate(&conn)?;
        for (what, given) in [
            ("solver", solver.to_checksum(None)),
            ("chain_id", chain_id.to_string()),
            ("controller", controller.to_checksum(None)),
        ] {
            let stored: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [what], |r| r.get(0))
                .optional()
                .map_err(sql("meta"))?;
            match stored {
                Some(stored) if stored != given => {
                    return Err(StoreError::Foreign { path: path.to_owned(), what, stored, given });
                }
                Some(_) => {}
                None => {
                    conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [what, &given])
                        .map_err(sql("meta"))?;
                }
            }
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (tx, rx) = mpsc::channel::<Op>();
        let publish = events.clone();
        thread::Builder::new()
            .name("solver-db-writer".into())
            .spawn(move || writer_loop(&conn, &rx, &publish))
            .map_err(|e| StoreError::Sql { context: "writer thread", message: e.to_string() })?;
        Ok(Self {
            inner: Arc::new(Inner {
                backend: Backend::Sqlite { path: path.to_owned(), readers: Mutex::new(Vec::new()) },
                writer: Mutex::new(Some(tx)),
                events,
            }),
        })
    }

    /// Opens (migrating if needed) the PostgreSQL database at `url`
    /// (`postgres://user@host:port/db`) for the solver `solver` on chain `chain_id`
    /// with controller `controller`; refuses a database of another. Blocks while it
    /// connects (on a thread of its own, so it may be called from async code).
    #[cfg(feature = "solver-postgres")]
    pub fn open_postgres(
        url: &str,
        solver: Address,
        chain_id: u64,
        controller: Address,
    ) -> Result<Self> {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let meta = [
            ("solver", solver.to_checksum(None)),
            ("chain_id", chain_id.to_string()),
            ("controller", controller.to_checksum(None)),
        ];
        let (readers, tx) = pg::open(url, meta, events.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                backend: Backend::Postgres(Box::new(readers)),
                writer: Mutex::new(Some(tx)),
                events,
            }),
        })
    }

    /// Opens `db` (see [`Store::open`] and `Store::open_postgres`). Blocks while it
    /// opens or connects.
    pub fn open_database(
        db: &Database,
        solver: Address,
        chain_id: u64,
        controller: Address,
    ) -> Result<Self> {
        match db {
            Database::Sqlite(path) => Self::open(path, solver, chain_id, controller),
            #[cfg(feature = "solver-postgres")]
            Database::Postgres(url) => Self::open_postgres(url, solver, chain_id, controller),
            #[cfg(not(feature = "solver-postgres"))]
            Database::Postgres(url) => Err(StoreError::NoPostgres { url: redact_url(url) }),
        }
    }

    /// Takes or renews the lease for replica `holder` for `ttl` (`None`: another
    /// replica holds it). On SQLite, one process owns the database: always granted,
    /// epoch 0.
    pub async fn take_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            let holder = holder.to_owned();
            return self.pg_read(move |c| pg::take_lease(c, &holder, ttl)).await;
        }
        let _ = holder;
        Ok(Some(Lease { epoch: 0, ttl }))
    }

    /// Gives the lease up now (at shutdown), so that another replica takes over
    /// without waiting for it to expire; whether `holder` had it.
    pub async fn release_lease(&self, holder: &str) -> Result<bool> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            let holder = holder.to_owned();
            return self.pg_read(move |c| pg::release_lease(c, &holder)).await;
        }
        let _ = holder;
        Ok(true)
    }

    /// Who leads now (`None`: nobody; on SQLite: always `None`, the one process leads).
    pub async fn leader(&self) -> Result<Option<Leader>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(pg::leader).await;
        }
        Ok(None)
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.inner.backend {
            Backend::Sqlite { .. } => "sqlite",
            #[cfg(feature = "solver-postgres")]
            Backend::Postgres(_) => "postgres",
        }
    }

    #[cfg(feature = "solver-postgres")]
    fn is_postgres(&self) -> bool {
        matches!(self.inner.backend, Backend::Postgres(_))
    }

    /// Runs `f` on a Postgres read connection on a blocking thread.
    #[cfg(feature = "solver-postgres")]
    async fn pg_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || match &inner.backend {
            Backend::Postgres(readers) => readers.with(f),
            Backend::Sqlite { .. } => Err(StoreError::NotSqlite),
        })
        .await
        .map_err(|e| StoreError::Sql { context: "read task", message: e.to_string() })?
    }

    /// Stops the writer after the queued writes (later writes fail with [`StoreError::Closed`]).
    pub fn close(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
    }

    /// Live events, published after their commit.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.inner.events.subscribe()
    }

    /// Runs `f` in the next group transaction; returns its result once committed.
    /// If `f` fails, its own changes are undone and the others' are kept.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let op: Op = Box::new(move |tx| {
            let r = match tx {
                Some(tx) => f(tx),
                None => Err(StoreError::Closed),
            };
            let ok = r.is_ok();
            let answer: Completion = Box::new(move |commit: Result<()>| {
                let _ = reply.send(commit.and(r));
            });
            (ok, answer)
        });
        let sender = self.inner.writer.lock().map_err(|_| StoreError::Closed)?.clone();
        sender.ok_or(StoreError::Closed)?.send(op).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read connection on a blocking thread.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            #[allow(irrefutable_let_patterns)]
            let Backend::Sqlite { path, readers } = &inner.backend else {
                return Err(StoreError::NotSqlite);
            };
            let pooled = readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(sql("open reader"))?;
                    c.busy_timeout(std::time::Duration::from_secs(10))
                        .map_err(sql("open reader"))?;
                    c
                }
            };
            let r = f(&conn);
            if let Ok(mut p) = readers.lock()
                && p.len() < 8
            {
                p.push(conn);
            }
            r
        })
        .await
        .map_err(|e| StoreError::Sql { context: "read task", message: e.to_string() })?
    }

    // ------------------------------------------------------------ reads

    /// Offers in state `open` or `matching`, in arrival order (for the matcher after a restart).
    pub async fn live_offers(&self) -> Result<Vec<StoredOffer>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(pg::live_offers).await;
        }
        self.read(|c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {OFFER_COLS} FROM offers WHERE state IN ('open', 'matching') ORDER BY seq"
                ))
                .map_err(sql("live offers"))?;
            let rows = st.query_map([], offer_row).map_err(sql("live offers"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql("live offers"))
        })
        .await
    }

    /// Offers stored after `after` (by `seq`, in any state), oldest first, at most
    /// `limit`: how a leading replica picks up the offers other replicas stored.
    pub async fn offers_after(&self, after: u64, limit: u32) -> Result<Vec<StoredOffer>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::offers_after(c, after, limit)).await;
        }
        self.read(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {OFFER_COLS} FROM offers WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                ))
                .map_err(sql("offers after"))?;
            let rows =
                st.query_map(params![int(after), limit], offer_row).map_err(sql("offers after"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql("offers after"))
        })
        .await
    }

    /// The `seq` of the newest offer and of the newest event (0: none yet).
    pub async fn heads(&self) -> Result<(u64, u64)> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(pg::heads).await;
        }
        self.read(|c| {
            c.query_row(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM offers), \
                        (SELECT COALESCE(MAX(seq), 0) FROM events)",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(sql("heads"))
        })
        .await
    }

    /// Whether this store is on PostgreSQL (several replicas may share it).
    pub fn is_shared(&self) -> bool {
        self.backend() == "postgres"
    }

    /// One offer.
    pub async fn offer(&self, id: OfferId) -> Result<Option<StoredOffer>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::offer(c, id)).await;
        }
        self.read(move |c| offer_by_id(c, id)).await
    }

    /// The inputs of a job offer.
    pub async fn inputs(&self, id: OfferId) -> Result<Option<Vec<u8>>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::inputs(c, id)).await;
        }
        self.read(move |c| {
            c.query_row("SELECT inputs FROM offers WHERE id = ?1", [id.as_slice()], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(sql("inputs"))
        })
        .await
    }

    /// Pairs whose deal is being created.
    pub async fn pairs(&self) -> Result<Vec<Pair>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(pg::pairs).await;
        }
        self.read(|c| {
            let mut st = c
                .prepare("SELECT deal_id, job_id, resource_id FROM pairs")
                .map_err(sql("pairs"))?;
            let rows = st
                .query_map([], |r| {
                    Ok(Pair {
                        deal_id: b256(&r.get::<_, Vec<u8>>(0)?),
                        job: b256(&r.get::<_, Vec<u8>>(1)?),
                        resource: b256(&r.get::<_, Vec<u8>>(2)?),
                    })
                })
                .map_err(sql("pairs"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql("pairs"))
        })
        .await
    }

    /// One deal.
    pub async fn deal(&self, id: B256) -> Result<Option<DealRecord>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::deal(c, id)).await;
        }
        self.read(move |c| deal_by_id(c, id)).await
    }

    /// The deals `who` is a party of, newest first, at most `limit`.
    pub async fn deals_of(&self, who: Address, limit: u32) -> Result<Vec<DealRecord>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::deals_of(c, who, limit)).await;
        }
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT record FROM deals WHERE job_creator = ?1 OR provider = ?1 \
                     ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(sql("deals"))?;
            let rows = st
                .query_map(params![who.as_slice(), limit], |r| r.get::<_, String>(0))
                .map_err(sql("deals"))?;
            let mut out = Vec::new();
            for json in rows {
                out.push(parse_record(&json.map_err(sql("deals"))?)?);
            }
            Ok(out)
        })
        .await
    }

    /// `who`'s events after `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        who: Address,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SolverEvent>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::events_after(c, who, after, limit)).await;
        }
        self.read(move |c| {
            let mut st = c
                .prepare(
                    "SELECT seq, at, body FROM events WHERE seq > ?2 AND (party_a = ?1 OR party_b = ?1) \
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(sql("events"))?;
            let rows = st
                .query_map(params![who.as_slice(), int(after), limit], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, String>(2)?))
                })
                .map_err(sql("events"))?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, at, body) = row.map_err(sql("events"))?;
                let kind: EventKind = serde_json::from_str(&body).map_err(|e| StoreError::Sql {
                    context: "event body",
                    message: e.to_string(),
                })?;
                out.push(SolverEvent { seq, at, kind });
            }
            Ok(out)
        })
        .await
    }

    /// A value of the `meta` table.
    pub async fn meta(&self, key: &'static str) -> Result<Option<String>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::meta(c, key)).await;
        }
        self.read(move |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(sql("meta"))
        })
        .await
    }

    /// The reputation of each provider with a deal in `provider_deals` (every
    /// deal of the controller the follower has seen, of any solver); only
    /// `providers`' when given.
    pub async fn reputations(
        &self,
        providers: Option<Vec<Address>>,
    ) -> Result<BTreeMap<Address, Reputation>> {
        #[cfg(feature = "solver-postgres")]
        if self.is_postgres() {
            return self.pg_read(move |c| pg::reputations(c, providers)).await;
        }
        self.read(move |c| {
            let mut deals: BTreeMap<Address, Vec<reputation::DealRecord>> = BTreeMap::new();
            let mut row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
                let provider = address(&r.get::<_, Vec<u8>>(0)?);
                let outcome = r
                    .get::<_, Option<i64>>(4)?
                    .and_then(|o| usize::try_from(o).ok())
                    .and_then(|o| Outcome::ALL.get(o).copied());
                deals.entry(provider).or_default().push(reputation::DealRecord {
                    created_at: r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
                    results_at: r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
                    challenged: r.get::<_, i64>(3)? != 0,
                    outcome,
                });
                Ok(())
            };
            let cols =
                "SELECT provider, created_at, results_at, challenged, outcome FROM provider_deals";
            match providers {
                None => {
                    let mut st = c.prepare(cols).map_err(sql("reputations"))?;
                    let mut rows = st.query([]).map_err(sql("reputations"))?;
                    while let Some(r) = rows.next().map_err(sql("reputations"))? {
                        row(r).map_err(sql("reputations"))?;
                    }
                }
                Some(list) => {
                    let mut st = c
                        .prepare(&format!("{cols} WHERE provider = ?1"))
                        .map_err(sql("reputations"))?;
                    for p in list {
                        let mut rows = st.query([p.as_slice()]).map_err(sql("reputations"))?;
                        while let Some(r) = rows.next().map_err(sql("reputations"))? {
                            row(r).map_err(sql("reputations"))?;
                        }
                    }
                }
            }
            Ok(deals.into_iter().map(|(p, d)| (p, reputation::reputation(&d))).collect())
        })
        .await
    }
}

const OFFER_COLS: &str =
    "seq, id, kind, signer, offer, signature, state, reason, deal_id, slots, min_reputation";

/// Brings a database made by an older solver up to [`SCHEMA`].
fn migrate(conn: &Connection) -> Result<()> {
    // `slots` came with offers over shared slots; older rows take none.
    let has_slots: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('offers') WHERE name = 'slots'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sql("schema"))?
        > 0;
    if !has_slots {
        conn.execute_batch("ALTER TABLE offers ADD COLUMN slots TEXT").map_err(sql("migrate"))?;
    }
    // `min_reputation` came with reputation; older job offers ask for none.
    let has_min: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('offers') WHERE name = 'min_reputation'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sql("schema"))?
        > 0;
    if !has_min {
        conn.execute_batch("ALTER TABLE offers ADD COLUMN min_reputation REAL")
            .map_err(sql("migrate"))?;
    }
    Ok(())
}

fn offer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredOffer> {
    let state: String = r.get(6)?;
    Ok(StoredOffer {
        seq: r.get::<_, i64>(0)? as u64,
        id: b256(&r.get::<_, Vec<u8>>(1)?),
        kind: if r.get::<_, i64>(2)? == 0 { OfferKind::Job } else { OfferKind::Resource },
        signer: address(&r.get::<_, Vec<u8>>(3)?),
        offer_json: r.get(4)?,
        signature: r.get(5)?,
        state: OfferState::parse(&state).unwrap_or(OfferState::Failed),
        reason: r.get(7)?,
        deal_id: r.get::<_, Option<Vec<u8>>>(8)?.map(|v| b256(&v)),
        slots: r
            .get::<_, Option<String>>(9)?
            .map(|j| serde_json::from_str(&j).unwrap_or_default())
            .unwrap_or_default(),
        min_reputation: r.get(10)?,
    })
}

/// One offer, on any connection.
pub fn offer_by_id(c: &Connection, id: OfferId) -> Result<Option<StoredOffer>> {
    c.query_row(
        &format!("SELECT {OFFER_COLS} FROM offers WHERE id = ?1"),
        [id.as_slice()],
        offer_row,
    )
    .optional()
    .map_err(sql("offer"))
}

fn parse_record(json: &str) -> Result<DealRecord> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Sql { context: "deal record", message: e.to_string() })
}

/// One deal, on any connection.
pub fn deal_by_id(c: &Connection, id: B256) -> Result<Option<DealRecord>> {
    let json: Option<String> = c
        .query_row("SELECT record FROM deals WHERE id = ?1", [id.as_slice()], |r| r.get(0))
        .optional()
        .map_err(sql("deal"))?;
    json.as_deref().map(parse_record).transpose()
}

// ---------------------------------------------------------------- writes

impl<'a> Tx<'a> {
    #[cfg(feature = "solver-postgres")]
    fn postgres(w: &'a mut pg::Writer, now: u64, events: &'a mut Vec<StoredEvent>) -> Self {
        Self { conn: Conn::Postgres(w), now, events }
    }
}

impl Tx<'_> {
    /// The SQLite connection, inside the group transaction (`None` on Postgres: use
    /// the `Tx` methods, which work on both).
    pub fn conn(&self) -> Option<&Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Some(c),
            #[cfg(feature = "solver-postgres")]
            Conn::Postgres(_) => None,
        }
    }

    /// The SQLite connection. Every method first hands a Postgres transaction to
    /// `pg`, so on SQLite this is the only case left.
    fn sqlite(&self) -> Result<&Connection> {
        self.conn().ok_or(StoreError::NotSqlite)
    }

    /// Refuses the write ([`StoreError::NotLeader`]) unless `holder` still holds the
    /// lease of `epoch`, and keeps the lease from changing hands until the group
    /// commits. Leader-only writes (pairs, deals, the chain cursor) call it first.
    /// On SQLite (one process) it always passes.
    pub fn fence(&mut self, holder: &str, epoch: u64) -> Result<()> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return match w.holds_lease(holder, epoch)? {
                true => Ok(()),
                false => Err(StoreError::NotLeader { holder: holder.to_owned(), epoch }),
            };
        }
        let _ = (holder, epoch);
        Ok(())
    }

    /// Runs `sql` on a Postgres transaction (tests: a statement that fails).
    #[cfg(all(test, feature = "solver-postgres"))]
    fn raw_pg(&mut self, sql: &str) -> Result<()> {
        match &mut self.conn {
            Conn::Postgres(w) => w.raw(sql),
            Conn::Sqlite(_) => Err(StoreError::NotSqlite),
        }
    }

    /// One offer, as this transaction sees it.
    pub fn offer(&mut self, id: OfferId) -> Result<Option<StoredOffer>> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.offer(id);
        }
        offer_by_id(self.sqlite()?, id)
    }

    /// The time of the group.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Appends an event visible to `a` (and `b`).
    pub fn event(&mut self, kind: EventKind, a: Address, b: Option<Address>) -> Result<()> {
        let body = serde_json::to_string(&kind)
            .map_err(|e| StoreError::Sql { context: "event body", message: e.to_string() })?;
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            let seq = w.event(self.now, a, b, &body)?;
            self.events.push(StoredEvent {
                parties: (a, b),
                event: SolverEvent { seq, at: self.now, kind },
            });
            return Ok(());
        }
        let conn = self.sqlite()?;
        conn.prepare_cached(
            "INSERT INTO events (at, party_a, party_b, body) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| {
            st.execute(params![int(self.now), a.as_slice(), b.as_ref().map(|b| b.as_slice()), body])
        })
        .map_err(sql("event"))?;
        let seq = conn.last_insert_rowid() as u64;
        self.events
            .push(StoredEvent { parties: (a, b), event: SolverEvent { seq, at: self.now, kind } });
        Ok(())
    }

    /// Remembers a request nonce until `expiry`; [`StoreError::Replay`] if it is known.
    pub fn use_nonce(&mut self, signer: Address, nonce: U256, expiry: u64) -> Result<()> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return match w.use_nonce(signer, nonce, expiry)? {
                true => Ok(()),
                false => Err(StoreError::Replay { signer, nonce }),
            };
        }
        let n = self
            .sqlite()?
            .prepare_cached(
                "INSERT OR IGNORE INTO nonces (signer, nonce, expiry) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| {
                st.execute(params![signer.as_slice(), &nonce.to_be_bytes::<32>()[..], int(expiry)])
            })
            .map_err(sql("nonce"))?;
        if n == 0 {
            return Err(StoreError::Replay { signer, nonce });
        }
        Ok(())
    }

    /// Stores a new offer (state `open`) and its `offer_accepted` event; returns
    /// the offer's `seq` (its place in arrival order).
    pub fn insert_offer(&mut self, o: &NewOffer) -> Result<u64> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            let slots = (!o.slots.is_empty()).then(|| serde_json::json!(o.slots).to_string());
            let Some(seq) = w.insert_offer(o, self.now, slots.as_deref())? else {
                let state = w.offer(o.id)?.map_or(OfferState::Open, |s| s.state);
                return Err(StoreError::Duplicate { id: o.id, state });
            };
            self.event(EventKind::OfferAccepted { offer_id: o.id, kind: o.kind }, o.signer, None)?;
            return Ok(seq);
        }
        let n = self
            .sqlite()?
            .prepare_cached(
                "INSERT OR IGNORE INTO offers (id, kind, signer, offer, signature, inputs, expiry, \
                 state, created_at, slots, min_reputation) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?9, ?10)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    o.id.as_slice(),
                    kind_code(o.kind),
                    o.signer.as_slice(),
                    o.offer_json,
                    o.signature,
                    o.inputs,
                    int(o.expiry),
                    int(self.now),
                    (!o.slots.is_empty()).then(|| serde_json::json!(o.slots).to_string()),
                    o.min_reputation,
                ])
            })
            .map_err(sql("insert offer"))?;
        if n == 0 {
            let state = offer_by_id(self.sqlite()?, o.id)?.map_or(OfferState::Open, |s| s.state);
            return Err(StoreError::Duplicate { id: o.id, state });
        }
        let seq = self.sqlite()?.last_insert_rowid() as u64;
        self.event(EventKind::OfferAccepted { offer_id: o.id, kind: o.kind }, o.signer, None)?;
        Ok(seq)
    }

    fn set_offer(
        &mut self,
        id: OfferId,
        state: OfferState,
        reason: Option<&str>,
        deal: Option<B256>,
    ) -> Result<Option<Address>> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.set_offer(id, state, reason, deal);
        }
        self.sqlite()?
            .prepare_cached(
                "UPDATE offers SET state = ?2, reason = ?3, deal_id = ?4 WHERE id = ?1 RETURNING signer",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![id.as_slice(), state.as_str(), reason, deal.as_ref().map(|d| d.as_slice())],
                    |r| r.get::<_, Vec<u8>>(0),
                )
                .optional()
            })
            .map(|s| s.map(|s| address(&s)))
            .map_err(sql("update offer"))
    }

    /// Records a matched pair: both offers go from `open` to `matching`
    /// ([`StoreError::NotOpen`] if either is not open: an offer is never in two pairs).
    pub fn pair(&mut self, p: Pair) -> Result<()> {
        for id in [p.job, p.resource] {
            let state = self.offer(id)?.map(|o| o.state);
            if state != Some(OfferState::Open) {
                return Err(StoreError::NotOpen { id, state });
            }
            self.set_offer(id, OfferState::Matching, None, Some(p.deal_id))?;
        }
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.pair(p);
        }
        self.sqlite()?
            .execute(
                "INSERT OR REPLACE INTO pairs (deal_id, job_id, resource_id) VALUES (?1, ?2, ?3)",
                params![p.deal_id.as_slice(), p.job.as_slice(), p.resource.as_slice()],
            )
            .map_err(sql("pair"))?;
        Ok(())
    }

    /// Drops a pair (its deal was created, or it failed).
    pub fn unpair(&mut self, deal_id: B256) -> Result<()> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.unpair(deal_id);
        }
        self.sqlite()?
            .execute("DELETE FROM pairs WHERE deal_id = ?1", [deal_id.as_slice()])
            .map_err(sql("unpair"))?;
        Ok(())
    }

    /// Puts an offer back to `open` (its partner failed).
    pub fn reopen(&mut self, id: OfferId) -> Result<()> {
        self.set_offer(id, OfferState::Open, None, None).map(drop)
    }

    /// Marks an offer failed and tells its signer why.
    pub fn fail_offer(&mut self, id: OfferId, reason: &str) -> Result<()> {
        if let Some(signer) = self.set_offer(id, OfferState::Failed, Some(reason), None)? {
            self.event(
                EventKind::OfferFailed { offer_id: id, reason: reason.to_owned() },
                signer,
                None,
            )?;
        }
        Ok(())
    }

    /// Marks an open offer expired and tells its signer.
    pub fn expire_offer(&mut self, id: OfferId) -> Result<()> {
        if let Some(signer) = self.set_offer(id, OfferState::Expired, None, None)? {
            self.event(EventKind::OfferExpired { offer_id: id }, signer, None)?;
        }
        Ok(())
    }

    /// Records a created deal (if new): both offers `matched`, the pair dropped, a
    /// `deal_created` event to both parties. Returns whether it was new.
    pub fn record_deal(&mut self, record: &DealRecord) -> Result<bool> {
        let d = &record.deal;
        let json = serde_json::to_string(record)
            .map_err(|e| StoreError::Sql { context: "deal record", message: e.to_string() })?;
        #[cfg(feature = "solver-postgres")]
        let n = match &mut self.conn {
            Conn::Postgres(w) => usize::from(w.insert_deal(
                d.id,
                d.members.job_creator,
                d.members.resource_provider,
                record.status.kind().as_str(),
                &json,
            )?),
            Conn::Sqlite(_) => self.insert_deal_sqlite(record, &json)?,
        };
        #[cfg(not(feature = "solver-postgres"))]
        let n = self.insert_deal_sqlite(record, &json)?;
        self.set_offer(d.job_offer_id, OfferState::Matched, None, Some(d.id))?;
        self.set_offer(d.resource_offer_id, OfferState::Matched, None, Some(d.id))?;
        self.unpair(d.id)?;
        if n == 0 {
            return Ok(false);
        }
        self.event(
            EventKind::DealCreated { deal: Box::new(d.clone()), tx: record.tx },
            d.members.job_creator,
            Some(d.members.resource_provider),
        )?;
        Ok(true)
    }

    fn insert_deal_sqlite(&self, record: &DealRecord, json: &str) -> Result<usize> {
        let d = &record.deal;
        self.sqlite()?
            .execute(
                "INSERT OR IGNORE INTO deals (id, job_creator, provider, state, record) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    d.id.as_slice(),
                    d.members.job_creator.as_slice(),
                    d.members.resource_provider.as_slice(),
                    record.status.kind().as_str(),
                    json
                ],
            )
            .map_err(sql("insert deal"))
    }

    /// Applies `change` to a stored deal and emits `event` to its parties; `None` if the
    /// deal is not ours.
    pub fn update_deal(
        &mut self,
        id: B256,
        change: impl FnOnce(&mut DealRecord),
        event: EventKind,
    ) -> Result<Option<DealStatus>> {
        let found = match &mut self.conn {
            Conn::Sqlite(c) => deal_by_id(c, id)?,
            #[cfg(feature = "solver-postgres")]
            Conn::Postgres(w) => w.deal(id)?,
        };
        let Some(mut record) = found else { return Ok(None) };
        change(&mut record);
        let json = serde_json::to_string(&record)
            .map_err(|e| StoreError::Sql { context: "deal record", message: e.to_string() })?;
        match &mut self.conn {
            Conn::Sqlite(c) => {
                c.execute(
                    "UPDATE deals SET state = ?2, record = ?3 WHERE id = ?1",
                    params![id.as_slice(), record.status.kind().as_str(), json],
                )
                .map_err(sql("update deal"))?;
            }
            #[cfg(feature = "solver-postgres")]
            Conn::Postgres(w) => w.update_deal(id, record.status.kind().as_str(), &json)?,
        }
        let m = &record.deal.members;
        self.event(event, m.job_creator, Some(m.resource_provider))?;
        Ok(Some(record.status))
    }

    /// Records, for its provider's reputation, a deal from its `DealCreated` event
    /// (block time `at` when the node gave it); returns the provider.
    pub fn reputation_created(
        &mut self,
        deal: B256,
        provider: Address,
        at: Option<u64>,
    ) -> Result<Address> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.reputation_created(deal, provider, at).map(|()| provider);
        }
        self.sqlite()?
            .prepare_cached(
                "INSERT OR IGNORE INTO provider_deals (deal_id, provider, created_at) \
                 VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| {
                st.execute(params![deal.as_slice(), provider.as_slice(), at.map(int)])
            })
            .map_err(sql("reputation"))?;
        Ok(provider)
    }

    /// Records a deal's results at block time `at`; returns its provider (`None`:
    /// a deal whose creation was not seen).
    pub fn reputation_results(&mut self, deal: B256, at: Option<u64>) -> Result<Option<Address>> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.reputation_update(pg::Column::ResultsAt, deal, at.map(int));
        }
        self.reputation_update("results_at = ?2", deal, at.map(int))
    }

    /// Records a challenge of a deal's results or failure report; returns its provider.
    pub fn reputation_challenged(&mut self, deal: B256) -> Result<Option<Address>> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.reputation_update(pg::Column::Challenged, deal, Some(1));
        }
        self.reputation_update("challenged = ?2", deal, Some(1))
    }

    /// Records how a deal ended; returns its provider.
    pub fn reputation_finished(&mut self, deal: B256, outcome: Outcome) -> Result<Option<Address>> {
        let code = Outcome::ALL.iter().position(|o| *o == outcome).map(|i| i as i64);
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.reputation_update(pg::Column::Outcome, deal, code);
        }
        self.reputation_update("outcome = ?2", deal, code)
    }

    fn reputation_update(
        &self,
        set: &'static str,
        deal: B256,
        value: Option<i64>,
    ) -> Result<Option<Address>> {
        self.sqlite()?
            .prepare_cached(&format!(
                "UPDATE provider_deals SET {set} WHERE deal_id = ?1 RETURNING provider"
            ))
            .and_then(|mut st| {
                st.query_row(params![deal.as_slice(), value], |r| r.get::<_, Vec<u8>>(0)).optional()
            })
            .map(|p| p.map(|p| address(&p)))
            .map_err(sql("reputation"))
    }

    /// Sets a `meta` value.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.set_meta(key, value);
        }
        self.sqlite()?
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value])
            .map_err(sql("meta"))?;
        Ok(())
    }

    /// Forgets nonces whose request expired before `before` (they can no longer be replayed:
    /// an expired request is refused anyway).
    pub fn prune_nonces(&mut self, before: u64) -> Result<usize> {
        #[cfg(feature = "solver-postgres")]
        if let Conn::Postgres(w) = &mut self.conn {
            return w.prune_nonces(before);
        }
        self.sqlite()?
            .execute("DELETE FROM nonces WHERE expiry < ?1", [int(before)])
            .map_err(sql("prune nonces"))
    }
}

fn writer_loop(
    conn: &Connection,
    rx: &mpsc::Receiver<Op>,
    publish: &broadcast::Sender<Arc<StoredEvent>>,
) {
    let mut batch: Vec<Op> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE").map_err(sql("begin")) {
            tracing::error!("cannot begin a write transaction: {e}");
            for op in batch.drain(..) {
                op(None).1(Err(e.clone()));
            }
            continue;
        }
        let now = now_secs();
        let mut events = Vec::new();
        let mut done: Vec<Completion> = Vec::with_capacity(batch.len());
        for op in batch.drain(..) {
            // Each write in its own savepoint, so that a failing one undoes only itself.
            let saved = conn.execute_batch("SAVEPOINT op").is_ok();
            let mut own = Vec::new();
            let (ok, completion) =
                op(Some(&mut Tx { conn: Conn::Sqlite(conn), now, events: &mut own }));
            if ok {
                let _ = conn.execute_batch("RELEASE op");
                events.append(&mut own);
            } else if saved {
                let _ = conn.execute_batch("ROLLBACK TO op; RELEASE op");
            }
            done.push(completion);
        }
        let committed = conn.execute_batch("COMMIT").map_err(sql("commit"));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
            events.clear();
        }
        // Publish before completing, so that a writer told "ok" can count on
        // every subscriber already having its events queued.
        for e in events {
            // No subscriber is fine.
            let _ = publish.send(Arc::new(e));
        }
        for d in done {
            d(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a test's state lives: a fresh SQLite file or a fresh Postgres database.
    enum Db {
        Sqlite(tempfile::TempDir),
        #[cfg(feature = "solver-postgres")]
        Postgres(pg::TestDb),
    }

    impl Db {
        fn sqlite() -> Self {
            Self::Sqlite(tempfile::tempdir().unwrap())
        }

        #[cfg(feature = "solver-postgres")]
        fn postgres() -> Self {
            Self::Postgres(pg::TestDb::new())
        }

        fn open(&self, solver: Address, chain_id: u64, controller: Address) -> Result<Store> {
            match self {
                Self::Sqlite(dir) => {
                    Store::open(&dir.path().join("s.db"), solver, chain_id, controller)
                }
                #[cfg(feature = "solver-postgres")]
                Self::Postgres(db) => Store::open_postgres(&db.url, solver, chain_id, controller),
            }
        }
    }

    /// A test body run against SQLite (`$sqlite`) and Postgres (`$postgres`).
    macro_rules! on_both {
        ($body:ident: $sqlite:ident, $postgres:ident) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $sqlite() {
                $body(Db::sqlite()).await
            }

            #[cfg(feature = "solver-postgres")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $postgres() {
                $body(Db::postgres()).await
            }
        };
    }

    #[test]
    fn a_postgres_url_names_postgres_and_anything_else_a_sqlite_file() {
        let url = "postgres://lilypad:secret@127.0.0.1:55432/lilypad";
        assert_eq!(Database::parse(url), Database::Postgres(url.into()));
        assert_eq!(
            Database::from("postgresql://h/db"),
            Database::Postgres("postgresql://h/db".into())
        );
        assert_eq!(Database::from("solver.db"), Database::Sqlite("solver.db".into()));
        assert_eq!(Database::from("./postgres://x"), Database::Sqlite("./postgres://x".into()));
        // A path is a path, whatever it spells.
        assert_eq!(
            Database::from(PathBuf::from("postgres://x")),
            Database::Sqlite("postgres://x".into())
        );
        // Passwords never reach messages.
        assert_eq!(
            Database::parse(url).to_string(),
            "postgres://lilypad:***@127.0.0.1:55432/lilypad"
        );
        let e = StoreError::NoPostgres { url: redact_url(url) }.to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    fn offer(n: u8) -> NewOffer {
        NewOffer {
            id: B256::repeat_byte(n),
            kind: OfferKind::Resource,
            signer: Address::repeat_byte(n),
            offer_json: "{}".into(),
            signature: vec![n; 65],
            inputs: None,
            expiry: 10,
            slots: Vec::new(),
            min_reputation: None,
        }
    }

    on_both!(group_commit: group_commit_isolates_failures_and_survives_reopen,
        group_commit_isolates_failures_and_survives_reopen_on_postgres);
    async fn group_commit(db: Db) {
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let store = db.open(solver, 31337, controller).unwrap();
        let mut live = store.subscribe();
        // 200 concurrent writes; every 10th reuses the nonce of the write before it.
        let writes = (0..200u64).map(|i| {
            let store = store.clone();
            async move {
                let nonce = U256::from(if i % 10 == 9 { i - 1 } else { i });
                let o = offer((i % 250) as u8 + 1);
                let signer = Address::repeat_byte(1);
                store
                    .write(move |tx| {
                        tx.use_nonce(signer, nonce, 100)?;
                        if i < 100 { tx.insert_offer(&o).map(drop) } else { Ok(()) }
                    })
                    .await
            }
        });
        let results = futures::future::join_all(writes).await;
        // Replays fail only themselves (their nonce twin may be later in the same group).
        let replays =
            results.iter().filter(|r| matches!(r, Err(StoreError::Replay { .. }))).count();
        assert_eq!(replays, 20, "{results:?}");
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 180);
        // Each stored offer published one event, in sequence order.
        let mut seqs = Vec::new();
        while let Ok(e) = live.try_recv() {
            seqs.push(e.event.seq);
        }
        assert_eq!(seqs.len(), 90);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        let dup = store.write(|tx| tx.insert_offer(&offer(1))).await;
        assert!(
            matches!(dup, Err(StoreError::Duplicate { state: OfferState::Open, .. })),
            "{dup:?}"
        );
        store.close();
        drop(store);

        let store = db.open(solver, 31337, controller).unwrap();
        assert_eq!(store.live_offers().await.unwrap().len(), 90);
        let replay =
            store.write(|tx| tx.use_nonce(Address::repeat_byte(1), U256::from(5), 100)).await;
        assert!(matches!(replay, Err(StoreError::Replay { .. })));
        assert_eq!(store.events_after(Address::repeat_byte(1), 0, 1000).await.unwrap().len(), 1);
        assert_eq!(store.write(|tx| tx.prune_nonces(101)).await.unwrap(), 180);
        store.close();
        drop(store);

        let e = db.open(Address::repeat_byte(0xbb), 31337, controller).unwrap_err();
        assert!(e.to_string().contains("belongs to solver"), "{e}");
        let e = db.open(solver, 1, controller).unwrap_err();
        assert!(e.to_string().contains("belongs to chain_id 31337, not 1"), "{e}");
    }

    on_both!(reputation_rows: reputation_rows_survive_reopen_and_score_each_provider,
        reputation_rows_survive_reopen_and_score_each_provider_on_postgres);
    async fn reputation_rows(db: Db) {
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let (good, bad) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let deal = B256::repeat_byte;
        let store = db.open(solver, 31337, controller).unwrap();
        store
            .write(move |tx| {
                tx.reputation_created(deal(1), good, Some(100))?;
                tx.reputation_created(deal(2), good, Some(100))?;
                tx.reputation_created(deal(3), bad, None)?;
                // Seen twice (a rescan after a crash): counted once.
                tx.reputation_created(deal(3), bad, None)?;
                assert_eq!(tx.reputation_results(deal(1), Some(130))?, Some(good));
                assert_eq!(tx.reputation_finished(deal(1), Outcome::Accepted)?, Some(good));
                assert_eq!(tx.reputation_challenged(deal(3))?, Some(bad));
                assert_eq!(tx.reputation_finished(deal(3), Outcome::NoResultsInTime)?, Some(bad));
                // A deal whose creation was never seen changes nothing.
                assert_eq!(tx.reputation_finished(deal(9), Outcome::Accepted)?, None);
                Ok(())
            })
            .await
            .unwrap();
        store.close();
        drop(store);
        let store = db.open(solver, 31337, controller).unwrap();
        let all = store.reputations(None).await.unwrap();
        assert_eq!(all.len(), 2);
        let g = all[&good];
        assert_eq!((g.completed, g.open, g.median_secs_to_results), (1, 1, Some(30)));
        assert_eq!(g.score, reputation::score(1, 0, 0));
        let b = all[&bad];
        assert_eq!((b.timed_out, b.challenged, b.score), (1, 1, reputation::score(0, 1, 0)));
        let one = store.reputations(Some(vec![bad])).await.unwrap();
        assert_eq!(one.keys().collect::<Vec<_>>(), vec![&bad]);
    }

    on_both!(tail_reads: offers_come_back_in_arrival_order_and_an_offer_is_never_in_two_pairs,
        offers_come_back_in_arrival_order_and_an_offer_is_never_in_two_pairs_on_postgres);
    async fn tail_reads(db: Db) {
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let store = db.open(solver, 31337, controller).unwrap();
        assert_eq!(store.heads().await.unwrap(), (0, 0));
        let mut seqs = Vec::new();
        for n in 1..=5u8 {
            seqs.push(store.write(move |tx| tx.insert_offer(&offer(n))).await.unwrap());
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs grow: {seqs:?}");
        let (offers_head, events_head) = store.heads().await.unwrap();
        assert_eq!(offers_head, seqs[4]);
        assert!(events_head > 0, "each offer has its offer_accepted event");
        // Past the second offer: the other three, oldest first, whatever their state.
        store.write(|tx| tx.fail_offer(B256::repeat_byte(4), "gone")).await.unwrap();
        let after = store.offers_after(seqs[1], 10).await.unwrap();
        let got: Vec<_> = after.iter().map(|o| (o.seq, o.state)).collect();
        assert_eq!(
            got,
            vec![
                (seqs[2], OfferState::Open),
                (seqs[3], OfferState::Failed),
                (seqs[4], OfferState::Open)
            ]
        );
        assert_eq!(store.offers_after(seqs[1], 1).await.unwrap().len(), 1);
        assert!(store.offers_after(seqs[4], 10).await.unwrap().is_empty());
        // A pair takes open offers only: an offer matched once cannot be paired again
        // (two leaders, or a stale match), and the refused pair changes nothing.
        let pair = |j: u8, r: u8| Pair {
            deal_id: B256::repeat_byte(j ^ r ^ 0x80),
            job: B256::repeat_byte(j),
            resource: B256::repeat_byte(r),
        };
        store.write(move |tx| tx.pair(pair(1, 2))).await.unwrap();
        let e = store.write(move |tx| tx.pair(pair(3, 2))).await.unwrap_err();
        assert!(matches!(e, StoreError::NotOpen { state: Some(OfferState::Matching), .. }), "{e}");
        assert!(e.to_string().contains("it is matching"), "{e}");
        let e = store.write(move |tx| tx.pair(pair(3, 4))).await.unwrap_err();
        assert!(matches!(e, StoreError::NotOpen { state: Some(OfferState::Failed), .. }), "{e}");
        let e = store.write(move |tx| tx.pair(pair(3, 9))).await.unwrap_err();
        assert!(e.to_string().contains("not stored"), "{e}");
        assert_eq!(
            store.offer(B256::repeat_byte(3)).await.unwrap().unwrap().state,
            OfferState::Open
        );
        assert_eq!(store.pairs().await.unwrap(), vec![pair(1, 2)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_database_gains_min_reputation_and_keeps_its_offers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        {
            // The offers table as solvers before reputation made it, with one offer.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE offers (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, \
                 kind INTEGER NOT NULL, signer BLOB NOT NULL, offer TEXT NOT NULL, \
                 signature BLOB NOT NULL, inputs BLOB, expiry INTEGER NOT NULL, \
                 state TEXT NOT NULL, reason TEXT, deal_id BLOB, created_at INTEGER NOT NULL, \
                 slots TEXT);
                 INSERT INTO offers (id, kind, signer, offer, signature, expiry, state, created_at) \
                 VALUES (x'01', 0, x'02', '{}', x'03', 10, 'open', 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path, solver, 31337, controller).unwrap();
        let job = NewOffer { kind: OfferKind::Job, min_reputation: Some(0.75), ..offer(7) };
        store.write(move |tx| tx.insert_offer(&job)).await.unwrap();
        let live = store.live_offers().await.unwrap();
        let mins: Vec<_> = live.iter().map(|o| o.min_reputation).collect();
        assert_eq!(mins, vec![None, Some(0.75)]);
    }

    /// Everything a solver can read back, with `at` (the wall clock) zeroed and
    /// `seq`s replaced by their rank (Postgres sequences may leave gaps: a
    /// duplicate insert or a rolled-back write uses a value up).
    #[derive(Debug, PartialEq)]
    struct Snapshot {
        live: Vec<StoredOffer>,
        offers: Vec<Option<StoredOffer>>,
        inputs: Vec<Option<Vec<u8>>>,
        pairs: Vec<Pair>,
        deals: Vec<Option<DealRecord>>,
        deals_of: Vec<Vec<DealRecord>>,
        events: Vec<Vec<SolverEvent>>,
        events_after_first: Vec<usize>,
        meta: Option<String>,
        reputations: String,
        some_reputations: String,
        published: Vec<(Address, Option<Address>, EventKind)>,
    }

    fn deal_record(
        job: OfferId,
        resource: OfferId,
        creator: Address,
        provider: Address,
    ) -> DealRecord {
        use lilypad_core::deal::{Deal, DealMembers, DealTerms};
        let id = lilypad_core::deal::deal_id(job, resource);
        let mediator = Address::repeat_byte(0x77);
        DealRecord {
            deal: Deal {
                id,
                job_offer_id: job,
                resource_offer_id: resource,
                module_id: B256::repeat_byte(0x55),
                inputs_hash: B256::repeat_byte(0x66),
                members: DealMembers {
                    job_creator: creator,
                    resource_provider: provider,
                    solver: Address::repeat_byte(0xaa),
                    mediators: [mediator].into_iter().collect(),
                },
                terms: DealTerms {
                    // Money at the edges of U256: stored exactly or this test fails.
                    price: U256::MAX - U256::from(1),
                    payment_collateral: U256::MAX,
                    timeout_collateral: U256::from(1u64) << 200,
                    results_collateral: U256::from(u128::MAX),
                    mediation_fee: U256::from(1),
                    submit_window_secs: u64::MAX >> 1,
                    judge_window_secs: 3600,
                    mediate_window_secs: 7200,
                },
                created_at: 1_700_000_000,
            },
            status: DealStatus::Agreed,
            mediators: vec![mediator],
            results_cid: None,
            mediator: None,
            tx: B256::repeat_byte(0x99),
        }
    }

    /// The same writes, every kind of them, then every read.
    async fn exercise(db: &Db) -> Snapshot {
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let store = db.open(solver, 31337, controller).unwrap();
        let mut published = store.subscribe();
        let (creator, provider) = (Address::repeat_byte(0x11), Address::repeat_byte(0x22));
        let job = NewOffer {
            kind: OfferKind::Job,
            signer: creator,
            inputs: Some(vec![0, 1, 2, 255, 0]),
            min_reputation: Some(0.1 + 0.2),
            offer_json: r#"{"price":"115792089237316195423570985008687907853269984665640564039457584007913129639935","é":"ü"}"#.into(),
            ..offer(1)
        };
        let resource = NewOffer {
            signer: provider,
            slots: vec!["gpu:0".into(), "gpu:1".into()],
            expiry: u64::MAX >> 1,
            ..offer(2)
        };
        let (jid, rid) = (job.id, resource.id);
        let others: Vec<NewOffer> = (3..=6).map(offer).collect();
        let record = deal_record(jid, rid, creator, provider);
        let deal_id = record.deal.id;
        store
            .write(move |tx| {
                tx.use_nonce(creator, U256::MAX, 50)?;
                tx.use_nonce(provider, U256::ZERO, 200)?;
                tx.insert_offer(&job)?;
                tx.insert_offer(&resource)?;
                for o in &others {
                    tx.insert_offer(o)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        // Failures, each alone in the group with the writes beside it.
        let replay = store.write(move |tx| tx.use_nonce(creator, U256::MAX, 50)).await;
        assert!(matches!(replay, Err(StoreError::Replay { .. })), "{replay:?}");
        let dup = store.write(|tx| tx.insert_offer(&offer(3))).await;
        assert!(
            matches!(dup, Err(StoreError::Duplicate { state: OfferState::Open, .. })),
            "{dup:?}"
        );
        let undone = store
            .write(|tx| {
                tx.fail_offer(B256::repeat_byte(3), "undone with its savepoint")?;
                tx.use_nonce(Address::repeat_byte(0x11), U256::MAX, 50)
            })
            .await;
        assert!(undone.is_err());
        store
            .write(move |tx| {
                tx.pair(Pair { deal_id, job: jid, resource: rid })?;
                tx.pair(Pair {
                    deal_id: B256::repeat_byte(0x44),
                    job: B256::repeat_byte(3),
                    resource: B256::repeat_byte(4),
                })?;
                tx.unpair(B256::repeat_byte(0x44))?;
                tx.reopen(B256::repeat_byte(3))?;
                tx.reopen(B256::repeat_byte(4))?;
                tx.fail_offer(B256::repeat_byte(5), "no allowance: approve the controller")?;
                tx.expire_offer(B256::repeat_byte(6))?;
                tx.set_meta("cursor", "12345")?;
                tx.set_meta("cursor", "12346")?;
                assert_eq!(tx.offer(jid)?.map(|o| o.state), Some(OfferState::Matching));
                assert_eq!(tx.prune_nonces(100)?, 1);
                Ok(())
            })
            .await
            .unwrap();
        let first = record.clone();
        assert!(store.write(move |tx| tx.record_deal(&first)).await.unwrap());
        let again = record.clone();
        assert!(!store.write(move |tx| tx.record_deal(&again)).await.unwrap());
        let status = store
            .write(move |tx| {
                tx.reputation_created(deal_id, provider, Some(1_700_000_000))?;
                tx.reputation_results(deal_id, Some(1_700_000_042))?;
                tx.reputation_challenged(deal_id)?;
                tx.reputation_finished(deal_id, Outcome::Accepted)?;
                tx.update_deal(
                    deal_id,
                    |r| {
                        r.results_cid = Some(vec![1, 0x55, 0, 7].into());
                        r.status = DealStatus::ResultsSubmitted;
                    },
                    EventKind::ResultsSubmitted {
                        deal_id,
                        results_cid: vec![1, 0x55, 0, 7].into(),
                    },
                )
            })
            .await
            .unwrap();
        assert_eq!(status, Some(DealStatus::ResultsSubmitted));
        let none = store
            .write(|tx| {
                tx.update_deal(B256::ZERO, |_| {}, EventKind::OfferExpired { offer_id: B256::ZERO })
            })
            .await;
        assert_eq!(none.unwrap(), None);

        let ids: Vec<OfferId> = (1..=7).map(B256::repeat_byte).collect();
        let mut offers = Vec::new();
        let mut inputs = Vec::new();
        for id in &ids {
            offers.push(store.offer(*id).await.unwrap());
            inputs.push(store.inputs(*id).await.unwrap());
        }
        let mut events = Vec::new();
        let mut events_after_first = Vec::new();
        for who in [
            creator,
            provider,
            Address::repeat_byte(3),
            Address::repeat_byte(5),
            Address::repeat_byte(6),
        ] {
            let all = store.events_after(who, 0, 1000).await.unwrap();
            let later = store.events_after(who, all[0].seq, 1000).await.unwrap();
            events_after_first.push(later.len());
            assert_eq!(store.events_after(who, 0, 1).await.unwrap().len(), 1);
            events.push(all);
        }
        let mut published_events = Vec::new();
        while let Ok(e) = published.try_recv() {
            published_events.push((e.parties.0, e.parties.1, e.event.kind.clone()));
        }
        let mut snapshot = Snapshot {
            live: store.live_offers().await.unwrap(),
            offers,
            inputs,
            pairs: store.pairs().await.unwrap(),
            deals: vec![store.deal(deal_id).await.unwrap(), store.deal(B256::ZERO).await.unwrap()],
            deals_of: vec![
                store.deals_of(creator, 10).await.unwrap(),
                store.deals_of(provider, 0).await.unwrap(),
                store.deals_of(Address::ZERO, 10).await.unwrap(),
            ],
            events,
            events_after_first,
            meta: store.meta("cursor").await.unwrap(),
            reputations: format!("{:?}", store.reputations(None).await.unwrap()),
            some_reputations: format!(
                "{:?}",
                store.reputations(Some(vec![provider, provider, creator])).await.unwrap()
            ),
            published: published_events,
        };
        store.close();
        // Rank the seqs (see `Snapshot`), keeping their order.
        let rank = |seqs: &mut Vec<&mut u64>| {
            let mut sorted: Vec<u64> = seqs.iter().map(|s| **s).collect();
            sorted.sort_unstable();
            for s in seqs.iter_mut() {
                **s = sorted.iter().position(|v| v == *s).unwrap() as u64;
            }
        };
        let mut offer_seqs: Vec<&mut u64> = snapshot.live.iter_mut().map(|o| &mut o.seq).collect();
        rank(&mut offer_seqs);
        let mut offer_seqs: Vec<&mut u64> =
            snapshot.offers.iter_mut().flatten().map(|o| &mut o.seq).collect();
        rank(&mut offer_seqs);
        for list in &mut snapshot.events {
            for e in list.iter_mut() {
                e.at = 0;
            }
            let mut seqs: Vec<&mut u64> = list.iter_mut().map(|e| &mut e.seq).collect();
            rank(&mut seqs);
        }
        snapshot
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_read_and_write_is_sane_on_sqlite() {
        let s = exercise(&Db::sqlite()).await;
        assert_eq!(s.live.len(), 2, "{:?}", s.live);
        assert_eq!(s.offers[4].as_ref().unwrap().state, OfferState::Failed);
        assert_eq!(s.offers[5].as_ref().unwrap().state, OfferState::Expired);
        assert_eq!(s.offers[6], None);
        assert_eq!(s.inputs[0], Some(vec![0, 1, 2, 255, 0]));
        assert_eq!(s.meta.as_deref(), Some("12346"));
        assert_eq!(s.deals[0].as_ref().unwrap().status, DealStatus::ResultsSubmitted);
        assert_eq!(s.deals_of[0].len(), 1);
        assert!(s.deals_of[1].is_empty());
    }

    /// The Postgres backend answers every read exactly as SQLite does after the
    /// same writes (offers, inputs, pairs, deals with U256 at its edges, events,
    /// meta, reputation), failures included.
    #[cfg(feature = "solver-postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_answers_as_sqlite_does() {
        let sqlite = exercise(&Db::sqlite()).await;
        let postgres = exercise(&Db::postgres()).await;
        assert_eq!(postgres, sqlite);
    }

    #[cfg(feature = "solver-postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_replica_holds_the_lease_until_it_expires_and_a_deposed_one_cannot_write() {
        use std::time::Duration;
        let db = Db::postgres();
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let a = db.open(solver, 31337, controller).unwrap();
        let b = db.open(solver, 31337, controller).unwrap();
        let ttl = Duration::from_millis(800);
        assert_eq!(a.leader().await.unwrap(), None);
        let la = a.take_lease("a", ttl).await.unwrap().expect("a free lease is taken");
        assert_eq!(b.take_lease("b", ttl).await.unwrap(), None, "b must wait");
        // Renewing keeps the epoch.
        assert_eq!(a.take_lease("a", ttl).await.unwrap().map(|l| l.epoch), Some(la.epoch));
        let leader = b.leader().await.unwrap().expect("a leads");
        assert_eq!((leader.holder.as_str(), leader.epoch), ("a", la.epoch));
        assert!(leader.expires_in <= ttl);
        // a's fenced write passes while it leads.
        a.write(move |tx| {
            tx.fence("a", la.epoch)?;
            tx.set_meta("cursor", "1")
        })
        .await
        .unwrap();
        // a stops renewing: b takes over after the ttl with the next epoch.
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        let lb = b.take_lease("b", ttl).await.unwrap().expect("an expired lease is taken");
        assert_eq!(lb.epoch, la.epoch + 1);
        // a, deposed, can neither write as leader nor take the lease back.
        let e = a
            .write(move |tx| {
                tx.fence("a", la.epoch)?;
                tx.set_meta("cursor", "2")
            })
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::NotLeader { epoch, .. } if epoch == la.epoch), "{e}");
        assert_eq!(a.meta("cursor").await.unwrap().as_deref(), Some("1"));
        assert_eq!(a.take_lease("a", ttl).await.unwrap(), None);
        // b gives it up at shutdown: a takes it at once.
        assert!(b.release_lease("b").await.unwrap());
        assert_eq!(a.take_lease("a", ttl).await.unwrap().map(|l| l.epoch), Some(lb.epoch + 1));
        for s in [a, b] {
            s.close();
        }
    }

    /// A replica frozen in the middle of a fenced write (SIGSTOP, a paused VM) holds
    /// a `FOR SHARE` lock on the lease row and the log lock: the server ends its
    /// session after 3 s idle in the transaction, so another replica takes the
    /// lease without waiting for it to wake, and the frozen write is lost, not
    /// committed late.
    #[cfg(feature = "solver-postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_frozen_in_a_fenced_write_loses_the_lease_and_the_write() {
        use std::time::{Duration, Instant};
        let db = Db::postgres();
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let a = db.open(solver, 31337, controller).unwrap();
        let b = db.open(solver, 31337, controller).unwrap();
        let ttl = Duration::from_millis(500);
        let la = a.take_lease("a", ttl).await.unwrap().expect("a free lease is taken");
        let frozen = Duration::from_secs(8);
        let started = Instant::now();
        let write = tokio::spawn({
            let a = a.clone();
            async move {
                a.write(move |tx| {
                    tx.fence("a", la.epoch)?;
                    tx.set_meta("cursor", "frozen")?;
                    // The writer thread stops here, its transaction open.
                    std::thread::sleep(frozen);
                    Ok(())
                })
                .await
            }
        });
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        let lb = loop {
            // Each try gives up on the row lock after a second.
            if let Ok(Some(l)) = b.take_lease("b", Duration::from_secs(5)).await {
                break l;
            }
            assert!(started.elapsed() < frozen, "b waited for the frozen replica to wake");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let took = started.elapsed();
        assert!(took < frozen, "took over after {took:?}");
        assert_eq!(lb.epoch, la.epoch + 1);
        let e = write.await.unwrap().unwrap_err();
        assert!(!matches!(e, StoreError::Closed), "{e}");
        assert_eq!(b.meta("cursor").await.unwrap(), None, "the frozen write committed");
        // a's writer connects again for the next group.
        a.write(|tx| tx.set_meta("after", "1")).await.unwrap();
        assert_eq!(b.meta("after").await.unwrap().as_deref(), Some("1"));
        for s in [a, b] {
            s.close();
        }
    }

    /// A write that ignores a failed statement and says it succeeded must not be
    /// reported committed (Postgres would roll the whole group back at COMMIT),
    /// nor take the writes beside it down.
    #[cfg(feature = "solver-postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_hiding_a_failed_statement_fails_alone_on_postgres() {
        let db = Db::postgres();
        let store = db.open(Address::repeat_byte(0xaa), 31337, Address::repeat_byte(0xcc)).unwrap();
        for round in 0..5u8 {
            let writes = (0..30u8).map(|i| {
                let store = store.clone();
                async move {
                    let n = round * 30 + i + 1;
                    store
                        .write(move |tx| {
                            tx.insert_offer(&offer(n))?;
                            if i % 3 == 1 {
                                // The error is dropped: the write claims success.
                                let _ = tx.raw_pg("SELECT 1/0");
                            }
                            Ok(())
                        })
                        .await
                }
            });
            let results = futures::future::join_all(writes).await;
            for (i, r) in results.iter().enumerate() {
                assert_eq!(r.is_ok(), i % 3 != 1, "round {round} write {i}: {r:?}");
            }
        }
        let live = store.live_offers().await.unwrap();
        assert_eq!(live.len(), 100, "the 100 honest writes, and only them");
        assert!(live.iter().all(|o| (o.id[0] - 1) % 30 % 3 != 1));
        store.close();
    }

    #[cfg(feature = "solver-postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_migrates_once_under_concurrent_opens_and_refuses_a_newer_schema() {
        let db = pg::TestDb::new();
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        // Two replicas starting at once on an empty database.
        let opens: Vec<_> = (0..2)
            .map(|_| {
                let url = db.url.clone();
                std::thread::spawn(move || Store::open_postgres(&url, solver, 31337, controller))
            })
            .collect();
        let stores: Vec<Store> = opens.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        stores[0].write(|tx| tx.insert_offer(&offer(1))).await.unwrap();
        assert_eq!(stores[1].live_offers().await.unwrap().len(), 1);
        assert_eq!(stores[0].backend(), "postgres");
        assert!(matches!(stores[0].read(|_| Ok(())).await, Err(StoreError::NotSqlite)));
        for s in &stores {
            s.close();
        }
        drop(stores);
        // A schema from a newer solver.
        let url = db.url.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute("INSERT INTO schema_migrations (version) VALUES (999)").unwrap();
        })
        .join()
        .unwrap();
        let e = Store::open_postgres(&db.url, solver, 31337, controller).unwrap_err();
        assert!(e.to_string().contains("schema is version 999, newer than this solver"), "{e}");
        let e =
            Store::open_postgres("postgres://nobody@127.0.0.1:1/none", solver, 31337, controller)
                .unwrap_err();
        assert!(e.to_string().contains("scripts/setup-postgres.sh"), "{e}");
    }
}
