//! `lilypad-rp run` and `lilypad-rp mediate` end to end: real anvil, solver and storage
//! processes (the LocalNet of lilypad-cli's tests), real dockerd, `lilypad-cli run` as the
//! job creator. Needs dockerd and the example images (scripts/setup-docker.sh,
//! scripts/build-example-images.sh) and anvil (scripts/setup-contracts.sh); a missing
//! one fails the test with what to run.
//!
//! The tests share one dockerd and a two-core machine, so they run one at a time.

#[path = "../../lilypad-cli/tests/common/mod.rs"]
mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use common::{
    LocalNet, cli_bin, eventually, metrics_addr, now, repo_root, runtime, sample, sample_sum,
    scrape,
};
use lilypad_sdk::{
    chain::{ChainClient, DealStatus},
    core::{Address, B256, U256, inputs::JobInputs, offer::JobOffer, settlement::Outcome},
    devnet::{self, ANVIL_KEYS, anvil_address, anvil_signer},
    executor::Executor,
    module::ModuleCache,
    provider::{DealPhase, ProviderStore},
    solver::SolverClient,
};
use serde_json::Value;

const RP: &str = env!("CARGO_BIN_EXE_lilypad-rp");
static SERIAL: Mutex<()> = Mutex::new(());
const PRICE: u64 = 1000;
const TIMEOUT_COLLATERAL: u64 = 50;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A `lilypad-rp` process, killed with SIGKILL when dropped.
struct Rp {
    child: Child,
    log: PathBuf,
}

impl Rp {
    /// Spawns `lilypad-rp ARGS --network FILE` and waits for its "running" line.
    fn spawn(net: &LocalNet, args: &[&str], key: &str, log: &Path) -> Self {
        Self::spawn_with(net, args, key, log, &[])
    }

    /// [`Self::spawn`] with extra environment variables.
    fn spawn_with(
        net: &LocalNet,
        args: &[&str],
        key: &str,
        log: &Path,
        env: &[(&str, String)],
    ) -> Self {
        let log_file =
            std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let mut child = Command::new(RP)
            .args(args)
            .arg("--network")
            .arg(&net.network_file)
            .env("RUST_LOG", "info,lilypad_sdk=debug,lilypad_rp=debug")
            .env("WEB3_PRIVATE_KEY", key)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn lilypad-rp");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        assert!(
            line.contains("running"),
            "lilypad-rp {args:?} did not start: {line:?}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        Self { child, log: log.to_owned() }
    }

    /// The daemon's log so far, without its colours.
    fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut plain = String::with_capacity(log.len());
        let mut rest = log.as_str();
        while let Some(i) = rest.find("\x1b[") {
            plain.push_str(&rest[..i]);
            rest = &rest[i + 2..];
            rest = rest.find('m').map_or("", |end| &rest[end + 1..]);
        }
        plain.push_str(rest);
        plain
    }

    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Rp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lilypad-rp run` as the devnet's provider with test-friendly timings.
fn provider(net: &LocalNet, dir: &Path, name: &str, extra: &[&str]) -> Rp {
    provider_as(net, dir, name, devnet::PROVIDER, extra, &[])
}

/// `lilypad-rp run` as devnet account `who`, with extra environment variables.
fn provider_as(
    net: &LocalNet,
    dir: &Path,
    name: &str,
    who: usize,
    extra: &[&str],
    env: &[(&str, String)],
) -> Rp {
    let data = dir.join(format!("rp-{name}"));
    let data_s = data.display().to_string();
    let mut args = vec![
        "run",
        "--data-dir",
        &data_s,
        "--executor-name",
        name,
        "--poll-secs",
        "1",
        "--price",
        "1000wei",
        "--timeout-collateral",
        "50wei",
        "--submit-margin",
        "5",
        // The test machine's disk is shared; the check itself is what is tested.
        "--min-disk-mib",
        "50",
    ];
    args.extend_from_slice(extra);
    Rp::spawn_with(net, &args, ANVIL_KEYS[who], &dir.join(format!("rp-{name}.log")), env)
}

/// Opens the provider's state database (WAL: readable while the daemon runs).
fn store(dir: &Path, name: &str) -> ProviderStore {
    ProviderStore::open(&dir.join(format!("rp-{name}")).join("provider.db")).expect("provider db")
}

/// `lilypad-cli run MODULE --json` as the devnet's job creator.
fn spawn_run(net: &LocalNet, dir: &Path, module: &Path, extra: &[&str]) -> Child {
    spawn_run_as(net, dir, module, devnet::JOB_CREATOR, extra)
}

/// `lilypad-cli run MODULE --json` as devnet account `who` (results under `dir/out`).
fn spawn_run_as(net: &LocalNet, dir: &Path, module: &Path, who: usize, extra: &[&str]) -> Child {
    Command::new(cli_bin())
        .arg("run")
        .arg(module)
        .args(["--json", "--network"])
        .arg(&net.network_file)
        .arg("--output-dir")
        .arg(dir.join("out"))
        .args(extra)
        .env("LILYPAD_HOME", dir.join("home"))
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[who])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lilypad-cli run")
}

/// Waits for `lilypad-cli run` and parses its JSON answer.
async fn finish(mut child: Child, secs: u64, logs: &dyn Fn() -> String) -> (bool, Value, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let mut err = String::new();
            child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
            panic!("lilypad-cli run did not finish in {secs}s; stderr:\n{err}\n{}", logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("run printed no JSON ({e}): {out:?}\nstderr:\n{err}\n{}", logs())
    });
    (status.success(), json, err)
}

/// A module running `script` in the busybox image of the cowsay example.
fn shell_module(dir: &Path, name: &str, script: &str, timeout: u64, ram_mib: u64) -> PathBuf {
    image_module(dir, name, "lilypad-example/cowsay:0.1.0", script, timeout, ram_mib)
}

/// A module running `script` in `image`.
fn image_module(
    dir: &Path,
    name: &str,
    image: &str,
    script: &str,
    timeout: u64,
    ram_mib: u64,
) -> PathBuf {
    let m = dir.join("modules").join(name);
    std::fs::create_dir_all(&m).expect("module dir");
    let script = serde_json::to_string(script).expect("JSON string");
    let tmpl = format!(
        r#"{{
  "machine": {{ "gpu": 0, "cpu": 500, "ram": {ram_mib} }},
  "job": {{
    "APIVersion": "V1beta1",
    "Spec": {{
      "Docker": {{
        "Entrypoint": ["/bin/sh", "-c", {script}],
        "Image": "{image}",
        "WorkingDirectory": "/tmp"
      }},
      "Engine": "Docker",
      "Network": {{ "Type": "None" }},
      "Outputs": [{{ "Name": "outputs", "Path": "/outputs" }}],
      "Timeout": {timeout}
    }}
  }}
}}
"#
    );
    std::fs::write(m.join("lilypad_module.json.tmpl"), tmpl).expect("write the template");
    m
}

fn cowsay() -> PathBuf {
    repo_root().join("examples/modules/cowsay")
}

async fn balance(c: &ChainClient, who: usize) -> U256 {
    c.token_balance(anvil_address(who)).await.expect("token balance")
}

/// Fails with what to run when dockerd or the example image is missing.
async fn need_docker() {
    let exec = Executor::connect().expect("DOCKER_HOST");
    exec.preflight().await.unwrap_or_else(|e| panic!("dockerd is needed: {e}"));
    let image = lilypad_sdk::core::module::ImageRef::parse("lilypad-example/cowsay:0.1.0")
        .expect("image ref");
    exec.ensure_image(&image, |_| {})
        .await
        .unwrap_or_else(|e| panic!("run scripts/build-example-images.sh: {e}"));
}

#[test]
fn doctor_then_a_cowsay_job_end_to_end_and_a_restart_runs_nothing_twice() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.account(devnet::JOB_CREATOR);

        // doctor: every check passes on this machine and network.
        let out = Command::new(RP)
            .args(["doctor", "--min-disk-mib", "50", "--data-dir"])
            .arg(dir.path().join("rp-doctor"))
            .arg("--network")
            .arg(&net.network_file)
            .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::PROVIDER])
            .output()
            .expect("lilypad-rp doctor");
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
        for check in
            ["docker", "gpus", "disk", "chain", "solver", "storage", "gas", "balance", "slots"]
        {
            assert!(table.lines().any(|l| l.starts_with(check)), "no {check} line:\n{table}");
        }
        assert!(!table.contains("FAIL"), "{table}");

        let (jc0, rp0) =
            (balance(&chain, devnet::JOB_CREATOR).await, balance(&chain, devnet::PROVIDER).await);
        let metrics = ["--metrics-addr", "127.0.0.1:0"];
        let rp = provider(&net, dir.path(), "happy", &metrics);
        let run = spawn_run(&net, dir.path(), &cowsay(), &["-i", "Message=moo"]);
        let logs = || format!("{}\n--- rp log:\n{}", net.logs(), rp.log());
        let (ok, json, err) = finish(run, 180, &logs).await;
        assert!(ok, "run failed: {json}\n{err}\n{}", logs());
        assert_eq!(json["status"], "accepted", "{json}");
        assert_eq!(json["exit_code"], 0, "{json}");
        let stdout = std::fs::read_to_string(json["stdout"].as_str().expect("stdout path"))
            .expect("read stdout");
        assert!(stdout.contains("< moo >"), "{stdout}");

        // Paid: the price moved from the job creator to the provider, nothing else.
        let price = U256::from(PRICE);
        assert_eq!(balance(&chain, devnet::JOB_CREATOR).await, jc0 - price);
        assert_eq!(balance(&chain, devnet::PROVIDER).await, rp0 + price);

        let deal_id: B256 = json["deal_id"].as_str().expect("deal id").parse().expect("deal id");
        let st = store(dir.path(), "happy");
        let row = eventually("the provider's row is done", 30, || {
            let st = st.clone();
            async move { st.get(deal_id).ok().flatten().filter(|r| r.phase == DealPhase::Done) }
        })
        .await;
        assert_eq!(row.runs, 1);
        assert_eq!(row.results_cid.as_deref(), json["results_cid"].as_str());
        // A fresh offer (new nonce) follows the job.
        let posted = |log: &str| log.matches("resource offer posted").count();
        eventually("a fresh offer after the job", 30, || {
            let n = posted(&rp.log());
            async move { (n >= 2).then_some(()) }
        })
        .await;

        // The metrics endpoint counted exactly that: one deal, each phase once, nothing
        // failed, nothing in flight once the deal is done.
        let addr = metrics_addr(&rp.log, 10).await;
        let m = eventually("the metrics say the deal is over", 30, || {
            let m = scrape(&addr);
            let over = sample(&m, "lilypad_provider_deals_completed_total{outcome=\"accepted\"}")
                == Some(1.0)
                && sample(&m, "lilypad_provider_deals_in_flight") == Some(0.0);
            async move { over.then_some(m) }
        })
        .await;
        assert_eq!(sample_sum(&m, "lilypad_provider_deals_completed_total"), 1.0, "{m}");
        for phase in ["prepare", "image", "inputs", "run", "publish", "submit"] {
            let count =
                format!("lilypad_provider_phase_duration_seconds_count{{phase=\"{phase}\"}}");
            assert_eq!(sample(&m, &count), Some(1.0), "{count}:\n{m}");
        }
        assert_eq!(sample_sum(&m, "lilypad_provider_deals_failed_total"), 0.0, "{m}");
        assert_eq!(sample(&m, "lilypad_provider_jobs_running{slot=\"cpu0\"}"), Some(0.0), "{m}");
        let offers = sample(&m, "lilypad_provider_offers_posted_total{slot=\"cpu0\"}");
        assert!(offers.is_some_and(|n| n >= 2.0), "{m}");
        assert_eq!(sample(&m, "lilypad_provider_mining_proofs_total"), Some(0.0), "{m}");

        // kill -9 and restart: the deal is not run again, and the open offer is kept
        // (no second one while it lives).
        rp.kill9();
        let rp = provider(&net, dir.path(), "happy", &metrics);
        let before = posted(&rp.log());
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(posted(&rp.log()), before, "{}", rp.log());
        // The restarted daemon's own metrics: nothing ran, no offer posted.
        let m = scrape(&metrics_addr(&rp.log, 10).await);
        assert_eq!(sample_sum(&m, "lilypad_provider_phase_duration_seconds_count"), 0.0, "{m}");
        assert_eq!(sample_sum(&m, "lilypad_provider_offers_posted_total"), 0.0, "{m}");
        let row = st.get(deal_id).expect("db").expect("row");
        assert_eq!((row.phase, row.runs), (DealPhase::Done, 1), "{}", rp.log());
        assert_eq!(st.all().expect("rows").len(), 1);

        // SIGTERM stops the daemon cleanly.
        let mut rp = rp;
        let pid = rp.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(sent.success());
        let status = eventually("the daemon exits on SIGTERM", 15, || {
            let s = rp.child.try_wait().expect("wait");
            async move { s }
        })
        .await;
        assert!(status.success(), "{status}\n{}", rp.log());
    });
}

#[test]
fn a_provider_killed_mid_job_is_slashed_and_a_restart_does_not_rerun_the_deal() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.account(devnet::JOB_CREATOR);
        let module = shell_module(dir.path(), "sleeper", "echo started; sleep 600", 900, 64);
        let (jc0, rp0) =
            (balance(&chain, devnet::JOB_CREATOR).await, balance(&chain, devnet::PROVIDER).await);
        let rp = provider(&net, dir.path(), "killed", &[]);
        let run = spawn_run(&net, dir.path(), &module, &[]);

        // The container runs: kill the daemon with SIGKILL (the container is left behind).
        let exec = Executor::connect().expect("docker").with_name("killed");
        eventually("the job's container", 120, || {
            let exec = &exec;
            async move { exec.containers(None).await.ok().filter(|c| !c.is_empty()) }
        })
        .await;
        let st = store(dir.path(), "killed");
        let row = st.all().expect("rows").pop().expect("a deal row");
        assert_eq!(row.phase, DealPhase::Running);
        rp.kill9();

        // Past the deadline on chain: the job creator claims the timeout.
        let deal = chain.deal(row.deal.id).await.expect("deal").expect("on chain");
        let now_chain = chain.latest_timestamp().await.expect("chain time");
        devnet::increase_time(&chain, deal.deadline.saturating_sub(now_chain) + 5)
            .await
            .expect("increase time");
        let (ok, json, err) = finish(run, 120, &|| net.logs()).await;
        assert!(!ok, "{json}");
        assert_eq!(json["status"], "provider_timed_out", "{json}\n{err}");
        let finished = chain.deal(row.deal.id).await.expect("deal").expect("on chain");
        assert_eq!(finished.status, DealStatus::Finished(Outcome::NoResultsInTime));
        // The provider's timeout collateral went to the job creator, who paid nothing.
        let slash = U256::from(TIMEOUT_COLLATERAL);
        assert_eq!(balance(&chain, devnet::JOB_CREATOR).await, jc0 + slash);
        assert_eq!(balance(&chain, devnet::PROVIDER).await, rp0 - slash);

        // A restart removes the leftover container and does not run the ended deal again.
        let rp = provider(&net, dir.path(), "killed", &[]);
        let row = eventually("the deal marked failed", 30, || {
            let st = st.clone();
            let id = row.deal.id;
            async move { st.get(id).ok().flatten().filter(|r| r.phase == DealPhase::Failed) }
        })
        .await;
        assert_eq!(row.runs, 1, "{}", rp.log());
        assert!(row.reason.as_deref().is_some_and(|r| r.contains("NoResultsInTime")), "{row:?}");
        assert!(exec.containers(None).await.expect("containers").is_empty(), "{}", rp.log());
        assert!(rp.log().contains("removed containers left behind"), "{}", rp.log());
    });
}

/// Plays the job creator through the SDK, so that it can challenge (the CLI accepts
/// whatever verifies against its CID, and wrong-but-well-formed results do).
async fn post_job(net: &LocalNet, dir: &Path, module: &Path, values: &[(&str, &str)]) -> B256 {
    let (solver, offer) = post_job_offer(net, dir, module, values).await;
    eventually("a deal", 120, || {
        let solver = &solver;
        async move { solver.job_offer(offer).await.ok().and_then(|s| s.deal_id) }
    })
    .await
}

/// Posts the job offer of [`post_job`]; returns the job creator's solver client and
/// the offer's id.
async fn post_job_offer(
    net: &LocalNet,
    dir: &Path,
    module: &Path,
    values: &[(&str, &str)],
) -> (SolverClient, B256) {
    let chain = net.devnet.account(devnet::JOB_CREATOR);
    let solver = SolverClient::new(
        &net.solver.url,
        anvil_signer(devnet::JOB_CREATOR),
        31337,
        anvil_address(devnet::SOLVER),
    )
    .expect("solver client");
    let cache = ModuleCache::new(dir.join("jc-cache"));
    let reference = module.display().to_string();
    let resolved = cache.resolve_str(&reference).expect("resolve the module");
    let values: BTreeMap<String, String> =
        values.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let (_, spec) = resolved.template.render(&values).expect("render");
    let inputs = JobInputs { module: resolved.source.clone(), values, files: BTreeMap::new() };
    let max_price = U256::from(PRICE);
    chain.approve_controller(max_price).await.expect("approve");
    let offer = JobOffer {
        creator: anvil_address(devnet::JOB_CREATOR),
        module_id: resolved.id,
        inputs_hash: inputs.hash(),
        requirements: spec.resources,
        max_price,
        payment_collateral: max_price,
        timeout_secs: spec.timeout_secs + 120,
        bounds: Default::default(),
        mediators: devnet::MEDIATORS.iter().map(|m| anvil_address(*m)).collect::<BTreeSet<_>>(),
        solver: anvil_address(devnet::SOLVER),
        target: None,
        expiry: now() + 120,
        nonce: U256::from(now()),
    };
    let signed = chain.sign_job_offer(&offer).expect("sign");
    solver.post_job_offer(&signed, &inputs.canonical_bytes()).await.expect("post the job offer");
    (solver, signed.id)
}

#[test]
fn wrong_results_are_challenged_and_the_mediator_rejects_them() {
    mediation(
        &cowsay(),
        &[("Message", "moo")],
        &["--fault-wrong-output"],
        Outcome::MediationRejected,
    );
}

#[test]
fn right_results_challenged_anyway_are_upheld_by_the_mediator() {
    mediation(&cowsay(), &[("Message", "moo")], &[], Outcome::MediationAccepted);
}

fn embeddings() -> PathBuf {
    repo_root().join("examples/modules/embeddings")
}

const TEXTS: &str = r#"["a cat sits on the mat","stock prices fell sharply"]"#;

#[test]
fn embeddings_skewed_beyond_the_modules_tolerance_are_rejected_and_the_provider_slashed() {
    // cos 0.99 < the module's min_cosine 0.999.
    let args = ["--fault-skew-embeddings", "0.99"];
    mediation(&embeddings(), &[("Texts", TEXTS)], &args, Outcome::MediationRejected);
}

#[test]
fn embeddings_skewed_within_the_modules_tolerance_are_upheld() {
    // cos 0.9999 >= 0.999: not byte-identical (another CID), yet within the tolerance.
    let args = ["--fault-skew-embeddings", "0.9999"];
    mediation(&embeddings(), &[("Texts", TEXTS)], &args, Outcome::MediationAccepted);
}

/// `lilypad-cli verify DEAL --json` as the job creator: (exit status, its JSON answer).
async fn verify_deal(net: &LocalNet, dir: &Path, deal: B256) -> (bool, serde_json::Value) {
    let mut cmd = Command::new(cli_bin());
    cmd.args(["verify", &deal.to_string(), "--json", "--network"])
        .arg(&net.network_file)
        .arg("--data-dir")
        .arg(dir.join("verify"))
        .env("LILYPAD_HOME", dir.join("home"))
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::JOB_CREATOR]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("lilypad-cli verify");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("verify printed no JSON ({e}): {text}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.success(), v)
}

/// A provider (faulty when `fault` has flags) runs `module`, the job creator checks the
/// results with `lilypad-cli verify` and challenges, the drawn mediator (a `lilypad-rp
/// mediate` process) re-runs and decides; balances follow the contract's settlement
/// table.
fn mediation(module: &Path, values: &[(&str, &str)], fault: &[&str], expected: Outcome) {
    let faulty = expected == Outcome::MediationRejected;
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.account(devnet::JOB_CREATOR);
        let mediator = anvil_address(devnet::MEDIATORS[0]);
        let m = mediator.to_string();
        let mut args = vec!["--mediator", &m];
        args.extend_from_slice(fault);
        let rp = provider(&net, dir.path(), "mediated", &args);
        let med_dir = dir.path().join("mediator").display().to_string();
        let med = Rp::spawn(
            &net,
            &["mediate", "--data-dir", &med_dir, "--executor-name", "mediator"],
            ANVIL_KEYS[devnet::MEDIATORS[0]],
            &dir.path().join("mediator.log"),
        );
        let (jc0, rp0, med0) = (
            balance(&chain, devnet::JOB_CREATOR).await,
            balance(&chain, devnet::PROVIDER).await,
            balance(&chain, devnet::MEDIATORS[0]).await,
        );
        let logs =
            || format!("{}\n--- rp:\n{}\n--- mediator:\n{}", net.logs(), rp.log(), med.log());
        let deal_id = post_job(&net, dir.path(), module, values).await;
        eventually("results on chain", 120, || {
            let chain = &chain;
            async move { chain.deal(deal_id).await.ok().flatten().and_then(|d| d.results) }
        })
        .await;
        // The job creator's own spot check says what the mediator will.
        let (holds, answer) = verify_deal(&net, dir.path(), deal_id).await;
        assert_eq!(holds, !faulty, "{answer}\n{}", logs());
        assert_eq!(answer["holds"], serde_json::json!(!faulty), "{answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        if !fault.is_empty() && !faulty {
            assert!(reason.contains("within the module's tolerance"), "{reason}");
        }
        let record = SolverClient::new(
            &net.solver.url,
            anvil_signer(devnet::JOB_CREATOR),
            31337,
            anvil_address(devnet::SOLVER),
        )
        .expect("solver client")
        .deal(deal_id)
        .await
        .expect("the deal on the solver");
        assert_eq!(record.mediators, vec![mediator], "the only mediator both trust");
        // The solver's rule: the inputs are the provider's; a mediator reads them only
        // once drawn for the deal.
        let as_mediator = |i: usize| {
            SolverClient::new(
                &net.solver.url,
                anvil_signer(i),
                31337,
                anvil_address(devnet::SOLVER),
            )
            .expect("solver client")
        };
        let (drawn, other) = (as_mediator(devnet::MEDIATORS[0]), as_mediator(devnet::MEDIATORS[1]));
        let e = drawn.job_inputs(deal_id).await.expect_err("not drawn yet");
        assert!(matches!(e, lilypad_sdk::solver::SolverError::Forbidden(_)), "{e}");

        // The challenger pays the mediation fee.
        chain.approve_controller(record.deal.terms.mediation_fee).await.expect("approve the fee");
        let challenge =
            chain.challenge_results(deal_id, &record.mediators).await.expect("challenge");
        // Nobody knows the mediator in the challenge's block; the mediator daemon fixes
        // the draw (drawMediator) from the next block on.
        let fixed = eventually("the draw fixed by the mediator", 60, || {
            let chain = &chain;
            async move { chain.deal(deal_id).await.ok().flatten().and_then(|d| d.mediator) }
        })
        .await;
        assert_eq!(fixed, mediator);
        assert!(challenge.draw_block > 0);
        let inputs = drawn.job_inputs(deal_id).await.expect("the drawn mediator reads the inputs");
        // job_inputs checks them against the deal's inputs_hash itself.
        assert!(!inputs.is_empty());
        let e = other.job_inputs(deal_id).await.expect_err("another mediator may not");
        assert!(matches!(e, lilypad_sdk::solver::SolverError::Forbidden(_)), "{e}");

        let status = eventually("the mediator's verdict", 180, || {
            let chain = &chain;
            async move {
                match chain.deal(deal_id).await.ok().flatten().map(|d| d.status) {
                    Some(DealStatus::Finished(o)) => Some(o),
                    _ => None,
                }
            }
        })
        .await;
        assert_eq!(status, expected, "{}", logs());
        let said = match (fault.is_empty(), faulty) {
            (true, _) => "the re-run gives the submitted results",
            // A tolerance module: the CIDs differ and the comparator decides.
            (false, false) => "is within the module's tolerance",
            (false, true) if module == cowsay() => "the provider submitted",
            (false, true) => "is beyond the module's tolerance",
        };
        assert!(med.log().contains(said), "{}", med.log());

        // Settlement as the contract's table says for this outcome: the job creator
        // escrowed its payment collateral and the mediation fee, the provider its
        // timeout and results collateral.
        let t = &record.deal.terms;
        assert_eq!(t.mediation_fee, challenge.mediation_fee);
        let s = lilypad_sdk::core::settlement::settle(t, expected).expect("settle");
        use lilypad_sdk::core::settlement::Party;
        struct Pay {
            to_job_creator: U256,
            to_provider: U256,
            to_mediator: U256,
        }
        impl std::fmt::Debug for Pay {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "jc {} rp {} med {}",
                    self.to_job_creator, self.to_provider, self.to_mediator
                )
            }
        }
        let pay = Pay {
            to_job_creator: s.total_to(Party::JobCreator),
            to_provider: s.total_to(Party::ResourceProvider),
            to_mediator: s.total_to(Party::Mediator),
        };
        let (jc1, rp1, med1) = (
            balance(&chain, devnet::JOB_CREATOR).await,
            balance(&chain, devnet::PROVIDER).await,
            balance(&chain, devnet::MEDIATORS[0]).await,
        );
        assert_eq!(
            jc1,
            jc0 - t.payment_collateral - t.mediation_fee + pay.to_job_creator,
            "{pay:?}"
        );
        assert_eq!(
            rp1,
            rp0 - t.timeout_collateral - t.results_collateral + pay.to_provider,
            "{pay:?}"
        );
        assert_eq!(med1, med0 + pay.to_mediator, "{pay:?}");
        if faulty {
            assert!(rp1 < rp0, "the provider lost collateral: {rp0} -> {rp1}");
        } else {
            assert!(rp1 > rp0, "the provider was paid: {rp0} -> {rp1}");
        }
        assert!(med1 > med0, "the mediator was paid");
        assert!(chain.escrow_of(deal_id).await.expect("escrow").is_zero());
    });
}

#[test]
fn sandbox_failures_reach_the_job_creator_with_their_reason() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let rp = provider(&net, dir.path(), "limits", &["--max-output-mib", "1"]);
        let logs = || format!("{}\n--- rp:\n{}", net.logs(), rp.log());
        let cases: [(&str, &str, u64, u64, &str); 4] = [
            (
                "oom",
                "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
                60,
                32,
                "memory limit 32 MiB exceeded",
            ),
            ("slow", "echo begun; sleep 120", 3, 64, "deadline 3 s exceeded"),
            (
                "network",
                "if wget -T 3 -q -O /dev/null http://1.1.1.1/; then echo REACHED; else echo unreachable; fi",
                30,
                64,
                "",
            ),
            (
                "bigout",
                "head -c 3000000 /dev/zero > /outputs/big; echo wrote",
                60,
                64,
                "outputs rejected",
            ),
        ];
        for (name, script, timeout, ram, reason) in cases {
            let module = shell_module(dir.path(), name, script, timeout, ram);
            let run = spawn_run(&net, &dir.path().join(name), &module, &[]);
            let (ok, json, err) = finish(run, 180, &logs).await;
            assert!(ok, "{name}: {json}\n{err}\n{}", logs());
            assert_eq!(json["status"], "accepted", "{name}: {json}");
            let stdout = std::fs::read_to_string(json["stdout"].as_str().expect("stdout"))
                .expect("stdout");
            let stderr = std::fs::read_to_string(json["stderr"].as_str().expect("stderr"))
                .expect("stderr");
            match name {
                "network" => {
                    assert_eq!(stdout, "unreachable\n", "{stderr}");
                    assert_eq!(json["exit_code"], 0);
                }
                _ => {
                    // Killed jobs exit non-zero; a job that wrote too much and exited
                    // before the executor saw it keeps its own exit code.
                    if name != "bigout" {
                        assert_ne!(json["exit_code"], 0, "{name}: {json}");
                    }
                    assert!(
                        stderr.contains("lilypad: ") && stderr.contains(reason),
                        "{name}: {stderr:?}"
                    );
                    assert!(!stdout.contains("survived"), "{name}: {stdout}");
                }
            }
            if name == "bigout" {
                let outputs = Path::new(json["outputs"].as_str().expect("outputs"));
                let n = std::fs::read_dir(outputs).map(|d| d.count()).unwrap_or(0);
                assert_eq!(n, 0, "the oversized outputs were published");
            }
        }
    });
}

#[test]
fn a_job_whose_image_does_not_exist_is_reported_in_seconds_and_the_job_creator_refunded() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let rp = provider(
            &net,
            dir.path(),
            "noimage",
            &["--attempts-before-report", "2", "--metrics-addr", "127.0.0.1:0"],
        );
        let logs = || format!("{}\n--- rp:\n{}", net.logs(), rp.log());
        let chain = net.devnet.client();
        let (jc_before, rp_before) =
            (balance(chain, devnet::JOB_CREATOR).await, balance(chain, devnet::PROVIDER).await);
        let module = image_module(
            dir.path(),
            "noimage",
            "lilypad-example/no-such-image:0.0.0",
            "echo never",
            60,
            64,
        );
        let started = Instant::now();
        let run = spawn_run(&net, &dir.path().join("noimage"), &module, &[]);
        let (ok, json, err) = finish(run, 120, &logs).await;
        let took = started.elapsed();
        assert!(!ok, "{json}\n{err}");
        assert_eq!(json["status"], "provider_could_not_run", "{json}\n{err}\n{}", logs());
        let text = json["error"].as_str().expect("error text");
        assert!(text.contains("image") && text.contains("no-such-image"), "{text}");
        assert!(text.contains("refunded"), "{text}");
        // Measured, not asserted tightly: a failure report must beat the deal's
        // deadline by far (minutes), which is what this checks.
        assert!(took < Duration::from_secs(30), "the reason took {took:?}\n{}", logs());
        let deal: B256 = json["deal_id"].as_str().expect("deal id").parse().expect("deal id");
        let on_chain = chain.deal(deal).await.expect("getDeal").expect("the deal");
        assert_eq!(on_chain.status, DealStatus::Finished(Outcome::FailureAccepted));
        // The job creator got its payment back; the provider its timeout collateral.
        assert_eq!(balance(chain, devnet::JOB_CREATOR).await, jc_before);
        assert_eq!(balance(chain, devnet::PROVIDER).await, rp_before);
        assert_eq!(chain.escrow_of(deal).await.expect("escrow"), U256::ZERO);

        // The metrics: one deal failed, by its reason; nothing ran; the provider saw
        // the deal end with the failure accepted.
        let addr = metrics_addr(&rp.log, 10).await;
        let m = eventually("the metrics count the deal's end", 30, || {
            let m = scrape(&addr);
            let series = "lilypad_provider_deals_completed_total{outcome=\"failure_accepted\"}";
            let over = sample(&m, series) == Some(1.0);
            async move { over.then_some(m) }
        })
        .await;
        let reason = "lilypad_provider_deals_failed_total{reason=\"reported_image_unavailable\"}";
        assert_eq!(sample(&m, reason), Some(1.0), "{m}");
        assert_eq!(sample_sum(&m, "lilypad_provider_deals_failed_total"), 1.0, "{m}");
        let runs = "lilypad_provider_phase_duration_seconds_count{phase=\"run\"}";
        assert_eq!(sample(&m, runs), Some(0.0), "{m}");
    });
}

#[test]
fn a_module_outside_the_allowlist_gets_no_match_and_the_job_creator_is_told_why() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let other = B256::repeat_byte(0x42).to_string();
        let rp =
            provider(&net, dir.path(), "picky", &["--allow-module", &other, "--offer-ttl", "10"]);
        eventually("the offer", 30, || {
            let l = rp.log();
            async move { l.contains("resource offer posted").then_some(()) }
        })
        .await;
        let run = spawn_run(&net, dir.path(), &cowsay(), &["--match-timeout", "8"]);
        let (ok, json, err) = finish(run, 120, &|| rp.log()).await;
        assert!(!ok, "{json}");
        assert_eq!(json["status"], "no_match", "{json}\n{err}");
        let reasons = json["reasons"].to_string();
        assert!(reasons.contains("module"), "the reasons name the module policy: {reasons}");
        assert!(store(dir.path(), "picky").all().expect("rows").is_empty());
        // The 10 s offer expired unmatched; a fresh one replaced it.
        eventually("a fresh offer after the first expired", 30, || {
            let n = rp.log().matches("resource offer posted").count();
            async move { (n >= 2).then_some(()) }
        })
        .await;
    });
}

/// The provider's account as an SDK client (the test plays a provider that crashed).
fn provider_client(net: &LocalNet, cache: &Path) -> lilypad_sdk::job::ProviderClient {
    let solver = SolverClient::new(
        &net.solver.url,
        anvil_signer(devnet::PROVIDER),
        31337,
        anvil_address(devnet::SOLVER),
    )
    .expect("solver client");
    let storage = lilypad_sdk::storage::StorageClient::new(&net.storage.url).expect("storage");
    lilypad_sdk::job::ProviderClient::new(
        net.devnet.account(devnet::PROVIDER),
        solver,
        storage,
        ModuleCache::new(cache),
    )
}

#[test]
fn a_deal_published_before_a_crash_is_submitted_on_restart_without_running_again() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        // A provider that got as far as publishing, then crashed: its offer, its deal,
        // its published results and its database row, written as the daemon writes them.
        let p = provider_client(&net, &dir.path().join("crashed-cache"));
        let offer = lilypad_sdk::core::offer::ResourceOffer {
            provider: anvil_address(devnet::PROVIDER),
            payout: Address::ZERO,
            spec: lilypad_sdk::core::spec::MachineSpec {
                cpu_millicores: 4000,
                ram_mib: 8192,
                disk_mib: 10_000,
                gpus: vec![],
            },
            modules: lilypad_sdk::core::offer::ModulePolicy::Any,
            default_price: U256::from(PRICE),
            module_prices: BTreeMap::new(),
            timeout_collateral: U256::from(TIMEOUT_COLLATERAL),
            bounds: Default::default(),
            mediators: devnet::MEDIATORS.iter().map(|m| anvil_address(*m)).collect(),
            solver: anvil_address(devnet::SOLVER),
            expiry: now() + 600,
            nonce: U256::from(now()),
        };
        p.post_offer(&offer).await.expect("post the offer");
        let run = spawn_run(&net, dir.path(), &cowsay(), &["-i", "Message=crash"]);
        let record = eventually("the deal", 60, || {
            let p = &p;
            async move { p.solver().deals().await.ok().and_then(|d| d.into_iter().next()) }
        })
        .await;
        let results = dir.path().join("published");
        std::fs::create_dir_all(results.join("outputs")).expect("results dir");
        std::fs::write(results.join("stdout"), "published before the crash\n").expect("stdout");
        std::fs::write(results.join("stderr"), "").expect("stderr");
        std::fs::write(results.join("exitCode"), "0").expect("exitCode");
        let cid = p.storage().publish_dir(&results).await.expect("publish");
        let st = store(dir.path(), "crashed");
        assert!(st.insert(&record.deal).expect("insert"));
        st.set(record.deal.id, DealPhase::Running, None, None, None).expect("running");
        st.set(record.deal.id, DealPhase::Published, Some(&cid.to_string()), None, None)
            .expect("published");

        // The restarted daemon submits what was published, and runs nothing.
        let rp = provider(&net, dir.path(), "crashed", &[]);
        let (ok, json, err) = finish(run, 120, &|| rp.log()).await;
        assert!(ok, "{json}\n{err}\n{}", rp.log());
        assert_eq!(json["results_cid"], cid.to_string());
        let stdout =
            std::fs::read_to_string(json["stdout"].as_str().expect("stdout")).expect("stdout");
        assert_eq!(stdout, "published before the crash\n");
        let row = eventually("the row done", 30, || {
            let st = st.clone();
            let id = record.deal.id;
            async move { st.get(id).ok().flatten().filter(|r| r.phase == DealPhase::Done) }
        })
        .await;
        assert_eq!(row.runs, 1, "not run again: {}", rp.log());
        assert!(!rp.log().contains("running the job"), "{}", rp.log());
    });
}

#[test]
fn the_engine_in_process_pauses_mining_while_a_job_runs() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use lilypad_sdk::provider::{EngineConfig, ProviderEngine};

    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let module = shell_module(dir.path(), "nap", "sleep 3; echo rested", 60, 64);
        let pause = Arc::new(AtomicBool::new(false));
        let spec = lilypad_sdk::core::spec::MachineSpec {
            cpu_millicores: 2000,
            ram_mib: 2048,
            disk_mib: 1000,
            gpus: vec![],
        };
        let data = dir.path().join("in-process");
        let mut config = EngineConfig::new(&data, spec, anvil_address(devnet::SOLVER));
        config.default_price = U256::from(PRICE);
        config.mediators = devnet::MEDIATORS.iter().map(|m| anvil_address(*m)).collect();
        config.poll_interval = Duration::from_millis(500);
        config.mining_pause = Some(Arc::clone(&pause));
        let executor = Executor::connect().expect("docker").with_name("in-process");
        let store = ProviderStore::open(&data.join("provider.db")).expect("db");
        let engine = ProviderEngine::new(
            provider_client(&net, &dir.path().join("ip-cache")),
            executor,
            store.clone(),
            config,
        )
        .expect("engine");
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = {
            let cancel = cancel.clone();
            tokio::spawn(async move { engine.run(&cancel).await })
        };
        let run = spawn_run(&net, dir.path(), &module, &[]);
        let exec = Executor::connect().expect("docker").with_name("in-process");
        eventually("the job's container", 120, || {
            let exec = &exec;
            async move { exec.containers(None).await.ok().filter(|c| !c.is_empty()) }
        })
        .await;
        assert!(pause.load(Ordering::Relaxed), "mining is paused while the job runs");
        let (ok, json, err) = finish(run, 120, &|| net.logs()).await;
        assert!(ok, "{json}\n{err}");
        assert!(!pause.load(Ordering::Relaxed), "mining resumes after the job");
        cancel.cancel();
        task.await.expect("join").expect("the engine stops cleanly");
        assert_eq!(store.all().expect("rows").len(), 1);
    });
}

#[test]
fn a_bad_key_is_refused_without_being_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let network = dir.path().join("network.toml");
    lilypad_sdk::chain::NetworkConfig::local().save(&network).expect("network file");
    let out = Command::new(RP)
        .args(["doctor", "--network"])
        .arg(&network)
        .env("WEB3_PRIVATE_KEY", "0xnot-a-key-topsecret")
        .output()
        .expect("lilypad-rp doctor");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(text.contains("WEB3_PRIVATE_KEY is not a private key"), "{text}");
    assert!(!text.contains("topsecret"), "{text}");
    let _ = Address::ZERO;
}

/// Three job creators (devnet accounts that play no other role), so that their
/// transactions never race for one account's nonce.
const CREATORS: [usize; 3] = [devnet::JOB_CREATOR, 8, 9];

/// A provider split into three CPU slots of 500 millicores and 256 MiB each.
fn three_slots(net: &LocalNet, dir: &Path, name: &str) -> Rp {
    provider(net, dir, name, &["--slots", "3", "--cpu-millicores", "1500", "--ram-mib", "768"])
}

/// `docker inspect` of a container: its CPU and memory limits.
fn limits(id: &str) -> (i64, i64) {
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", id])
        .output()
        .expect("the docker CLI");
    assert!(out.status.success(), "docker inspect: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<i64>().expect("a number"));
    (it.next().expect("NanoCpus"), it.next().expect("Memory"))
}

/// Waits until the executor `name` runs `n` job containers at once; returns their ids.
async fn containers_at_once(name: &str, n: usize) -> Vec<String> {
    let exec = Executor::connect().expect("docker").with_name(name);
    eventually(&format!("{n} job containers running at once"), 180, || {
        let exec = &exec;
        async move { exec.containers(None).await.ok().filter(|c| c.len() == n) }
    })
    .await
}

/// The `start S` and `end S` lines a slotted job prints.
fn interval(stdout: &str) -> (u64, u64) {
    let at = |word: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(word))
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {word:?} line in {stdout:?}"))
    };
    (at("start "), at("end "))
}

#[test]
fn three_cpu_slots_run_three_jobs_at_once_each_within_its_slot() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let script = "echo start $(date +%s); sleep 6; echo end $(date +%s)";
        let module = shell_module(dir.path(), "slotted", script, 120, 64);
        let rp = three_slots(&net, dir.path(), "slots");
        let logs = || format!("{}\n--- rp log:\n{}", net.logs(), rp.log());
        let runs: Vec<Child> =
            CREATORS.iter().map(|who| spawn_run_as(&net, dir.path(), &module, *who, &[])).collect();

        // All three run at the same time, each held to its slot's share (the module asks
        // for 500 millicores and 64 MiB; the slot has 500 and 256).
        for id in containers_at_once("slots", 3).await {
            let (nano_cpus, memory) = limits(&id);
            assert!(nano_cpus > 0 && nano_cpus <= 500_000_000, "{id}: NanoCpus {nano_cpus}");
            assert!(memory > 0 && memory <= 256 * 1024 * 1024, "{id}: Memory {memory}");
        }
        let mut intervals = Vec::new();
        let mut deals = Vec::new();
        for run in runs {
            let (ok, json, err) = finish(run, 180, &logs).await;
            assert!(ok, "run failed: {json}\n{err}\n{}", logs());
            assert_eq!(json["status"], "accepted", "{json}");
            let stdout = std::fs::read_to_string(json["stdout"].as_str().expect("stdout path"))
                .expect("read stdout");
            intervals.push(interval(&stdout));
            deals.push(json["deal_id"].as_str().expect("deal id").parse::<B256>().expect("id"));
        }
        // The wall-clock intervals the jobs saw overlap: they ran concurrently.
        let latest_start = intervals.iter().map(|i| i.0).max().expect("3");
        let earliest_end = intervals.iter().map(|i| i.1).min().expect("3");
        assert!(latest_start < earliest_end, "{intervals:?}");

        // One deal per slot, each run once.
        let st = store(dir.path(), "slots");
        let mut slots = BTreeSet::new();
        for id in deals {
            let row = st.get(id).expect("db").expect("row");
            assert_eq!(row.runs, 1, "{row:?}");
            slots.insert(st.offer_slot(row.deal.resource_offer_id).expect("db").expect("slot"));
        }
        assert_eq!(slots, ["slot0", "slot1", "slot2"].map(String::from).into(), "{}", logs());
    });
}

#[test]
fn a_kill_9_with_three_jobs_running_loses_none_and_runs_none_twice() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.account(devnet::JOB_CREATOR);
        let module = shell_module(dir.path(), "long", "echo ran; sleep 8", 120, 64);
        let mut before = Vec::new();
        for who in CREATORS {
            before.push(balance(&chain, who).await);
        }
        let provider0 = balance(&chain, devnet::PROVIDER).await;
        let rp = three_slots(&net, dir.path(), "slots-kill");
        let runs: Vec<Child> =
            CREATORS.iter().map(|who| spawn_run_as(&net, dir.path(), &module, *who, &[])).collect();
        containers_at_once("slots-kill", 3).await;
        let st = store(dir.path(), "slots-kill");
        let rows = st.all().expect("rows");
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.phase == DealPhase::Running && r.runs == 1), "{rows:?}");
        rp.kill9();

        // The restart removes the three abandoned containers and runs each deal again,
        // once: every job creator gets results and pays the price once.
        let rp = three_slots(&net, dir.path(), "slots-kill");
        let logs = || format!("{}\n--- rp log:\n{}", net.logs(), rp.log());
        for run in runs {
            let (ok, json, err) = finish(run, 240, &logs).await;
            assert!(ok, "run failed: {json}\n{err}\n{}", logs());
            assert_eq!(json["status"], "accepted", "{json}");
            let stdout = std::fs::read_to_string(json["stdout"].as_str().expect("stdout path"))
                .expect("read stdout");
            assert_eq!(stdout, "ran\n");
        }
        assert!(rp.log().contains("removed containers left behind"), "{}", rp.log());
        let price = U256::from(PRICE);
        for (who, b0) in CREATORS.iter().zip(before) {
            assert_eq!(balance(&chain, *who).await, b0 - price, "account {who}");
        }
        assert_eq!(balance(&chain, devnet::PROVIDER).await, provider0 + price * U256::from(3));
        for row in rows {
            let id = row.deal.id;
            let row = eventually("the deal done", 60, || {
                let st = st.clone();
                async move { st.get(id).ok().flatten().filter(|r| r.phase == DealPhase::Done) }
            })
            .await;
            // Started before the kill and once after it; never two at a time.
            assert_eq!(row.runs, 2, "{row:?}");
            let on_chain = chain.deal(id).await.expect("deal").expect("on chain");
            assert_eq!(on_chain.status, DealStatus::Finished(Outcome::Accepted));
        }
    });
}

#[test]
fn a_payout_address_receives_the_payment_and_the_collateral_refund() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.account(devnet::JOB_CREATOR);
        // A devnet account with no other role stands in for the provider's cold wallet.
        let payout = anvil_address(9);
        let balance_of = |who: Address| {
            let chain = chain.clone();
            async move { chain.token_balance(who).await.expect("token balance") }
        };
        let (jc0, rp0, payout0) = (
            balance(&chain, devnet::JOB_CREATOR).await,
            balance(&chain, devnet::PROVIDER).await,
            balance_of(payout).await,
        );
        let rp = provider(&net, dir.path(), "payout", &["--payout", &payout.to_string()]);
        let logs = || format!("{}\n--- rp log:\n{}", net.logs(), rp.log());
        let run = spawn_run(&net, dir.path(), &cowsay(), &["-i", "Message=paid"]);
        let (ok, json, err) = finish(run, 180, &logs).await;
        assert!(ok, "run failed: {json}\n{err}\n{}", logs());
        assert_eq!(json["status"], "accepted", "{json}");
        let deal_id: B256 = json["deal_id"].as_str().expect("deal id").parse().expect("deal id");
        assert_eq!(chain.payout_of(deal_id).await.expect("payoutOf"), payout);

        // The signing key escrowed the collateral (timeout, then results); the payout
        // address got the price and every refund; nothing else moved.
        let params = chain.network_params().await.expect("params");
        let price = U256::from(PRICE);
        let results = price * U256::from(params.results_collateral_multiple);
        assert_eq!(balance(&chain, devnet::JOB_CREATOR).await, jc0 - price);
        assert_eq!(balance(&chain, devnet::PROVIDER).await, rp0 - results, "{}", logs());
        assert_eq!(balance_of(payout).await, payout0 + price + results);
        assert!(rp.log().contains("deals pay this payout address"), "{}", rp.log());
    });
}

/// A directory with an `nvidia-smi` that lists `n` GPUs the way the real one answers
/// `--query-gpu=name,memory.total --format=csv,noheader,nounits`.
fn fake_nvidia_smi(dir: &Path, n: usize) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join(format!("fake-nvidia-smi-{n}"));
    std::fs::create_dir_all(&bin).expect("dir");
    let lines: String = (0..n).map(|_| "echo 'NVIDIA RTX 4090, 24564'\n").collect();
    let script = bin.join("nvidia-smi");
    std::fs::write(&script, format!("#!/bin/sh\n{lines}")).expect("write nvidia-smi");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn fake_nvidia_smi_offer_side_only_a_two_gpu_job_takes_two_one_gpu_slots_together_and_not_one_gpu()
{
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        // One GPU: its one slot cannot take the job.
        let one = provider_as(&net, dir.path(), "one-gpu", 8, &[], &[(
            "PATH",
            fake_nvidia_smi(dir.path(), 1),
        )]);

        // A job asking for two GPUs of 16 GiB each, posted through the SDK.
        let m = dir.path().join("modules/two-gpus");
        std::fs::create_dir_all(&m).expect("module dir");
        std::fs::write(
            m.join("lilypad_module.json.tmpl"),
            r#"{
  "machine": { "gpu": 2, "cpu": 500, "ram": 64, "gpus": [ { "vram": 16384 } ] },
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Docker": { "Entrypoint": ["/bin/sh", "-c", "nvidia-smi"], "Image": "lilypad-example/gpu-hello:0.1.0" },
      "Engine": "Docker",
      "Network": { "Type": "None" },
      "Timeout": 120
    }
  }
}
"#,
        )
        .expect("template");
        let chain = net.devnet.account(devnet::JOB_CREATOR);
        let (solver, offer) = post_job_offer(&net, dir.path(), &m, &[]).await;
        let asked = solver.job_offer(offer).await.expect("status").offer.requirements;
        assert_eq!((asked.gpu_count, asked.gpu_vram_mib), (2, 16_384));
        // The one-GPU provider's offer is there and is not matched, for the GPUs.
        let reasons = eventually("the matcher's reasons", 60, || {
            let solver = &solver;
            async move {
                let s = solver.job_offer(offer).await.ok()?;
                assert!(s.deal_id.is_none(), "matched a one-GPU slot: {s:?}");
                let text = format!("{:?}", s.mismatches);
                text.contains("GPU").then_some(text)
            }
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let status = solver.job_offer(offer).await.expect("status");
        assert!(status.deal_id.is_none(), "{status:?}\n{}", one.log());

        // Two GPUs, one slot each (the default): the slots are offered alone and
        // together; the job takes them together, and the deal is that provider's.
        let two = provider_as(&net, dir.path(), "two-gpus", devnet::PROVIDER, &[], &[(
            "PATH",
            fake_nvidia_smi(dir.path(), 2),
        )]);
        let deal_id = eventually("a deal", 60, || {
            let solver = &solver;
            async move { solver.job_offer(offer).await.ok().and_then(|s| s.deal_id) }
        })
        .await;
        // The solver names the deal while it creates it on chain.
        let deal = eventually("the deal on chain", 60, || {
            let chain = &chain;
            async move { chain.deal(deal_id).await.expect("deal") }
        })
        .await;
        assert_eq!(deal.provider, anvil_address(devnet::PROVIDER), "{reasons}\n{}", two.log());
        let log = two.log();
        for slot in ["gpu0: ", "gpu1: "] {
            assert!(log.contains(slot), "no slot {slot}\n{log}");
        }
        assert!(!log.contains("GPU 0,1"), "a slot with both GPUs\n{log}");
        assert!(log.contains("slot=gpu0+gpu1"), "the GPU slots not offered together\n{log}");
        // The deal is the group's, and each slot's own offer was withdrawn by the match.
        let received = eventually("the deal received", 60, || {
            let two = &two;
            async move { two.log().lines().find(|l| l.contains("deal received")).map(String::from) }
        })
        .await;
        assert!(received.contains("slot=gpu0+gpu1"), "{received}\n{log}");
        eventually("both slots' own offers withdrawn", 60, || {
            let two = &two;
            async move { (two.log().matches("reason=Some(\"withdrawn").count() >= 2).then_some(()) }
        })
        .await;
    });
}

/// Sends SIGTERM to `rp` and asserts it exits cleanly (status 0) within 15 s.
async fn sigterm_exits_cleanly(rp: &mut Rp) {
    let pid = rp.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(sent.success());
    let status = eventually("the daemon exits on SIGTERM", 15, || {
        let s = rp.child.try_wait().expect("wait");
        async move { s }
    })
    .await;
    assert!(status.success(), "{status}\n{}", rp.log());
}

/// Waits until `rp`'s log has `n` lines with `text`; returns the log.
async fn log_has(rp: &Rp, text: &str, n: usize, secs: u64) -> String {
    let started = Instant::now();
    loop {
        let log = rp.log();
        if log.matches(text).count() >= n {
            return log;
        }
        assert!(started.elapsed().as_secs() < secs, "no {n} x {text:?} in {secs}s:\n{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a proof-of-work round (as the devnet's owner, account 0) with `target` and
/// waits until `rp`'s miners mine it (`miners` of them); returns the round.
async fn pow_round(net: &LocalNet, rp: &Rp, target: U256, miners: usize) -> u64 {
    let round = net.devnet.account(0).start_pow_round(target).await.expect("startRound").round;
    log_has(rp, &format!("mining round round={round} "), miners, 30).await;
    round
}

/// A target no miner meets within a test (2^80 hashes expected): the miners hash on.
fn hard() -> U256 {
    U256::MAX >> 80
}

/// Starts a pow round `rp` cannot finish (so it keeps mining), then runs a 4 s CPU job
/// on it through `lilypad-cli run`, to its end.
async fn nap_while_mining(net: &LocalNet, dir: &Path, rp: &Rp) {
    pow_round(net, rp, hard(), 1).await;
    let module = shell_module(dir, "nap", "sleep 4; echo rested", 60, 64);
    let run = spawn_run(net, dir, &module, &[]);
    let logs = || format!("{}\n--- rp log:\n{}", net.logs(), rp.log());
    let (ok, json, err) = finish(run, 180, &logs).await;
    assert!(ok, "run failed: {json}\n{err}\n{}", logs());
}

#[test]
fn mine_on_a_cpu_only_provider_mines_and_pauses_while_a_job_runs() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let rp =
            provider(&net, dir.path(), "cpu-miner", &["--mine", "--metrics-addr", "127.0.0.1:0"]);
        let log = log_has(&rp, "proof accepted", 1, 120).await;
        assert!(log.contains("--mine: mining on the CPU, paused while any job runs"), "{log}");
        assert!(!log.contains("OpenCL"), "no GPU: OpenCL is not loaded\n{log}");

        // Mining a round it cannot finish, a job pauses it; it resumes when the job is done.
        nap_while_mining(&net, dir.path(), &rp).await;
        let log = log_has(&rp, "mining resumed", 1, 30).await;
        let paused = log.find("mining paused (a job runs)").expect("paused while the job ran");
        let running = log.find("running the job").expect("the job ran");
        let resumed = log.find("mining resumed").expect("resumed");
        assert!(running < paused && paused < resumed, "{log}");
        // Proofs go on after the job.
        let before = log.matches("proof accepted").count();
        pow_round(&net, &rp, U256::MAX >> 4, 1).await;
        let log = log_has(&rp, "proof accepted", before + 1, 60).await;
        // Each accepted proof counted (the round's one proof is in: no more come).
        let proofs = log.matches("proof accepted").count() as f64;
        let m = scrape(&metrics_addr(&rp.log, 10).await);
        assert_eq!(sample(&m, "lilypad_provider_mining_proofs_total"), Some(proofs), "{m}");
    });
}

#[test]
fn fake_gpu_mining_falls_back_to_the_cpu_without_an_opencl_gpu_and_a_stand_in_mines_per_gpu() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        need_docker().await;
        let net = LocalNet::start(dir.path()).await;
        let path = || vec![("PATH", fake_nvidia_smi(dir.path(), 1))];

        // pocl's CPU device standing in for GPU 0: the OpenCL miner mines for GPU 0 and
        // only a job on GPU 0 pauses it, so a CPU job does not.
        let mut rp = provider_as(
            &net,
            dir.path(),
            "cl-stand-in",
            devnet::PROVIDER,
            &["--mine", "--mine-opencl-cpu-as-gpu"],
            &path(),
        );
        let log = log_has(&rp, "proof accepted", 1, 180).await;
        assert!(log.contains("GPU 0 mines on OpenCL device"), "{log}");
        assert!(!log.contains("mining on the CPU"), "{log}");
        // Mining a round it cannot finish while a CPU job runs.
        nap_while_mining(&net, dir.path(), &rp).await;
        let log = rp.log();
        assert!(log.contains("running the job"), "{log}");
        assert!(!log.contains("mining paused"), "a CPU job paused the GPU miner\n{log}");
        // OpenCL (pocl, LLVM) was loaded and compiled kernels: SIGTERM still stops it cleanly.
        sigterm_exits_cleanly(&mut rp).await;

        // GPU 0 (nvidia-smi) and no OpenCL GPU device (pocl's CPU device at most): a
        // warning, and the CPU miner. (After the job above: this provider's offers
        // would be matched with no daemon to run the deal.)
        let mut rp =
            provider_as(&net, dir.path(), "no-cl-gpu", devnet::PROVIDER, &["--mine"], &path());
        pow_round(&net, &rp, U256::MAX >> 4, 1).await;
        let log = log_has(&rp, "proof accepted", 1, 120).await;
        assert!(log.contains("no OpenCL GPU device matches GPU 0"), "{log}");
        assert!(log.contains("--mine: mining on the CPU, paused while any job runs"), "{log}");
        assert!(!log.contains("mines on OpenCL device"), "{log}");
        sigterm_exits_cleanly(&mut rp).await;
    });
}
