//! UnixFS packaging with kubo's defaults, so CIDs match `ipfs add -r`.
//!
//! Exactly what kubo does with no flags: CIDv0 (dag-pb, sha2-256), a fixed-size
//! chunker of 262,144 bytes, the balanced layout with at most 174 links per
//! node, leaves as dag-pb UnixFS `File` nodes (not raw blocks), directories as
//! basic UnixFS `Directory` nodes with links sorted by name, or, from
//! 262,144 bytes of links (kubo's estimate), as HAMT shards built exactly as
//! kubo builds them (see `hamt.rs`). The one difference from the `ipfs`
//! command: hidden files are included (as with `ipfs add -r --hidden`), since
//! a result must never lose a file silently.
//!
//! Trees on disk are checked against the [tree rules](super::rules) while they
//! are packaged, by the same code that checks a download.

use std::{
    fs,
    io::{self, Read},
    path::Path,
};

use cid::Cid;

pub use super::hamt::HAMT_SHARDING_SIZE;
use super::{
    Limits, StorageError, hamt,
    pb::{DataType, PbLink, PbNode, UnixFsData},
    rules::{self, Build},
    sha256_multihash,
};

/// Bytes per leaf (kubo's `size-262144` chunker).
pub const CHUNK_SIZE: usize = 262_144;
/// Links per internal file node (kubo's balanced layout).
pub const MAX_LINKS: usize = 174;

/// One block: its CID and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The CID of `data`.
    pub cid: Cid,
    /// The encoded node.
    pub data: Vec<u8>,
}

/// A packaged tree: the root CID and every block (in creation order, root last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    /// The CID that names the whole tree.
    pub root: Cid,
    /// Every block, the root last; repeated content appears once per occurrence.
    pub blocks: Vec<Block>,
}

/// Where blocks go while a tree is packaged (memory, a store, nowhere).
pub trait BlockSink {
    /// Takes one block. `cid` is the hash of `data`.
    fn put_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StorageError>;
}

impl BlockSink for Vec<Block> {
    fn put_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), StorageError> {
        self.push(Block { cid: *cid, data: data.to_vec() });
        Ok(())
    }
}

/// A sink that keeps nothing: compute CIDs only.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashOnly;

impl BlockSink for HashOnly {
    fn put_block(&mut self, _: &Cid, _: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A packaged node: what a parent needs to link to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The node's CID.
    pub cid: Cid,
    /// Bytes of file content below it (0 for a directory).
    pub file_size: u64,
    /// Cumulative size: its block plus every block below (the link `Tsize`).
    pub tsize: u64,
}

pub(crate) fn emit(sink: &mut dyn BlockSink, node: &PbNode) -> Result<(Cid, u64), StorageError> {
    let bytes = node.encode();
    let cid = Cid::new_v0(sha256_multihash(&bytes))
        .map_err(|e| StorageError::BadNode { cid: Cid::default(), reason: e.to_string().into() })?;
    sink.put_block(&cid, &bytes)?;
    Ok((cid, bytes.len() as u64))
}

/// Reads full chunks, one ahead, so "is there more data" is known before a
/// node is closed (kubo's `db.Done()`).
struct Chunker<R> {
    reader: R,
    next: Vec<u8>,
}

impl<R: Read> Chunker<R> {
    fn new(reader: R) -> io::Result<Self> {
        let mut c = Self { reader, next: Vec::new() };
        c.next = c.read_chunk()?;
        Ok(c)
    }

    fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(CHUNK_SIZE);
        (&mut self.reader).take(CHUNK_SIZE as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn done(&self) -> bool {
        self.next.is_empty()
    }

    fn take(&mut self) -> io::Result<Vec<u8>> {
        let next = self.read_chunk()?;
        Ok(std::mem::replace(&mut self.next, next))
    }
}

struct FileBuilder<'a, R> {
    chunks: Chunker<R>,
    sink: &'a mut dyn BlockSink,
    what: &'a Path,
}

impl<R: Read> FileBuilder<'_, R> {
    fn leaf(&mut self) -> Result<Added, StorageError> {
        let chunk = self.chunks.take().map_err(StorageError::io(self.what))?;
        let len = chunk.len() as u64;
        // kubo writes no Data field for the empty file (`0a 04 08 02 18 00`).
        let data = (!chunk.is_empty()).then_some(chunk);
        let unixfs =
            UnixFsData { kind: DataType::File, data, filesize: Some(len), ..UnixFsData::default() };
        let (cid, size) = emit(self.sink, &PbNode { links: vec![], data: Some(unixfs.encode()) })?;
        Ok(Added { cid, file_size: len, tsize: size })
    }

    /// kubo's `balanced.Layout`: the first leaf is the root until a second
    /// chunk exists; then each full tree of depth d becomes the first child of
    /// a new root of depth d+1, which is filled with full subtrees of depth d.
    fn layout(&mut self) -> Result<Added, StorageError> {
        let mut root = self.leaf()?;
        let mut depth = 1;
        while !self.chunks.done() {
            root = self.fill(vec![root], depth)?;
            depth += 1;
        }
        Ok(root)
    }

    fn fill(&mut self, mut children: Vec<Added>, depth: u32) -> Result<Added, StorageError> {
        while children.len() < MAX_LINKS && !self.chunks.done() {
            let child = if depth == 1 { self.leaf()? } else { self.fill(Vec::new(), depth - 1)? };
            children.push(child);
        }
        let file_size = children.iter().map(|c| c.file_size).sum();
        let unixfs = UnixFsData {
            kind: DataType::File,
            filesize: Some(file_size),
            blocksizes: children.iter().map(|c| c.file_size).collect(),
            ..UnixFsData::default()
        };
        let links = children
            .iter()
            .map(|c| PbLink { hash: c.cid, name: Vec::new(), tsize: c.tsize })
            .collect();
        let (cid, size) = emit(self.sink, &PbNode { links, data: Some(unixfs.encode()) })?;
        Ok(Added { cid, file_size, tsize: size + children.iter().map(|c| c.tsize).sum::<u64>() })
    }
}

/// Packages the bytes of `reader` as a UnixFS file. `what` names the source in errors.
pub fn add_reader(
    reader: impl Read,
    what: &Path,
    sink: &mut dyn BlockSink,
) -> Result<Added, StorageError> {
    let chunks = Chunker::new(reader).map_err(StorageError::io(what))?;
    FileBuilder { chunks, sink, what }.layout()
}

/// Collects the entries of one directory and writes its node. It checks
/// nothing (tests build hostile DAGs with it): trees from disk go through
/// [`add_path_to`], which applies the [tree rules](super::rules) first.
#[derive(Debug, Default)]
pub struct DirectoryBuilder {
    links: Vec<(Vec<u8>, Added)>,
}

impl DirectoryBuilder {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry (a packaged file or directory) under `name`.
    pub fn add(&mut self, name: String, child: Added) {
        self.links.push((name.into_bytes(), child));
    }

    /// Adds an entry under a name that need not be UTF-8 (to build DAGs that
    /// a fetch must refuse).
    pub fn add_raw_name(&mut self, name: Vec<u8>, child: Added) {
        self.links.push((name, child));
    }

    /// kubo's estimate of the directory's size: the sum over links of the
    /// name's length plus the CID's length in bytes. From
    /// [`HAMT_SHARDING_SIZE`] on, [`finish`](Self::finish) shards.
    pub fn estimated_size(&self) -> usize {
        hamt::estimated_size(self.links.iter().map(|(n, c)| (&n[..], &c.cid)))
    }

    /// Writes the directory: a basic `Directory` node with links sorted by
    /// name bytes (as go-merkledag writes it), or a HAMT shard tree when
    /// [`estimated_size`](Self::estimated_size) reaches
    /// [`HAMT_SHARDING_SIZE`] (kubo compares with `>=`).
    pub fn finish(mut self, sink: &mut dyn BlockSink) -> Result<Added, StorageError> {
        if self.estimated_size() >= HAMT_SHARDING_SIZE {
            return hamt::build(self.links, sink);
        }
        self.links.sort_by(|a, b| a.0.cmp(&b.0));
        let unixfs = UnixFsData { kind: DataType::Directory, ..UnixFsData::default() };
        let below: u64 = self.links.iter().map(|(_, c)| c.tsize).sum();
        let links = self
            .links
            .into_iter()
            .map(|(name, c)| PbLink { hash: c.cid, name, tsize: c.tsize })
            .collect();
        let (cid, size) = emit(sink, &PbNode { links, data: Some(unixfs.encode()) })?;
        Ok(Added { cid, file_size: 0, tsize: size + below })
    }
}

/// Packages a symbolic link as a UnixFS `Symlink` node (as kubo does: the
/// target as data, no size).
pub fn add_symlink(target: &str, sink: &mut dyn BlockSink) -> Result<Added, StorageError> {
    let unixfs = UnixFsData {
        kind: DataType::Symlink,
        data: Some(target.as_bytes().to_vec()),
        ..UnixFsData::default()
    };
    let (cid, size) = emit(sink, &PbNode { links: vec![], data: Some(unixfs.encode()) })?;
    Ok(Added { cid, file_size: 0, tsize: size })
}

/// Packages what a walk of the disk hands it.
struct Packager<'a> {
    sink: &'a mut dyn BlockSink,
}

impl Build for Packager<'_> {
    type Out = Added;

    fn file(&mut self, path: &Path, len: u64) -> Result<Added, StorageError> {
        let file = fs::File::open(path).map_err(StorageError::io(path))?;
        let added = add_reader(file, path, self.sink)?;
        if added.file_size != len {
            // The rules counted `len` bytes: the CID must be of those.
            return Err(StorageError::Io {
                path: path.to_owned(),
                source: io::Error::other("the file changed while it was being packaged"),
            });
        }
        Ok(added)
    }

    fn symlink(&mut self, target: &str) -> Result<Added, StorageError> {
        add_symlink(target, self.sink)
    }

    fn directory(&mut self, entries: Vec<(String, Added)>) -> Result<Added, StorageError> {
        let mut dir = DirectoryBuilder::new();
        for (name, child) in entries {
            dir.add(name, child);
        }
        dir.finish(self.sink)
    }
}

/// Packages a file or a directory tree into `sink`, returning the root.
///
/// The tree must follow the [tree rules](super::rules) with the default
/// [`Limits`] (what every fetch accepts by default): names, depth, counts,
/// links (kept as UnixFS `Symlink` nodes, as kubo keeps them, when relative
/// and resolving inside the tree), no devices, sockets or FIFOs, and `path`
/// itself not a link. Every refusal names the offending path, relative to
/// `path`.
pub fn add_path_to(path: &Path, sink: &mut dyn BlockSink) -> Result<Added, StorageError> {
    rules::walk_disk(path, &Limits::default(), &mut Packager { sink })
}

/// Packages a file or a directory tree in memory (see [`add_path_to`] to
/// stream blocks elsewhere instead).
pub fn add_path(path: &Path) -> Result<Dag, StorageError> {
    let mut blocks = Vec::new();
    let root = add_path_to(path, &mut blocks)?;
    Ok(Dag { root: root.cid, blocks })
}

/// The CID `ipfs add --only-hash` would print for `path`, keeping no blocks.
pub fn cid_of_path(path: &Path) -> Result<Cid, StorageError> {
    Ok(add_path_to(path, &mut HashOnly)?.cid)
}

/// Packages bytes as a UnixFS file in memory.
pub fn add_bytes(bytes: &[u8]) -> Result<Dag, StorageError> {
    let mut blocks = Vec::new();
    let root = add_reader(bytes, Path::new("<bytes>"), &mut blocks)?;
    Ok(Dag { root: root.cid, blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_cids() {
        // The empty file, `hello world\n` and the empty directory as kubo prints them.
        assert_eq!(
            add_bytes(b"").unwrap().root.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!(
            add_bytes(b"hello world\n").unwrap().root.to_string(),
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
        );
        let empty = DirectoryBuilder::new().finish(&mut HashOnly).unwrap();
        assert_eq!(empty.cid.to_string(), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
        assert_eq!(empty.tsize, 4);
    }

    #[test]
    fn layout_shapes() {
        // One chunk: a single leaf. Two chunks: a root with two links.
        let one = add_bytes(&vec![7u8; CHUNK_SIZE]).unwrap();
        assert_eq!(one.blocks.len(), 1);
        let two = add_bytes(&vec![7u8; CHUNK_SIZE + 1]).unwrap();
        assert_eq!(two.blocks.len(), 3);
        let root = PbNode::decode(&two.blocks[2].data).unwrap();
        assert_eq!(root.links.len(), 2);
        let meta = UnixFsData::decode(root.data.as_deref().unwrap()).unwrap();
        assert_eq!(meta.blocksizes, vec![CHUNK_SIZE as u64, 1]);
    }
}
