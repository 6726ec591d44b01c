//! `lilypad-cli leaderboard` against a real devnet (anvil from node_modules,
//! installed by scripts/setup-contracts.sh; a missing anvil fails the test):
//! two providers mine with the real `lilypad-rp mine --rounds 1 --cpu` binary,
//! then the leaderboard lists both with their proofs and points; then one of
//! them completes a deal, loses one in mediation and lets one time out, and two
//! days pass: the leaderboard shows that reputation and the days offline.

mod common;

use std::{process::Command, time::Duration};

use alloy::primitives::U256;
use common::pow_deals::{End, account, deal, leaderboard_rows, lilypad_rp, row, run};
use lilypad_sdk::devnet::{self, ANVIL_KEYS, Devnet, DevnetOptions, anvil_address, increase_time};

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
        common::pow_deals::mine(&network, account, node);
    }

    // --disable-pow mines nothing.
    let (ok, out, _) = run(Command::new(lilypad_rp())
        .args(["mine", "--disable-pow"])
        .env("LILYPAD_NETWORK", &network)
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[2]));
    assert!(ok && out.contains("proof of work is disabled"), "{out}");

    let rows = leaderboard_rows(&network);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut total_points = 0.0_f64;
    for account in [2usize, 8] {
        let row = row(&rows, account);
        assert_eq!(row["proofs"], 1, "{row}");
        assert_eq!(row["rounds"], 1, "{row}");
        assert_eq!(row["jobs_completed"], 0, "{row}");
        assert_eq!(row["days_offline"], 0, "{row}");
        assert!((row["multiplier"].as_f64().unwrap() - 1.03).abs() < 1e-9, "{row}");
        assert_eq!(row["reputation"]["score"], 0.5, "a newcomer: {row}");
        assert_eq!(row["reputation"]["median_secs_to_results"], serde_json::Value::Null);
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

    // Account 2 completes a deal (results after 40 s), loses one in mediation
    // (results after 100 s) and lets one time out; then two days pass without a proof.
    rt.block_on(async {
        for who in [devnet::JOB_CREATOR, devnet::PROVIDER] {
            account(&net, who).await.approve_controller(U256::MAX).await.unwrap();
        }
        deal(&net, devnet::PROVIDER, End::Accepted { secs: 40 }, 1).await;
        deal(&net, devnet::PROVIDER, End::Rejected { secs: 100 }, 2).await;
        deal(&net, devnet::PROVIDER, End::TimedOut, 3).await;
        increase_time(net.client(), 2 * 86_400 + 60).await.unwrap();
    });
    let rows = leaderboard_rows(&network);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let two = row(&rows, 2);
    assert_eq!(two["jobs_completed"], 1, "{two}");
    let rep = &two["reputation"];
    assert_eq!(
        [&rep["completed"], &rep["timed_out"], &rep["challenged"], &rep["lost"], &rep["open"]],
        [1, 1, 1, 1, 0],
        "{two}"
    );
    assert_eq!(rep["median_secs_to_results"], 70, "median of 40 s and 100 s: {two}");
    // (1 completed + 1) / (1 + 1 timed out + 1 lost + 2).
    assert!((rep["score"].as_f64().unwrap() - 0.4).abs() < 1e-12, "{two}");
    let eight = row(&rows, 8);
    assert_eq!(eight["reputation"]["score"], 0.5, "{eight}");
    assert_eq!(eight["reputation"]["completed"], 0, "{eight}");
    // Two days offline take 50 rounds of multiplier: 1 round present leaves 1x.
    let mut total_points = 0.0_f64;
    for r in [two, eight] {
        assert_eq!(r["days_offline"], 2, "{r}");
        assert_eq!(r["multiplier"], 1.0, "{r}");
        total_points += r["points"].as_f64().unwrap();
    }
    assert!((total_points - 1000.0).abs() < 1e-6, "{total_points}");

    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_lilypad-cli"))
        .args(["leaderboard"])
        .env("LILYPAD_NETWORK", &network));
    assert!(ok, "leaderboard failed: {err}");
    let line = out.lines().find(|l| l.contains(&anvil_address(2).to_string())).expect(&out);
    assert!(line.contains("  2d  ") && line.contains("1m10s") && line.ends_with("0.40"), "{out}");
    net.stop();
}
