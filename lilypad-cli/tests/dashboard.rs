//! `lilypad-cli dashboard` on a real devnet (anvil from node_modules, installed by
//! scripts/setup-contracts.sh) where two providers (accounts 2 and 8) mined (the real
//! `lilypad-rp mine`), had deals played on chain by the test (accepted, rejected in
//! mediation, timed out: the outcomes and times the charts need, time jumps included),
//! then ran real jobs: `lilypad-rp run` daemons for both (Docker, the cowsay example
//! image of scripts/build-example-images.sh) with a real solver and storage, and one
//! `lilypad-cli run examples/modules/cowsay --target` each, accepted. The daemons stay
//! up, their offers resting, while the dashboard is checked:
//!
//! - the JSON API: the leaderboard is exactly `leaderboard --json`, a deal's timeline,
//!   an offer, an address, the network's numbers (the solver's offered CPU from both
//!   daemons), 404 and 400 answers, the live feed, and a new proof showing up without
//!   a restart;
//! - the page in headless Chromium driven by Playwright (`tests/dashboard/browser.mjs`,
//!   installed by scripts/setup-browser.sh; missing, the test fails): every leaderboard
//!   row against `leaderboard --json`, a deal's page, the network view (CPU offered)
//!   and explorer views, screenshots under target/dashboard-screenshots/.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{
    Proc,
    pow_deals::{Daemon, End, account, deal, leaderboard_json, mine, run},
};
use lilypad_sdk::{
    chain::B256,
    devnet::{self, ANVIL_KEYS, Devnet, DevnetOptions, anvil_address, increase_time},
};
use serde_json::Value;

/// A devnet where accounts 2 and 8 mined (three rounds) and ran deals, a solver and
/// storage, and both providers' daemons (up, their offers resting).
struct Net {
    devnet: Devnet,
    _solver: Proc,
    _storage: Proc,
    /// `lilypad-rp run` as accounts 2 and 8.
    _daemons: Vec<Daemon>,
    network: PathBuf,
    /// Played on chain: provider 2's deals accepted, rejected in mediation, timed out;
    /// provider 8's accepted. Then the real jobs' deals: provider 2's, provider 8's.
    deals: Vec<B256>,
}

fn network_with_two_providers(dir: &Path, rt: &tokio::runtime::Runtime) -> Net {
    let mut opts = DevnetOptions::new(dir.join("devnet"));
    opts.startup_timeout = Duration::from_secs(60);
    let devnet = rt
        .block_on(Devnet::start(&opts, &|_| {}))
        .unwrap_or_else(|e| panic!("cannot start a devnet: {e}"));
    // Three rounds half an hour apart: both mine in the first two, account 2 twice in
    // the second and alone in the third (distinct node ids: distinct proofs).
    let rounds: [&[(usize, &str)]; 3] =
        [&[(2, "0x01"), (8, "0x02")], &[(2, "0x01"), (8, "0x02"), (2, "0x03")], &[(2, "0x01")]];
    for (i, round) in rounds.iter().enumerate() {
        if i > 0 {
            rt.block_on(async {
                increase_time(devnet.client(), 1800).await.expect("increase the time");
                let owner = account(&devnet, 0).await;
                let target = owner.pow_target().await.expect("read the target").expect("a round");
                owner.start_pow_round(target).await.expect("start a round");
            });
        }
        for (who, node) in *round {
            mine(&devnet.network_file(), *who, node);
        }
    }
    let deals = rt.block_on(async {
        for who in [devnet::JOB_CREATOR, 2, 8] {
            account(&devnet, who).await.approve_controller(U256_MAX).await.expect("approve");
        }
        vec![
            deal(&devnet, 2, End::Accepted { secs: 40 }, 1).await,
            deal(&devnet, 2, End::Rejected { secs: 100 }, 2).await,
            deal(&devnet, 2, End::TimedOut, 3).await,
            deal(&devnet, 8, End::Accepted { secs: 25 }, 4).await,
        ]
    });
    // The real jobs come after every time jump: none is in flight during one.
    let solver = Proc::spawn(
        &[
            "solver",
            "--listen",
            "127.0.0.1:0",
            "--network",
            &devnet.network_file().display().to_string(),
            "--db",
            &dir.join("solver.db").display().to_string(),
        ],
        &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::SOLVER])],
        &dir.join("solver.log"),
    );
    let store = dir.join("store").display().to_string();
    let storage = Proc::spawn(
        &["storage", "serve", "--listen", "127.0.0.1:0", "--dir", &store],
        &[],
        &dir.join("storage.log"),
    );
    let mut config = devnet.config().clone();
    config.solver_url = Some(solver.url.clone());
    config.storage_url = Some(storage.url.clone());
    let network = dir.join("network.toml");
    config.save(&network).expect("write the network file");
    // The chain's clock is ahead of this machine's by the jumps: the daemons' offers
    // (expiry from the machine's clock) must outlive the chain's clock by an hour.
    let chain_now = rt.block_on(async {
        account(&devnet, 0).await.latest_timestamp().await.expect("the latest block")
    });
    let ttl = chain_now.saturating_sub(common::now()) + 3600;
    let daemons: Vec<Daemon> =
        [2, 8].iter().map(|who| Daemon::start(&network, dir, *who, ttl)).collect();
    let logs = |what: &str| {
        let mut s = format!("{what}\n--- solver log:\n{}", solver.log());
        for d in &daemons {
            s += &format!("\n--- {}:\n{}", d.log.display(), d.log());
        }
        s
    };
    offered_providers(&solver.url, 2, &|| logs("both daemons' offers"));
    let mut deals = deals;
    for (who, message) in [(2, "moo from two"), (8, "moo from eight")] {
        let job = real_job(&network, dir, who, message, &|| logs("the job"));
        deals.push(job);
        // Its slot free again: a fresh offer rests.
        offered_providers(&solver.url, 2, &|| logs("both daemons' offers after a job"));
    }
    Net { devnet, _solver: solver, _storage: storage, _daemons: daemons, network, deals }
}

/// Waits (up to 60 s) until the solver's `/healthz` counts `n` providers offering.
fn offered_providers(solver: &str, n: u64, logs: &dyn Fn() -> String) {
    let started = Instant::now();
    loop {
        let health = get_json(solver, "/healthz");
        if health["offered"]["providers"] == n {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{health}\n{}", logs());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `lilypad-cli run examples/modules/cowsay -i Message=MESSAGE --target ACCOUNT` as
/// the devnet's job creator, accepted; its deal.
fn real_job(
    network: &Path,
    dir: &Path,
    who: usize,
    message: &str,
    logs: &dyn Fn() -> String,
) -> B256 {
    let module = common::repo_root().join("examples/modules/cowsay");
    let (ok, out, err) = run(Command::new(common::cli_bin())
        .arg("run")
        .arg(&module)
        .args(["-i", &format!("Message={message}")])
        .args(["--target", &anvil_address(who).to_string(), "--json", "--network"])
        .arg(network)
        .arg("--output-dir")
        .arg(dir.join("out"))
        .env("LILYPAD_HOME", dir.join("home"))
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::JOB_CREATOR]));
    let json: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("run printed no JSON ({e}): {out}\n{err}\n{}", logs()));
    assert!(ok && json["status"] == "accepted", "{json}\n{err}\n{}", logs());
    let stdout = std::fs::read_to_string(json["stdout"].as_str().expect("stdout path"))
        .expect("the job's stdout");
    assert!(stdout.contains(message), "{stdout}");
    json["deal_id"].as_str().expect("a deal id").parse().expect("a deal id")
}

const U256_MAX: lilypad_sdk::chain::U256 = lilypad_sdk::chain::U256::MAX;

fn dashboard(net: &Net, dir: &Path) -> Proc {
    Proc::spawn(
        &[
            "dashboard",
            "--listen",
            "127.0.0.1:0",
            "--refresh",
            "1",
            "--network",
            &net.network.display().to_string(),
        ],
        &[],
        &dir.join("dashboard.log"),
    )
}

/// `GET path` over plain HTTP/1.0: the status and the body.
fn get(base: &str, path: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("send the request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (status, body.to_owned())
}

fn get_json(base: &str, path: &str) -> Value {
    let (status, body) = get(base, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn kinds(deal: &Value) -> Vec<&str> {
    deal["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|s| s["kind"].as_str().expect("a step kind"))
        .collect()
}

#[test]
fn the_api_shows_what_the_chain_says() {
    let dir = tempfile::tempdir().unwrap();
    let rt = common::runtime();
    let net = network_with_two_providers(dir.path(), &rt);
    let dash = dashboard(&net, dir.path());
    let url = dash.url.clone();

    // The leaderboard: exactly what `leaderboard --json` prints (one computation), to
    // the last digit (the pretty output without its whitespace is the compact one).
    let printed = common::pow_deals::leaderboard_text(&net.network);
    let (status, served) = get(&url, "/api/leaderboard");
    assert_eq!(status, 200, "{served}");
    assert_eq!(served, printed.split_whitespace().collect::<String>(), "{}", dash.log());
    let expected: Value = serde_json::from_str(&printed).expect("JSON");
    let rows = expected["providers"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // Accepted: one played deal and one real job each.
    for who in [2, 8] {
        assert_eq!(common::pow_deals::row(rows, who)["jobs_completed"], 2, "{expected}");
    }

    // A deal: its timeline with transactions and the results CID.
    let accepted = get_json(&url, &format!("/api/deals/{}", net.deals[0]));
    assert_eq!(kinds(&accepted), ["created", "results_submitted", "finished"], "{accepted}");
    assert_eq!(accepted["provider"], anvil_address(2).to_string());
    assert_eq!(accepted["outcome"], "accepted");
    assert_eq!(accepted["state"], "finished");
    let cid = accepted["results_cid"].as_str().expect("a results CID");
    assert!(cid.starts_with("bafkrei"), "{cid}");
    for step in accepted["timeline"].as_array().unwrap() {
        let tx = step["tx"].as_str().expect("a transaction hash");
        assert_eq!(tx.len(), 66, "{step}");
        assert!(step["time"].as_u64().unwrap() > 0, "{step}");
    }
    // Its transactions resolve to receipts (the link target without --explorer).
    let tx = accepted["timeline"][0]["tx"].as_str().unwrap();
    let receipt = get_json(&url, &format!("/api/tx/{tx}"));
    assert_eq!(
        (&receipt["transactionHash"], &receipt["status"]),
        (&Value::from(tx), &Value::from("0x1"))
    );
    let rejected = get_json(&url, &format!("/api/deals/{}", net.deals[1]));
    assert_eq!(
        kinds(&rejected),
        ["created", "results_submitted", "results_challenged", "mediator_drawn", "finished"],
        "{rejected}"
    );
    assert_eq!(rejected["outcome"], "mediation_rejected");
    let timed_out = get_json(&url, &format!("/api/deals/{}", net.deals[2]));
    assert_eq!(kinds(&timed_out), ["created", "finished"], "{timed_out}");
    assert_eq!(timed_out["outcome"], "no_results_in_time");
    assert_eq!(timed_out["results_cid"], Value::Null);

    // An offer leads to its deal; an address to its deals.
    let offer = get_json(&url, &format!("/api/offers/{}", accepted["job_offer"].as_str().unwrap()));
    assert_eq!(offer["deals"][0]["deal"], net.deals[0].to_string(), "{offer}");
    assert_eq!(offer["deals"][0]["kind"], "job");
    let resource =
        get_json(&url, &format!("/api/offers/{}", accepted["resource_offer"].as_str().unwrap()));
    assert_eq!(resource["deals"][0]["kind"], "resource", "{resource}");
    let jc = get_json(&url, &format!("/api/address/{}", anvil_address(devnet::JOB_CREATOR)));
    assert_eq!(jc["deals_as_job_creator"].as_array().unwrap().len(), 6, "{jc}");
    assert_eq!(jc["provider"], Value::Null);
    let eight = get_json(&url, &format!("/api/providers/{}", anvil_address(8)));
    assert_eq!(
        eight["row"],
        *rows.iter().find(|r| r["provider"] == anvil_address(8).to_string().as_str()).unwrap()
    );
    assert_eq!(eight["deals"].as_array().unwrap().len(), 2, "{eight}");
    // The real jobs' deals: accepted, with their results.
    for (i, who) in [(4, 2), (5, 8)] {
        let real = get_json(&url, &format!("/api/deals/{}", net.deals[i]));
        assert_eq!(real["provider"], anvil_address(who).to_string(), "{real}");
        assert_eq!(real["outcome"], "accepted", "{real}");
        assert_eq!(kinds(&real), ["created", "results_submitted", "finished"], "{real}");
    }
    let proofs: u64 =
        eight["rounds"].as_array().unwrap().iter().map(|r| r["proofs"].as_u64().unwrap()).sum();
    assert_eq!(proofs, 2, "{eight}");
    let per_round: Vec<u64> =
        eight["rounds"].as_array().unwrap().iter().map(|r| r["proofs"].as_u64().unwrap()).collect();
    assert_eq!(per_round, [1, 1, 0], "{eight}");

    // The network: both providers online, the deals, the solver's numbers (both
    // daemons' offers resting: CPU, no GPU).
    let n = get_json(&url, "/api/network");
    assert_eq!(n["providers_online"], 2, "{n}");
    assert_eq!(n["deals"], 6, "{n}");
    assert_eq!(n["deal_states"]["finished"], 6, "{n}");
    assert_eq!(n["solver"]["reachable"], true, "{n}");
    assert!(n["solver"]["open_resource_offers"].as_u64().unwrap() >= 2, "{n}");
    assert_eq!(n["solver"]["offered"]["gpus"], 0, "{n}");
    assert_eq!(n["solver"]["offered"]["providers"], 2, "{n}");
    assert!(n["solver"]["offered"]["cpu_millicores"].as_u64().unwrap() > 0, "{n}");
    assert_eq!(
        n["jobs_per_hour"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .sum::<u64>(),
        6,
        "{n}"
    );
    // Results after 40, 100 and 25 s, and the real jobs' (seconds, not measured here:
    // the machine's load): the median is between 25 and 40 s.
    let median = n["median_secs"]["created_to_results"].as_u64().unwrap();
    assert!((25..=40).contains(&median), "{n}");
    assert_eq!(
        n["outcomes_per_hour"]["accepted"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .sum::<u64>(),
        4,
        "{n}"
    );

    // Unknown and malformed ids.
    let (status, body) = get(&url, &format!("/api/deals/{}", B256::repeat_byte(0xab)));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no deal 0xabab"), "{body}");
    let (status, body) = get(&url, "/api/deals/0x1234");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("64 hex digits"), "{body}");
    let (status, body) = get(&url, "/api/address/not-an-address");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not an address"), "{body}");
    let (status, body) = get(&url, &format!("/api/providers/{}", anvil_address(9)));
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&url, &format!("/api/offers/{}", B256::repeat_byte(0xcd)));
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&url, "/nope");
    assert_eq!(status, 404);

    // The page and its assets are served from the binary.
    let (status, page) = get(&url, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/app.js\">") && !page.contains("https://"), "{page}");
    assert_eq!(get(&url, "/app.js").0, 200);
    assert_eq!(get(&url, "/style.css").0, 200);

    // The live feed names the current snapshot at once.
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /api/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("event: update") {
        let n = s.read(&mut buf).expect("read the live feed");
        assert!(n > 0, "the live feed ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("text/event-stream"));

    // A new proof shows up without a restart, and still matches `leaderboard --json`.
    mine(&net.network, 8, "0x04");
    let started = Instant::now();
    loop {
        let now = get_json(&url, "/api/leaderboard");
        let expected = leaderboard_json(&net.network);
        if now == expected {
            let eight = common::pow_deals::row(expected["providers"].as_array().unwrap(), 8);
            assert_eq!(eight["proofs"], 3, "{expected}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{now} != {expected}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // ... and the live feed announced the new snapshot.
    while !String::from_utf8_lossy(&seen).contains("\"version\":2") {
        let n = s.read(&mut buf).expect("read the live feed");
        assert!(n > 0, "the live feed ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    drop(dash);
    net.devnet.stop();
}

/// What scripts/setup-browser.sh installs; missing, the test fails saying so.
fn browser_tools(root: &Path) {
    let chromium = Path::new("/usr/bin/chromium");
    let playwright = root.join("node_modules/playwright-core/package.json");
    assert!(
        chromium.is_file() && playwright.is_file(),
        "the browser test needs Debian's chromium ({}: {}) and npm's playwright-core ({}: {}): \
         run `bash scripts/setup-browser.sh` (as root for apt-get)",
        chromium.display(),
        if chromium.is_file() { "found" } else { "missing" },
        playwright.display(),
        if playwright.is_file() { "found" } else { "missing" },
    );
    let (ok, _, _) = run(Command::new("node").arg("--version"));
    assert!(ok, "node is missing: run `bash scripts/setup-browser.sh`");
}

#[test]
fn the_page_in_a_browser() {
    let root = common::repo_root();
    browser_tools(&root);
    let dir = tempfile::tempdir().unwrap();
    let rt = common::runtime();
    let net = network_with_two_providers(dir.path(), &rt);
    let dash = dashboard(&net, dir.path());

    // As printed: the browser compares the numbers exactly.
    let expected = dir.path().join("leaderboard.json");
    std::fs::write(&expected, common::pow_deals::leaderboard_text(&net.network)).unwrap();
    let out = root.join("target/dashboard-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let (ok, stdout, stderr) = run(Command::new("node")
        .arg(root.join("tests/dashboard/browser.mjs"))
        .arg(&dash.url)
        .arg(&expected)
        .arg(&out)
        .current_dir(&root));
    assert!(ok, "the browser test failed:\n{stdout}\n{stderr}\n--- dashboard log:\n{}", dash.log());
    for view in ["leaderboard", "provider", "deal", "network", "explorer"] {
        let png = out.join(format!("{view}.png"));
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{} is missing or empty\n{stdout}", png.display());
    }
    drop(dash);
    net.devnet.stop();
}
