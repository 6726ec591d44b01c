//! The provider's durable state: one SQLite database (WAL) with a row per deal.
//!
//! A deal's row moves `received → running → published(cid) → submitted(tx) → done`
//! (or `failed`) and each move is one statement, so after a crash the row says
//! exactly how far the deal got: a deal is never forgotten (it is recorded before
//! anything runs) and never run again once its results are published.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::primitives::B256;
use lilypad_core::deal::Deal;
use rusqlite::{Connection, OptionalExtension, params};

use super::EngineError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deals (
    deal_id     TEXT PRIMARY KEY,   -- 0x + 64 hex digits
    deal        TEXT NOT NULL,      -- the deal as JSON
    state       TEXT NOT NULL,      -- received, running, published, submitted, done, failed
    runs        INTEGER NOT NULL DEFAULT 0,  -- times the job was started
    results_cid TEXT,
    tx          TEXT,
    reason      TEXT,
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deals_state ON deals (state);
-- Every resource offer this provider signed, recorded before it is posted: a deal
-- names its offer, and so the slot it runs in, even after a crash.
CREATE TABLE IF NOT EXISTS offers (
    offer_id    TEXT PRIMARY KEY,   -- 0x + 64 hex digits
    slot        TEXT NOT NULL,
    expiry      INTEGER NOT NULL,   -- unix seconds
    created_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS offers_slot ON offers (slot, created_ms);
";

/// Where a deal is, as the provider recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DealPhase {
    /// Known, nothing run yet.
    Received,
    /// The job was started (a crash here means it runs again after a restart).
    Running,
    /// The results are in storage under `results_cid`; not yet on chain.
    Published,
    /// The results CID is on chain (`tx`).
    Submitted,
    /// The deal ended on chain after the results were submitted.
    Done,
    /// The deal ended without this provider's results (`reason` says why).
    Failed,
}

impl DealPhase {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Running => "running",
            Self::Published => "published",
            Self::Submitted => "submitted",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => Self::Received,
            "running" => Self::Running,
            "published" => Self::Published,
            "submitted" => Self::Submitted,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// Done or failed: nothing more to do.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// One deal's row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DealRow {
    /// The deal.
    pub deal: Deal,
    /// Where it is.
    pub phase: DealPhase,
    /// Times the job was started (more than one only after crashes).
    pub runs: u32,
    /// The published results CID.
    pub results_cid: Option<String>,
    /// The `submitResults` transaction (zero when found on chain after a crash).
    pub tx: Option<B256>,
    /// Why it failed, or how it ended.
    pub reason: Option<String>,
}

/// The provider's database.
#[derive(Debug, Clone)]
pub struct ProviderStore {
    // One connection behind a mutex: every statement is a short single-row write
    // or a small read, so holding it briefly on an async thread is fine.
    conn: Arc<Mutex<Connection>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn key(id: B256) -> String {
    format!("{id:#x}")
}

impl ProviderStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| EngineError::store(path, &e))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(|e| EngineError::store(path, &e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| EngineError::store(path, &e))?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, EngineError> {
        let conn = self.conn.lock().map_err(|_| EngineError::Store("lock poisoned".into()))?;
        f(&conn).map_err(|e| EngineError::Store(e.to_string()))
    }

    /// Records a deal as received; returns false when it was known already.
    pub fn insert(&self, deal: &Deal) -> Result<bool, EngineError> {
        let json = serde_json::to_string(deal).map_err(|e| EngineError::Store(e.to_string()))?;
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO deals (deal_id, deal, state, updated_ms) VALUES (?1, ?2, 'received', ?3)",
                params![key(deal.id), json, now_ms()],
            )
        })
        .map(|n| n == 1)
    }

    /// Moves a deal to `phase`, setting the given columns (others keep their values).
    pub fn set(
        &self,
        id: B256,
        phase: DealPhase,
        results_cid: Option<&str>,
        tx: Option<B256>,
        reason: Option<&str>,
    ) -> Result<(), EngineError> {
        self.with(|c| {
            c.execute(
                "UPDATE deals SET state = ?2, results_cid = COALESCE(?3, results_cid),
                 tx = COALESCE(?4, tx), reason = COALESCE(?5, reason), updated_ms = ?6,
                 runs = runs + (CASE WHEN ?2 = 'running' THEN 1 ELSE 0 END)
                 WHERE deal_id = ?1",
                params![
                    key(id),
                    phase.as_str(),
                    results_cid,
                    tx.map(|t| format!("{t:#x}")),
                    reason,
                    now_ms()
                ],
            )
        })
        .map(drop)
    }

    /// One deal's row.
    pub fn get(&self, id: B256) -> Result<Option<DealRow>, EngineError> {
        let row = self.with(|c| {
            c.query_row(
                "SELECT deal, state, runs, results_cid, tx, reason FROM deals WHERE deal_id = ?1",
                params![key(id)],
                raw,
            )
            .optional()
        })?;
        row.map(parse).transpose()
    }

    /// Every deal, oldest first.
    pub fn all(&self) -> Result<Vec<DealRow>, EngineError> {
        self.query("SELECT deal, state, runs, results_cid, tx, reason FROM deals ORDER BY rowid")
    }

    /// Deals that are neither done nor failed, oldest first.
    pub fn unfinished(&self) -> Result<Vec<DealRow>, EngineError> {
        self.query(
            "SELECT deal, state, runs, results_cid, tx, reason FROM deals
             WHERE state NOT IN ('done', 'failed') ORDER BY rowid",
        )
    }

    fn query(&self, sql: &str) -> Result<Vec<DealRow>, EngineError> {
        let rows = self.with(|c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map([], raw)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter().map(parse).collect()
    }

    /// Records an offer for `slot`, before it is posted.
    pub fn record_offer(&self, id: B256, slot: &str, expiry: u64) -> Result<(), EngineError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO offers (offer_id, slot, expiry, created_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key(id), slot, i64::try_from(expiry).unwrap_or(i64::MAX), now_ms()],
            )
        })
        .map(drop)
    }

    /// The slot an offer of this provider was made for.
    pub fn offer_slot(&self, id: B256) -> Result<Option<String>, EngineError> {
        self.with(|c| {
            c.query_row("SELECT slot FROM offers WHERE offer_id = ?1", params![key(id)], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// The newest offer of `slot` and its expiry.
    pub fn latest_offer(&self, slot: &str) -> Result<Option<(B256, u64)>, EngineError> {
        let row: Option<(String, i64)> = self.with(|c| {
            c.query_row(
                "SELECT offer_id, expiry FROM offers WHERE slot = ?1
                 ORDER BY created_ms DESC, rowid DESC LIMIT 1",
                params![slot],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        row.map(|(id, expiry)| {
            let id = id
                .parse()
                .map_err(|_| EngineError::Store(format!("offers: a bad offer id {id:?}")))?;
            Ok((id, u64::try_from(expiry).unwrap_or(0)))
        })
        .transpose()
    }

    /// The newest offer of each group of slots (a name joined with `+`) that has not
    /// expired at `now`: id, group and expiry, newest first.
    pub fn live_group_offers(&self, now: u64) -> Result<Vec<(B256, String, u64)>, EngineError> {
        let rows: Vec<(String, String, i64)> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT offer_id, slot, expiry FROM offers WHERE slot LIKE '%+%' AND expiry > ?1
                 ORDER BY created_ms DESC, rowid DESC",
            )?;
            let rows = st.query_map(params![i64::try_from(now).unwrap_or(i64::MAX)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.collect()
        })?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (id, group, expiry) in rows {
            if !seen.insert(group.clone()) {
                continue;
            }
            let id = id
                .parse()
                .map_err(|_| EngineError::Store(format!("offers: a bad offer id {id:?}")))?;
            out.push((id, group, u64::try_from(expiry).unwrap_or(0)));
        }
        Ok(out)
    }

    /// A value of the meta table.
    pub fn meta(&self, k: &str) -> Result<Option<String>, EngineError> {
        self.with(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", params![k], |r| r.get(0))
                .optional()
        })
    }

    /// Sets a value of the meta table.
    pub fn set_meta(&self, k: &str, v: &str) -> Result<(), EngineError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )
        })
        .map(drop)
    }
}

type Raw = (String, String, u32, Option<String>, Option<String>, Option<String>);

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn parse((deal, state, runs, results_cid, tx, reason): Raw) -> Result<DealRow, EngineError> {
    let deal: Deal = serde_json::from_str(&deal)
        .map_err(|e| EngineError::Store(format!("a stored deal does not parse: {e}")))?;
    let phase = DealPhase::parse(&state)
        .ok_or_else(|| EngineError::Store(format!("deal {}: unknown state {state:?}", deal.id)))?;
    let tx = tx.and_then(|t| t.parse().ok());
    Ok(DealRow { deal, phase, runs, results_cid, tx, reason })
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, U256};
    use lilypad_core::deal::{DealMembers, DealTerms};

    use super::*;

    fn deal(n: u8) -> Deal {
        Deal {
            id: B256::repeat_byte(n),
            job_offer_id: B256::repeat_byte(0xa0),
            resource_offer_id: B256::repeat_byte(0xb0),
            module_id: B256::repeat_byte(0xc0),
            inputs_hash: B256::repeat_byte(0xd0),
            members: DealMembers {
                job_creator: Address::repeat_byte(1),
                resource_provider: Address::repeat_byte(2),
                solver: Address::repeat_byte(3),
                mediators: [Address::repeat_byte(4)].into(),
            },
            terms: DealTerms {
                price: U256::from(10u8),
                payment_collateral: U256::from(10u8),
                timeout_collateral: U256::from(5u8),
                results_collateral: U256::from(20u8),
                mediation_fee: U256::from(1u8),
                submit_window_secs: 60,
                judge_window_secs: 60,
                mediate_window_secs: 60,
            },
            created_at: 1_700_000_000,
        }
    }

    #[test]
    fn rows_survive_a_reopen_and_a_deal_is_recorded_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/provider.db");
        let st = ProviderStore::open(&path).expect("open");
        assert!(st.insert(&deal(1)).expect("insert"));
        assert!(!st.insert(&deal(1)).expect("insert again"), "a known deal is not re-recorded");
        assert!(st.insert(&deal(2)).expect("insert"));
        let id = deal(1).id;
        st.set(id, DealPhase::Running, None, None, None).expect("running");
        st.set(id, DealPhase::Published, Some("QmX"), None, None).expect("published");
        let tx = B256::repeat_byte(9);
        st.set(id, DealPhase::Submitted, None, Some(tx), None).expect("submitted");
        st.set(deal(2).id, DealPhase::Failed, None, None, Some("no time left")).expect("failed");
        st.set_meta("k", "v1").expect("meta");
        st.set_meta("k", "v2").expect("meta");
        drop(st);

        let st = ProviderStore::open(&path).expect("reopen");
        let row = st.get(id).expect("get").expect("row");
        assert_eq!(row.deal, deal(1));
        assert_eq!(row.phase, DealPhase::Submitted);
        assert_eq!((row.runs, row.results_cid.as_deref(), row.tx), (1, Some("QmX"), Some(tx)));
        let unfinished: Vec<B256> =
            st.unfinished().expect("unfinished").iter().map(|r| r.deal.id).collect();
        assert_eq!(unfinished, vec![id]);
        assert_eq!(st.all().expect("all").len(), 2);
        assert_eq!(
            st.get(deal(2).id).expect("get").and_then(|r| r.reason).as_deref(),
            Some("no time left")
        );
        assert_eq!(st.meta("k").expect("meta").as_deref(), Some("v2"));
        assert!(st.get(B256::ZERO).expect("get").is_none());
    }

    #[test]
    fn offers_remember_their_slot_across_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("provider.db");
        let st = ProviderStore::open(&path).expect("open");
        assert_eq!(st.latest_offer("cpu0").expect("latest"), None);
        st.record_offer(B256::repeat_byte(1), "cpu0", 100).expect("record");
        st.record_offer(B256::repeat_byte(2), "cpu1", 200).expect("record");
        st.record_offer(B256::repeat_byte(3), "cpu0", 300).expect("record");
        drop(st);
        let st = ProviderStore::open(&path).expect("reopen");
        assert_eq!(st.latest_offer("cpu0").expect("latest"), Some((B256::repeat_byte(3), 300)));
        assert_eq!(st.offer_slot(B256::repeat_byte(1)).expect("slot").as_deref(), Some("cpu0"));
        assert_eq!(st.offer_slot(B256::repeat_byte(2)).expect("slot").as_deref(), Some("cpu1"));
        assert_eq!(st.offer_slot(B256::repeat_byte(9)).expect("slot"), None);
    }
}
