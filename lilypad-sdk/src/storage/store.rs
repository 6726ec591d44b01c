//! The on-disk block store: one file per block, named by CID.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use cid::Cid;

use super::{RAW, StorageError, unixfs::BlockSink, verify_block};

/// Blocks on disk under `<dir>/blocks/<xx>/<cid>`, where `<cid>` is the CIDv1
/// (raw codec, base32) of the block's multihash and `<xx>` its next-to-last two
/// characters (kubo's flatfs sharding, so no directory grows huge). Keying by
/// multihash, as kubo does, makes CIDv0 and CIDv1 names of one block share one
/// file.
///
/// Every block is hash-checked against its CID before it is written, and
/// written to a temporary file that is renamed into place, so a crash never
/// leaves a partial block under a block's name. Reads are not re-hashed (kubo's
/// `HashOnRead=false`): the client verifies what it receives.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blocks: PathBuf,
    fsync: bool,
}

impl ContentStore {
    /// Opens (creating if needed) a store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let blocks = dir.as_ref().join("blocks");
        fs::create_dir_all(&blocks).map_err(StorageError::io(&blocks))?;
        Ok(Self { blocks, fsync: true })
    }

    /// The same store without an fsync per block: blocks are still written to a
    /// temporary file and renamed (never a partial block under a block's name),
    /// but a power loss may lose the latest ones. For stores that are thrown
    /// away (staging before an upload, tests), where an fsync per block costs
    /// minutes for a tree of many thousand files on a slow disk.
    pub fn without_fsync(mut self) -> Self {
        self.fsync = false;
        self
    }

    /// The file that holds `cid`'s block (whether it exists or not).
    pub fn block_path(&self, cid: &Cid) -> PathBuf {
        // A sha2-256 multihash always makes a valid CIDv1.
        let key = Cid::new_v1(RAW, *cid.hash()).to_string();
        let shard =
            key.get(key.len().saturating_sub(3)..key.len().saturating_sub(1)).unwrap_or("__");
        self.blocks.join(shard).join(key)
    }

    /// Stores a block after checking that `data` hashes to `cid`.
    pub fn put(&self, cid: &Cid, data: &[u8]) -> Result<(), StorageError> {
        verify_block(cid, data)?;
        let path = self.block_path(cid);
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.blocks);
        fs::create_dir_all(dir).map_err(StorageError::io(dir))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".put-")
            .tempfile_in(dir)
            .map_err(StorageError::io(dir))?;
        tmp.write_all(data).map_err(StorageError::io(tmp.path()))?;
        if self.fsync {
            tmp.as_file().sync_data().map_err(StorageError::io(tmp.path()))?;
        }
        tmp.persist(&path).map_err(|e| StorageError::Io { path: path.clone(), source: e.error })?;
        Ok(())
    }

    /// The block's bytes as stored, or `None`.
    pub fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.block_path(cid);
        match fs::read(&path) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::Io { path, source: e }),
        }
    }

    /// Whether the block is stored.
    pub fn has(&self, cid: &Cid) -> bool {
        self.block_path(cid).is_file()
    }
}

impl BlockSink for ContentStore {
    fn put_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StorageError> {
        self.put(cid, data)
    }
}

impl BlockSink for &ContentStore {
    fn put_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StorageError> {
        self.put(cid, data)
    }
}
