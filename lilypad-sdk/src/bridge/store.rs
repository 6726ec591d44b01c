//! The bridge's durable state: one SQLite database (WAL) holding the block cursor and a
//! row per job with its state, lease, deal and results. Every change is one transaction;
//! claims are `BEGIN IMMEDIATE`, so two instances sharing the file never claim the same job.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::primitives::{Address, B256, U256};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{BridgeError, JobRecord, JobState};
use crate::chain::{JobStatus, RequestedJob};

/// How long a statement waits for another instance's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,   -- 0x + 64 hex digits: text order is numeric order
    client      TEXT NOT NULL,
    module      TEXT NOT NULL,
    inputs      TEXT NOT NULL,      -- JSON [[key, value], ...]
    payment     TEXT NOT NULL,      -- decimal base units
    deadline    INTEGER NOT NULL,   -- chain time, unix seconds
    block       INTEGER NOT NULL,   -- block of the JobRequested event
    state       TEXT NOT NULL,
    owner       TEXT,               -- instance holding the lease, NULL when free
    lease_until INTEGER NOT NULL DEFAULT 0,  -- wall clock, unix milliseconds
    not_before  INTEGER NOT NULL DEFAULT 0,  -- wall clock, unix milliseconds (backoff)
    attempts    INTEGER NOT NULL DEFAULT 0,  -- runner invocations
    tries       INTEGER NOT NULL DEFAULT 0,  -- failed steps, for the backoff
    deal_id     TEXT,
    results_cid TEXT,
    spent       TEXT,
    reason      TEXT,
    tx          TEXT,
    last_error  TEXT,
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (state, not_before);
";

const COLUMNS: &str = "job_id, client, module, inputs, payment, deadline, block, state, owner, \
    lease_until, not_before, attempts, tries, deal_id, results_cid, spent, reason, tx, last_error";

/// A handle on the database: one connection, used from blocking threads.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

/// Milliseconds since the Unix epoch (wall clock, for leases and backoff).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn id_key(id: U256) -> String {
    format!("{id:#066x}")
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Requested => "requested",
        JobState::Claimed => "claimed",
        JobState::Running => "running",
        JobState::Fulfilling => "fulfilling",
        JobState::Fulfilled => "fulfilled",
        JobState::Cancelling => "cancelling",
        JobState::Cancelled => "cancelled",
    }
}

fn parse_state(s: &str) -> Option<JobState> {
    Some(match s {
        "requested" => JobState::Requested,
        "claimed" => JobState::Claimed,
        "running" => JobState::Running,
        "fulfilling" => JobState::Fulfilling,
        "fulfilled" => JobState::Fulfilled,
        "cancelling" => JobState::Cancelling,
        "cancelled" => JobState::Cancelled,
        _ => return None,
    })
}

/// A value stored as text that does not parse: the file was edited or is not ours.
fn corrupt(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("not a valid {what}: {value:?}").into(),
    )
}

fn parse_col<T: std::str::FromStr>(row: &Row<'_>, i: usize, what: &str) -> rusqlite::Result<T> {
    let s: String = row.get(i)?;
    s.parse().map_err(|_| corrupt(i, what, &s))
}

fn parse_opt<T: std::str::FromStr>(
    row: &Row<'_>,
    i: usize,
    what: &str,
) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| s.parse().map_err(|_| corrupt(i, what, &s))).transpose()
}

fn u64_col(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
}

fn record(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let inputs: String = row.get(3)?;
    let state: String = row.get(7)?;
    Ok(JobRecord {
        job: RequestedJob {
            job_id: parse_col(row, 0, "job id")?,
            client: parse_col::<Address>(row, 1, "address")?,
            module: row.get(2)?,
            inputs: serde_json::from_str(&inputs)
                .map_err(|_| corrupt(3, "inputs list", &inputs))?,
            payment: parse_col(row, 4, "amount")?,
            deadline: u64_col(row, 5)?,
        },
        block: u64_col(row, 6)?,
        state: parse_state(&state).ok_or_else(|| corrupt(7, "job state", &state))?,
        owner: row.get(8)?,
        lease_until_ms: u64_col(row, 9)?,
        not_before_ms: u64_col(row, 10)?,
        attempts: u32::try_from(row.get::<_, i64>(11)?).unwrap_or(u32::MAX),
        tries: u32::try_from(row.get::<_, i64>(12)?).unwrap_or(u32::MAX),
        deal_id: parse_opt::<B256>(row, 13, "deal id")?,
        results_cid: row.get(14)?,
        spent: parse_opt(row, 15, "amount")?,
        reason: row.get(16)?,
        tx: parse_opt::<B256>(row, 17, "transaction hash")?,
        last_error: row.get(18)?,
    })
}

/// A final state seen in an event (`JobFulfilled`, `JobCancelled`).
#[derive(Debug, Clone)]
pub(crate) struct SeenFinal {
    pub(crate) job_id: U256,
    pub(crate) state: JobState,
    pub(crate) tx: Option<B256>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` for the job manager `manager` on
    /// chain `chain_id`; a database made for another chain or manager is refused.
    pub(crate) fn open(path: &Path, chain_id: u64, manager: Address) -> Result<Self, BridgeError> {
        let db_err = |cause| BridgeError::Db { path: path.to_owned(), cause };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|cause| BridgeError::Io { path: dir.to_owned(), cause })?;
        }
        let mut conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        // WAL: readers never block the writer, and a commit survives a process crash.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(BridgeError::Db {
                path: path.to_owned(),
                cause: rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode stays {mode:?} (WAL needs a local file system)"
                )),
            });
        }
        // FULL: a transaction is on disk when COMMIT returns, also across a power loss.
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        tx.execute_batch(SCHEMA).map_err(db_err)?;
        for (key, want) in
            [("chain_id", chain_id.to_string()), ("job_manager", manager.to_string())]
        {
            let have: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            match have {
                None => {
                    tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [key, &want])
                        .map_err(db_err)?;
                }
                Some(have) if have == want => {}
                Some(have) => {
                    return Err(BridgeError::WrongNetwork {
                        path: path.to_owned(),
                        field: key,
                        stored: have,
                        network: want,
                    });
                }
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), path: Arc::new(path.to_owned()) })
    }

    /// Runs `f` on the connection in a blocking thread.
    async fn call<T, F>(&self, f: F) -> Result<T, BridgeError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        let joined = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the connection usable: SQLite rolls
            // back an unfinished transaction when the next one begins.
            let mut guard = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(r) => r.map_err(|cause| BridgeError::Db { path: (*path).clone(), cause }),
            Err(e) => Err(BridgeError::Internal(format!("database thread failed: {e}"))),
        }
    }

    /// The next block to scan, if a scan ever recorded one.
    pub(crate) async fn cursor(&self) -> Result<Option<u64>, BridgeError> {
        self.call(|c| {
            let v: Option<String> = c
                .query_row("SELECT value FROM meta WHERE key = 'next_block'", [], |r| r.get(0))
                .optional()?;
            Ok(v.and_then(|v| v.parse().ok()))
        })
        .await
    }

    /// Records one scanned block range in one transaction: new jobs (ignored if known), final
    /// states seen in events, and the cursor (which only moves forward).
    pub(crate) async fn record_scan(
        &self,
        jobs: Vec<(RequestedJob, u64)>,
        finals: Vec<SeenFinal>,
        next_block: u64,
    ) -> Result<usize, BridgeError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = to_i64(now_ms());
            let mut inserted = 0;
            for (j, block) in &jobs {
                let inputs = serde_json::to_string(&j.inputs)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                inserted += tx.execute(
                    "INSERT OR IGNORE INTO jobs (job_id, client, module, inputs, payment, deadline, \
                     block, state, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'requested', ?8)",
                    params![
                        id_key(j.job_id),
                        j.client.to_string(),
                        j.module,
                        inputs,
                        j.payment.to_string(),
                        to_i64(j.deadline),
                        to_i64(*block),
                        now
                    ],
                )?;
            }
            for f in &finals {
                tx.execute(
                    "UPDATE jobs SET state = ?2, owner = NULL, tx = COALESCE(?3, tx), updated_ms = ?4 \
                     WHERE job_id = ?1 AND state NOT IN ('fulfilled', 'cancelled')",
                    params![
                        id_key(f.job_id),
                        state_name(f.state),
                        f.tx.map(|t| t.to_string()),
                        now
                    ],
                )?;
            }
            let old: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'next_block'", [], |r| r.get(0))
                .optional()?;
            let next = old.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0).max(next_block);
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('next_block', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [next.to_string()],
            )?;
            tx.commit()?;
            Ok(inserted)
        })
        .await
    }

    /// Claims up to `n` open jobs that nobody holds (or whose lease expired), whose
    /// backoff is over and that are not `busy` (driven by this instance already), for `owner` until now + `lease`, in one `BEGIN IMMEDIATE`
    /// transaction. `requested` jobs become `claimed`; others keep their state.
    pub(crate) async fn claim(
        &self,
        owner: String,
        n: usize,
        lease: Duration,
        busy: Vec<U256>,
    ) -> Result<Vec<JobRecord>, BridgeError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let until = to_i64(now.saturating_add(u64::try_from(lease.as_millis()).unwrap_or(0)));
            let now = to_i64(now);
            let mut claimed = Vec::new();
            {
                let mut select = tx.prepare(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE state NOT IN ('fulfilled', 'cancelled') \
                     AND not_before <= ?1 AND (owner IS NULL OR lease_until < ?1) \
                     ORDER BY job_id LIMIT ?2"
                ))?;
                let limit = to_i64((n + busy.len()) as u64);
                for r in select.query_map(params![now, limit], record)? {
                    let r = r?;
                    if claimed.len() < n && !busy.contains(&r.job.job_id) {
                        claimed.push(r);
                    }
                }
            }
            for r in &mut claimed {
                if r.state == JobState::Requested {
                    r.state = JobState::Claimed;
                }
                tx.execute(
                    "UPDATE jobs SET owner = ?2, lease_until = ?3, state = ?4, updated_ms = ?5 \
                     WHERE job_id = ?1",
                    params![id_key(r.job.job_id), owner, until, state_name(r.state), now],
                )?;
                r.owner = Some(owner.clone());
                r.lease_until_ms = u64::try_from(until).unwrap_or(0);
            }
            tx.commit()?;
            Ok(claimed)
        })
        .await
    }

    /// Runs an update that only the lease holder may make; `Err(LeaseLost)` when another
    /// instance holds the job now or it became final.
    async fn owned(
        &self,
        job_id: U256,
        owner: String,
        sql: &'static str,
        extra: Vec<rusqlite::types::Value>,
    ) -> Result<(), BridgeError> {
        let rows = self
            .call(move |c| {
                let mut values: Vec<rusqlite::types::Value> = vec![
                    id_key(job_id).into(),
                    owner.into(),
                    rusqlite::types::Value::Integer(to_i64(now_ms())),
                ];
                values.extend(extra);
                c.execute(sql, rusqlite::params_from_iter(values))
            })
            .await?;
        if rows == 1 { Ok(()) } else { Err(BridgeError::LeaseLost { job_id }) }
    }

    /// Extends the lease to now + `lease`.
    pub(crate) async fn renew(
        &self,
        job_id: U256,
        owner: String,
        lease: Duration,
    ) -> Result<(), BridgeError> {
        let until = to_i64(now_ms().saturating_add(u64::try_from(lease.as_millis()).unwrap_or(0)));
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET lease_until = ?4, updated_ms = ?3 WHERE job_id = ?1 AND owner = ?2 \
             AND state NOT IN ('fulfilled', 'cancelled')",
            vec![until.into()],
        )
        .await
    }

    /// `claimed`/`running` -> `running`, one more attempt; returns the attempt number.
    pub(crate) async fn start_run(&self, job_id: U256, owner: String) -> Result<u32, BridgeError> {
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_ms = ?3 \
             WHERE job_id = ?1 AND owner = ?2 AND state IN ('claimed', 'running')",
            vec![],
        )
        .await?;
        let attempts = self
            .call(move |c| {
                c.query_row("SELECT attempts FROM jobs WHERE job_id = ?1", [id_key(job_id)], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await?;
        Ok(u32::try_from(attempts).unwrap_or(u32::MAX))
    }

    /// Records the job's deal.
    pub(crate) async fn record_deal(
        &self,
        job_id: U256,
        owner: String,
        deal: B256,
    ) -> Result<(), BridgeError> {
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET deal_id = ?4, updated_ms = ?3 WHERE job_id = ?1 AND owner = ?2 \
             AND state NOT IN ('fulfilled', 'cancelled')",
            vec![deal.to_string().into()],
        )
        .await
    }

    /// `running` -> `fulfilling` with the results to post.
    pub(crate) async fn to_fulfilling(
        &self,
        job_id: U256,
        owner: String,
        results_cid: String,
        spent: U256,
        deal: Option<B256>,
    ) -> Result<(), BridgeError> {
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET state = 'fulfilling', results_cid = ?4, spent = ?5, \
             deal_id = COALESCE(?6, deal_id), tx = NULL, tries = 0, updated_ms = ?3 \
             WHERE job_id = ?1 AND owner = ?2 AND state IN ('claimed', 'running')",
            vec![results_cid.into(), spent.to_string().into(), deal.map(|d| d.to_string()).into()],
        )
        .await
    }

    /// Any open state -> `cancelling` with the reason to post.
    pub(crate) async fn to_cancelling(
        &self,
        job_id: U256,
        owner: String,
        reason: String,
    ) -> Result<(), BridgeError> {
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET state = 'cancelling', reason = ?4, tx = NULL, tries = 0, \
             updated_ms = ?3 WHERE job_id = ?1 AND owner = ?2 \
             AND state NOT IN ('fulfilled', 'cancelled')",
            vec![reason.into()],
        )
        .await
    }

    /// Records the hash of the fulfill or cancel transaction just sent.
    pub(crate) async fn record_tx(
        &self,
        job_id: U256,
        owner: String,
        tx: B256,
    ) -> Result<(), BridgeError> {
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET tx = ?4, updated_ms = ?3 WHERE job_id = ?1 AND owner = ?2 \
             AND state IN ('fulfilling', 'cancelling')",
            vec![tx.to_string().into()],
        )
        .await
    }

    /// The job is over on chain (whoever ended it): final state, lease released.
    pub(crate) async fn finish(
        &self,
        job_id: U256,
        status: JobStatus,
        tx: Option<B256>,
        reason: Option<String>,
    ) -> Result<(), BridgeError> {
        let state = match status {
            JobStatus::Fulfilled => JobState::Fulfilled,
            JobStatus::Cancelled => JobState::Cancelled,
            JobStatus::Requested => return Ok(()),
        };
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET state = ?2, owner = NULL, tx = COALESCE(?3, tx), \
                 reason = CASE WHEN ?2 = 'cancelled' THEN COALESCE(?4, reason) ELSE reason END, \
                 updated_ms = ?5 WHERE job_id = ?1",
                params![
                    id_key(job_id),
                    state_name(state),
                    tx.map(|t| t.to_string()),
                    reason,
                    to_i64(now_ms())
                ],
            )
        })
        .await
        .map(drop)
    }

    /// Gives the job up until `not_before` after a failed step: the lease is released and
    /// the state kept, except that a run becomes `requested` again (`rerun`).
    pub(crate) async fn back_off(
        &self,
        job_id: U256,
        owner: String,
        not_before_ms: u64,
        error: String,
        rerun: bool,
    ) -> Result<(), BridgeError> {
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET owner = NULL, lease_until = 0, not_before = ?4, last_error = ?5, \
             tries = tries + 1, state = CASE WHEN ?6 AND state IN ('claimed', 'running') \
             THEN 'requested' ELSE state END, updated_ms = ?3 \
             WHERE job_id = ?1 AND owner = ?2 AND state NOT IN ('fulfilled', 'cancelled')",
            vec![to_i64(not_before_ms).into(), error.into(), i64::from(rerun).into()],
        )
        .await
    }

    /// Releases the lease (shutdown): another instance may take the job at once.
    pub(crate) async fn release(&self, job_id: U256, owner: String) -> Result<(), BridgeError> {
        self.owned(
            job_id,
            owner,
            "UPDATE jobs SET owner = NULL, lease_until = 0, updated_ms = ?3 \
             WHERE job_id = ?1 AND owner = ?2",
            vec![],
        )
        .await
    }

    /// Job `job_id`, if known.
    pub(crate) async fn job(&self, job_id: U256) -> Result<Option<JobRecord>, BridgeError> {
        self.call(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"),
                [id_key(job_id)],
                record,
            )
            .optional()
        })
        .await
    }

    /// Every job, in id order.
    pub(crate) async fn jobs(&self) -> Result<Vec<JobRecord>, BridgeError> {
        self.call(|c| {
            let mut s = c.prepare(&format!("SELECT {COLUMNS} FROM jobs ORDER BY job_id"))?;
            let rows = s.query_map([], record)?;
            rows.collect()
        })
        .await
    }
}

/// Every job of the bridge database at `path`, in id order (read-only; for status pages,
/// scripts and tests).
pub fn read_jobs(path: &Path) -> Result<Vec<JobRecord>, BridgeError> {
    let db_err = |cause| BridgeError::Db { path: path.to_owned(), cause };
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    let mut s =
        conn.prepare(&format!("SELECT {COLUMNS} FROM jobs ORDER BY job_id")).map_err(db_err)?;
    let rows = s.query_map([], record).map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_sort_as_numbers() {
        let keys: Vec<String> = [U256::from(2u64), U256::from(10u64), U256::MAX].map(id_key).into();
        assert!(keys.iter().all(|k| k.len() == 66 && k.starts_with("0x")), "{keys:?}");
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
        assert_eq!(keys[1].parse::<U256>().expect("parses back"), U256::from(10u64));
    }

    #[test]
    fn a_database_of_another_network_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("b.sqlite");
        let manager = Address::repeat_byte(1);
        drop(Store::open(&path, 31337, manager).expect("created"));
        drop(Store::open(&path, 31337, manager).expect("reopened"));
        let e = Store::open(&path, 1, manager).expect_err("another chain").to_string();
        assert!(e.contains("chain_id 31337") && e.contains("is 1"), "{e}");
        let e = Store::open(&path, 31337, Address::repeat_byte(2)).expect_err("another manager");
        assert!(matches!(e, BridgeError::WrongNetwork { field: "job_manager", .. }), "{e}");
    }
}
