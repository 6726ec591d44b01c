//! `lilypad-cli bridge` argument handling: the key comes from
//! `WEB3_PRIVATE_KEY` (on a local chain, the devnet's bridge account) and is never echoed.
//! (Running jobs: tests/bridge_jobs.rs; the service itself: lilypad-sdk/tests/it/bridge.rs.)

use std::process::Command;

fn bridge(args: &[&str], key: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lilypad-cli"));
    cmd.arg("bridge").args(args).env_remove("WEB3_PRIVATE_KEY").env_remove("LILYPAD_NETWORK");
    if let Some(k) = key {
        cmd.env("WEB3_PRIVATE_KEY", k);
    }
    let out = cmd.output().expect("run lilypad-cli");
    (out.status.success(), String::from_utf8(out.stderr).expect("utf-8 stderr"))
}

/// A network file of a public chain (chain id 42161): no devnet key applies to it.
fn public_network(dir: &std::path::Path) -> String {
    let path = dir.join("n.toml");
    let a = "0x0000000000000000000000000000000000000001";
    let toml = format!(
        "name = \"arb\"\nchain_id = 42161\nrpc_urls = [\"http://127.0.0.1:1\"]\n\
         solver_url = \"http://127.0.0.1:1\"\nstorage_url = \"http://127.0.0.1:1\"\n\
         [contracts]\ntoken = \"{a}\"\nmodules = \"{a}\"\nusers = \"{a}\"\n\
         controller = \"{a}\"\npow = \"{a}\"\njob_manager = \"{a}\"\n"
    );
    std::fs::write(&path, toml).expect("write the network file");
    path.display().to_string()
}

#[test]
fn the_bridge_needs_a_key_and_never_echoes_a_bad_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let network = public_network(dir.path());
    let (ok, err) = bridge(&["--network", &network, "--db", "b.sqlite"], None);
    assert!(!ok);
    assert!(err.contains("no key to sign with") && err.contains("WEB3_PRIVATE_KEY"), "{err}");

    let secret = "0xnotakey-secret-material";
    let (ok, err) = bridge(&["--network", &network, "--db", "b.sqlite"], Some(secret));
    assert!(!ok);
    assert!(err.contains("not a private key"), "{err}");
    assert!(!err.contains("secret-material"), "the key is echoed: {err}");

    let (ok, err) =
        bridge(&["--network", "n.toml", "--db", "b.sqlite", "--concurrency", "0"], None);
    assert!(!ok);
    assert!(err.contains("--concurrency"), "{err}");
}
