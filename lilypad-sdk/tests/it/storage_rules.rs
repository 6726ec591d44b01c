//! Downloads accept exactly what publishers publish: a tree passes the
//! publishing side's checks (`check_tree`, `add_path`) if and only if a fetch
//! of its DAG through the real content store (on disk, over HTTP) accepts it.
//!
//! Each tree is a model: written to disk where a file system can hold it (the
//! publisher's input), and turned into a DAG without any check (what a
//! provider would upload). A tree the disk cannot hold (an empty name, `..`)
//! must be refused by the fetch.

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    fs,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use lilypad_sdk::storage::{
    self, ClientOptions, ContentStore, Limits, ServerOptions, StorageClient, StorageError,
    unixfs::{self, Added, DirectoryBuilder},
};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{RngAlgorithm, TestRng, TestRunner},
};

use super::storage::{listing, snapshot, start_store};

/// A tree to publish and fetch.
#[derive(Debug, Clone)]
enum M {
    File(Vec<u8>),
    Dir(Vec<(Vec<u8>, Self)>),
    Link(String),
}

fn dir(entries: Vec<(&[u8], M)>) -> M {
    M::Dir(entries.into_iter().map(|(n, m)| (n.to_vec(), m)).collect())
}

fn file(bytes: &[u8]) -> M {
    M::File(bytes.to_vec())
}

fn link(target: &str) -> M {
    M::Link(target.into())
}

/// `depth` directories nested in one another, named `d`.
fn nested(depth: usize) -> M {
    (0..depth).fold(M::Dir(Vec::new()), |inner, _| dir(vec![(b"d", inner)]))
}

/// Writes the model to `path`; `false` when a file system cannot hold it.
fn materialize(m: &M, path: &Path) -> bool {
    match m {
        M::File(bytes) => fs::write(path, bytes).is_ok(),
        M::Link(target) => std::os::unix::fs::symlink(target, path).is_ok(),
        M::Dir(entries) => {
            if fs::create_dir(path).is_err() {
                return false;
            }
            entries.iter().all(|(name, child)| {
                let plain = !name.is_empty()
                    && name != b"."
                    && name != b".."
                    && !name.contains(&b'/')
                    && !name.contains(&0);
                let child_path = path.join(OsStr::from_bytes(name));
                plain && !child_path.exists() && materialize(child, &child_path)
            })
        }
    }
}

/// The model's DAG, built without any check (as a hostile or careless publisher could).
fn to_dag(m: &M, store: &ContentStore) -> Added {
    let mut sink = store;
    match m {
        M::File(bytes) => unixfs::add_reader(&bytes[..], Path::new("f"), &mut sink).expect("file"),
        M::Link(target) => unixfs::add_symlink(target, &mut sink).expect("link"),
        M::Dir(entries) => {
            let mut d = DirectoryBuilder::new();
            for (name, child) in entries {
                d.add_raw_name(name.clone(), to_dag(child, store));
            }
            d.finish(&mut sink).expect("dir")
        }
    }
}

/// Checks one tree both ways and returns whether it was accepted.
async fn publishable_iff_downloadable(
    what: &str,
    m: &M,
    limits: Limits,
    store: &ContentStore,
    client_url: &str,
) -> bool {
    let work = tempfile::tempdir().expect("temp dir");
    let tree = work.path().join("tree");
    let on_disk = materialize(m, &tree);
    let root = to_dag(m, store).cid;
    let client =
        StorageClient::with_options(client_url, ClientOptions { limits, ..Default::default() })
            .expect("client");
    let out = work.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    let fetched = client.fetch(&root, &out.join("fetched")).await;
    if !on_disk {
        let err = fetched.expect_err(&format!("{what}: a tree no disk can hold must not fetch"));
        assert!(err.is_tree_rule(), "{what}: {err}");
        assert!(listing(&out).is_empty(), "{what}: a refused fetch left {:?}", listing(&out));
        return false;
    }
    let published = storage::check_tree(&tree, &limits);
    match (&published, &fetched) {
        (Ok(()), Ok(_)) => {
            let back = out.join("fetched");
            if tree.is_file() {
                assert_eq!(
                    fs::read(&back).expect("read"),
                    fs::read(&tree).expect("read"),
                    "{what}"
                );
            } else {
                assert_eq!(snapshot(&back), snapshot(&tree), "{what}: same tree back");
            }
            if limits == Limits::default() {
                // What was fetched is exactly what publishing produces.
                assert_eq!(unixfs::cid_of_path(&tree).expect("publish"), root, "{what}");
            }
        }
        (Err(p), Err(f)) => {
            assert!(p.is_tree_rule() && f.is_tree_rule(), "{what}: {p} / {f}");
            assert!(listing(&out).is_empty(), "{what}: a refused fetch left {:?}", listing(&out));
            if limits == Limits::default() {
                let err = unixfs::cid_of_path(&tree).expect_err(what);
                assert_eq!(err.to_string(), p.to_string(), "{what}: one check, one answer");
            }
        }
        (p, f) => panic!("{what}: publishing says {p:?}, fetching says {f:?}"),
    }
    published.is_ok()
}

/// Runs the closure with a content store served over HTTP.
fn with_store(f: impl AsyncFnOnce(&ContentStore, &str)) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, server) =
            start_store(&dir.path().join("store"), ServerOptions::default()).await;
        f(&store, &server.url()).await;
        server.shutdown().await.expect("shutdown");
    });
}

#[test]
fn table_of_trees_publishable_iff_downloadable() {
    let long = |n: usize| vec![b'n'; n];
    let d255 = "d".repeat(255);
    // 11 directories of 255 bytes, one of 254: 3,070 bytes; then a file name.
    let deep_path = |file_name: &[u8]| {
        let mut m = dir(vec![(file_name, file(b"x"))]);
        m = dir(vec![(&b"e".repeat(254), m)]);
        for _ in 0..11 {
            m = dir(vec![(d255.as_bytes(), m)]);
        }
        m
    };
    let defaults = Limits::default();
    let few = Limits { max_entries: 4, max_total_bytes: 10, ..Limits::default() };
    let ok = file(b"ok");
    let cases: Vec<(&str, M, Limits, bool)> = vec![
        (
            "plain tree",
            dir(vec![(b"a", ok.clone()), (b"d", dir(vec![(b"b", file(b""))]))]),
            defaults,
            true,
        ),
        ("single file", file(b"just a file"), defaults, true),
        ("backslash in a name", dir(vec![(b"a\\b", ok.clone())]), defaults, false),
        ("non-UTF-8 name", dir(vec![(b"caf\xe9", ok.clone())]), defaults, false),
        ("empty name", dir(vec![(b"", ok.clone())]), defaults, false),
        ("name '.'", dir(vec![(b".", ok.clone())]), defaults, false),
        ("name '..'", dir(vec![(b"..", ok.clone())]), defaults, false),
        ("slash in a name", dir(vec![(b"a/b", ok.clone())]), defaults, false),
        ("NUL in a name", dir(vec![(b"a\0b", ok.clone())]), defaults, false),
        ("duplicate names", dir(vec![(b"a", ok.clone()), (b"a", file(b"2"))]), defaults, false),
        ("name of 255 bytes", dir(vec![(&long(255), ok.clone())]), defaults, true),
        ("name of 256 bytes", dir(vec![(&long(256), ok.clone())]), defaults, false),
        (
            "hidden and unicode names",
            dir(vec![(b".h", ok.clone()), ("\u{e9}t\u{e9} \u{540d}".as_bytes(), ok.clone())]),
            defaults,
            true,
        ),
        ("depth 64", nested(64), defaults, true),
        ("depth 65", nested(65), defaults, false),
        ("path of 3,072 bytes", deep_path(b"x"), defaults, true),
        ("path of 3,073 bytes", deep_path(b"xy"), defaults, false),
        (
            "4 entries, limit 4",
            dir(vec![(b"a", file(b"")), (b"b", dir(vec![(b"c", file(b"")), (b"d", file(b""))]))]),
            few,
            true,
        ),
        (
            "5 entries, limit 4",
            dir(vec![
                (b"a", file(b"")),
                (b"b", dir(vec![(b"c", file(b"")), (b"d", file(b"")), (b"e", file(b""))])),
            ]),
            few,
            false,
        ),
        (
            "10 bytes, limit 10",
            dir(vec![(b"a", file(b"12345")), (b"b", file(b"67890"))]),
            few,
            true,
        ),
        (
            "11 bytes, limit 10",
            dir(vec![(b"a", file(b"12345")), (b"b", file(b"678901"))]),
            few,
            false,
        ),
        ("link to a file", dir(vec![(b"f", ok.clone()), (b"l", link("f"))]), defaults, true),
        ("link to a directory", dir(vec![(b"d", dir(vec![])), (b"l", link("d/"))]), defaults, true),
        ("link to its own directory", dir(vec![(b"l", link("."))]), defaults, true),
        ("link up to the root", dir(vec![(b"d", dir(vec![(b"l", link(".."))]))]), defaults, true),
        (
            "link up and down",
            dir(vec![(b"f", ok.clone()), (b"d", dir(vec![(b"l", link("../f"))]))]),
            defaults,
            true,
        ),
        (
            "link through a link",
            dir(vec![
                (b"f", ok.clone()),
                (b"d", dir(vec![(b"l", link(".."))])),
                (b"x", link("d/l/f")),
            ]),
            defaults,
            true,
        ),
        ("link out of the tree", dir(vec![(b"l", link("../x"))]), defaults, false),
        (
            "link out and back in",
            dir(vec![(b"f", ok.clone()), (b"l", link("../tree/f"))]),
            defaults,
            false,
        ),
        ("absolute link", dir(vec![(b"l", link("/etc/passwd"))]), defaults, false),
        ("dangling link", dir(vec![(b"l", link("nowhere"))]), defaults, false),
        ("link through a file", dir(vec![(b"f", ok), (b"l", link("f/"))]), defaults, false),
        ("link loop", dir(vec![(b"a", link("b")), (b"b", link("a"))]), defaults, false),
        ("self link", dir(vec![(b"l", link("l"))]), defaults, false),
        (
            "link chain out",
            dir(vec![(b"d", dir(vec![(b"l", link(".."))])), (b"x", link("d/l/.."))]),
            defaults,
            false,
        ),
        ("root is a link", link("."), defaults, false),
    ];
    with_store(async |store, url| {
        for (what, m, limits, expected) in &cases {
            let accepted = publishable_iff_downloadable(what, m, *limits, store, url).await;
            assert_eq!(accepted, *expected, "{what}");
        }
    });
}

/// Names a file system holds, some of which the rules refuse.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a".to_vec()),
        Just(b"b".to_vec()),
        Just(b".hidden".to_vec()),
        Just("\u{e9}".as_bytes().to_vec()),
        Just(b"back\\slash".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(vec![b'n'; 255]),
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a"),
        Just("b/a"),
        Just("../a"),
        Just(".."),
        Just("."),
        Just("a/"),
        Just("b/.."),
        Just("b/../.."),
        Just("/abs"),
        Just("nowhere"),
    ]
    .prop_map(str::to_owned)
}

fn tree() -> impl Strategy<Value = M> {
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(M::File),
        target().prop_map(M::Link),
    ];
    let inner = leaf.prop_recursive(4, 24, 4, |inner| {
        proptest::collection::btree_map(name(), inner, 0..4)
            .prop_map(|m: BTreeMap<Vec<u8>, M>| M::Dir(m.into_iter().collect()))
    });
    proptest::collection::btree_map(name(), inner, 0..5)
        .prop_map(|m| M::Dir(m.into_iter().collect()))
}

#[test]
fn random_trees_are_publishable_iff_downloadable() {
    let strategy = (tree(), 1u64..12, 2u32..5, 0u64..24);
    let config =
        ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    let mut accepted = 0;
    with_store(async |store, url| {
        let cases = config.cases;
        // A fixed seed: the assertion that both outcomes occur is about these trees,
        // not about a run's luck.
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let mut trees = Vec::new();
        // Generated first, checked after: the checks are async.
        for _ in 0..cases {
            trees.push(strategy.new_tree(&mut runner).expect("tree").current());
        }
        for (i, (m, max_entries, max_depth, max_total_bytes)) in trees.into_iter().enumerate() {
            let limits = Limits { max_entries, max_depth, max_total_bytes };
            let what = format!("random tree {i} with {limits:?}: {m:?}");
            if publishable_iff_downloadable(&what, &m, limits, store, url).await {
                accepted += 1;
            }
        }
    });
    // Both outcomes occur, so the property is not vacuous.
    assert!((1..64).contains(&accepted), "{accepted} of 64 random trees accepted");
}

#[test]
fn unpublishable_outputs_are_refused_with_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = dir.path().join("results");
    fs::create_dir_all(tree.join("outputs/sub")).expect("mkdir");
    fs::write(tree.join("outputs/sub/a\\b.txt"), b"x").expect("write");
    let err = unixfs::cid_of_path(&tree).expect_err("backslash");
    assert!(matches!(err, StorageError::UnsafeName { .. }), "{err}");
    assert!(err.to_string().contains("\"outputs/sub/a\\\\b.txt\""), "{err}");
    assert!(err.to_string().contains("'\\'"), "{err}");

    let deep = dir.path().join("deep");
    let mut p: PathBuf = deep.clone();
    for _ in 0..65 {
        p.push("d");
    }
    fs::create_dir_all(&p).expect("mkdir");
    let err = storage::check_tree(&deep, &Limits::default()).expect_err("too deep");
    assert!(matches!(err, StorageError::LimitExceeded { limit: 64, .. }), "{err}");
    assert!(err.to_string().contains(&format!("\"{}\"", vec!["d"; 65].join("/"))), "{err}");
}
