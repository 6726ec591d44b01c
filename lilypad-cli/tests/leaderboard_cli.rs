//! `lilypad-cli leaderboard` against a real devnet (anvil from node_modules,
//! installed by scripts/setup-contracts.sh; a missing anvil fails the test):
//! two providers mine with the real `lilypad-rp mine --rounds 1 --cpu` binary,
//! then the leaderboard lists both with their proofs and points.

use std::{path::Path, process::Command, time::Duration};

use lilypad_sdk::devnet::{ANVIL_KEYS, Devnet, DevnetOptions, anvil_address};

/// The `lilypad-rp` binary of this workspace (built by `cargo build -p lilypad-rp`).
fn lilypad_rp() -> std::path::PathBuf {
    let cli = Path::new(env!("CARGO_BIN_EXE_lilypad-cli"));
    let rp = cli.with_file_name("lilypad-rp");
    assert!(
        rp.is_file(),
        "{} is missing: build it first with cargo build -p lilypad-rp",
        rp.display()
    );
    rp
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

#[test]
fn two_miners_are_on_the_leaderboard() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut opts = DevnetOptions::new(dir.path());
    opts.startup_timeout = Duration::from_secs(60);
    let net = rt
        .block_on(Devnet::start(&opts, &|_| {}))
        .unwrap_or_else(|e| panic!("cannot start a devnet: {e}"));
    let network = net.network_file();

    for (account, node) in [(2usize, "0x01"), (8, "0x02")] {
        let (ok, out, err) = run(Command::new(lilypad_rp())
            .args(["mine", "--rounds", "1", "--cpu", "--node-id", node])
            .env("LILYPAD_NETWORK", &network)
            .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[account])
            .env("RUST_LOG", "info"));
        assert!(ok, "lilypad-rp mine failed: {out}{err}");
        assert!(err.contains("proof accepted"), "{err}");
        assert!(!err.contains(ANVIL_KEYS[account].trim_start_matches("0x")), "key in the log");
    }

    // --disable-pow mines nothing.
    let (ok, out, _) = run(Command::new(lilypad_rp())
        .args(["mine", "--disable-pow"])
        .env("LILYPAD_NETWORK", &network)
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[2]));
    assert!(ok && out.contains("proof of work is disabled"), "{out}");

    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_lilypad-cli"))
        .args(["leaderboard", "--json", "--network"])
        .arg(&network));
    assert!(ok, "leaderboard failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let rows = v["providers"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    let mut total_points = 0.0;
    for account in [2usize, 8] {
        let who = anvil_address(account).to_string();
        let row = rows.iter().find(|r| r["provider"] == who.as_str()).expect(&who);
        assert_eq!(row["proofs"], 1, "{row}");
        assert_eq!(row["rounds"], 1, "{row}");
        assert_eq!(row["jobs_completed"], 0, "{row}");
        assert!(row["hashrate"].as_f64().unwrap() > 0.0, "{row}");
        let points = row["points"].as_f64().unwrap();
        assert!(points > 0.0, "{row}");
        total_points += points;
    }
    // Shares sum to 1000, times the 1-round multiplier 1.03.
    assert!((total_points - 1030.0).abs() < 1e-6, "{total_points}");
    assert_eq!(rows[0]["rank"], 1);

    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_lilypad-cli"))
        .args(["leaderboard"])
        .env("LILYPAD_NETWORK", &network));
    assert!(ok, "leaderboard failed: {err}");
    assert!(out.starts_with("rank  provider"), "{out}");
    assert!(out.contains(&anvil_address(8).to_string()), "{out}");
    net.stop();
}
