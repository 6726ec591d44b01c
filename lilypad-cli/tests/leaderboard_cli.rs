//! `lilypad-cli leaderboard` against a real devnet (anvil from node_modules,
//! installed by scripts/setup-contracts.sh; a missing anvil fails the test):
//! two providers mine with the real `lilypad-rp mine --rounds 1 --cpu` binary,
//! then the leaderboard lists both with their proofs and points; then one of
//! them completes a deal, loses one in mediation and lets one time out, and two
//! days pass: the leaderboard shows that reputation and the days offline.

use std::{collections::BTreeSet, path::Path, process::Command, time::Duration};

use alloy::primitives::{B256, Bytes, U256};
use lilypad_sdk::{
    chain::{ChainClient, Draw},
    core::{
        Address,
        offer::{JobOffer, ModulePolicy, ResourceOffer},
        spec::{JobRequirements, MachineSpec},
    },
    devnet::{
        self, ANVIL_KEYS, Devnet, DevnetOptions, anvil_address, anvil_signer, increase_time,
        set_next_block_timestamp,
    },
};

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

/// How the test ends a deal.
#[derive(Clone, Copy)]
enum End {
    /// Results `secs` after creation, accepted.
    Accepted { secs: u64 },
    /// Results `secs` after creation, challenged and rejected by the mediator.
    Rejected { secs: u64 },
    /// No results: the solver claims the timeout.
    TimedOut,
}

/// A client of account `i` with its own nonce cache: `lilypad-rp mine` sent
/// transactions from account 2 behind the devnet clients' shared cache.
async fn account(net: &Devnet, i: usize) -> ChainClient {
    let client = ChainClient::connect(net.config().clone()).await.expect("connect to the devnet");
    client.with_signer(anvil_signer(i))
}

/// One deal of the devnet's provider (account 2) for its job creator, ended as `end`.
async fn deal(net: &Devnet, end: End, nonce: u64) {
    let solver = account(net, devnet::SOLVER).await;
    let jc = account(net, devnet::JOB_CREATOR).await;
    let rp = account(net, devnet::PROVIDER).await;
    let mediators: BTreeSet<Address> =
        devnet::MEDIATORS.iter().map(|i| anvil_address(*i)).collect();
    let now = solver.latest_timestamp().await.expect("the latest block");
    let job = JobOffer {
        creator: anvil_address(devnet::JOB_CREATOR),
        module_id: B256::repeat_byte(7),
        inputs_hash: B256::repeat_byte(8),
        requirements: JobRequirements { cpu_millicores: 1000, ram_mib: 512, ..Default::default() },
        max_price: U256::from(50u64),
        payment_collateral: U256::from(100u64),
        timeout_secs: 300,
        bounds: Default::default(),
        mediators: mediators.clone(),
        solver: anvil_address(devnet::SOLVER),
        target: None,
        expiry: now + 3600,
        nonce: U256::from(nonce),
    };
    let resource = ResourceOffer {
        provider: anvil_address(devnet::PROVIDER),
        payout: Default::default(),
        spec: MachineSpec { cpu_millicores: 4000, ram_mib: 8192, disk_mib: 10_000, gpus: vec![] },
        modules: ModulePolicy::Any,
        default_price: U256::from(30u64),
        module_prices: Default::default(),
        timeout_collateral: U256::from(7u64),
        bounds: Default::default(),
        mediators,
        solver: anvil_address(devnet::SOLVER),
        expiry: now + 3600,
        nonce: U256::from(nonce),
    };
    let created = solver
        .create_deal(
            &jc.sign_job_offer(&job).expect("sign the job offer"),
            &rp.sign_resource_offer(&resource).expect("sign the resource offer"),
        )
        .await
        .expect("create the deal");
    let id = created.deal.id;
    let submit = |secs: u64| {
        let rp = &rp;
        let client = net.client();
        async move {
            set_next_block_timestamp(client, created.deal.created_at + secs)
                .await
                .expect("set the time");
            rp.submit_results_raw(id, Bytes::from(vec![1u8; 36])).await.expect("submit results");
        }
    };
    match end {
        End::Accepted { secs } => {
            submit(secs).await;
            jc.accept_results(id).await.expect("accept");
        }
        End::Rejected { secs } => {
            submit(secs).await;
            jc.challenge_results(id, &created.mediators).await.expect("challenge");
            let Draw::Drawn { mediator, .. } =
                solver.draw_mediator(id, &created.mediators).await.expect("draw")
            else {
                panic!("the first draw fixes a mediator")
            };
            let i = devnet::MEDIATORS
                .iter()
                .find(|i| anvil_address(**i) == mediator)
                .expect("a devnet mediator");
            account(net, *i).await.mediate(id, false).await.expect("mediate");
        }
        End::TimedOut => {
            increase_time(net.client(), job.timeout_secs + 1).await.expect("increase the time");
            solver.claim_timeout(id).await.expect("claim the timeout");
        }
    }
}

/// `leaderboard --json`'s rows.
fn leaderboard_rows(network: &Path) -> Vec<serde_json::Value> {
    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_lilypad-cli"))
        .args(["leaderboard", "--json", "--network"])
        .arg(network));
    assert!(ok, "leaderboard failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v["providers"].as_array().expect("a providers array").clone()
}

/// The row of an anvil account.
fn row(rows: &[serde_json::Value], account: usize) -> &serde_json::Value {
    let who = anvil_address(account).to_string();
    rows.iter().find(|r| r["provider"] == who.as_str()).expect(&who)
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
        deal(&net, End::Accepted { secs: 40 }, 1).await;
        deal(&net, End::Rejected { secs: 100 }, 2).await;
        deal(&net, End::TimedOut, 3).await;
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
