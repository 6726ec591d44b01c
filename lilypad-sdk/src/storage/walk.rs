//! Reading a UnixFS DAG block by block, verifying each block before use.

use std::{
    collections::HashSet,
    fs,
    future::Future,
    io::Write,
    path::{Path, PathBuf},
};

use cid::Cid;

use super::{
    DAG_PB, Limits, RAW, StorageError,
    pb::{DataType, PbNode, UnixFsData},
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
    File { data: Vec<u8>, links: Vec<Cid> },
    Directory { entries: Vec<(Vec<u8>, Cid)> },
    Symlink { target: Vec<u8> },
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
        DataType::Symlink => Ok(Node::Symlink { target: unixfs.data.unwrap_or_default() }),
        DataType::HamtShard => Err(bad("sharded (HAMT) directories are not supported".into())),
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

/// Running totals checked against [`Limits`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
}

impl Counters {
    fn add_bytes(&mut self, n: usize, limits: &Limits) -> Result<(), StorageError> {
        self.bytes += n as u64;
        if self.bytes > limits.max_total_bytes {
            return Err(StorageError::LimitExceeded {
                what: "bytes of content",
                limit: limits.max_total_bytes,
            });
        }
        Ok(())
    }

    fn add_entry(&mut self, limits: &Limits) -> Result<(), StorageError> {
        self.entries += 1;
        if self.entries > limits.max_entries {
            return Err(StorageError::LimitExceeded {
                what: "files and directories",
                limit: limits.max_entries,
            });
        }
        Ok(())
    }
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
        limits: &Limits,
        counters: &mut Counters,
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
        counters.add_bytes(data.len(), limits)?;
        self.stack.extend(links.into_iter().rev().map(|c| (c, depth + 1)));
        Ok(Some(data))
    }
}

/// Streams a file's content, in order, to `out`.
pub(crate) async fn read_file<S, F>(
    src: &S,
    first: Node,
    root: &Cid,
    limits: &Limits,
    counters: &mut Counters,
    mut out: F,
) -> Result<(), StorageError>
where
    S: BlockSource + Sync,
    F: FnMut(&[u8]) -> Result<(), StorageError> + Send,
{
    let mut reader = FileReader::new(first, *root);
    while let Some(chunk) = reader.next_chunk(src, limits, counters).await? {
        out(&chunk)?;
    }
    Ok(())
}

/// A directory entry name that is safe to create: UTF-8, non-empty, not `.`
/// or `..`, no `/` (nor `\`, a separator on Windows) or NUL.
pub(crate) fn check_name(dir: &str, name: &[u8]) -> Result<String, StorageError> {
    let unsafe_name = || StorageError::UnsafeName {
        dir: dir.to_owned(),
        name: String::from_utf8_lossy(name).into(),
    };
    let name = std::str::from_utf8(name).map_err(|_| unsafe_name())?;
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(unsafe_name());
    }
    Ok(name.to_owned())
}

/// Writes the tree under `root` to `target`, which must not exist (its parent
/// must). Files are created with `create_new` and directories with
/// `create_dir`, so nothing is ever written through an existing path.
pub(crate) async fn write_tree<S: BlockSource + Sync>(
    src: &S,
    root: &Cid,
    target: &Path,
    limits: &Limits,
) -> Result<Counters, StorageError> {
    let mut counters = Counters::default();
    // Links are created last, so nothing is ever written through one.
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    // (cid, path on disk, path for messages, depth below the root)
    let mut stack: Vec<(Cid, PathBuf, String, u32)> =
        vec![(*root, target.to_owned(), String::new(), 0)];
    while let Some((cid, path, rel, depth)) = stack.pop() {
        match get_node(src, &cid).await? {
            file @ Node::File { .. } => {
                let mut f = fs::File::create_new(&path).map_err(StorageError::io(&path))?;
                let write = |chunk: &[u8]| f.write_all(chunk).map_err(StorageError::io(&path));
                read_file(src, file, &cid, limits, &mut counters, write).await?;
                f.sync_all().map_err(StorageError::io(&path))?;
            }
            Node::Symlink { target } => {
                let target = check_link_target(&rel, depth, &target)?;
                links.push((path, target));
            }
            Node::Directory { entries } => {
                fs::create_dir(&path).map_err(StorageError::io(&path))?;
                if !entries.is_empty() && depth >= limits.max_depth {
                    return Err(StorageError::LimitExceeded {
                        what: "levels of directories",
                        limit: u64::from(limits.max_depth),
                    });
                }
                let mut seen = HashSet::new();
                for (name, child) in entries.into_iter().rev() {
                    let name = check_name(&rel, &name)?;
                    if !seen.insert(name.clone()) {
                        return Err(StorageError::UnsafeName { dir: rel, name });
                    }
                    counters.add_entry(limits)?;
                    let child_rel =
                        if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
                    stack.push((child, path.join(&name), child_rel, depth + 1));
                }
            }
        }
    }
    if !links.is_empty() {
        create_links(target, &links)?;
    }
    Ok(counters)
}

/// A link target that stays inside the tree lexically: relative, UTF-8, no
/// NUL, never climbing above the root from the link's directory.
fn check_link_target(rel: &str, depth: u32, target: &[u8]) -> Result<String, StorageError> {
    let refuse = |reason: &str| StorageError::Symlink { path: rel.into(), reason: reason.into() };
    if depth == 0 {
        return Err(refuse("the root is a link"));
    }
    let target = std::str::from_utf8(target).map_err(|_| refuse("its target is not UTF-8"))?;
    if target.is_empty() || target.contains('\0') || target.starts_with('/') {
        return Err(refuse("its target is empty, absolute or contains NUL"));
    }
    let mut level = i64::from(depth) - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => level -= 1,
            _ => level += 1,
        }
        if level < 0 {
            return Err(refuse("its target climbs out of the tree"));
        }
    }
    Ok(target.to_owned())
}

/// Creates the links, then resolves each for real: lexical checks miss chains
/// (`x -> d/l/..` with `d/l -> ..`), so every link must land on an existing
/// path inside the tree.
fn create_links(root: &Path, links: &[(PathBuf, String)]) -> Result<(), StorageError> {
    for (path, target) in links {
        #[cfg(unix)]
        std::os::unix::fs::symlink(target, path).map_err(StorageError::io(path))?;
        #[cfg(not(unix))]
        return Err(StorageError::Symlink {
            path: path.clone(),
            reason: format!("cannot create links here ({target})").into(),
        });
    }
    let real_root = root.canonicalize().map_err(StorageError::io(root))?;
    for (path, _) in links {
        let refuse =
            |reason: &str| StorageError::Symlink { path: path.clone(), reason: reason.into() };
        match path.canonicalize() {
            Ok(real) if real.starts_with(&real_root) => {}
            Ok(_) => return Err(refuse("it resolves outside the tree")),
            Err(_) => return Err(refuse("it dangles (its target does not exist)")),
        }
    }
    Ok(())
}
