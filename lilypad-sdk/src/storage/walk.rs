//! Reading a UnixFS DAG block by block, verifying each block before use.

use std::{
    fs,
    future::Future,
    io::Write,
    path::{Path, PathBuf},
};

use cid::Cid;

use super::{
    DAG_PB, Limits, RAW, StorageError,
    hamt::{self, Shard},
    pb::{DataType, PbNode, UnixFsData},
    rules::{DiskView, TreeCheck},
    verify_block,
};

/// File DAGs deeper than this are refused (kubo's balanced layout needs 4 levels for 1 PiB).
const MAX_FILE_DAG_DEPTH: u32 = 32;

/// Where blocks come from (the HTTP API, the local store). The walk verifies
/// every block it gets, so a source needs no trust.
pub(crate) trait BlockSource {
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Vec<u8>, StorageError>> + Send;
}

/// A decoded, verified node.
pub(crate) enum Node {
    File {
        data: Vec<u8>,
        links: Vec<Cid>,
    },
    Directory {
        entries: Vec<(Vec<u8>, Cid)>,
    },
    /// A node of a HAMT-sharded directory (checked as it is listed).
    Shard(Shard),
    Symlink {
        target: Vec<u8>,
    },
}

impl Node {
    /// A basic or a sharded directory.
    pub(crate) fn is_directory(&self) -> bool {
        matches!(self, Self::Directory { .. } | Self::Shard(_))
    }
}

pub(crate) fn decode(cid: &Cid, bytes: Vec<u8>) -> Result<Node, StorageError> {
    let bad = |reason: String| StorageError::BadNode { cid: *cid, reason: reason.into() };
    match cid.codec() {
        RAW => return Ok(Node::File { data: bytes, links: Vec::new() }),
        DAG_PB => {}
        c => {
            return Err(StorageError::UnsupportedCid {
                cid: *cid,
                reason: format!("codec 0x{c:x} (only dag-pb and raw are supported)").into(),
            });
        }
    }
    let node = PbNode::decode(&bytes).map_err(bad)?;
    let data = node.data.ok_or_else(|| bad("dag-pb node without UnixFS data".into()))?;
    let unixfs = UnixFsData::decode(&data).map_err(bad)?;
    match unixfs.kind {
        DataType::File | DataType::Raw => Ok(Node::File {
            data: unixfs.data.unwrap_or_default(),
            links: node.links.into_iter().map(|l| l.hash).collect(),
        }),
        DataType::Directory => Ok(Node::Directory {
            entries: node.links.into_iter().map(|l| (l.name, l.hash)).collect(),
        }),
        DataType::HamtShard => Ok(Node::Shard(Shard {
            hash_type: unixfs.hash_type,
            fanout: unixfs.fanout,
            bitfield: unixfs.data.unwrap_or_default(),
            links: node.links.into_iter().map(|l| (l.name, l.hash)).collect(),
        })),
        DataType::Symlink => Ok(Node::Symlink { target: unixfs.data.unwrap_or_default() }),
        DataType::Metadata => Err(bad("UnixFS metadata nodes are not supported".into())),
    }
}

pub(crate) async fn get_node<S: BlockSource + Sync>(
    src: &S,
    cid: &Cid,
) -> Result<Node, StorageError> {
    let bytes = src.get(cid).await?;
    verify_block(cid, &bytes)?;
    decode(cid, bytes)
}

/// A file's content, block by block, in order. Blocks below the root are
/// fetched depth-first with an explicit stack (no recursion, bounded depth).
pub(crate) struct FileReader {
    first: Option<(Node, Cid)>,
    stack: Vec<(Cid, u32)>,
}

impl FileReader {
    /// `first` is the file's root node, already fetched and verified.
    pub(crate) fn new(first: Node, root: Cid) -> Self {
        Self { first: Some((first, root)), stack: Vec::new() }
    }

    /// The next piece of content (possibly empty), or `None` at the end.
    pub(crate) async fn next_chunk<S: BlockSource + Sync>(
        &mut self,
        src: &S,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let (node, cid, depth) = match self.first.take() {
            Some((node, cid)) => (node, cid, 0),
            None => match self.stack.pop() {
                Some((cid, depth)) => (get_node(src, &cid).await?, cid, depth),
                None => return Ok(None),
            },
        };
        let Node::File { data, links } = node else {
            return Err(StorageError::BadNode {
                cid,
                reason: "not file content (a directory or a link)".into(),
            });
        };
        if !links.is_empty() && depth >= MAX_FILE_DAG_DEPTH {
            return Err(StorageError::BadNode {
                cid,
                reason: format!("file DAG deeper than {MAX_FILE_DAG_DEPTH} levels").into(),
            });
        }
        self.stack.extend(links.into_iter().rev().map(|c| (c, depth + 1)));
        Ok(Some(data))
    }
}

/// Streams the content of the file at `path` (relative to the tree) to
/// `out`, counting its bytes against the limits.
pub(crate) async fn read_file<S, F>(
    src: &S,
    first: Node,
    root: &Cid,
    path: &str,
    check: &mut TreeCheck<'_>,
    mut out: F,
) -> Result<(), StorageError>
where
    S: BlockSource + Sync,
    F: FnMut(&[u8]) -> Result<(), StorageError> + Send,
{
    let mut reader = FileReader::new(first, *root);
    while let Some(chunk) = reader.next_chunk(src).await? {
        check.add_bytes(path, chunk.len() as u64)?;
        out(&chunk)?;
    }
    Ok(())
}

/// What a fetch wrote.
pub(crate) struct Written {
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
}

/// Writes the tree under `root` to `target`, which must not exist (its parent
/// must), applying the [tree rules](super::rules) to every entry. Files are
/// created with `create_new` and directories with `create_dir`, so nothing is
/// ever written through an existing path.
pub(crate) async fn write_tree<S: BlockSource + Sync>(
    src: &S,
    root: &Cid,
    target: &Path,
    limits: &Limits,
) -> Result<Written, StorageError> {
    let mut check = TreeCheck::new(limits);
    // Links are created last, so nothing is ever written through one.
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    // (cid, path on disk, path in the tree, depth below the root)
    let mut stack: Vec<(Cid, PathBuf, String, u32)> =
        vec![(*root, target.to_owned(), String::new(), 0)];
    while let Some((cid, path, rel, depth)) = stack.pop() {
        let entries = match get_node(src, &cid).await? {
            file @ Node::File { .. } => {
                let mut f = fs::File::create_new(&path).map_err(StorageError::io(&path))?;
                let write = |chunk: &[u8]| f.write_all(chunk).map_err(StorageError::io(&path));
                read_file(src, file, &cid, &rel, &mut check, write).await?;
                // On Linux one `syncfs` at the end makes every file durable at
                // once; an fsync per file costs minutes for 100,000 files.
                #[cfg(not(target_os = "linux"))]
                f.sync_all().map_err(StorageError::io(&path))?;
                continue;
            }
            Node::Symlink { target } => {
                let target = check.link(&rel, &target)?;
                links.push((path, target.to_owned()));
                continue;
            }
            Node::Directory { entries } => entries,
            Node::Shard(shard) => hamt::list(src, &cid, shard, &rel, check.entries_left()).await?,
        };
        fs::create_dir(&path).map_err(StorageError::io(&path))?;
        for (name, child_rel, child) in check.directory(&rel, depth, entries)?.into_iter().rev() {
            stack.push((child, path.join(&name), child_rel, depth + 1));
        }
    }
    if !links.is_empty() {
        create_links(&links)?;
        check.resolve_links(&DiskView(target))?;
        // The rules resolved every link as the kernel does; ask the kernel too.
        let real_root = target.canonicalize().map_err(StorageError::io(target))?;
        for (path, _) in &links {
            if !path.canonicalize().is_ok_and(|real| real.starts_with(&real_root)) {
                return Err(StorageError::Symlink {
                    path: path.clone(),
                    reason: "it does not resolve inside the tree on disk".into(),
                });
            }
        }
    }
    #[cfg(target_os = "linux")]
    {
        let dir = fs::File::open(target).map_err(StorageError::io(target))?;
        rustix::fs::syncfs(&dir).map_err(|e| StorageError::io(target)(e.into()))?;
    }
    Ok(Written { bytes: check.bytes(), entries: check.entries() })
}

fn create_links(links: &[(PathBuf, String)]) -> Result<(), StorageError> {
    for (path, target) in links {
        #[cfg(unix)]
        std::os::unix::fs::symlink(target, path).map_err(StorageError::io(path))?;
        #[cfg(not(unix))]
        return Err(StorageError::Symlink {
            path: path.clone(),
            reason: format!("cannot create links here ({target})").into(),
        });
    }
    Ok(())
}
