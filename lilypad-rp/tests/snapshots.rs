//! Whole outputs of `lilypad-rp`, compared with the committed snapshots in
//! `tests/snapshots/` (what varies is redacted: see lilypad-cli/tests/common/snap.rs).
//! `SNAPSHOTS=overwrite cargo nextest run -p lilypad-rp -E 'binary(snapshots)'`
//! rewrites them.

#[path = "../../lilypad-cli/tests/common/snap.rs"]
mod snap;

use snapbox::{cmd::Command, file};

/// `lilypad-rp` with no setting from the environment.
fn rp() -> Command {
    snap::clean_env(Command::new(env!("CARGO_BIN_EXE_lilypad-rp")))
}

#[test]
fn help_of_the_binary_and_the_daemon() {
    let a = snap::assert();
    rp().arg("--help")
        .with_assert(a.clone())
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help.txt"]);
    rp().args(["run", "--help"])
        .with_assert(a)
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help-run.txt"]);
}

#[test]
fn errors_share_the_cli_convention() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = snap::assert_in(Some(dir.path()));
    let missing = dir.path().join("missing.toml");
    rp().args(["doctor", "--network"])
        .arg(&missing)
        .with_assert(a.clone())
        .assert()
        .code(1)
        .stderr_eq(file!["snapshots/missing-network.stderr"]);
    // The same network options and the same JSON error as lilypad-cli.
    rp().args(["--json", "mine", "--rounds", "1", "--network"])
        .arg(&missing)
        .with_assert(a.clone())
        .assert()
        .code(1)
        .stdout_eq("")
        .stderr_eq(file!["snapshots/missing-network-json.stderr"]);
    // A node that does not answer: a retry may help, exit 75.
    let down = dir.path().join("down.toml");
    let mut config = lilypad_sdk::chain::NetworkConfig::local();
    config.rpc_urls = vec!["http://127.0.0.1:9".into()];
    config.rpc.retries = 0;
    config.save(&down).expect("write the network file");
    rp().args(["--json", "mine", "--rounds", "1", "--cpu", "--network"])
        .arg(&down)
        .with_assert(a)
        .assert()
        .code(75)
        .stderr_eq(file!["snapshots/node-down-json.stderr"]);
}

#[test]
fn a_provider_older_than_the_network_allows_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = snap::assert_in(Some(dir.path()));
    let file = dir.path().join("network.toml");
    let mut config = lilypad_sdk::chain::NetworkConfig::local();
    // No node answers here: the check comes before anything is contacted.
    config.rpc_urls = vec!["http://127.0.0.1:9".into()];
    config.min_provider_version = Some("99.0.0".parse().expect("a version"));
    config.save(&file).expect("write the network file");
    for cmd in ["run", "mediate"] {
        rp().args([cmd, "--network"])
            .arg(&file)
            .with_assert(a.clone())
            .assert()
            .code(1)
            .stderr_eq(file!["snapshots/too-old.stderr"]);
    }
}
