//! HAMT-sharded directories: our CIDs equal real kubo's (the oracle of
//! `storage.rs`) for directories of 10,000 and 100,000 files, at the sharding
//! threshold's edges and for sharded directories nested in sharded ones; and
//! sharded trees fetch back, verified, through the real content store.

use std::{
    fs,
    path::{Path, PathBuf},
};

use lilypad_sdk::storage::{
    self, ContentStore, StorageClient,
    unixfs::{self, HAMT_SHARDING_SIZE},
};

use super::storage::{kubo_cids, snapshot};

/// A temporary directory in memory (tmpfs) where Linux has one: these tests
/// make and delete hundreds of thousands of small files, which takes minutes
/// on a busy disk and is not what they test.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let in_memory = shm.is_dir().then(|| tempfile::tempdir_in(shm).ok()).flatten();
    in_memory.unwrap_or_else(|| tempfile::tempdir().expect("temp dir"))
}

/// Bytes of a CIDv0 in kubo's size estimate.
const CID_BYTES: usize = 34;

/// Writes one small file per name into `dir` (created), two threads at once.
fn files(dir: &Path, names: &[String]) {
    fs::create_dir_all(dir).expect("mkdir");
    let (a, b) = names.split_at(names.len() / 2);
    std::thread::scope(|s| {
        for half in [a, b] {
            s.spawn(move || {
                for name in half {
                    fs::write(dir.join(name), name.as_bytes()).expect("write test file");
                }
            });
        }
    });
}

/// `n` names of exactly `len` bytes (`len` >= 6).
fn names(n: usize, len: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let head = format!("{prefix}{i:06}");
            format!("{head}{}", "x".repeat(len - head.len()))
        })
        .collect()
}

/// kubo's estimate of a directory of `names` holding small files.
fn estimate(names: &[String]) -> usize {
    names.iter().map(|n| n.len() + CID_BYTES).sum()
}

/// Whether the root block `unixfs::add_path` made for `dir` is a HAMT shard:
/// its UnixFS data (the block's last field) ends with hashType 0x22, fanout 256.
fn is_sharded(dir: &Path) -> bool {
    let dag = unixfs::add_path(dir).expect("package");
    let root = dag.blocks.last().expect("root block");
    assert_eq!(root.cid, dag.root);
    if root.data.ends_with(&[0x28, 0x22, 0x30, 0x80, 0x02]) {
        true
    } else {
        assert!(
            root.data.ends_with(&[0x0a, 0x02, 0x08, 0x01]),
            "neither a basic directory nor a shard"
        );
        false
    }
}

fn assert_match_kubo(paths: &[PathBuf]) {
    let kubo = kubo_cids(paths);
    let mut mismatches = Vec::new();
    for p in paths {
        let ours = unixfs::cid_of_path(p).expect("package").to_string();
        let theirs =
            kubo.get(p).unwrap_or_else(|| panic!("the oracle printed no CID for {}", p.display()));
        if &ours != theirs {
            mismatches.push(format!("{}: ours {ours}, kubo {theirs}", p.display()));
        }
    }
    assert!(mismatches.is_empty(), "CIDs differ from kubo's:\n{}", mismatches.join("\n"));
}

/// Publishes `tree` into a store served over HTTP, fetches it back and compares.
async fn round_trip(tree: &Path) {
    let dir = scratch();
    // A store without an fsync per block: the test is about the DAG, and
    // thousands of fsyncs take minutes on a slow disk.
    let store = ContentStore::open(dir.path().join("store")).expect("store").without_fsync();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = storage::serve(store.clone(), listener).await.expect("serve");
    let tree_owned = tree.to_owned();
    let store_for_add: ContentStore = store.clone();
    let t = std::time::Instant::now();
    let root = tokio::task::spawn_blocking(move || {
        let mut sink = &store_for_add;
        unixfs::add_path_to(&tree_owned, &mut sink)
    })
    .await
    .expect("join")
    .expect("publish into the store");
    assert!(store.has(&root.cid));
    eprintln!("TIMING add {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let client = StorageClient::new(&server.url()).expect("client");
    let dest = dir.path().join("fetched");
    let summary = client.fetch(&root.cid, &dest).await.expect("fetch a sharded tree");
    eprintln!("TIMING fetch {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let (ours, theirs) = (snapshot(&dest), snapshot(tree));
    assert_eq!(summary.entries, theirs.len() as u64);
    assert!(ours == theirs, "the fetched tree differs from {}", tree.display());
    eprintln!("TIMING snapshot {:?}", t.elapsed());
    let t = std::time::Instant::now();
    drop(client);
    server.shutdown().await.expect("shutdown");
    eprintln!("TIMING shutdown {:?}", t.elapsed());
    let t = std::time::Instant::now();
    drop(dir);
    eprintln!("TIMING rm {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharding_matches_kubo_at_the_edges_nested_and_with_10_000_files() {
    let work = scratch();
    let d = work.path();
    // 30-byte names: 64 estimated bytes a link, 4,096 links = exactly 262,144.
    assert_eq!(HAMT_SHARDING_SIZE, 4096 * (30 + CID_BYTES));
    let base = names(4095, 30, "e");
    let with_last = |len: usize| {
        let mut v = base.clone();
        v.extend(names(1, len, "last"));
        v
    };
    let edges = [
        ("one-link-below", base.clone(), false),
        ("one-byte-below", with_last(29), false),
        ("exactly-at", with_last(30), true),
        ("one-byte-above", with_last(31), true),
        ("one-link-above", names(4097, 30, "e"), true),
    ];
    let mut paths = Vec::new();
    for (what, list, sharded) in &edges {
        let expected = match *what {
            "one-link-below" => HAMT_SHARDING_SIZE - 64,
            "one-byte-below" => HAMT_SHARDING_SIZE - 1,
            "exactly-at" => HAMT_SHARDING_SIZE,
            "one-byte-above" => HAMT_SHARDING_SIZE + 1,
            _ => HAMT_SHARDING_SIZE + 64,
        };
        assert_eq!(estimate(list), expected, "{what}");
        let p = d.join(what);
        files(&p, list);
        assert_eq!(is_sharded(&p), *sharded, "{what}");
        paths.push(p);
    }

    // Sharded in sharded, with unicode names, a basic directory and a link inside.
    let nested = d.join("nested");
    let unicode: Vec<String> =
        (0..4100).map(|i| format!("\u{444}\u{43e}\u{442}\u{43e}\u{433}\u{440}\u{430}\u{444}\u{438}\u{44f}-\u{e9}-\u{540d}\u{524d}-{i:05}.txt")).collect();
    assert!(estimate(&unicode) >= HAMT_SHARDING_SIZE);
    files(&nested.join("shard-a"), &unicode);
    files(&nested.join("shard-a/inner"), &names(4100, 40, "inner-"));
    files(&nested.join("shard-a/small"), &names(3, 8, "s"));
    std::os::unix::fs::symlink("inner", nested.join("shard-a/link-to-inner")).expect("link");
    fs::write(nested.join("stdout"), b"done\n").expect("write");
    assert!(is_sharded(&nested.join("shard-a")) && is_sharded(&nested.join("shard-a/inner")));
    assert!(!is_sharded(&nested));
    paths.extend([nested.clone(), nested.join("shard-a"), nested.join("shard-a/inner")]);

    let ten_k = d.join("10000-files");
    files(&ten_k, &(0..10_000).map(|i| format!("file-{i:05}")).collect::<Vec<_>>());
    paths.push(ten_k.clone());

    let t = std::time::Instant::now();
    assert_match_kubo(&paths);
    eprintln!("TIMING oracle {:?}", t.elapsed());
    let t = std::time::Instant::now();
    round_trip(&nested).await;
    eprintln!("TIMING nested {:?}", t.elapsed());
}

/// The slowest storage test (about a minute on 2 cores): making 100,000
/// files, kubo hashing them, and a verified fetch of them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_100_000_files_matches_kubo_and_fetches() {
    let work = scratch();
    let dir = work.path().join("100000-files");
    files(&dir, &(0..100_000).map(|i| format!("file-{i:06}")).collect::<Vec<_>>());
    assert_match_kubo(std::slice::from_ref(&dir));
    // With the default limits: 100,000 entries below the root pass.
    round_trip(&dir).await;
}
