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
    /// The writer thread is gone (the service is shutting down).
    #[error("the database writer stopped")]
    Closed,
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::Sql { context, message: e.to_string() }
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
    conn: &'a Connection,
    now: u64,
    events: &'a mut Vec<StoredEvent>,
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
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Op>>>,
    readers: Mutex<Vec<Connection>>,
    events: broadcast::Sender<Arc<StoredEvent>>,
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
                path: path.to_owned(),
                writer: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                events,
            }),
        })
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
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(sql("open reader"))?;
                    c.busy_timeout(std::time::Duration::from_secs(10))
                        .map_err(sql("open reader"))?;
                    c
                }
            };
            let r = f(&conn);
            if let Ok(mut p) = inner.readers.lock()
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

    /// One offer.
    pub async fn offer(&self, id: OfferId) -> Result<Option<StoredOffer>> {
        self.read(move |c| offer_by_id(c, id)).await
    }

    /// The inputs of a job offer.
    pub async fn inputs(&self, id: OfferId) -> Result<Option<Vec<u8>>> {
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
        self.read(move |c| deal_by_id(c, id)).await
    }

    /// The deals `who` is a party of, newest first, at most `limit`.
    pub async fn deals_of(&self, who: Address, limit: u32) -> Result<Vec<DealRecord>> {
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

impl Tx<'_> {
    /// The connection, inside the group transaction.
    pub fn conn(&self) -> &Connection {
        self.conn
    }

    /// The time of the group.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Appends an event visible to `a` (and `b`).
    pub fn event(&mut self, kind: EventKind, a: Address, b: Option<Address>) -> Result<()> {
        let body = serde_json::to_string(&kind)
            .map_err(|e| StoreError::Sql { context: "event body", message: e.to_string() })?;
        self.conn
            .prepare_cached(
                "INSERT INTO events (at, party_a, party_b, body) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    int(self.now),
                    a.as_slice(),
                    b.as_ref().map(|b| b.as_slice()),
                    body
                ])
            })
            .map_err(sql("event"))?;
        let seq = self.conn.last_insert_rowid() as u64;
        self.events
            .push(StoredEvent { parties: (a, b), event: SolverEvent { seq, at: self.now, kind } });
        Ok(())
    }

    /// Remembers a request nonce until `expiry`; [`StoreError::Replay`] if it is known.
    pub fn use_nonce(&mut self, signer: Address, nonce: U256, expiry: u64) -> Result<()> {
        let n = self
            .conn
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

    /// Stores a new offer (state `open`) and its `offer_accepted` event.
    pub fn insert_offer(&mut self, o: &NewOffer) -> Result<()> {
        let n = self
            .conn
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
            let state = offer_by_id(self.conn, o.id)?.map_or(OfferState::Open, |s| s.state);
            return Err(StoreError::Duplicate { id: o.id, state });
        }
        self.event(EventKind::OfferAccepted { offer_id: o.id, kind: o.kind }, o.signer, None)
    }

    fn set_offer(
        &self,
        id: OfferId,
        state: OfferState,
        reason: Option<&str>,
        deal: Option<B256>,
    ) -> Result<Option<Address>> {
        self.conn
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

    /// Records a matched pair: both offers go to `matching`.
    pub fn pair(&mut self, p: Pair) -> Result<()> {
        self.set_offer(p.job, OfferState::Matching, None, Some(p.deal_id))?;
        self.set_offer(p.resource, OfferState::Matching, None, Some(p.deal_id))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO pairs (deal_id, job_id, resource_id) VALUES (?1, ?2, ?3)",
                params![p.deal_id.as_slice(), p.job.as_slice(), p.resource.as_slice()],
            )
            .map_err(sql("pair"))?;
        Ok(())
    }

    /// Drops a pair (its deal was created, or it failed).
    pub fn unpair(&mut self, deal_id: B256) -> Result<()> {
        self.conn
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
        let n = self
            .conn
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
            .map_err(sql("insert deal"))?;
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

    /// Applies `change` to a stored deal and emits `event` to its parties; `None` if the
    /// deal is not ours.
    pub fn update_deal(
        &mut self,
        id: B256,
        change: impl FnOnce(&mut DealRecord),
        event: EventKind,
    ) -> Result<Option<DealStatus>> {
        let Some(mut record) = deal_by_id(self.conn, id)? else { return Ok(None) };
        change(&mut record);
        let json = serde_json::to_string(&record)
            .map_err(|e| StoreError::Sql { context: "deal record", message: e.to_string() })?;
        self.conn
            .execute(
                "UPDATE deals SET state = ?2, record = ?3 WHERE id = ?1",
                params![id.as_slice(), record.status.kind().as_str(), json],
            )
            .map_err(sql("update deal"))?;
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
        self.conn
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
        self.reputation_update("results_at = ?2", deal, at.map(int))
    }

    /// Records a challenge of a deal's results or failure report; returns its provider.
    pub fn reputation_challenged(&mut self, deal: B256) -> Result<Option<Address>> {
        self.reputation_update("challenged = ?2", deal, Some(1))
    }

    /// Records how a deal ended; returns its provider.
    pub fn reputation_finished(&mut self, deal: B256, outcome: Outcome) -> Result<Option<Address>> {
        let code = Outcome::ALL.iter().position(|o| *o == outcome).map(|i| i as i64);
        self.reputation_update("outcome = ?2", deal, code)
    }

    fn reputation_update(
        &self,
        set: &'static str,
        deal: B256,
        value: Option<i64>,
    ) -> Result<Option<Address>> {
        self.conn
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
        self.conn
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value])
            .map_err(sql("meta"))?;
        Ok(())
    }

    /// Forgets nonces whose request expired before `before` (they can no longer be replayed:
    /// an expired request is refused anyway).
    pub fn prune_nonces(&mut self, before: u64) -> Result<usize> {
        self.conn
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
            let (ok, completion) = op(Some(&mut Tx { conn, now, events: &mut own }));
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_isolates_failures_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let store = Store::open(&path, solver, 31337, controller).unwrap();
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
                        if i < 100 { tx.insert_offer(&o) } else { Ok(()) }
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

        let store = Store::open(&path, solver, 31337, controller).unwrap();
        assert_eq!(store.live_offers().await.unwrap().len(), 90);
        let replay =
            store.write(|tx| tx.use_nonce(Address::repeat_byte(1), U256::from(5), 100)).await;
        assert!(matches!(replay, Err(StoreError::Replay { .. })));
        assert_eq!(store.events_after(Address::repeat_byte(1), 0, 1000).await.unwrap().len(), 1);
        assert_eq!(store.write(|tx| tx.prune_nonces(101)).await.unwrap(), 180);
        store.close();
        drop(store);

        let e = Store::open(&path, Address::repeat_byte(0xbb), 31337, controller).unwrap_err();
        assert!(e.to_string().contains("belongs to solver"), "{e}");
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reputation_rows_survive_reopen_and_score_each_provider() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (solver, controller) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xcc));
        let (good, bad) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let deal = B256::repeat_byte;
        let store = Store::open(&path, solver, 31337, controller).unwrap();
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
        let store = Store::open(&path, solver, 31337, controller).unwrap();
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
}
