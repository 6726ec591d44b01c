//! `lilypad-cli bridge` argument handling: the key comes from `--key` or
//! `WEB3_PRIVATE_KEY` and is never echoed. (Running jobs is tested in the SDK:
//! lilypad-sdk/tests/it/bridge.rs.)

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

#[test]
fn the_bridge_needs_a_key_and_never_echoes_a_bad_one() {
    let (ok, err) = bridge(&["--network", "n.toml", "--db", "b.sqlite"], None);
    assert!(!ok);
    assert!(err.contains("--key <HEX>"), "{err}");

    let secret = "0xnotakey-secret-material";
    let (ok, err) = bridge(&["--network", "n.toml", "--db", "b.sqlite"], Some(secret));
    assert!(!ok);
    assert!(err.contains("not a private key"), "{err}");
    assert!(!err.contains("secret-material"), "the key is echoed: {err}");

    let (ok, err) =
        bridge(&["--network", "n.toml", "--db", "b.sqlite", "--concurrency", "0"], None);
    assert!(!ok);
    assert!(err.contains("--concurrency"), "{err}");
}
