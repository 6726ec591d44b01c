//! The store's PostgreSQL backend (feature `solver-postgres`; design:
//! `docs/dev/postgres-solver.md`).
//!
//! The same model as SQLite: one writer thread per process owns one connection
//! and commits writes in groups, each write in its own savepoint; reads use a
//! small pool of connections on blocking threads. The client is the synchronous
//! `postgres` crate, which runs a small runtime of its own: it is only ever used
//! on the writer thread and on blocking threads, and connections are dropped on
//! a thread of their own (dropping one on an async worker would panic).
//!
//! Every group transaction takes [`LOG_KEY`] first, so that groups of several
//! processes on one database commit one at a time and `seq` (offers, events)
//! grows in commit order: a reader resuming after a seq never misses a row that
//! committed later with a smaller one.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use alloy::primitives::{Address, B256, U256};
use lilypad_core::{
    offer::OfferId,
    reputation::{self, Reputation},
    settlement::Outcome,
};
use postgres::{Client, Config, NoTls, Row, Statement, types::ToSql};
use tokio::sync::broadcast;

use super::{
    Completion, DealRecord, EventKind, NewOffer, OfferKind, OfferState, Op, Pair, Result,
    SolverEvent, StoreError, StoredEvent, StoredOffer, Tx, address, b256, int, now_secs,
    parse_record,
};

/// The advisory lock every group transaction takes first (see the module docs).
const LOG_KEY: i64 = 0x6c69_6c79_7061_6401;
/// The advisory lock migrations run under (replicas starting together).
const MIGRATE_KEY: i64 = 0x6c69_6c79_7061_6402;
/// How long a connection attempt may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The server ends a session that sits this long in an open transaction waiting for
/// its client. A replica frozen in the middle of a group (a stopped process, a
/// paused VM) would otherwise keep the log lock and its `FOR SHARE` lock on the
/// lease row, and no other replica could write or take the lease until it woke.
/// Shorter than the lease's 5 s TTL; the writer's transactions never wait on the
/// client: the statements of a group follow each other at once.
const IDLE_IN_TRANSACTION: &str = "-c idle_in_transaction_session_timeout=3000";
/// Reads and lease updates give up on a lock after 1 s (the renewer tries again a
/// second later) rather than piling up behind a frozen transaction.
const READER_LOCK_TIMEOUT: &str = "-c lock_timeout=1000";

/// `config` with the server options `extra` added to those the URL gives.
fn with_options(mut config: Config, extra: &[&str]) -> Config {
    let mut options: Vec<&str> =
        config.get_options().filter(|o| !o.trim().is_empty()).into_iter().collect();
    options.extend_from_slice(extra);
    let options = options.join(" ");
    config.options(&options);
    config
}

/// The schema, one script per version: `MIGRATIONS[i]` brings a database from
/// version `i` to `i + 1`. Never edit a released script; append one.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE offers (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id BYTEA NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    signer BYTEA NOT NULL,
    offer TEXT NOT NULL,
    signature BYTEA NOT NULL,
    inputs BYTEA,
    expiry BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    deal_id BYTEA,
    created_at BIGINT NOT NULL,
    slots TEXT,
    min_reputation DOUBLE PRECISION
);
CREATE INDEX offers_live ON offers(seq) WHERE state IN ('open', 'matching');
CREATE TABLE pairs (
    deal_id BYTEA PRIMARY KEY,
    job_id BYTEA NOT NULL,
    resource_id BYTEA NOT NULL
);
CREATE TABLE deals (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id BYTEA NOT NULL UNIQUE,
    job_creator BYTEA NOT NULL,
    provider BYTEA NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX deals_jc ON deals(job_creator);
CREATE INDEX deals_rp ON deals(provider);
CREATE TABLE nonces (
    signer BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    expiry BIGINT NOT NULL,
    PRIMARY KEY (signer, nonce)
);
CREATE INDEX nonces_expiry ON nonces(expiry);
CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    party_a BYTEA NOT NULL,
    party_b BYTEA,
    body TEXT NOT NULL
);
CREATE INDEX events_a ON events(party_a, seq);
CREATE INDEX events_b ON events(party_b, seq) WHERE party_b IS NOT NULL;
CREATE TABLE provider_deals (
    deal_id BYTEA PRIMARY KEY,
    provider BYTEA NOT NULL,
    created_at BIGINT,
    results_at BIGINT,
    challenged INTEGER NOT NULL DEFAULT 0,
    outcome INTEGER
);
CREATE INDEX provider_deals_rp ON provider_deals(provider);
",
    "
-- Version 2: the lease of the replica that matches and creates deals
-- (docs/dev/postgres-solver.md). One row; times on the database's clock.
CREATE TABLE leader (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO leader (id, holder, epoch, expires_at) VALUES (1, '', 0, '-infinity');
",
];

fn pg(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |e| StoreError::Sql { context, message: e.to_string() }
}

/// `url` with its password hidden.
pub(super) fn redact(url: &str) -> String {
    super::redact_url(url)
}

fn config(url: &str) -> Result<Config> {
    let mut config: Config = url.parse().map_err(|e: postgres::Error| StoreError::Sql {
        context: "database URL",
        message: format!("{}: {e}", redact(url)),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("lilypad-solver");
    }
    Ok(config)
}

fn connect(config: &Config, url: &str) -> Result<Client> {
    config.connect(NoTls).map_err(|e| StoreError::Sql {
        context: "connect",
        message: format!(
            "{}: {e} (for a local test database: bash scripts/setup-postgres.sh)",
            redact(url)
        ),
    })
}

/// Drops connections on a thread of their own: a client's drop blocks on its
/// runtime, which must not happen on an async worker.
fn drop_off_runtime(clients: Vec<Client>) {
    if !clients.is_empty() {
        let _ =
            std::thread::Builder::new().name("solver-db-close".into()).spawn(move || drop(clients));
    }
}

/// The read side: where to connect and the idle connections.
pub(super) struct Readers {
    url: String,
    config: Config,
    idle: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("url", &redact(&self.url)).finish_non_exhaustive()
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        let idle = self.idle.get_mut().map(std::mem::take).unwrap_or_default();
        drop_off_runtime(idle);
    }
}

impl Readers {
    /// Runs `f` on an idle connection (or a new one); call on a blocking thread.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().ok().and_then(|mut p| p.pop());
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            Some(c) => {
                drop(c);
                connect(&self.config, &self.url)?
            }
            None => connect(&self.config, &self.url)?,
        };
        let r = f(&mut client);
        match self.idle.lock() {
            Ok(mut p) if p.len() < 8 && !client.is_closed() => p.push(client),
            _ => drop(client),
        }
        r
    }
}

/// The writer's connection: the group transaction runs on it.
pub(crate) struct Writer {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// Opens the database at `url`: connects, migrates, checks that it is this
/// solver's, and starts the writer thread. Blocks (connect on the writer thread).
pub(super) fn open(
    url: &str,
    meta: [(&'static str, String); 3],
    events: broadcast::Sender<Arc<StoredEvent>>,
) -> Result<(Readers, mpsc::Sender<Op>)> {
    let config = config(url)?;
    let (ops, rx) = mpsc::channel::<Op>();
    let (ready, opened) = mpsc::sync_channel::<Result<()>>(1);
    let writer_config = with_options(config.clone(), &[IDLE_IN_TRANSACTION]);
    let config = with_options(config, &[IDLE_IN_TRANSACTION, READER_LOCK_TIMEOUT]);
    let writer_url = url.to_owned();
    std::thread::Builder::new()
        .name("solver-db-writer".into())
        .spawn(move || {
            let client = match connect(&writer_config, &writer_url)
                .and_then(|mut c| setup(&mut c, &writer_url, &meta).map(|()| c))
            {
                Ok(c) => {
                    let _ = ready.send(Ok(()));
                    c
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let mut writer = Writer { client, statements: HashMap::new() };
            writer_loop(&mut writer, &writer_config, &writer_url, &rx, &events);
            drop(writer);
        })
        .map_err(|e| StoreError::Sql { context: "writer thread", message: e.to_string() })?;
    opened.recv().map_err(|_| StoreError::Closed)??;
    Ok((Readers { url: url.to_owned(), config, idle: Mutex::new(Vec::new()) }, ops))
}

/// Migrates and checks the `meta` identity, in one transaction.
fn setup(c: &mut Client, url: &str, meta: &[(&'static str, String); 3]) -> Result<()> {
    let mut t = c.transaction().map_err(pg("begin"))?;
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_KEY]).map_err(pg("migrate"))?;
    t.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(pg("migrate"))?;
    let version: i32 = t
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
        .map_err(pg("migrate"))?
        .get(0);
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if version > known {
        return Err(StoreError::Sql {
            context: "migrate",
            message: format!(
                "{}: the database schema is version {version}, newer than this solver's \
                 ({known}): upgrade the solver",
                redact(url)
            ),
        });
    }
    for (i, script) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
        t.batch_execute(script).map_err(pg("migrate"))?;
        t.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&v])
            .map_err(pg("migrate"))?;
    }
    for (what, given) in meta {
        t.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[what, given],
        )
        .map_err(pg("meta"))?;
        let stored: String = t
            .query_one("SELECT value FROM meta WHERE key = $1", &[what])
            .map_err(pg("meta"))?
            .get(0);
        if &stored != given {
            return Err(StoreError::ForeignDatabase {
                url: redact(url),
                what,
                stored,
                given: given.clone(),
            });
        }
    }
    t.commit().map_err(pg("commit"))
}

fn writer_loop(
    w: &mut Writer,
    config: &Config,
    url: &str,
    rx: &mpsc::Receiver<Op>,
    publish: &broadcast::Sender<Arc<StoredEvent>>,
) {
    let mut batch: Vec<Op> = Vec::with_capacity(super::MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < super::MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if w.client.is_closed() {
            // The server restarted or the connection broke: one new try per group.
            match connect(config, url) {
                Ok(c) => {
                    let old = std::mem::replace(&mut w.client, c);
                    drop(old);
                    w.statements.clear();
                }
                Err(e) => tracing::error!("cannot reconnect to the database: {e}"),
            }
        }
        // One round trip: the transaction, the log lock (see the module docs) and the
        // first write's savepoint.
        let begun = w
            .client
            .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({LOG_KEY}); SAVEPOINT op"))
            .map_err(pg("begin"));
        if let Err(e) = begun {
            tracing::error!("cannot begin a write transaction: {e}");
            let _ = w.client.batch_execute("ROLLBACK");
            for op in batch.drain(..) {
                op(None).1(Err(e.clone()));
            }
            continue;
        }
        let now = now_secs();
        let mut events = Vec::new();
        // Each completion, with the error that replaces the commit's result for it.
        let mut done: Vec<(Completion, Option<StoreError>)> = Vec::with_capacity(batch.len());
        // Whether the transaction may hold a failed statement that no savepoint undid:
        // then nothing of the group may be reported committed (a COMMIT of an aborted
        // transaction rolls back without an error).
        let mut poisoned = false;
        for op in batch.drain(..) {
            // Each write in its own savepoint, so that a failing one undoes only itself
            // (in Postgres a failed statement poisons the transaction until then). The
            // savepoint `op` is in place here: set by BEGIN, by the previous write's
            // release, or kept by its rollback.
            let mut own = Vec::new();
            let (ok, completion) = op(Some(&mut Tx::postgres(w, now, &mut own)));
            let mut own_error = None;
            if ok {
                // A write that swallowed a failed statement fails here: RELEASE is
                // refused in an aborted transaction.
                match w.client.batch_execute("RELEASE SAVEPOINT op; SAVEPOINT op") {
                    Ok(()) => events.append(&mut own),
                    Err(e) => {
                        own_error = Some(pg("release")(e));
                        poisoned |= w.client.batch_execute("ROLLBACK TO SAVEPOINT op").is_err();
                    }
                }
            } else {
                // Back to before this write; the savepoint stays for the next one.
                poisoned |= w.client.batch_execute("ROLLBACK TO SAVEPOINT op").is_err();
            }
            done.push((completion, own_error));
        }
        let committed = if poisoned {
            let _ = w.client.batch_execute("ROLLBACK");
            Err(StoreError::Sql {
                context: "commit",
                message: "a write failed and could not be undone alone: the group was rolled back"
                    .into(),
            })
        } else {
            w.client.batch_execute("COMMIT").map_err(pg("commit"))
        };
        if committed.is_err() {
            let _ = w.client.batch_execute("ROLLBACK");
            events.clear();
        }
        for e in events {
            let _ = publish.send(Arc::new(e));
        }
        for (d, own_error) in done {
            d(match own_error {
                Some(e) => Err(e),
                None => committed.clone(),
            });
        }
    }
}

// ---------------------------------------------------------------- rows

const OFFER_COLS: &str =
    "seq, id, kind, signer, offer, signature, state, reason, deal_id, slots, min_reputation";

fn offer_row(r: &Row) -> Result<StoredOffer> {
    let get = |e: postgres::Error| StoreError::Sql { context: "offer row", message: e.to_string() };
    let state: String = r.try_get(6).map_err(get)?;
    Ok(StoredOffer {
        seq: r.try_get::<_, i64>(0).map_err(get)? as u64,
        id: b256(r.try_get::<_, &[u8]>(1).map_err(get)?),
        kind: if r.try_get::<_, i32>(2).map_err(get)? == 0 {
            OfferKind::Job
        } else {
            OfferKind::Resource
        },
        signer: address(r.try_get::<_, &[u8]>(3).map_err(get)?),
        offer_json: r.try_get(4).map_err(get)?,
        signature: r.try_get(5).map_err(get)?,
        state: OfferState::parse(&state).unwrap_or(OfferState::Failed),
        reason: r.try_get(7).map_err(get)?,
        deal_id: r.try_get::<_, Option<&[u8]>>(8).map_err(get)?.map(b256),
        slots: r
            .try_get::<_, Option<String>>(9)
            .map_err(get)?
            .map(|j| serde_json::from_str(&j).unwrap_or_default())
            .unwrap_or_default(),
        min_reputation: r.try_get(10).map_err(get)?,
    })
}

/// One offer, on any connection.
fn offer_by_id(c: &mut Client, id: OfferId) -> Result<Option<StoredOffer>> {
    c.query_opt(&format!("SELECT {OFFER_COLS} FROM offers WHERE id = $1"), &[&id.as_slice()])
        .map_err(pg("offer"))?
        .as_ref()
        .map(offer_row)
        .transpose()
}

/// One deal, on any connection.
fn deal_by_id(c: &mut Client, id: B256) -> Result<Option<DealRecord>> {
    let row = c
        .query_opt("SELECT record FROM deals WHERE id = $1", &[&id.as_slice()])
        .map_err(pg("deal"))?;
    row.map(|r| parse_record(&r.get::<_, String>(0))).transpose()
}

// ---------------------------------------------------------------- reads

pub(super) fn live_offers(c: &mut Client) -> Result<Vec<StoredOffer>> {
    c.query(
        &format!(
            "SELECT {OFFER_COLS} FROM offers WHERE state IN ('open', 'matching') ORDER BY seq"
        ),
        &[],
    )
    .map_err(pg("live offers"))?
    .iter()
    .map(offer_row)
    .collect()
}

pub(super) fn offers_after(c: &mut Client, after: u64, limit: u32) -> Result<Vec<StoredOffer>> {
    c.query(
        &format!("SELECT {OFFER_COLS} FROM offers WHERE seq > $1 ORDER BY seq LIMIT $2"),
        &[&int(after), &i64::from(limit)],
    )
    .map_err(pg("offers after"))?
    .iter()
    .map(offer_row)
    .collect()
}

pub(super) fn heads(c: &mut Client) -> Result<(u64, u64)> {
    let r = c
        .query_one(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM offers), \
                    (SELECT COALESCE(MAX(seq), 0) FROM events)",
            &[],
        )
        .map_err(pg("heads"))?;
    Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
}

pub(super) fn offer(c: &mut Client, id: OfferId) -> Result<Option<StoredOffer>> {
    offer_by_id(c, id)
}

pub(super) fn inputs(c: &mut Client, id: OfferId) -> Result<Option<Vec<u8>>> {
    Ok(c.query_opt("SELECT inputs FROM offers WHERE id = $1", &[&id.as_slice()])
        .map_err(pg("inputs"))?
        .and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
}

pub(super) fn pairs(c: &mut Client) -> Result<Vec<Pair>> {
    Ok(c.query("SELECT deal_id, job_id, resource_id FROM pairs", &[])
        .map_err(pg("pairs"))?
        .iter()
        .map(|r| Pair { deal_id: b256(r.get(0)), job: b256(r.get(1)), resource: b256(r.get(2)) })
        .collect())
}

pub(super) fn deal(c: &mut Client, id: B256) -> Result<Option<DealRecord>> {
    deal_by_id(c, id)
}

pub(super) fn deals_of(c: &mut Client, who: Address, limit: u32) -> Result<Vec<DealRecord>> {
    c.query(
        "SELECT record FROM deals WHERE job_creator = $1 OR provider = $1 \
         ORDER BY seq DESC LIMIT $2",
        &[&who.as_slice(), &i64::from(limit)],
    )
    .map_err(pg("deals"))?
    .iter()
    .map(|r| parse_record(r.get(0)))
    .collect()
}

pub(super) fn events_after(
    c: &mut Client,
    who: Address,
    after: u64,
    limit: u32,
) -> Result<Vec<SolverEvent>> {
    c.query(
        "SELECT seq, at, body FROM events WHERE seq > $2 AND (party_a = $1 OR party_b = $1) \
         ORDER BY seq LIMIT $3",
        &[&who.as_slice(), &int(after), &i64::from(limit)],
    )
    .map_err(pg("events"))?
    .iter()
    .map(|r| {
        let kind: EventKind = serde_json::from_str(r.get(2))
            .map_err(|e| StoreError::Sql { context: "event body", message: e.to_string() })?;
        Ok(SolverEvent { seq: r.get::<_, i64>(0) as u64, at: r.get::<_, i64>(1) as u64, kind })
    })
    .collect()
}

pub(super) fn meta(c: &mut Client, key: &str) -> Result<Option<String>> {
    Ok(c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .map_err(pg("meta"))?
        .map(|r| r.get(0)))
}

pub(super) fn reputations(
    c: &mut Client,
    providers: Option<Vec<Address>>,
) -> Result<BTreeMap<Address, Reputation>> {
    let cols = "SELECT provider, created_at, results_at, challenged, outcome FROM provider_deals";
    // One query per listed provider, as the SQLite side does.
    let rows = match providers {
        None => c.query(cols, &[]).map_err(pg("reputations"))?,
        Some(list) => {
            let st =
                c.prepare(&format!("{cols} WHERE provider = $1")).map_err(pg("reputations"))?;
            let mut rows = Vec::new();
            for p in list {
                rows.extend(c.query(&st, &[&p.as_slice()]).map_err(pg("reputations"))?);
            }
            rows
        }
    };
    let mut deals: BTreeMap<Address, Vec<reputation::DealRecord>> = BTreeMap::new();
    for r in &rows {
        let outcome = r
            .get::<_, Option<i32>>(4)
            .and_then(|o| usize::try_from(o).ok())
            .and_then(|o| Outcome::ALL.get(o).copied());
        deals.entry(address(r.get(0))).or_default().push(reputation::DealRecord {
            created_at: r.get::<_, Option<i64>>(1).unwrap_or(0) as u64,
            results_at: r.get::<_, Option<i64>>(2).map(|t| t as u64),
            challenged: r.get::<_, i32>(3) != 0,
            outcome,
        });
    }
    Ok(deals.into_iter().map(|(p, d)| (p, reputation::reputation(&d))).collect())
}

// ---------------------------------------------------------------- lease

/// Takes the lease for `holder` (or renews it) for `ttl`, if it is free, expired
/// or already `holder`'s; the epoch grows by one at each change of holder.
pub(super) fn take_lease(
    c: &mut Client,
    holder: &str,
    ttl: Duration,
) -> Result<Option<super::Lease>> {
    let row = c
        .query_opt(
            "UPDATE leader SET \
                 epoch = CASE WHEN holder = $1 THEN epoch ELSE epoch + 1 END, \
                 holder = $1, \
                 expires_at = clock_timestamp() + make_interval(secs => $2) \
             WHERE id = 1 AND (holder = $1 OR expires_at < clock_timestamp()) \
             RETURNING epoch",
            &[&holder, &ttl.as_secs_f64()],
        )
        .map_err(pg("lease"))?;
    Ok(row.map(|r| super::Lease { epoch: r.get::<_, i64>(0) as u64, ttl }))
}

/// Gives the lease up now (a replica shutting down), if `holder` has it.
pub(super) fn release_lease(c: &mut Client, holder: &str) -> Result<bool> {
    let n = c
        .execute(
            "UPDATE leader SET expires_at = '-infinity' WHERE id = 1 AND holder = $1",
            &[&holder],
        )
        .map_err(pg("lease"))?;
    Ok(n > 0)
}

/// Who holds an unexpired lease.
pub(super) fn leader(c: &mut Client) -> Result<Option<super::Leader>> {
    let row = c
        .query_opt(
            "SELECT holder, epoch, \
                 (EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000)::BIGINT \
             FROM leader WHERE id = 1 AND expires_at > clock_timestamp()",
            &[],
        )
        .map_err(pg("lease"))?;
    Ok(row.map(|r| super::Leader {
        holder: r.get(0),
        epoch: r.get::<_, i64>(1) as u64,
        expires_in: Duration::from_millis(r.get::<_, i64>(2).max(0) as u64),
    }))
}

// ---------------------------------------------------------------- writes

impl Writer {
    /// A prepared statement, prepared once per connection.
    fn st(&mut self, sql: &'static str, context: &'static str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(pg(context))?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn exec(
        &mut self,
        sql: &'static str,
        context: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        let st = self.st(sql, context)?;
        self.client.execute(&st, params).map_err(pg(context))
    }

    fn opt(
        &mut self,
        sql: &'static str,
        context: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let st = self.st(sql, context)?;
        self.client.query_opt(&st, params).map_err(pg(context))
    }

    pub(super) fn offer(&mut self, id: OfferId) -> Result<Option<StoredOffer>> {
        offer_by_id(&mut self.client, id)
    }

    /// Runs `sql` as it is (tests: a statement that fails).
    #[cfg(test)]
    pub(super) fn raw(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(pg("raw"))
    }

    /// Whether `holder` holds an unexpired lease of `epoch`; the row stays locked
    /// (shared) until the group commits, so no takeover happens in between.
    pub(super) fn holds_lease(&mut self, holder: &str, epoch: u64) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM leader WHERE id = 1 AND holder = $1 AND epoch = $2 \
                 AND expires_at > clock_timestamp() FOR SHARE",
                "lease",
                &[&holder, &int(epoch)],
            )?
            .is_some())
    }

    pub(super) fn deal(&mut self, id: B256) -> Result<Option<DealRecord>> {
        deal_by_id(&mut self.client, id)
    }

    /// Appends an event; returns its seq.
    pub(super) fn event(
        &mut self,
        at: u64,
        a: Address,
        b: Option<Address>,
        body: &str,
    ) -> Result<u64> {
        let row = self.opt(
            "INSERT INTO events (at, party_a, party_b, body) VALUES ($1, $2, $3, $4) RETURNING seq",
            "event",
            &[&int(at), &a.as_slice(), &b.as_ref().map(|b| b.as_slice()), &body],
        )?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    /// Remembers a nonce; whether it was new.
    pub(super) fn use_nonce(&mut self, signer: Address, nonce: U256, expiry: u64) -> Result<bool> {
        let n = self.exec(
            "INSERT INTO nonces (signer, nonce, expiry) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            "nonce",
            &[&signer.as_slice(), &&nonce.to_be_bytes::<32>()[..], &int(expiry)],
        )?;
        Ok(n > 0)
    }

    /// Stores a new offer; whether it was new.
    pub(super) fn insert_offer(
        &mut self,
        o: &NewOffer,
        now: u64,
        slots: Option<&str>,
    ) -> Result<Option<u64>> {
        let kind: i32 = match o.kind {
            OfferKind::Job => 0,
            OfferKind::Resource => 1,
        };
        let row = self.opt(
            "INSERT INTO offers (id, kind, signer, offer, signature, inputs, expiry, \
             state, created_at, slots, min_reputation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10) ON CONFLICT DO NOTHING \
             RETURNING seq",
            "insert offer",
            &[
                &o.id.as_slice(),
                &kind,
                &o.signer.as_slice(),
                &o.offer_json,
                &o.signature,
                &o.inputs,
                &int(o.expiry),
                &int(now),
                &slots,
                &o.min_reputation,
            ],
        )?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    pub(super) fn set_offer(
        &mut self,
        id: OfferId,
        state: OfferState,
        reason: Option<&str>,
        deal: Option<B256>,
    ) -> Result<Option<Address>> {
        Ok(self
            .opt(
                "UPDATE offers SET state = $2, reason = $3, deal_id = $4 WHERE id = $1 RETURNING signer",
                "update offer",
                &[&id.as_slice(), &state.as_str(), &reason, &deal.as_ref().map(|d| d.as_slice())],
            )?
            .map(|r| address(r.get(0))))
    }

    pub(super) fn pair(&mut self, p: Pair) -> Result<()> {
        self.exec(
            "INSERT INTO pairs (deal_id, job_id, resource_id) VALUES ($1, $2, $3) \
             ON CONFLICT (deal_id) DO UPDATE SET job_id = EXCLUDED.job_id, \
             resource_id = EXCLUDED.resource_id",
            "pair",
            &[&p.deal_id.as_slice(), &p.job.as_slice(), &p.resource.as_slice()],
        )
        .map(drop)
    }

    pub(super) fn unpair(&mut self, deal_id: B256) -> Result<()> {
        self.exec("DELETE FROM pairs WHERE deal_id = $1", "unpair", &[&deal_id.as_slice()])
            .map(drop)
    }

    /// Inserts a deal; whether it was new.
    pub(super) fn insert_deal(
        &mut self,
        id: B256,
        job_creator: Address,
        provider: Address,
        state: &str,
        json: &str,
    ) -> Result<bool> {
        let n = self.exec(
            "INSERT INTO deals (id, job_creator, provider, state, record) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            "insert deal",
            &[&id.as_slice(), &job_creator.as_slice(), &provider.as_slice(), &state, &json],
        )?;
        Ok(n > 0)
    }

    pub(super) fn update_deal(&mut self, id: B256, state: &str, json: &str) -> Result<()> {
        self.exec(
            "UPDATE deals SET state = $2, record = $3 WHERE id = $1",
            "update deal",
            &[&id.as_slice(), &state, &json],
        )
        .map(drop)
    }

    pub(super) fn reputation_created(
        &mut self,
        deal: B256,
        provider: Address,
        at: Option<u64>,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO provider_deals (deal_id, provider, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            "reputation",
            &[&deal.as_slice(), &provider.as_slice(), &at.map(int)],
        )
        .map(drop)
    }

    /// `column` is one of the three the SQLite side names (never user input).
    pub(super) fn reputation_update(
        &mut self,
        column: Column,
        deal: B256,
        value: Option<i64>,
    ) -> Result<Option<Address>> {
        let row = match column {
            Column::ResultsAt => self.opt(
                "UPDATE provider_deals SET results_at = $2 WHERE deal_id = $1 RETURNING provider",
                "reputation",
                &[&deal.as_slice(), &value],
            )?,
            Column::Challenged => self.opt(
                "UPDATE provider_deals SET challenged = $2 WHERE deal_id = $1 RETURNING provider",
                "reputation",
                &[&deal.as_slice(), &value.map(|v| v as i32)],
            )?,
            Column::Outcome => self.opt(
                "UPDATE provider_deals SET outcome = $2 WHERE deal_id = $1 RETURNING provider",
                "reputation",
                &[&deal.as_slice(), &value.map(|v| v as i32)],
            )?,
        };
        Ok(row.map(|r| address(r.get(0))))
    }

    pub(super) fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            "meta",
            &[&key, &value],
        )
        .map(drop)
    }

    pub(super) fn prune_nonces(&mut self, before: u64) -> Result<usize> {
        let n =
            self.exec("DELETE FROM nonces WHERE expiry < $1", "prune nonces", &[&int(before)])?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// The columns of `provider_deals` a reputation update sets.
#[derive(Debug, Clone, Copy)]
pub(super) enum Column {
    ResultsAt,
    Challenged,
    Outcome,
}

/// A fresh database for one test on the server at `LILYPAD_TEST_POSTGRES_URL`,
/// dropped at the end.
#[cfg(test)]
pub(super) struct TestDb {
    admin_url: String,
    name: String,
    /// Its URL.
    pub(super) url: String,
}

#[cfg(test)]
impl TestDb {
    /// The variable naming the test server.
    pub(super) const VAR: &'static str = "LILYPAD_TEST_POSTGRES_URL";

    /// Creates the database. Panics, naming the script that starts a server,
    /// when the variable is missing: these tests are never skipped silently.
    pub(super) fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let admin_url = std::env::var(Self::VAR).unwrap_or_else(|_| {
            panic!(
                "{} is not set: the solver store's Postgres tests need a PostgreSQL server. \
                 From the repository root run `export {}=$(bash scripts/setup-postgres.sh)` \
                 (a throwaway cluster under target/postgres), then run the tests again",
                Self::VAR,
                Self::VAR
            )
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "lilypad_t_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        // The sync client must not run on an async worker: a thread of its own.
        let (a, n) = (admin_url.clone(), name.clone());
        std::thread::spawn(move || {
            let mut c = connect(&config(&a)?, &a)?;
            c.batch_execute(&format!("CREATE DATABASE {n}")).map_err(pg("create database"))
        })
        .join()
        .expect("create-database thread")
        .unwrap_or_else(|e| panic!("{e} (is the server of {} up?)", Self::VAR));
        let url = with_dbname(&admin_url, &name);
        Self { admin_url, name, url }
    }
}

#[cfg(test)]
impl Drop for TestDb {
    fn drop(&mut self) {
        let (a, n) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || -> Result<()> {
            let mut c = connect(&config(&a)?, &a)?;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                .map_err(pg("drop database"))
        })
        .join();
    }
}

/// `url` naming database `name` instead of its own.
#[cfg(test)]
fn with_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    format!("{}/{name}{query}", &base[..host_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hide_passwords_and_take_another_database() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?sslmode=disable"),
            "postgres://u:***@h:5432/db?sslmode=disable"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(with_dbname("postgres://u@h:1/db?x=1", "t"), "postgres://u@h:1/t?x=1");
        assert_eq!(with_dbname("postgres://u@h:1", "t"), "postgres://u@h:1/t");
    }
}
