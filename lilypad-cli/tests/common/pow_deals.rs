//! Providers that mined and ran deals on a devnet, for the leaderboard and dashboard
//! tests: `lilypad-rp mine` (the real binary), deals created, ended and settled
//! directly on chain (no solver process: the test plays every party; controlled
//! outcomes and times), and `lilypad-rp run` daemons ([`Daemon`]) that run real
//! Docker jobs through a solver and storage.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use lilypad_sdk::{
    chain::{B256, Bytes, ChainClient, Draw, U256},
    core::{
        Address,
        offer::{JobOffer, ModulePolicy, ResourceOffer},
        spec::{JobRequirements, MachineSpec},
    },
    devnet::{
        self, ANVIL_KEYS, Devnet, anvil_address, anvil_signer, increase_time,
        set_next_block_timestamp,
    },
};

/// The `lilypad-rp` binary of this workspace ([`super::workspace_bin`]: the test
/// build's, or built first).
pub fn lilypad_rp() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| super::workspace_bin("lilypad-rp")).clone()
}

/// Runs a command: whether it succeeded, its stdout and its stderr.
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

/// `lilypad-rp mine --rounds 1 --cpu` as anvil account `account`: one accepted proof.
pub fn mine(network: &Path, account: usize, node: &str) {
    let (ok, out, err) = run(Command::new(lilypad_rp())
        .args(["mine", "--rounds", "1", "--cpu", "--node-id", node])
        .env("LILYPAD_NETWORK", network)
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[account])
        .env("RUST_LOG", "info"));
    assert!(ok, "lilypad-rp mine failed: {out}{err}");
    assert!(err.contains("proof accepted"), "{err}");
    assert!(!err.contains(ANVIL_KEYS[account].trim_start_matches("0x")), "key in the log");
}

/// How a test ends a deal.
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// Results `secs` after creation, accepted.
    Accepted { secs: u64 },
    /// Results `secs` after creation, challenged and rejected by the mediator.
    Rejected { secs: u64 },
    /// No results: the solver claims the timeout.
    TimedOut,
}

/// A client of account `i` with its own nonce cache: `lilypad-rp mine` sent
/// transactions behind the devnet clients' shared cache.
pub async fn account(net: &Devnet, i: usize) -> ChainClient {
    let client = ChainClient::connect(net.config().clone()).await.expect("connect to the devnet");
    client.with_signer(anvil_signer(i))
}

/// One deal of provider account `provider` (its controller allowance approved) for
/// the devnet's job creator, ended as `end`; its id.
pub async fn deal(net: &Devnet, provider: usize, end: End, nonce: u64) -> B256 {
    let solver = account(net, devnet::SOLVER).await;
    let jc = account(net, devnet::JOB_CREATOR).await;
    let rp = account(net, provider).await;
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
        provider: anvil_address(provider),
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
            // A CIDv1 (raw, sha2-256) in binary form, as a provider posts it.
            let mut cid = vec![0x01, 0x55, 0x12, 0x20];
            cid.extend_from_slice(&[nonce as u8; 32]);
            rp.submit_results_raw(id, Bytes::from(cid)).await.expect("submit results");
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
    id
}

/// `lilypad-cli leaderboard --json`'s output as printed (serde_json's default float
/// parser may be one ulp off: compare the text where exact floats matter).
pub fn leaderboard_text(network: &Path) -> String {
    let (ok, out, err) = run(Command::new(super::cli_bin())
        .args(["leaderboard", "--json", "--network"])
        .arg(network));
    assert!(ok, "leaderboard failed: {err}");
    out
}

/// `lilypad-cli leaderboard --json`'s whole output.
pub fn leaderboard_json(network: &Path) -> serde_json::Value {
    serde_json::from_str(&leaderboard_text(network)).expect("JSON")
}

/// `leaderboard --json`'s rows.
pub fn leaderboard_rows(network: &Path) -> Vec<serde_json::Value> {
    leaderboard_json(network)["providers"].as_array().expect("a providers array").clone()
}

/// The row of an anvil account.
pub fn row(rows: &[serde_json::Value], account: usize) -> &serde_json::Value {
    let who = anvil_address(account).to_string();
    rows.iter().find(|r| r["provider"] == who.as_str()).expect(&who)
}

/// A `lilypad-rp run` daemon, killed with SIGKILL when dropped.
pub struct Daemon {
    child: Child,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `lilypad-rp run` as anvil account `account` on the network file `network`
    /// (a solver and storage named), its data under `dir/rp-ACCOUNT`, and waits for its
    /// "running" line. Its offers expire `offer_ttl` seconds after the machine's
    /// clock: on a devnet whose time was moved ahead, pass more than the lead (an
    /// offer the chain sees expired makes no deal). Jobs run in Docker (dockerd and
    /// the module's image needed, e.g. scripts/build-example-images.sh cowsay).
    pub fn start(network: &Path, dir: &Path, account: usize, offer_ttl: u64) -> Self {
        let data = dir.join(format!("rp-{account}"));
        let log = dir.join(format!("rp-{account}.log"));
        let log_file =
            std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let ttl = offer_ttl.to_string();
        // Its containers' label, unique to this daemon: a provider's start removes the
        // leftover containers of its name, and other tests share the dockerd.
        let dir_name: String = dir
            .file_name()
            .map(|n| n.to_string_lossy().chars().filter(char::is_ascii_alphanumeric).collect())
            .unwrap_or_default();
        let executor = format!("pow-deals-{}-{dir_name}-rp-{account}", std::process::id());
        let mut child = Command::new(lilypad_rp())
            .arg("run")
            .arg("--data-dir")
            .arg(&data)
            .args(["--executor-name", &executor])
            .args(["--poll-secs", "1", "--price", "1000wei", "--timeout-collateral", "50wei"])
            .args(["--submit-margin", "5", "--min-disk-mib", "50", "--offer-ttl", &ttl])
            .arg("--network")
            .arg(network)
            .env("RUST_LOG", "info")
            .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[account])
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn lilypad-rp run");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        let daemon = Self { child, log };
        assert!(
            line.contains("running"),
            "lilypad-rp run did not start: {line:?}\n{}",
            daemon.log()
        );
        daemon
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
