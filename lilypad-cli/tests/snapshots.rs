//! Whole outputs of `lilypad-cli`, compared with the committed snapshots in
//! `tests/snapshots/` (what varies is redacted: see `common/snap.rs`).
//! `SNAPSHOTS=overwrite cargo nextest run -p lilypad-cli -E 'binary(snapshots)'`
//! rewrites them.

mod common;

use common::snap;
use snapbox::{cmd::Command, file};

const CLI: &str = env!("CARGO_BIN_EXE_lilypad-cli");

/// `lilypad-cli` with no setting from the environment.
fn cli() -> Command {
    snap::clean_env(Command::new(CLI)).current_dir(common::repo_root())
}

#[test]
fn help_of_the_binary_and_each_command() {
    let a = snap::assert();
    cli()
        .arg("--help")
        .with_assert(a.clone())
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help.txt"]);
    cli()
        .args(["run", "--help"])
        .with_assert(a.clone())
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help-run.txt"]);
    cli()
        .args(["deals", "--help"])
        .with_assert(a.clone())
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help-deals.txt"]);
    cli()
        .args(["bridge", "--help"])
        .with_assert(a)
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help-bridge.txt"]);
}

#[test]
fn module_render_as_text_and_as_json() {
    let a = snap::assert();
    cli()
        .args(["module", "render", "examples/modules/cowsay", "-i", "Message=moo"])
        .with_assert(a.clone())
        .assert()
        .success()
        .stdout_eq(file!["snapshots/module-render.txt"]);
    // --json is global: it may come first.
    cli()
        .args(["--json", "module", "render", "examples/modules/cowsay", "-i", "Message=moo"])
        .with_assert(a.clone())
        .assert()
        .success()
        .stdout_eq(file!["snapshots/module-render.json"]);
    cli()
        .args(["module", "render", "examples/modules/cowsay", "--raw", "--json"])
        .with_assert(a)
        .assert()
        .code(1)
        .stdout_eq("")
        .stderr_eq(file!["snapshots/module-render-raw-json.stderr"]);
}

#[test]
fn errors_exit_codes_and_json_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = snap::assert_in(Some(dir.path()));
    // A bad command line: clap's usage error, exit 2.
    cli()
        .args(["deals", "show"])
        .with_assert(a.clone())
        .assert()
        .code(2)
        .stderr_eq(file!["snapshots/usage-error.stderr"]);
    // A failure no retry fixes: exit 1, as text and as JSON.
    let missing = dir.path().join("missing.toml");
    cli()
        .args(["deals", "list", "--network"])
        .arg(&missing)
        .with_assert(a.clone())
        .assert()
        .code(1)
        .stdout_eq("")
        .stderr_eq(file!["snapshots/missing-network.stderr"]);
    cli()
        .args(["--json", "deals", "list", "--network"])
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
    cli()
        .args(["--json", "leaderboard", "--network"])
        .arg(&down)
        .with_assert(a)
        .assert()
        .code(75)
        .stdout_eq("")
        .stderr_eq(file!["snapshots/node-down-json.stderr"]);
}

/// The quickstart's command on a throwaway local network (anvil, contracts, solver,
/// store and a Docker provider in the process): the whole JSON answer.
#[test]
fn run_on_a_throwaway_local_network() {
    let home = tempfile::tempdir().expect("temp dir");
    let a = snap::assert_in(Some(home.path()));
    cli()
        .args(["--json", "run", "./examples/modules/cowsay", "-i", "Message=snapshot"])
        .arg("--output-dir")
        .arg(home.path().join("results"))
        .env("LILYPAD_HOME", home.path())
        .timeout(std::time::Duration::from_secs(300))
        .with_assert(a.clone())
        .assert()
        .success()
        .stdout_eq(file!["snapshots/run-local.json"]);
    // And what the job printed, fetched and verified by its CID.
    let results = home.path().join("results");
    let deal = std::fs::read_dir(&results)
        .expect("the results directory")
        .next()
        .expect("one deal's results")
        .expect("a directory entry");
    let stdout = std::fs::read_to_string(deal.path().join("stdout")).expect("the job's stdout");
    a.eq(stdout, file!["snapshots/run-local-stdout.txt"]);
}
