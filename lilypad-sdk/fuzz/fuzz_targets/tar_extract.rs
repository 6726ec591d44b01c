//! Tar extraction of untrusted archives (`extract_tar_safe`).
//!
//! Input: the archive bytes. Each run extracts into `<tmp>/p/out` beside a
//! bait file `<tmp>/bait`. Properties: nothing panics; on error nothing is
//! left in `<tmp>/p` (no `out`, no temporary directory); on success `<tmp>/p`
//! holds only `out`, and inside it every symbolic link resolves to a path
//! inside `out`, no file is hard-linked to anything outside it, there are no
//! special files, the nesting and entry caps hold and the returned byte count
//! is the content actually written. The bait is never touched either way.
#![no_main]

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use libfuzzer_sys::fuzz_target;
use lilypad_sdk::storage::{Limits, extract_tar_safe};

const LIMITS: Limits = Limits { max_total_bytes: 1 << 20, max_entries: 256, max_depth: 8 };
const BAIT: &[u8] = b"bait: must never change";

fn scratch() -> tempfile::TempDir {
    // tmpfs when there is one: thousands of extractions a second.
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_owned() } else { std::env::temp_dir() };
    tempfile::Builder::new().prefix("lilypad-fuzz-tar-").tempdir_in(base).expect("scratch dir")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every path below `dir`, without following links, with its depth (1 = a child of `dir`).
fn walk(dir: &Path, depth: u32, out: &mut Vec<(PathBuf, u32)>) {
    for e in fs::read_dir(dir).expect("read_dir") {
        let path = e.expect("entry").path();
        let meta = fs::symlink_metadata(&path).expect("lstat");
        out.push((path.clone(), depth));
        if meta.is_dir() {
            walk(&path, depth + 1, out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let tmp = scratch();
    let bait = tmp.path().join("bait");
    fs::write(&bait, BAIT).expect("bait");
    let parent = tmp.path().join("p");
    fs::create_dir(&parent).expect("parent");
    let dest = parent.join("out");

    let result = extract_tar_safe(data, &dest, &LIMITS);

    let bait_meta = fs::symlink_metadata(&bait).expect("the bait is still there");
    assert!(bait_meta.is_file() && bait_meta.nlink() == 1, "the bait was linked or replaced");
    assert_eq!(fs::read(&bait).expect("bait"), BAIT, "the bait was written");
    assert_eq!(names(tmp.path()), ["bait", "p"], "something appeared beside the destination");

    let bytes = match result {
        Err(e) => {
            let _ = e.to_string();
            assert!(names(&parent).is_empty(), "a failed extraction left {:?}", names(&parent));
            return;
        }
        Ok(bytes) => bytes,
    };
    assert_eq!(names(&parent), ["out"], "leftovers beside the destination");
    let real_dest = dest.canonicalize().expect("dest");
    let mut entries = Vec::new();
    walk(&dest, 1, &mut entries);
    assert!(entries.len() as u64 <= LIMITS.max_entries, "{} entries", entries.len());
    // Paths inside `out` per inode, to compare with each file's link count.
    let mut links: HashMap<u64, (u64, u64)> = HashMap::new();
    for (path, depth) in &entries {
        assert!(*depth <= LIMITS.max_depth + 1, "{} is {depth} levels deep", path.display());
        let meta = fs::symlink_metadata(path).expect("lstat");
        let kind = meta.file_type();
        if kind.is_symlink() {
            let real =
                path.canonicalize().unwrap_or_else(|e| panic!("{} dangles: {e}", path.display()));
            assert!(
                real.starts_with(&real_dest),
                "{} resolves to {}",
                path.display(),
                real.display()
            );
        } else if kind.is_file() {
            links.entry(meta.ino()).or_insert((0, meta.size())).0 += 1;
        } else {
            assert!(kind.is_dir(), "{} is a special file ({kind:?})", path.display());
        }
    }
    for (path, _) in &entries {
        let meta = fs::symlink_metadata(path).expect("lstat");
        if meta.file_type().is_file() {
            let inside = links[&meta.ino()].0;
            assert_eq!(
                inside,
                meta.nlink(),
                "{} is hard-linked outside the destination",
                path.display()
            );
        }
    }
    let written: u64 = links.values().map(|(_, size)| size).sum();
    assert_eq!(written, bytes, "returned byte count differs from the content written");
});
