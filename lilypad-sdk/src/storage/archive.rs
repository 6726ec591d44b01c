//! Unpacking tar archives from untrusted sources without letting them escape.

use std::{
    fs,
    io::Read,
    path::{Component, Path, PathBuf},
};

use tar::{Archive, EntryType};

use super::{
    Limits, StorageError,
    rules::{self, DiskView, MAX_PATH_BYTES, TreeCheck},
};

fn refuse(path: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::UnsafeTarEntry { path: path.display().to_string(), reason: reason.into() }
}

/// A refusal of the tree rules, told as a refused tar entry.
fn rule_refusal(path: &Path, e: StorageError) -> StorageError {
    match e {
        StorageError::UnsafeName { reason, .. } | StorageError::Symlink { reason, .. } => {
            refuse(path, reason)
        }
        other => other,
    }
}

/// The entry's path as plain names below the root; `..`, absolute paths and
/// drive prefixes are refused, `.` components dropped, and every name must
/// follow the [tree rules](super::rules).
fn plain_components(path: &Path) -> Result<Vec<&std::ffi::OsStr>, StorageError> {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => {
                rules::check_name("", name.as_encoded_bytes())
                    .map_err(|e| rule_refusal(path, e))?;
                out.push(name);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse(path, "'..' in the path")),
            Component::RootDir | Component::Prefix(_) => return Err(refuse(path, "absolute path")),
        }
    }
    Ok(out)
}

/// Where a relative link target lands, lexically, from the directory `from`
/// (components below the root); `None` if it climbs above the root.
fn resolve_lexically(from: &[&std::ffi::OsStr], target: &Path) -> Option<usize> {
    let mut depth = from.len();
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1)?,
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(depth)
}

/// The kind of thing the tar reader will create for `entry`. It unpacks a file
/// entry whose name ends in '/' in a pre-POSIX header as a directory (old BSD
/// tar's convention), so such an entry must be checked and counted as one: its
/// size is not content.
fn unpacked_kind<R: Read>(entry: &tar::Entry<'_, R>) -> EntryType {
    let kind = entry.header().entry_type();
    let old_dir = entry.header().as_ustar().is_none() && entry.path_bytes().ends_with(b"/");
    match kind {
        EntryType::Regular | EntryType::Continuous if old_dir => EntryType::Directory,
        other => other,
    }
}

/// Unpacks a tar stream into `dest`, which must not exist yet.
///
/// Refused, with [`StorageError::UnsafeTarEntry`]: absolute paths and `..`;
/// names and symbolic links the [tree rules](super::rules) refuse (links that
/// are absolute, climb above `dest`, dangle or loop, through other links too);
/// hard links to anything but a regular file already unpacked; devices, FIFOs
/// and other special entries. The [`Limits`] cap the bytes, the number of
/// entries and the depth (components of an entry's path), as for a fetch. Entries are
/// unpacked into a temporary directory beside `dest`, renamed to `dest` only
/// when the whole archive passed: on error nothing appears at `dest`.
/// Returns the bytes of file content unpacked.
pub fn extract_tar_safe(
    reader: impl Read,
    dest: &Path,
    limits: &Limits,
) -> Result<u64, StorageError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(StorageError::DestinationExists { path: dest.to_owned() });
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".lilypad-untar-")
        .tempdir_in(parent)
        .map_err(StorageError::io(parent))?;
    let root = tmp.path().join("content");
    fs::create_dir(&root).map_err(StorageError::io(&root))?;

    let mut archive = Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(false);
    archive.set_unpack_xattrs(false);
    let (mut bytes, mut entries) = (0u64, 0u64);
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    for entry in archive.entries().map_err(StorageError::io(dest))? {
        let mut entry = entry.map_err(StorageError::io(dest))?;
        let path = entry.path().map_err(StorageError::io(dest))?.into_owned();
        let parts = plain_components(&path)?;
        let kind = unpacked_kind(&entry);
        if parts.is_empty() {
            if kind.is_dir() {
                continue; // "./": the root itself
            }
            return Err(refuse(&path, "empty path"));
        }
        let rel = parts.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>().join("/");
        entries += 1;
        if entries > limits.max_entries {
            return Err(StorageError::LimitExceeded {
                what: "archive entries",
                limit: limits.max_entries,
                path: rel,
            });
        }
        if parts.len() > limits.max_depth as usize {
            return Err(StorageError::LimitExceeded {
                what: "levels of directories",
                limit: u64::from(limits.max_depth),
                path: rel,
            });
        }
        if rel.len() > MAX_PATH_BYTES {
            return Err(refuse(&path, format!("its path is longer than {MAX_PATH_BYTES} bytes")));
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                bytes += entry.header().size().map_err(StorageError::io(dest))?;
                if bytes > limits.max_total_bytes {
                    return Err(StorageError::LimitExceeded {
                        what: "bytes of file content",
                        limit: limits.max_total_bytes,
                        path: rel,
                    });
                }
            }
            EntryType::Directory => {}
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(StorageError::io(dest))?
                    .ok_or_else(|| refuse(&path, "symlink without target"))?;
                if target.is_absolute() {
                    return Err(refuse(
                        &path,
                        format!("symlink to the absolute path {}", target.display()),
                    ));
                }
                if resolve_lexically(&parts[..parts.len() - 1], &target).is_none() {
                    return Err(refuse(
                        &path,
                        format!("symlink to {} escapes the destination", target.display()),
                    ));
                }
                let text = target.as_os_str().as_encoded_bytes();
                rules::check_link_target(&rel, text).map_err(|e| rule_refusal(&path, e))?;
                links.push((parts.iter().collect(), rel));
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(StorageError::io(dest))?
                    .ok_or_else(|| refuse(&path, "hard link without target"))?;
                let target_parts = plain_components(&target).map_err(|_| {
                    refuse(
                        &path,
                        format!("hard link to {} escapes the destination", target.display()),
                    )
                })?;
                let existing = root.join(target_parts.iter().collect::<PathBuf>());
                let is_file = fs::symlink_metadata(&existing).is_ok_and(|m| m.is_file());
                if !is_file {
                    return Err(refuse(
                        &path,
                        format!("hard link to {}, not a file unpacked before it", target.display()),
                    ));
                }
            }
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            other => {
                return Err(refuse(
                    &path,
                    format!("special entry type {other:?} (device, FIFO, ...)"),
                ));
            }
        }
        // unpack_in refuses to write through a symlinked parent that leads outside `root`.
        if !entry.unpack_in(&root).map_err(StorageError::io(root.join(&path)))? {
            return Err(refuse(&path, "refused by the tar reader"));
        }
    }
    // Lexical checks miss chains (`a -> b/..` where b is itself a link): resolve
    // every link as the tree rules do now that the whole tree exists, then ask
    // the kernel too.
    let unbounded = Limits { max_entries: u64::MAX, ..*limits };
    let mut check = TreeCheck::new(&unbounded);
    for (_, rel) in &links {
        let target = fs::read_link(root.join(rel)).map_err(StorageError::io(root.join(rel)))?;
        check
            .link(rel, target.as_os_str().as_encoded_bytes())
            .map_err(|e| rule_refusal(Path::new(rel), e))?;
    }
    check.resolve_links(&DiskView(&root)).map_err(|e| match &e {
        StorageError::Symlink { path, .. } => rule_refusal(&path.clone(), e),
        _ => e,
    })?;
    let real_root = root.canonicalize().map_err(StorageError::io(&root))?;
    for (link, _) in links {
        let full = root.join(&link);
        match full.canonicalize() {
            Ok(real) if real.starts_with(&real_root) => {}
            Ok(real) => {
                return Err(refuse(
                    &link,
                    format!("symlink resolves outside the destination, to {}", real.display()),
                ));
            }
            Err(_) => return Err(refuse(&link, "dangling symlink")),
        }
    }
    fs::rename(&root, dest).map_err(StorageError::io(dest))?;
    Ok(bytes)
}
