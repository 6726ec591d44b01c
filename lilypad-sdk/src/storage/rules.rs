//! The tree rules: what a published tree may hold.
//!
//! One piece of code checks them on every side: packaging a directory
//! ([`unixfs::add_path`](super::unixfs::add_path), `storage cid`, a
//! provider's results), the HTTP `add`, [`StorageClient::fetch`](super::StorageClient::fetch)
//! and [`extract_tar_safe`](super::extract_tar_safe). So whatever a publisher
//! produces, a fetch with the default [`Limits`] accepts, and whatever a fetch
//! would refuse is refused when publishing, with an error naming the path
//! (relative to the tree's root).
//!
//! - **names**: UTF-8, 1 to [`MAX_NAME_BYTES`] bytes, not `.` or `..`, without
//!   `/`, `\` (a separator on Windows) or NUL, unique in their directory;
//! - **depth**: at most [`Limits::max_depth`] components below the root;
//! - **paths**: at most [`MAX_PATH_BYTES`] bytes from the root (`a/b/c`), so a
//!   download's destination keeps room under the 4,096-byte `PATH_MAX`;
//! - **counts**: at most [`Limits::max_entries`] entries and
//!   [`Limits::max_total_bytes`] of file content;
//! - **links**: the root is not a link; a target is UTF-8, 1 to
//!   [`MAX_LINK_TARGET_BYTES`] bytes, relative, without NUL, and resolves (as
//!   the kernel resolves it: component by component, following links, at most
//!   [`MAX_LINK_HOPS`] of them) to an existing entry of the tree without ever
//!   climbing above the root;
//! - **kinds**: regular files, directories and links; no devices, sockets or FIFOs.

use std::{
    collections::VecDeque,
    fs::{self, Metadata},
    io,
    path::{Path, PathBuf},
};

use super::{Limits, StorageError};

/// Longest entry name, in bytes (`NAME_MAX` of Linux file systems).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest path of an entry below the root, in bytes.
pub const MAX_PATH_BYTES: usize = 3072;
/// Longest link target, in bytes (what Linux `readlink` can return).
pub const MAX_LINK_TARGET_BYTES: usize = 4095;
/// Most links followed while resolving one link (Linux gives up after 40; a
/// lower bound here means every link we accept also resolves on disk).
pub const MAX_LINK_HOPS: u32 = 32;

/// `dir/name`, or `name` at the root.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

/// Checks one entry name; `dir` is its directory's path (for the message).
pub fn check_name<'n>(dir: &str, name: &'n [u8]) -> Result<&'n str, StorageError> {
    let refuse = |reason: &str| StorageError::UnsafeName {
        path: join(dir, &String::from_utf8_lossy(name)),
        reason: reason.into(),
    };
    let text = std::str::from_utf8(name).map_err(|_| refuse("its name is not valid UTF-8"))?;
    if text.is_empty() {
        return Err(refuse("its name is empty"));
    }
    if text == "." || text == ".." {
        return Err(refuse("its name is '.' or '..'"));
    }
    if text.contains('/') {
        return Err(refuse("its name contains '/'"));
    }
    if text.contains('\\') {
        return Err(refuse("its name contains '\\' (a path separator on Windows)"));
    }
    if text.contains('\0') {
        return Err(refuse("its name contains NUL"));
    }
    if text.len() > MAX_NAME_BYTES {
        return Err(refuse("its name is longer than 255 bytes"));
    }
    Ok(text)
}

/// Checks a link target's text (where it leads is checked by [`TreeCheck::resolve_links`]).
pub(crate) fn check_link_target<'t>(path: &str, target: &'t [u8]) -> Result<&'t str, StorageError> {
    let refuse = |reason: &str| StorageError::Symlink { path: path.into(), reason: reason.into() };
    let text = std::str::from_utf8(target).map_err(|_| refuse("its target is not valid UTF-8"))?;
    if text.is_empty() {
        return Err(refuse("its target is empty"));
    }
    if text.len() > MAX_LINK_TARGET_BYTES {
        return Err(refuse("its target is longer than 4095 bytes"));
    }
    if text.contains('\0') {
        return Err(refuse("its target contains NUL"));
    }
    if text.starts_with('/') {
        return Err(refuse("its target is an absolute path"));
    }
    Ok(text)
}

/// What is at a path of a tree.
pub(crate) enum Kind {
    Missing,
    File,
    Dir,
    Link(Vec<u8>),
}

/// A tree links are resolved in: on disk (publishing, fetching, unpacking)
/// or in memory (the HTTP `add`).
pub(crate) trait TreeView {
    /// What is at `path` (components below the root; each a valid name), not following a link there.
    fn kind(&self, path: &[&str]) -> Result<Kind, StorageError>;
}

/// A tree on disk under `root`.
pub(crate) struct DiskView<'a>(pub(crate) &'a Path);

impl TreeView for DiskView<'_> {
    fn kind(&self, path: &[&str]) -> Result<Kind, StorageError> {
        let full = path.iter().fold(self.0.to_owned(), |p, c| p.join(c));
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kind::Missing),
            Err(e) => return Err(StorageError::Io { path: full, source: e }),
        };
        Ok(if meta.is_symlink() {
            let target = fs::read_link(&full).map_err(StorageError::io(&full))?;
            Kind::Link(target.into_os_string().into_encoded_bytes())
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        })
    }
}

/// Resolves the link at `link` (a path below the root) as the kernel would,
/// but refusing to climb above the root.
fn resolve(view: &impl TreeView, link: &str) -> Result<(), StorageError> {
    let refuse =
        |reason: String| StorageError::Symlink { path: link.into(), reason: reason.into() };
    let mut dir: Vec<String> = link.split('/').map(str::to_owned).collect();
    let name = dir.pop().unwrap_or_default();
    let mut pending = VecDeque::from([name]);
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                if dir.pop().is_none() {
                    return Err(refuse("it leads out of the tree (above its root)".into()));
                }
            }
            name => {
                let mut here: Vec<&str> = dir.iter().map(String::as_str).collect();
                here.push(name);
                // No entry has a name the rules refuse.
                let kind = if check_name("", name.as_bytes()).is_ok() {
                    view.kind(&here)?
                } else {
                    Kind::Missing
                };
                match kind {
                    Kind::Missing => {
                        return Err(refuse(format!(
                            "it dangles: {:?} does not exist in the tree",
                            here.join("/")
                        )));
                    }
                    Kind::Dir => dir.push(name.to_owned()),
                    Kind::File if pending.is_empty() => return Ok(()),
                    Kind::File => {
                        return Err(refuse(format!(
                            "it goes through {:?}, a file, as if it were a directory",
                            here.join("/")
                        )));
                    }
                    Kind::Link(target) => {
                        hops += 1;
                        if hops > MAX_LINK_HOPS {
                            return Err(refuse(format!(
                                "more than {MAX_LINK_HOPS} links to follow (a loop?)"
                            )));
                        }
                        let target = check_link_target(&here.join("/"), &target)?;
                        for part in target.split('/').rev() {
                            pending.push_front(part.to_owned());
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The rules applied to one tree, entry by entry, as it is published or
/// fetched: both sides feed it the same entries, so both decide alike.
#[derive(Debug)]
pub(crate) struct TreeCheck<'a> {
    limits: &'a Limits,
    entries: u64,
    bytes: u64,
    links: Vec<String>,
}

impl<'a> TreeCheck<'a> {
    pub(crate) fn new(limits: &'a Limits) -> Self {
        Self { limits, entries: 0, bytes: 0, links: Vec::new() }
    }

    /// Entries counted so far.
    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    /// Bytes of file content counted so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many more entries the limits allow.
    pub(crate) fn entries_left(&self) -> u64 {
        self.limits.max_entries.saturating_sub(self.entries)
    }

    /// One entry `name` of the directory `dir`, which is `dir_depth` levels
    /// below the root: its name, depth and path length, and the entry count.
    /// Returns the name and the entry's path.
    pub(crate) fn entry(
        &mut self,
        dir: &str,
        dir_depth: u32,
        name: &[u8],
    ) -> Result<(String, String), StorageError> {
        let name = check_name(dir, name)?;
        let path = join(dir, name);
        if dir_depth >= self.limits.max_depth {
            return Err(StorageError::LimitExceeded {
                what: "levels of directories",
                limit: u64::from(self.limits.max_depth),
                path,
            });
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(StorageError::UnsafeName {
                path,
                reason: format!("its path is longer than {MAX_PATH_BYTES} bytes").into(),
            });
        }
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(StorageError::LimitExceeded {
                what: "entries (files, directories and links)",
                limit: self.limits.max_entries,
                path,
            });
        }
        Ok((name.to_owned(), path))
    }

    /// All the entries of one directory (as [`entry`](Self::entry), and
    /// unique names). Returns them sorted by name bytes, each with its path.
    pub(crate) fn directory<T>(
        &mut self,
        dir: &str,
        dir_depth: u32,
        mut entries: Vec<(Vec<u8>, T)>,
    ) -> Result<Vec<(String, String, T)>, StorageError> {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String, T)> = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            if out.last().is_some_and(|(last, _, _)| last.as_bytes() == name) {
                return Err(StorageError::UnsafeName {
                    path: join(dir, &String::from_utf8_lossy(&name)),
                    reason: "another entry of its directory has the same name".into(),
                });
            }
            let (name, path) = self.entry(dir, dir_depth, &name)?;
            out.push((name, path, value));
        }
        Ok(out)
    }

    /// `n` more bytes of content in the file at `path`.
    pub(crate) fn add_bytes(&mut self, path: &str, n: u64) -> Result<(), StorageError> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.limits.max_total_bytes {
            return Err(StorageError::LimitExceeded {
                what: "bytes of file content",
                limit: self.limits.max_total_bytes,
                path: path.to_owned(),
            });
        }
        Ok(())
    }

    /// A link at `path` (empty: the root) with `target`; checks the target's
    /// text now and where it leads in [`resolve_links`](Self::resolve_links).
    pub(crate) fn link<'t>(
        &mut self,
        path: &str,
        target: &'t [u8],
    ) -> Result<&'t str, StorageError> {
        if path.is_empty() {
            return Err(StorageError::Symlink {
                path: PathBuf::new(),
                reason: "the root of the tree is a link".into(),
            });
        }
        let target = check_link_target(path, target)?;
        self.links.push(path.to_owned());
        Ok(target)
    }

    /// Once the whole tree is there: every link resolves inside it.
    pub(crate) fn resolve_links(&self, view: &impl TreeView) -> Result<(), StorageError> {
        self.links.iter().try_for_each(|link| resolve(view, link))
    }
}

/// What a walk of a tree on disk builds from its entries: UnixFS nodes when
/// packaging, nothing when only checking.
pub(crate) trait Build {
    type Out;
    /// A regular file of `len` bytes.
    fn file(&mut self, path: &Path, len: u64) -> Result<Self::Out, StorageError>;
    /// A link (its target already checked).
    fn symlink(&mut self, target: &str) -> Result<Self::Out, StorageError>;
    /// A directory, from its entries sorted by name.
    fn directory(&mut self, entries: Vec<(String, Self::Out)>) -> Result<Self::Out, StorageError>;
}

/// Walks the tree at `root` in name order, applying the rules to every entry
/// before `build` sees it, then resolves its links.
pub(crate) fn walk_disk<B: Build>(
    root: &Path,
    limits: &Limits,
    build: &mut B,
) -> Result<B::Out, StorageError> {
    let meta = fs::symlink_metadata(root).map_err(StorageError::io(root))?;
    if meta.file_type().is_symlink() {
        return Err(StorageError::Symlink {
            path: root.to_owned(),
            reason: "the path to publish is itself a link".into(),
        });
    }
    let mut check = TreeCheck::new(limits);
    let out = visit(root, "", 0, &meta, &mut check, build)?;
    check.resolve_links(&DiskView(root))?;
    Ok(out)
}

fn visit<B: Build>(
    path: &Path,
    rel: &str,
    depth: u32,
    meta: &Metadata,
    check: &mut TreeCheck<'_>,
    build: &mut B,
) -> Result<B::Out, StorageError> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(path).map_err(StorageError::io(path))?;
        let target = target.into_os_string().into_encoded_bytes();
        let target = check.link(rel, &target)?;
        return build.symlink(target);
    }
    if kind.is_file() {
        check.add_bytes(rel, meta.len())?;
        return build.file(path, meta.len());
    }
    if !kind.is_dir() {
        let shown = if rel.is_empty() { path.to_owned() } else { PathBuf::from(rel) };
        return Err(StorageError::SpecialFile { path: shown });
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(path).map_err(StorageError::io(path))? {
        let entry = entry.map_err(StorageError::io(path))?;
        entries.push((entry.file_name().into_encoded_bytes(), entry.path()));
    }
    let mut built = Vec::with_capacity(entries.len());
    // Depth is checked before descending, so the recursion is bounded by `max_depth`.
    for (name, child_rel, child) in check.directory(rel, depth, entries)? {
        let meta = fs::symlink_metadata(&child).map_err(StorageError::io(&child))?;
        built.push((name, visit(&child, &child_rel, depth + 1, &meta, check, build)?));
    }
    build.directory(built)
}

/// Builds nothing: the rules only.
struct CheckOnly;

impl Build for CheckOnly {
    type Out = ();
    fn file(&mut self, _: &Path, _: u64) -> Result<(), StorageError> {
        Ok(())
    }
    fn symlink(&mut self, _: &str) -> Result<(), StorageError> {
        Ok(())
    }
    fn directory(&mut self, _: Vec<(String, ())>) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Checks the file or tree at `path` against the rules without packaging it
/// (the same checks publishing makes; see the module docs). A tree this
/// accepts with the default [`Limits`] fetches with them too.
pub fn check_tree(path: &Path, limits: &Limits) -> Result<(), StorageError> {
    walk_disk(path, limits, &mut CheckOnly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "a b", "\u{e9}t\u{e9}", ".hidden", "...", &"x".repeat(255)] {
            assert_eq!(check_name("d", ok.as_bytes()).unwrap(), ok);
        }
        for (bad, why) in [
            (&b""[..], "empty"),
            (b".", "'.'"),
            (b"..", "'..'"),
            (b"a/b", "'/'"),
            (b"a\\b", "'\\'"),
            (b"a\0b", "NUL"),
            (b"\xff", "UTF-8"),
            (&[b'x'; 256], "255"),
        ] {
            let err = check_name("d/e", bad).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains("\"d/e/"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn link_targets() {
        assert!(check_link_target("l", b"../a/b").is_ok());
        for bad in [&b""[..], b"/etc", b"a\0", b"\xfe", &[b'a'; 4096]] {
            assert!(check_link_target("l", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn depth_count_and_path_length() {
        let limits = Limits { max_entries: 2, max_depth: 2, ..Limits::default() };
        let mut check = TreeCheck::new(&limits);
        assert_eq!(check.entry("a", 1, b"b").unwrap().1, "a/b");
        let err = check.entry("a/b", 2, b"c").unwrap_err();
        assert!(err.to_string().contains("\"a/b/c\""), "{err}");
        check.entry("", 0, b"x").unwrap();
        assert!(matches!(check.entry("", 0, b"y"), Err(StorageError::LimitExceeded { .. })));
        let defaults = Limits::default();
        let mut check = TreeCheck::new(&defaults);
        let long = "d".repeat(200);
        let dir = vec![long.as_str(); 15].join("/");
        assert!(check.entry(&dir, 15, b"x").is_ok()); // 3,015 + 2 bytes
        let dir = vec![long.as_str(); 16].join("/");
        assert!(check.entry(&dir, 16, b"x").is_err()); // 3,216 bytes
    }
}
