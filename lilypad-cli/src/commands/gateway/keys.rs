//! The gateway's API keys, in SQLite: only a SHA-256 hash of each key is stored, with
//! its name, limits and the tokens it has spent.
//!
//! A key is `lp-` followed by 64 hex digits (32 random bytes). Its first
//! [`PREFIX_LEN`] characters are kept in clear to find the row (and to show in
//! `keys list`); the whole key is checked by comparing hashes in constant time.

use std::{
    path::Path,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How many leading characters of a key are stored in clear (`lp-` and 9 hex digits).
pub(crate) const PREFIX_LEN: usize = 12;

/// One key as `keys list` shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct KeyInfo {
    /// Its name.
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// Most tokens (usage.total_tokens) it may spend; `None`: no limit.
    pub spend_limit: Option<u64>,
    /// Most requests per minute; `None`: no limit.
    pub rate_limit: Option<u32>,
    /// Tokens spent so far.
    pub spent: u64,
    /// Requests that ran a job.
    pub requests: u64,
    /// Unix second it was created.
    pub created_at: u64,
    /// Unix second it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

impl KeyInfo {
    /// Whether the spend limit is used up.
    pub(crate) fn exhausted(&self) -> bool {
        self.spend_limit.is_some_and(|limit| self.spent >= limit)
    }
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// No key with this value.
    #[error("incorrect API key provided")]
    Unknown,
    /// The key was revoked.
    #[error("this API key was revoked")]
    Revoked,
}

/// The key database.
#[derive(Debug)]
pub(crate) struct KeyStore {
    conn: Mutex<Connection>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// SHA-256 of the key.
pub(crate) fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random key.
fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("lp-{}", alloy::hex::encode(bytes))
}

const COLUMNS: &str =
    "name, prefix, spend_limit, rate_limit, spent, requests, created_at, revoked_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyInfo> {
    Ok(KeyInfo {
        name: r.get(0)?,
        prefix: r.get(1)?,
        spend_limit: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
        rate_limit: r.get::<_, Option<i64>>(3)?.map(|v| v as u32),
        spent: r.get::<_, i64>(4)? as u64,
        requests: r.get::<_, i64>(5)? as u64,
        created_at: r.get::<_, i64>(6)? as u64,
        revoked_at: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
    })
}

impl KeyStore {
    /// Opens (creating it and its directory if missing) the database at `path`.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the directory {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening the key database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS api_keys (
                name TEXT PRIMARY KEY,
                prefix TEXT NOT NULL,
                hash BLOB NOT NULL,
                spend_limit INTEGER,
                rate_limit INTEGER,
                spent INTEGER NOT NULL DEFAULT 0,
                requests INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                revoked_at INTEGER
            );
            CREATE INDEX IF NOT EXISTS api_keys_prefix ON api_keys (prefix);",
        )
        .with_context(|| format!("creating the tables of {}", path.display()))?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates a key named `name`; returns the key (the only time it is known).
    pub(crate) fn create(
        &self,
        name: &str,
        spend_limit: Option<u64>,
        rate_limit: Option<u32>,
    ) -> anyhow::Result<String> {
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            anyhow::bail!("a key name is 1 to 64 printable characters");
        }
        let key = new_key();
        let conn = self.conn();
        let taken: bool = conn
            .query_row("SELECT 1 FROM api_keys WHERE name = ?1", [name], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if taken {
            anyhow::bail!("a key named {name:?} exists already (revoked keys keep their name)");
        }
        conn.execute(
            "INSERT INTO api_keys (name, prefix, hash, spend_limit, rate_limit, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                &key[..PREFIX_LEN],
                hash(&key).as_slice(),
                spend_limit.map(|v| v as i64),
                rate_limit.map(i64::from),
                now() as i64
            ],
        )?;
        Ok(key)
    }

    /// Every key, oldest first.
    pub(crate) fn list(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, name"))?;
        let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The key named `name`.
    pub(crate) fn get(&self, name: &str) -> anyhow::Result<Option<KeyInfo>> {
        let conn = self.conn();
        Ok(conn
            .query_row(&format!("SELECT {COLUMNS} FROM api_keys WHERE name = ?1"), [name], row)
            .optional()?)
    }

    /// Revokes the key named `name`; false when there is none (or it was revoked).
    pub(crate) fn revoke(&self, name: &str) -> anyhow::Result<bool> {
        let n = self.conn().execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, now() as i64],
        )?;
        Ok(n == 1)
    }

    /// The key `key` stands for, if it is one and not revoked.
    pub(crate) fn authenticate(&self, key: &str) -> anyhow::Result<Result<KeyInfo, AuthError>> {
        if key.len() < PREFIX_LEN || !key.is_char_boundary(PREFIX_LEN) {
            return Ok(Err(AuthError::Unknown));
        }
        let given = hash(key);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {COLUMNS}, hash FROM api_keys WHERE prefix = ?1"))?;
        let candidates = stmt
            .query_map([&key[..PREFIX_LEN]], |r| Ok((row(r)?, r.get::<_, Vec<u8>>(8)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut found = None;
        for (info, stored) in candidates {
            // Constant time: how much of a guess matches shows in no timing.
            if bool::from(stored.as_slice().ct_eq(given.as_slice())) {
                found = Some(info);
            }
        }
        Ok(match found {
            None => Err(AuthError::Unknown),
            Some(info) if info.revoked_at.is_some() => Err(AuthError::Revoked),
            Some(info) => Ok(info),
        })
    }

    /// Counts a finished request of key `name` that used `tokens`.
    pub(crate) fn record_usage(&self, name: &str, tokens: u64) -> anyhow::Result<()> {
        self.conn().execute(
            "UPDATE api_keys SET spent = spent + ?2, requests = requests + 1 WHERE name = ?1",
            params![name, tokens as i64],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, KeyStore, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gateway/keys.db");
        let store = KeyStore::open(&path).expect("open");
        (dir, store, path)
    }

    #[test]
    fn keys_are_random_and_only_their_hash_is_stored() {
        let (_dir, store, path) = store();
        let a = store.create("alice", None, None).expect("create");
        let b = store.create("bob", Some(100), Some(5)).expect("create");
        assert_ne!(a, b);
        assert!(a.starts_with("lp-") && a.len() == 67, "{a}");
        assert_eq!(store.authenticate(&a).unwrap().unwrap().name, "alice");
        let bob = store.authenticate(&b).unwrap().unwrap();
        assert_eq!((bob.spend_limit, bob.rate_limit), (Some(100), Some(5)));
        drop(store);
        // Nowhere in the database file (nor its WAL) is the secret part of a key.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        for key in [&a, &b] {
            assert!(!text.contains(&key[PREFIX_LEN..]), "the key is stored in clear");
            assert!(!text.contains(&key[PREFIX_LEN + 4..PREFIX_LEN + 20]));
        }
        let conn = Connection::open(&path).unwrap();
        let stored: Vec<u8> = conn
            .query_row("SELECT hash FROM api_keys WHERE name='alice'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, hash(&a).to_vec());
    }

    #[test]
    fn wrong_and_revoked_keys_are_refused() {
        let (_dir, store, _) = store();
        let key = store.create("alice", None, None).unwrap();
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('0') { '1' } else { '0' });
        assert_eq!(store.authenticate(&wrong).unwrap(), Err(AuthError::Unknown));
        assert_eq!(store.authenticate("").unwrap(), Err(AuthError::Unknown));
        assert_eq!(store.authenticate("lp-ü").unwrap(), Err(AuthError::Unknown));
        assert_eq!(store.authenticate("sk-ééééééééééééé").unwrap(), Err(AuthError::Unknown));
        assert!(store.revoke("alice").unwrap());
        assert!(!store.revoke("alice").unwrap(), "revoked twice");
        assert!(!store.revoke("nobody").unwrap());
        assert_eq!(store.authenticate(&key).unwrap(), Err(AuthError::Revoked));
        assert!(store.get("alice").unwrap().unwrap().revoked_at.is_some());
        // The name stays taken, so a log line naming it always means one key.
        assert!(store.create("alice", None, None).is_err());
    }

    #[test]
    fn spending_counts_tokens_up_to_the_limit() {
        let (_dir, store, path) = store();
        let key = store.create("capped", Some(10), None).unwrap();
        assert!(!store.authenticate(&key).unwrap().unwrap().exhausted());
        store.record_usage("capped", 7).unwrap();
        let info = store.authenticate(&key).unwrap().unwrap();
        assert_eq!((info.spent, info.requests), (7, 1));
        assert!(!info.exhausted());
        store.record_usage("capped", 3).unwrap();
        assert!(store.authenticate(&key).unwrap().unwrap().exhausted());
        // Spending survives a restart.
        drop(store);
        let store = KeyStore::open(&path).unwrap();
        assert!(store.authenticate(&key).unwrap().unwrap().exhausted());
        let unlimited = store.create("free", None, None).unwrap();
        store.record_usage("free", u32::MAX as u64).unwrap();
        assert!(!store.authenticate(&unlimited).unwrap().unwrap().exhausted());
        assert_eq!(store.list().unwrap().len(), 2);
    }
}
