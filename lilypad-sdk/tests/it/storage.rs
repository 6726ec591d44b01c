//! Results storage: CIDs against real kubo, publish/fetch through the real
//! HTTP store, tampered blocks, hostile DAGs and archives, body limits.
//!
//! The CID oracle is real kubo from the PyPI package `kubo-python`
//! (`tests/oracle/kubo_cid.py`); a missing python3 or kubo-python fails the
//! test with what to install.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use lilypad_sdk::storage::{
    self, ClientOptions, ContentStore, Limits, ServerHandle, ServerOptions, StorageClient,
    StorageError,
    unixfs::{self, DirectoryBuilder},
};
use tokio::net::TcpListener;

/// Deterministic pseudo-random bytes (splitmix64), so failures reproduce.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub(crate) fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("has a parent")).expect("create parent");
    fs::write(path, bytes).expect("write test file");
}

/// A nested tree: several levels, an empty directory, an empty file, a hidden
/// file, names with spaces and non-ASCII, a multi-chunk file deep down.
fn nested_tree(root: &Path) {
    write(&root.join("stdout"), b"hello from the job\n");
    write(&root.join("stderr"), b"");
    write(&root.join("exitCode"), b"0");
    write(&root.join(".hidden"), b"kubo's -H includes me");
    write(&root.join("outputs/result.json"), br#"{"ok":true}"#);
    write(&root.join("outputs/deep/er/still/data.bin"), &noise(300_000, 7));
    write(&root.join("outputs/deep/name with spaces.txt"), b"spaces");
    write(&root.join("outputs/deep/\u{e9}t\u{e9}.txt"), "unicode".as_bytes());
    write(&root.join("outputs/B-upper-sorts-first"), b"B");
    fs::create_dir_all(root.join("outputs/empty-dir")).expect("mkdir");
    fs::create_dir_all(root.join("outputs/deep/empty2")).expect("mkdir");
    // Links that stay inside the tree are kept, as kubo keeps them.
    std::os::unix::fs::symlink("deep/er", root.join("outputs/latest")).expect("symlink");
    std::os::unix::fs::symlink("../result.json", root.join("outputs/deep/link.json"))
        .expect("symlink");
}

/// Runs the kubo oracle on `paths`, returning path -> CID.
pub(crate) fn kubo_cids(paths: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/kubo_cid.py");
    let out = match Command::new("python3").arg(&script).args(paths).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run python3 ({e}): install Python 3 and run scripts/setup.sh"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the kubo oracle failed (install it with `python3 -m pip install kubo-python`, \
         scripts/setup.sh does it):\n{}",
        stderr.lines().filter(|l| !l.contains("DEBUG")).collect::<Vec<_>>().join("\n")
    );
    let stdout = String::from_utf8(out.stdout).expect("oracle prints UTF-8");
    stdout
        .lines()
        .map(|l| {
            let (cid, path) = l.split_once('\t').expect("CID<TAB>PATH");
            (PathBuf::from(path), cid.to_owned())
        })
        .collect()
}

#[test]
fn cids_match_kubo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    const K: usize = 1024;
    let sizes = [
        ("0B", 0),
        ("1B", 1),
        ("256KiB-1", 256 * K - 1),
        ("256KiB", 256 * K),
        ("256KiB+1", 256 * K + 1),
        ("1MiB", 1024 * K),
        ("10MiB", 10 * 1024 * K),
        // 175 chunks: more than 174 links, so a second level of internal nodes.
        ("175chunks", 175 * 256 * K),
        ("45MiB+3", 45 * 1024 * K + 3),
    ];
    let mut paths = Vec::new();
    for (i, (name, len)) in sizes.iter().enumerate() {
        let p = d.join(format!("file-{name}"));
        write(&p, &noise(*len, i as u64));
        paths.push(p);
    }
    let tree = d.join("tree");
    nested_tree(&tree);
    paths.extend([
        tree.clone(),
        tree.join("outputs"),
        tree.join("outputs/empty-dir"),
        tree.join("stderr"),
    ]);
    let flat = d.join("flat");
    for i in 0..200 {
        write(&flat.join(format!("f{i:03}")), format!("{i}").as_bytes());
    }
    paths.push(flat);

    let kubo = kubo_cids(&paths);
    let mut mismatches = Vec::new();
    for p in &paths {
        let ours = unixfs::cid_of_path(p).expect("package").to_string();
        let theirs =
            kubo.get(p).unwrap_or_else(|| panic!("the oracle printed no CID for {}", p.display()));
        if &ours != theirs {
            mismatches.push(format!("{}: ours {ours}, kubo {theirs}", p.display()));
        }
    }
    assert!(mismatches.is_empty(), "CIDs differ from kubo's:\n{}", mismatches.join("\n"));
    // The in-memory and streaming paths agree, and the well-known CID holds.
    assert_eq!(unixfs::add_path(&tree).expect("package").root.to_string(), kubo[&tree]);
    assert_eq!(kubo[&paths[0]], "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
}

pub(crate) async fn start_store(dir: &Path, opts: ServerOptions) -> (ContentStore, ServerHandle) {
    let store = ContentStore::open(dir).expect("open store");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = storage::serve_with(store.clone(), listener, opts).await.expect("serve");
    (store, server)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every path below `root` with what it is.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).expect("below root").to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            let what = if meta.is_symlink() {
                Entry::Link(fs::read_link(&path).expect("read link"))
            } else if meta.is_dir() {
                stack.push(path);
                Entry::Dir
            } else {
                Entry::File(fs::read(&path).expect("read"))
            };
            out.insert(rel, what);
        }
    }
    out
}

fn content_bytes(snap: &BTreeMap<String, Entry>) -> u64 {
    snap.values().map(|e| if let Entry::File(b) = e { b.len() as u64 } else { 0 }).sum()
}

#[tokio::test]
async fn publish_fetch_round_trip_through_http_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = dir.path().join("results");
    nested_tree(&tree);
    write(&tree.join("big.bin"), &noise(3 * 256 * 1024 + 5, 99));
    let (store, server) = start_store(&dir.path().join("store"), ServerOptions::default()).await;
    let client = StorageClient::new(&server.url()).expect("client");

    let cid = client.publish_dir(&tree).await.expect("publish");
    assert_eq!(cid, unixfs::cid_of_path(&tree).expect("package"), "published root = local CID");
    assert!(store.has(&cid));

    let dest = dir.path().join("fetched");
    let summary = client.fetch(&cid, &dest).await.expect("fetch");
    assert_eq!(snapshot(&dest), snapshot(&tree), "fetched tree equals the original");
    assert!(dest.join("outputs/empty-dir").is_dir());
    assert_eq!(summary.bytes, content_bytes(&snapshot(&tree)));
    assert_eq!(fs::read(dest.join("outputs/deep/link.json")).expect("via link"), br#"{"ok":true}"#);

    // A single file: publish_file, cat (client-verified) and the server's own /cat.
    let big = tree.join("big.bin");
    let file_cid = client.publish_file(&big).await.expect("publish file");
    assert_eq!(client.cat(&file_cid).await.expect("cat"), fs::read(&big).expect("read"));
    let served = reqwest::Client::new()
        .post(format!("{}/api/v0/cat?arg={file_cid}", server.url()))
        .send()
        .await
        .expect("cat request");
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.expect("body").to_vec(), fs::read(&big).expect("read"));

    // Fetching into an existing path is refused.
    let err = client.fetch(&cid, &dest).await.expect_err("dest exists");
    assert!(matches!(err, StorageError::DestinationExists { .. }), "{err}");
    server.shutdown().await.expect("graceful shutdown");
}

/// A multipart body as kubo's Go client sends for `ipfs add -r`: one part per
/// directory (`application/x-directory`) and file, names URL-escaped.
fn kubo_style_add_form(root: &Path, name: &str) -> reqwest::multipart::Form {
    use reqwest::multipart::{Form, Part};
    let mut form = Form::new();
    let mut stack = vec![(root.to_owned(), name.to_owned())];
    while let Some((path, rel)) = stack.pop() {
        let escaped: String = percent_encode(&rel);
        let meta = fs::symlink_metadata(&path).expect("metadata");
        if meta.is_symlink() {
            let target = fs::read_link(&path).expect("link").to_string_lossy().into_owned();
            let part =
                Part::bytes(target.into_bytes()).file_name(escaped).mime_str("application/symlink");
            form = form.part("file", part.expect("mime"));
        } else if meta.is_dir() {
            let part =
                Part::bytes(Vec::new()).file_name(escaped).mime_str("application/x-directory");
            form = form.part("file", part.expect("mime"));
            let mut children: Vec<_> =
                fs::read_dir(&path).expect("dir").map(|e| e.expect("entry").path()).collect();
            children.sort();
            for c in children {
                let child_rel = format!("{rel}/{}", c.file_name().expect("name").to_string_lossy());
                stack.push((c, child_rel));
            }
        } else {
            let part = Part::bytes(fs::read(&path).expect("read")).file_name(escaped);
            form = form.part("file", part.mime_str("application/octet-stream").expect("mime"));
        }
    }
    form
}

/// Go's `url.QueryEscape` (spaces as `+`).
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[tokio::test]
async fn http_add_matches_local_packaging() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = dir.path().join("results");
    nested_tree(&tree);
    let (store, server) = start_store(&dir.path().join("store"), ServerOptions::default()).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v0/add?pin=true", server.url()))
        .multipart(kubo_style_add_form(&tree, "results"))
        .send()
        .await
        .expect("add");
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    let last: serde_json::Value =
        serde_json::from_str(body.lines().last().expect("lines")).expect("json");
    let expected = unixfs::cid_of_path(&tree).expect("package");
    assert_eq!(last["Name"], "results");
    assert_eq!(last["Hash"], expected.to_string(), "add answer:\n{body}");
    assert!(
        body.lines().any(|l| l.contains("\"Name\":\"results/outputs/deep/name with spaces.txt\"")),
        "{body}"
    );
    // The blocks were stored: the tree fetches back.
    assert!(store.has(&expected));
    let client = StorageClient::new(&server.url()).expect("client");
    client.fetch(&expected, &dir.path().join("back")).await.expect("fetch");
    assert_eq!(snapshot(&dir.path().join("back")), snapshot(&tree));
    server.shutdown().await.expect("shutdown");
}

/// Names of every entry in `dir` (to show nothing was left behind).
pub(crate) fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn tampered_block_fails_fetch_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = dir.path().join("results");
    nested_tree(&tree);
    let (store, server) = start_store(&dir.path().join("store"), ServerOptions::default()).await;
    let client = StorageClient::new(&server.url()).expect("client");
    let cid = client.publish_dir(&tree).await.expect("publish");

    // Corrupt, on the store's disk, the second leaf of the deep multi-chunk file.
    let file = unixfs::add_path(&tree.join("outputs/deep/er/still/data.bin")).expect("package");
    let leaf = &file.blocks[1];
    let on_disk = store.block_path(&leaf.cid);
    let mut bytes = fs::read(&on_disk).expect("stored block");
    assert_eq!(bytes, leaf.data);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&on_disk, &bytes).expect("corrupt");

    let out = dir.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    let dest = out.join("fetched");
    let err = client.fetch(&cid, &dest).await.expect_err("tampered block must fail");
    match &err {
        StorageError::HashMismatch { cid, .. } => assert_eq!(*cid, leaf.cid),
        other => panic!("expected a verification error, got {other}"),
    }
    assert!(listing(&out).is_empty(), "nothing written next to dest: {:?}", listing(&out));
    // Asking for the block directly fails the same way.
    let err = client.get_block(&leaf.cid).await.expect_err("verify");
    assert!(matches!(err, StorageError::HashMismatch { .. }), "{err}");
    server.shutdown().await.expect("shutdown");
}

/// Uploads a crafted directory with one entry `name` (pointing at a small file) and returns its CID.
async fn hostile_dir(client: &StorageClient, names: &[&str]) -> storage::Cid {
    let mut blocks = Vec::new();
    let file = unixfs::add_reader(&b"pwned"[..], Path::new("x"), &mut blocks).expect("file");
    let mut dir = DirectoryBuilder::new();
    for n in names {
        dir.add((*n).to_owned(), file);
    }
    let root = dir.finish(&mut blocks).expect("dir");
    for b in blocks {
        client.put_block(&b.cid, b.data).await.expect("put");
    }
    root.cid
}

#[tokio::test]
async fn hostile_directory_names_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_store, server) = start_store(&dir.path().join("store"), ServerOptions::default()).await;
    let client = StorageClient::new(&server.url()).expect("client");
    let out = dir.path().join("out");
    fs::create_dir_all(out.join("inner")).expect("mkdir");
    for names in [
        &["../escaped"][..],
        &[".."],
        &["."],
        &[""],
        &["a/b"],
        &["/abs"],
        &["nul\0byte"],
        &["same", "same"],
    ] {
        let cid = hostile_dir(&client, names).await;
        let err = client.fetch(&cid, &out.join("inner/dest")).await.expect_err("hostile name");
        assert!(matches!(err, StorageError::UnsafeName { .. }), "{names:?}: {err}");
        assert_eq!(listing(&out), ["inner"], "{names:?} left something in {}", out.display());
        assert!(listing(&out.join("inner")).is_empty(), "{names:?}");
    }
    // A repetition bomb (one small file linked many times) hits the caps.
    let many: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let cid = hostile_dir(&client, &many.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let opts = ClientOptions {
        limits: Limits { max_total_bytes: 100, ..Limits::default() },
        ..ClientOptions::default()
    };
    let capped = StorageClient::with_options(&server.url(), opts).expect("client");
    let err = capped.fetch(&cid, &out.join("bomb")).await.expect_err("cap");
    assert!(matches!(err, StorageError::LimitExceeded { .. }), "{err}");
    let opts = ClientOptions {
        limits: Limits { max_entries: 10, ..Limits::default() },
        ..ClientOptions::default()
    };
    let capped = StorageClient::with_options(&server.url(), opts).expect("client");
    let err = capped.fetch(&cid, &out.join("bomb")).await.expect_err("cap");
    assert!(matches!(err, StorageError::LimitExceeded { .. }), "{err}");
    assert_eq!(listing(&out), ["inner"]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn http_errors_bad_cid_missing_block_and_oversized_bodies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = ServerOptions { max_add_bytes: 4096, ..ServerOptions::default() };
    let (_store, server) = start_store(&dir.path().join("store"), opts).await;
    let http = reqwest::Client::new();
    let url = server.url();

    let resp =
        http.post(format!("{url}/api/v0/block/get?arg=not-a-cid")).send().await.expect("send");
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.expect("json error");
    assert!(
        body["Message"].as_str().expect("message").contains("invalid CID \"not-a-cid\""),
        "{body}"
    );

    let missing = unixfs::add_bytes(b"never stored").expect("dag").root;
    let resp =
        http.post(format!("{url}/api/v0/block/get?arg={missing}")).send().await.expect("send");
    assert_eq!(resp.status(), 404);

    let big = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(vec![0u8; 1_200_000]).file_name("b"));
    let resp =
        http.post(format!("{url}/api/v0/block/put")).multipart(big).send().await.expect("send");
    assert_eq!(resp.status(), 413, "block over 1 MiB");

    let add = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(vec![1u8; 10_000]).file_name("f"));
    let resp = http.post(format!("{url}/api/v0/add")).multipart(add).send().await.expect("send");
    assert_eq!(resp.status(), 413, "add over the configured 4 KiB");

    // A block within limits round-trips, named as kubo names it.
    let ok = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"hello world\n".to_vec()).file_name("b"));
    let resp = http
        .post(format!("{url}/api/v0/block/put?cid-codec=raw"))
        .multipart(ok)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["Key"], "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4");
    assert_eq!(http.get(format!("{url}/healthz")).send().await.expect("health").status(), 200);
    server.shutdown().await.expect("shutdown");
}

mod tar_archives {
    use super::*;
    use tar::{EntryType, Header};

    /// An archive of raw entries: (path, type, link target, content). Paths
    /// are written into the header bytes directly, since the tar crate's own
    /// builder refuses the hostile ones.
    fn archive(entries: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, link, data) in entries {
            let mut h = Header::new_gnu();
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                let l = &mut h.as_old_mut().linkname;
                l[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("finish")
    }

    fn extract(dir: &Path, bytes: &[u8], limits: &Limits) -> Result<u64, StorageError> {
        storage::extract_tar_safe(bytes, &dir.join("dest"), limits)
    }

    #[test]
    fn well_formed_archive_unpacks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = archive(&[
            ("./", EntryType::Directory, "", b""),
            ("a/", EntryType::Directory, "", b""),
            ("a/file.txt", EntryType::Regular, "", b"content"),
            ("a/link", EntryType::Symlink, "file.txt", b""),
            ("up", EntryType::Symlink, "a/../a/file.txt", b""),
            ("hard", EntryType::Link, "a/file.txt", b""),
        ]);
        let n = extract(dir.path(), &bytes, &Limits::default()).expect("extract");
        assert_eq!(n, 7);
        let dest = dir.path().join("dest");
        assert_eq!(fs::read(dest.join("a/link")).expect("via link"), b"content");
        assert_eq!(fs::read(dest.join("up")).expect("via link"), b"content");
        assert_eq!(fs::read(dest.join("hard")).expect("hard link"), b"content");
        assert_eq!(listing(dir.path()), ["dest"], "no temporary directory left");
    }

    #[test]
    fn escaping_entries_are_refused_and_nothing_is_written() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("dot-dot", archive(&[("../x", EntryType::Regular, "", b"x")])),
            ("nested dot-dot", archive(&[("a/../../x", EntryType::Regular, "", b"x")])),
            ("absolute", archive(&[("/etc/x", EntryType::Regular, "", b"x")])),
            ("absolute symlink", archive(&[("l", EntryType::Symlink, "/etc", b"")])),
            ("climbing symlink", archive(&[("a/l", EntryType::Symlink, "../../etc", b"")])),
            // Each link alone stays inside; together `x` resolves to dest/.. .
            (
                "symlink chain",
                archive(&[
                    ("d/", EntryType::Directory, "", b""),
                    ("d/l", EntryType::Symlink, "..", b""),
                    ("x", EntryType::Symlink, "d/l/..", b""),
                ]),
            ),
            ("dangling symlink", archive(&[("l", EntryType::Symlink, "nowhere", b"")])),
            (
                "write through symlink",
                archive(&[
                    ("d/", EntryType::Directory, "", b""),
                    ("l", EntryType::Symlink, "d", b""),
                    ("l/../../x", EntryType::Regular, "", b"x"),
                ]),
            ),
            ("hard link out", archive(&[("h", EntryType::Link, "/etc/passwd", b"")])),
            ("hard link up", archive(&[("h", EntryType::Link, "../secret", b"")])),
            ("char device", archive(&[("dev", EntryType::Char, "", b"")])),
            ("fifo", archive(&[("fifo", EntryType::Fifo, "", b"")])),
        ];
        for (what, bytes) in cases {
            let dir = tempfile::tempdir().expect("temp dir");
            let err = extract(dir.path(), &bytes, &Limits::default()).expect_err(what);
            assert!(matches!(err, StorageError::UnsafeTarEntry { .. }), "{what}: {err}");
            assert!(listing(dir.path()).is_empty(), "{what} left {:?}", listing(dir.path()));
        }
    }

    #[test]
    fn size_caps_apply() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = archive(&[
            ("a", EntryType::Regular, "", &[0; 600]),
            ("b", EntryType::Regular, "", &[0; 600]),
        ]);
        let limits = Limits { max_total_bytes: 1000, ..Limits::default() };
        let err = extract(dir.path(), &bytes, &limits).expect_err("bytes cap");
        assert!(matches!(err, StorageError::LimitExceeded { .. }), "{err}");
        let limits = Limits { max_entries: 1, ..Limits::default() };
        let err = extract(dir.path(), &bytes, &limits).expect_err("entries cap");
        assert!(matches!(err, StorageError::LimitExceeded { .. }), "{err}");
        assert!(listing(dir.path()).is_empty());
    }
}

#[test]
fn publishing_refuses_escaping_links_and_special_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(&dir.path().join("secret"), b"outside");
    type MakeTree = fn(&Path);
    let cases: [(&str, MakeTree); 5] = [
        ("link out of the tree", |t| {
            std::os::unix::fs::symlink("../secret", t.join("l")).expect("link")
        }),
        ("absolute link", |t| {
            std::os::unix::fs::symlink("/etc/passwd", t.join("l")).expect("link")
        }),
        ("dangling link", |t| std::os::unix::fs::symlink("nowhere", t.join("l")).expect("link")),
        ("link chain out", |t| {
            fs::create_dir(t.join("d")).expect("mkdir");
            std::os::unix::fs::symlink("..", t.join("d/up")).expect("link");
            std::os::unix::fs::symlink("d/up/..", t.join("x")).expect("link");
        }),
        ("socket", |t| {
            std::os::unix::net::UnixListener::bind(t.join("sock")).expect("bind socket");
        }),
    ];
    for (i, (what, make)) in cases.into_iter().enumerate() {
        let tree = dir.path().join(format!("tree{i}"));
        fs::create_dir(&tree).expect("mkdir");
        write(&tree.join("ok.txt"), b"fine");
        make(&tree);
        let err = unixfs::add_path(&tree).expect_err(what);
        assert!(
            matches!(err, StorageError::Symlink { .. } | StorageError::SpecialFile { .. }),
            "{what}: {err}"
        );
    }
    let link = dir.path().join("root-link");
    std::os::unix::fs::symlink("secret", &link).expect("link");
    assert!(matches!(unixfs::add_path(&link), Err(StorageError::Symlink { .. })));
}

#[tokio::test]
async fn hostile_links_in_a_dag_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_store, server) = start_store(&dir.path().join("store"), ServerOptions::default()).await;
    let client = StorageClient::new(&server.url()).expect("client");
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    // Each case: the entries of the root directory, links given by target.
    let cases: [(&str, &[(&str, &str)]); 4] = [
        ("climbing", &[("l", "../../etc")]),
        ("absolute", &[("l", "/etc/passwd")]),
        ("dangling", &[("l", "nowhere")]),
        // `d/l -> ..` stays inside, `x -> d/l/..` is lexically the root: together they escape.
        ("chain", &[("x", "d/l/.."), ("d", "")]),
    ];
    for (what, entries) in cases {
        let mut blocks = Vec::new();
        let mut root = DirectoryBuilder::new();
        for (name, target) in entries {
            let child = if target.is_empty() {
                let mut d = DirectoryBuilder::new();
                d.add("l".into(), unixfs::add_symlink("..", &mut blocks).expect("link"));
                d.finish(&mut blocks).expect("dir")
            } else {
                unixfs::add_symlink(target, &mut blocks).expect("link")
            };
            root.add((*name).into(), child);
        }
        let cid = root.finish(&mut blocks).expect("root").cid;
        for b in blocks {
            client.put_block(&b.cid, b.data).await.expect("put");
        }
        let err = client.fetch(&cid, &out.join("dest")).await.expect_err(what);
        assert!(matches!(err, StorageError::Symlink { .. }), "{what}: {err}");
        assert!(listing(&out).is_empty(), "{what} left {:?}", listing(&out));
    }
    server.shutdown().await.expect("shutdown");
}
