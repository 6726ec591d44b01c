//! `lilypad-cli wallet` and `--account` / `--keystore` on a command that signs: real
//! encrypted keystores, a real `run` on a local network of real processes (anvil, the
//! solver, the content store), the provider's side driven through the SDK.

mod common;
#[path = "common/jobs.rs"]
mod jobs;

use std::{
    path::Path,
    process::{Command, Output},
};

use common::{BIN, LocalNet, repo_root, runtime};
use jobs::{cpu_offer, finish, provider, run_command, the_deal, write_results};
use lilypad_sdk::devnet::{ANVIL_KEYS, anvil_address};
use serde_json::Value;

/// The spare devnet account the tests import: funded like every devnet account, and
/// no command's default, so a deal signed by it proves the keystore was used.
const SPARE: usize = 8;

fn wallet(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("LILYPAD_HOME", home)
        .env_remove("WEB3_PRIVATE_KEY")
        .env_remove("LILYPAD_KEYSTORE_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run lilypad-cli")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The key's 64 hex digits, to look for in every output.
fn hex_of(key: &str) -> String {
    key.trim_start_matches("0x").to_lowercase()
}

#[test]
fn wallet_creates_imports_lists_and_checks_passwords_without_showing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (pw, wrong) = (dir.path().join("pw"), dir.path().join("wrong"));
    std::fs::write(&pw, "correct horse\n").unwrap();
    std::fs::write(&wrong, "battery staple\n").unwrap();
    let pw = pw.to_str().unwrap();
    let wrong = wrong.to_str().unwrap();

    // new: a random key, encrypted, listed with its address.
    let out = wallet(&home, &["--json", "wallet", "new", "fresh", "--password-file", pw], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let address = created["address"].as_str().expect("address").to_lowercase();
    let file = home.join("keystores/fresh");
    assert!(file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the keystore is private to its owner");
    }

    // import: the key from WEB3_PRIVATE_KEY, never from a flag.
    let key = ANVIL_KEYS[SPARE];
    let out = wallet(
        &home,
        &["--json", "wallet", "import", "spare", "--password-file", pw],
        &[("WEB3_PRIVATE_KEY", key)],
    );
    assert!(out.status.success(), "{}", text(&out));
    let imported: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(imported["address"], anvil_address(SPARE).to_string().to_lowercase());
    assert!(!text(&out).to_lowercase().contains(&hex_of(key)), "{}", text(&out));
    let stored = std::fs::read_to_string(home.join("keystores/spare")).unwrap();
    assert!(!stored.to_lowercase().contains(&hex_of(key)), "the key is stored encrypted");

    // list: both, by name, with their addresses, no password needed.
    let out = wallet(&home, &["--json", "wallet", "list"], &[]);
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<_> = list.as_array().unwrap().iter().map(|a| a["name"].clone()).collect();
    assert_eq!(names, ["fresh", "spare"], "{list}");
    assert_eq!(list[0]["address"].as_str().unwrap().to_lowercase(), address);

    // address: decrypts; the right password gives the address, a wrong one a clear error.
    let out =
        wallet(&home, &["wallet", "address", "--account", "spare", "--password-file", pw], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), anvil_address(SPARE).to_string());
    let out =
        wallet(&home, &["wallet", "address", "--account", "spare", "--password-file", wrong], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("wrong password"), "{}", text(&out));
    assert!(!text(&out).to_lowercase().contains(&hex_of(key)), "{}", text(&out));
    let out = wallet(
        &home,
        &["wallet", "address", "--account", "spare"],
        &[("LILYPAD_KEYSTORE_PASSWORD", "correct horse")],
    );
    assert!(out.status.success(), "the password from the environment: {}", text(&out));

    // Refusals: a name taken, a bad name, a malformed key (not echoed), no account.
    let out = wallet(&home, &["wallet", "new", "spare", "--password-file", pw], &[]);
    assert!(text(&out).contains("exists already"), "{}", text(&out));
    let out = wallet(&home, &["wallet", "new", "../escape", "--password-file", pw], &[]);
    assert!(text(&out).contains("not an account name"), "{}", text(&out));
    let out = wallet(
        &home,
        &["wallet", "import", "bad", "--password-file", pw],
        &[("WEB3_PRIVATE_KEY", "0x1234deadbeefzz")],
    );
    assert!(
        text(&out).contains("not a private key") && !text(&out).contains("1234deadbeef"),
        "{}",
        text(&out)
    );
    let out = wallet(&home, &["wallet", "address", "--account", "nobody"], &[]);
    assert!(text(&out).contains("no account \"nobody\""), "{}", text(&out));
    // A command that signs, with a wrong password, fails before it connects anywhere.
    let network = dir.path().join("network.toml");
    lilypad_sdk::chain::NetworkConfig::local().save(&network).expect("write a network file");
    let network = network.to_str().unwrap();
    let out = wallet(
        &home,
        &["deals", "list", "--network", network, "--account", "spare", "--password-file", wrong],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("wrong password"), "{}", text(&out));
}

#[test]
fn run_signs_with_the_account_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw of spare\n").unwrap();
    let pw = pw.to_str().unwrap();
    let out = wallet(
        &home,
        &["wallet", "import", "spare", "--password-file", pw],
        &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[SPARE])],
    );
    assert!(out.status.success(), "{}", text(&out));

    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let p = provider(&net, &dir.path().join("rp-cache"));
        p.post_offer(&cpu_offer(1)).await.expect("post the resource offer");
        let module = repo_root().join("examples/modules/cowsay");
        // No WEB3_PRIVATE_KEY: without the keystore the local chain's default job
        // creator would sign.
        let mut cmd = run_command(
            &net,
            dir.path(),
            &module,
            &["--json", "-i", "Message=moo", "--account", "spare", "--password-file", pw],
            "",
        );
        cmd.env_remove("WEB3_PRIVATE_KEY");
        let mut child = cmd.spawn().expect("spawn lilypad-cli run");
        let record = the_deal(&p, &mut child, &net).await;
        assert_eq!(record.deal.members.job_creator, anvil_address(SPARE), "the keystore signed");

        let results = dir.path().join("results");
        write_results(&results, " _____\n< moo >\n -----\n");
        p.publish_results(record.deal.id, &results).await.expect("publish + submit");
        let (ok, json, err) = finish(child, 120, &net).await;
        assert!(ok, "run failed: {json}\n{err}");
        assert_eq!(json["status"], "accepted", "{json}");
        let all = format!("{json}{err}{}", net.logs()).to_lowercase();
        assert!(!all.contains(&hex_of(ANVIL_KEYS[SPARE])), "the key shows in an output or a log");
    });
}
