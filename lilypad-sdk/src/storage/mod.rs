//! Results storage: kubo-compatible UnixFS CIDs, an on-disk content store
//! served over HTTP, and a client that verifies every byte it downloads.
//!
//! - [`unixfs`]: package a file or a directory tree as UnixFS with kubo's
//!   defaults (`ipfs add -r`: CIDv0, 256 KiB chunks, balanced DAG), so our CIDs
//!   equal kubo's.
//! - [`ContentStore`]: blocks on disk, one file per block, written atomically
//!   and hash-checked on the way in.
//! - `serve` (feature `storage-server`): the store over HTTP, speaking a subset of the Kubo RPC API
//!   (`block/put`, `block/get`, `cat`, `add`), so one client talks to both.
//! - [`StorageClient`]: publish a path, fetch a CID into a directory (every
//!   block verified against its CID, nothing in place until the whole DAG
//!   verified), `cat` a file.
//! - [`extract_tar_safe`]: unpack a tar archive without letting it escape.
//! - [`rules`]: what a tree may hold (names, depth, counts, links), checked
//!   by the same code when publishing and when fetching.
//!
//! See `docs/storage.md` for the layout and the guarantees.

mod archive;
mod client;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_api;
mod hamt;
mod pb;
pub mod rules;
#[cfg(feature = "storage-server")]
mod server;
mod store;
pub mod unixfs;
mod walk;

use std::path::PathBuf;

pub use cid::Cid;
use cid::multihash::Multihash;
use sha2::{Digest, Sha256};

pub use archive::extract_tar_safe;
pub use client::{ClientOptions, FetchSummary, StorageClient};
pub use rules::check_tree;
#[cfg(feature = "storage-server")]
pub use server::{ServerHandle, ServerOptions, serve, serve_with};
pub use store::ContentStore;
pub use unixfs::{Block, BlockSink, Dag, add_path};

/// Multicodec code of dag-pb.
pub const DAG_PB: u64 = 0x70;
/// Multicodec code of raw blocks.
pub const RAW: u64 = 0x55;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// The largest block accepted anywhere (kubo's limit too).
pub const MAX_BLOCK_SIZE: usize = 1024 * 1024;

/// Errors of the storage layer. (Texts beside a CID are `Box<str>` to keep
/// the error, and every `Result` of this module, under 128 bytes.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A symbolic link that breaks the tree rules (refused when publishing and
    /// when fetching alike): absolute, dangling, looping, or leading out of the tree.
    #[error("symbolic link {path:?} refused: {reason}")]
    Symlink {
        /// The link, relative to the tree's root.
        path: PathBuf,
        /// Why.
        reason: Box<str>,
    },
    /// A device, socket or FIFO in a tree to publish.
    #[error("{path:?} is not a regular file, directory or link (device, socket or FIFO)")]
    SpecialFile {
        /// The file, relative to the tree's root.
        path: PathBuf,
    },
    /// Text that is not a CID.
    #[error("invalid CID {input:?}: {reason}")]
    InvalidCid {
        /// What was given.
        input: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A CID this layer does not handle (hash function, codec).
    #[error("unsupported CID {cid}: {reason}")]
    UnsupportedCid {
        /// The CID.
        cid: Cid,
        /// What is not supported.
        reason: Box<str>,
    },
    /// Bytes that do not hash to the CID they were served for.
    #[error("block {cid} failed verification: its bytes hash to {actual}, not to the CID")]
    HashMismatch {
        /// The CID asked for.
        cid: Cid,
        /// The sha2-256 of the bytes received (hex).
        actual: Box<str>,
    },
    /// A verified block that is not a UnixFS node this layer can read.
    #[error("block {cid} is not a readable UnixFS node: {reason}")]
    BadNode {
        /// The block.
        cid: Cid,
        /// What is wrong.
        reason: Box<str>,
    },
    /// A directory entry whose name breaks the tree rules (refused when
    /// publishing and when fetching alike; see [`rules`]).
    #[error("entry {path:?} refused: {reason}")]
    UnsafeName {
        /// The entry, relative to the tree's root (lossy UTF-8).
        path: String,
        /// Which rule it breaks.
        reason: Box<str>,
    },
    /// A size, count or depth cap was reached.
    #[error("limit exceeded{}: more than {limit} {what}", at(path))]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The cap.
        limit: u64,
        /// Where it was passed, relative to the tree's root (empty: the tree as a whole).
        path: String,
    },
    /// The store does not have the block.
    #[error("block {cid} not found")]
    NotFound {
        /// The block.
        cid: Cid,
    },
    /// `fetch` and `extract_tar_safe` only create new paths.
    #[error("{path} already exists: choose a path that does not exist yet")]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// An HTTP request could not be sent or its answer not read.
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server answered something that is not the Kubo RPC API's answer.
    #[error("{url}: unexpected answer: {reason}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A tar entry that is refused.
    #[error("unsafe tar entry {path:?}: {reason}")]
    UnsafeTarEntry {
        /// The entry's path as in the archive.
        path: String,
        /// Why it is refused.
        reason: String,
    },
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// Whether the error says the tree itself breaks the tree rules (a name, a
    /// link, a special file, a cap), as opposed to an I/O or network failure.
    /// Such a tree is refused by publishing and fetching alike.
    pub fn is_tree_rule(&self) -> bool {
        matches!(
            self,
            Self::UnsafeName { .. }
                | Self::Symlink { .. }
                | Self::SpecialFile { .. }
                | Self::LimitExceeded { .. }
        )
    }
}

fn at(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!(" at {path:?}") }
}

/// Caps on what a tree may hold: checked when publishing (with the defaults)
/// and when fetching or unpacking (with the caller's), by the same code
/// ([`rules`]), so a published tree always fetches with the default limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of file content.
    pub max_total_bytes: u64,
    /// Entries below the root: files, directories and links (the root itself
    /// and the internal nodes of sharded directories are not counted).
    pub max_entries: u64,
    /// Path components below the root: an entry at `a/b/c` is 3 levels deep.
    pub max_depth: u32,
}

impl Default for Limits {
    /// 10 GiB, 1,000,000 entries, 64 levels.
    ///
    /// A million entries: a job's results hold its `/outputs` plus a few files,
    /// so a 100,000-file output (a sharded directory) passes with room to spare,
    /// while a hostile DAG still cannot make a client create files without end.
    fn default() -> Self {
        Self { max_total_bytes: 10 << 30, max_entries: 1_000_000, max_depth: 64 }
    }
}

/// Parses a CID from text (CIDv0 `Qm...` or any multibase CIDv1).
pub fn parse_cid(text: &str) -> Result<Cid, StorageError> {
    Cid::try_from(text.trim())
        .map_err(|e| StorageError::InvalidCid { input: text.to_owned(), reason: e.to_string() })
}

/// The sha2-256 multihash of `data`.
pub fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(data);
    // A 32-byte digest always fits a 64-byte multihash.
    Multihash::wrap(SHA2_256, &digest).unwrap_or_default()
}

/// Checks that `data` hashes to `cid` (sha2-256 only). Every block read from a
/// peer goes through here before it is used.
pub fn verify_block(cid: &Cid, data: &[u8]) -> Result<(), StorageError> {
    let mh = cid.hash();
    if mh.code() != SHA2_256 || mh.size() != 32 {
        return Err(StorageError::UnsupportedCid {
            cid: *cid,
            reason: format!("hash function 0x{:x} (only sha2-256 is supported)", mh.code()).into(),
        });
    }
    let digest = Sha256::digest(data);
    if digest[..] != *mh.digest() {
        return Err(StorageError::HashMismatch { cid: *cid, actual: hex(&digest).into() });
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
