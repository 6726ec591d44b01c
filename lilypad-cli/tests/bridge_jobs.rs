//! On-chain jobs end to end on a local network of real processes: anvil, the solver (with
//! SQLite), the content store and a `lilypad-cli bridge` process. A contract
//! (`ExampleClient`) requests cowsay; the bridge runs it through the job-creator flow as an
//! ordinary deal; the provider's side is played through the SDK's provider API; the
//! client gets its results CID, or its refund and reason, in exactly one callback.
//!
//! `cowsay:v0.0.4` resolves, through the bridge's `--module-base`, to a git repository the
//! test makes from examples/modules/cowsay (so nothing is fetched from the internet).

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEventInterface,
};
use common::{
    LocalNet, Proc, eventually, git_module, metrics_addr, now, repo_root, runtime, sample,
    sample_sum, scrape,
};
use lilypad_sdk::{
    bridge::{JobRecord, JobState, read_jobs},
    chain::{
        ChainClient, ExampleJobClient, JobStatus, OnChainJobOutcome,
        bindings::example_client::ExampleClient::ExampleClientEvents,
    },
    core::{
        offer::{ModulePolicy, ResourceOffer},
        spec::MachineSpec,
    },
    devnet::{self, anvil_address, anvil_signer},
    job::ProviderClient,
    module::ModuleCache,
    solver::{SolverClient, api::DealRecord},
    storage::StorageClient,
};

/// What the client escrows per request (base units); also the bridge's max price.
const PAYMENT: u64 = 1_000_000;
/// What the example client starts with.
const FUNDS: u64 = 10 * PAYMENT;
/// The provider's price.
const PRICE: u64 = 1000;
/// The longest a job may take here.
const WAIT: Duration = Duration::from_secs(120);

fn u(n: u64) -> U256 {
    U256::from(n)
}

fn bridge_address() -> Address {
    anvil_address(devnet::BRIDGE)
}

fn provider(net: &LocalNet, cache: &Path) -> ProviderClient {
    let chain = net.devnet.account(devnet::PROVIDER);
    let solver = SolverClient::new(
        &net.solver.url,
        anvil_signer(devnet::PROVIDER),
        net.config.chain_id,
        anvil_address(devnet::SOLVER),
    )
    .expect("solver client");
    let storage = StorageClient::new(&net.storage.url).expect("storage client");
    ProviderClient::new(chain, solver, storage, ModuleCache::new(cache))
}

fn cpu_offer() -> ResourceOffer {
    ResourceOffer {
        provider: anvil_address(devnet::PROVIDER),
        payout: Default::default(),
        spec: MachineSpec { cpu_millicores: 4000, ram_mib: 8192, disk_mib: 10_000, gpus: vec![] },
        modules: ModulePolicy::Any,
        default_price: u(PRICE),
        module_prices: Default::default(),
        timeout_collateral: u(10),
        bounds: Default::default(),
        mediators: devnet::MEDIATORS.iter().map(|m| anvil_address(*m)).collect::<BTreeSet<_>>(),
        solver: anvil_address(devnet::SOLVER),
        expiry: now() + 3600,
        nonce: u(1),
    }
}

/// A local network, a git repository for `cowsay:v0.0.4`, and an `ExampleClient` owned
/// by the devnet's job creator account, funded with [`FUNDS`].
struct Setup {
    net: LocalNet,
    /// The `--module-base` that makes `cowsay:v0.0.4` the local repository.
    module_base: String,
    owner: ChainClient,
    example: ExampleJobClient,
    db: PathBuf,
    dir: PathBuf,
}

impl Setup {
    async fn start(dir: &Path) -> Self {
        let net = LocalNet::start(dir).await;
        let module_base = git_module(
            &dir.join("modules"),
            "cowsay",
            "v0.0.4",
            &repo_root().join("examples/modules/cowsay"),
        );
        let owner = net.devnet.account(devnet::JOB_CREATOR);
        let manager = owner.job_manager_address().expect("the devnet has a job manager");
        let client =
            owner.deploy_example_client(manager, u(PAYMENT)).await.expect("deploy ExampleClient");
        owner.transfer(client, u(FUNDS)).await.expect("fund the client");
        let example = owner.example_client(client);
        Self {
            net,
            module_base,
            owner,
            example,
            db: dir.join("bridge.sqlite"),
            dir: dir.to_owned(),
        }
    }

    /// `lilypad-cli bridge` with the module base and `extra` arguments. The example
    /// image is built here, so it has no registry digest to pin it by.
    fn bridge(&self, extra: &[&str]) -> Proc {
        let mut args = vec!["--module-base", &self.module_base, "--allow-unpinned-image"];
        args.extend_from_slice(extra);
        self.net.spawn_bridge(&self.db, &args, &self.dir.join("bridge.log"))
    }

    async fn balance(&self, who: Address) -> U256 {
        self.owner.token_balance(who).await.expect("token balance")
    }

    fn logs(&self) -> String {
        let bridge = std::fs::read_to_string(self.dir.join("bridge.log")).unwrap_or_default();
        format!("--- bridge log:\n{bridge}\n{}", self.net.logs())
    }

    /// Waits for job `id` to end on chain.
    async fn outcome(&self, id: U256) -> OnChainJobOutcome {
        match self.owner.wait_for_job(id, WAIT).await {
            Ok(o) => o,
            Err(e) => panic!("job {id} did not end: {e}\n{}", self.logs()),
        }
    }

    /// The callbacks the example client received: (job, results CID) and (job, reason).
    async fn callbacks(&self) -> (Vec<(U256, String)>, Vec<(U256, String)>) {
        let filter = Filter::new().address(self.example.address()).from_block(0);
        let logs = self.owner.provider().get_logs(&filter).await.expect("eth_getLogs");
        let (mut fulfilled, mut cancelled) = (Vec::new(), Vec::new());
        for l in logs {
            match ExampleClientEvents::decode_raw_log(l.topics(), &l.data().data) {
                Ok(ExampleClientEvents::CowsayFulfilled(e)) => {
                    fulfilled.push((e.jobId, e.resultsCid));
                }
                Ok(ExampleClientEvents::CowsayCancelled(e)) => cancelled.push((e.jobId, e.reason)),
                _ => {}
            }
        }
        (fulfilled, cancelled)
    }

    fn db_job(&self, id: U256) -> Option<JobRecord> {
        read_jobs(&self.db).ok()?.into_iter().find(|j| j.job.job_id == id)
    }

    /// The bridge's metrics (it runs with `--metrics-addr 127.0.0.1:0`) once no job is
    /// in flight.
    async fn metrics_when_idle(&self) -> String {
        let addr = metrics_addr(&self.dir.join("bridge.log"), 30).await;
        eventually("no job in flight in the bridge's metrics", 30, || async {
            let m = scrape(&addr);
            (sample(&m, "lilypad_bridge_jobs_in_flight") == Some(0.0)).then_some(m)
        })
        .await
    }
}

/// The count of observations of `phase` in the bridge's phase histogram.
fn phase_count(m: &str, phase: &str) -> Option<f64> {
    sample(m, &format!("lilypad_bridge_phase_duration_seconds_count{{phase=\"{phase}\"}}"))
}

/// `lilypad-cli ARGS --network <the network file>` as the devnet's job creator (no key
/// given: the local chain's default); its stdout, after checking it succeeded.
fn cli(net: &LocalNet, args: &[&str]) -> String {
    let out = std::process::Command::new(common::BIN)
        .args(args)
        .arg("--network")
        .arg(&net.network_file)
        .env_remove("WEB3_PRIVATE_KEY")
        .env_remove("LILYPAD_NETWORK")
        .output()
        .expect("run lilypad-cli");
    assert!(
        out.status.success(),
        "lilypad-cli {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The provider's first deal; fails early with the bridge's log if the bridge exits.
async fn the_deal(p: &ProviderClient, bridge: &mut Proc, s: &Setup) -> DealRecord {
    let started = Instant::now();
    loop {
        if let Some(d) = p.solver().deals().await.ok().and_then(|d| d.into_iter().next()) {
            return d;
        }
        if let Some(status) = bridge.exited() {
            panic!("the bridge exited ({status}) before a deal\n{}", s.logs());
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no deal in 90 s\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The provider runs the job (as cowsay would) and publishes its results: the CID.
async fn provide(p: &ProviderClient, record: &DealRecord, dir: &Path, message: &str) -> String {
    let job = p.prepare(&record.deal).await.expect("the provider prepares the job");
    assert_eq!(job.inputs.values.get("Message").map(String::as_str), Some(message));
    assert!(
        job.spec.entrypoint.iter().chain(&job.spec.parameters).any(|a| a == message),
        "the rendered module runs cowsay with the message: {:?}",
        job.spec
    );
    let results = dir.join(format!("results-{}", record.deal.id));
    std::fs::create_dir_all(results.join("outputs")).expect("results dir");
    let bar = "-".repeat(message.len() + 2);
    std::fs::write(results.join("stdout"), format!(" {bar}\n< {message} >\n {bar}\n"))
        .expect("stdout");
    std::fs::write(results.join("stderr"), "").expect("stderr");
    std::fs::write(results.join("exitCode"), "0").expect("exitCode");
    let (cid, _) = p.publish_results(record.deal.id, &results).await.expect("publish + submit");
    cid.to_string()
}

/// Checks a fulfilled job: results, money, the one callback.
async fn check_fulfilled(s: &Setup, id: U256, cid: &str, deal: B256) {
    let OnChainJobOutcome::Fulfilled(f) = s.outcome(id).await else {
        panic!("job {id} was cancelled\n{}", s.logs());
    };
    assert_eq!(f.results_cid, cid);
    assert_eq!(f.bridge, bridge_address());
    assert_eq!(f.spent, u(PRICE), "the bridge claims the deal price");
    assert_eq!(f.refund, u(PAYMENT - PRICE));
    assert!(!f.callback_failed);
    assert_eq!(s.example.status_of(id).await.expect("statusOf"), Some(JobStatus::Fulfilled));
    assert_eq!(s.example.results_of(id).await.expect("resultsOf"), cid);
    assert_eq!(s.callbacks().await, (vec![(id, cid.to_owned())], vec![]), "exactly one callback");
    assert_eq!(s.balance(s.example.address()).await, u(FUNDS - PRICE));
    let row = eventually("the bridge records the job fulfilled", 30, || async {
        s.db_job(id).filter(|j| j.state == JobState::Fulfilled)
    })
    .await;
    assert_eq!(row.deal_id, Some(deal));
    assert_eq!(row.spent, Some(u(PRICE)));
}

#[test]
fn a_contract_gets_cowsay_results_from_the_bridge_in_one_callback() {
    let dir = tempfile::tempdir().expect("temp dir");
    runtime().block_on(async {
        let s = Setup::start(dir.path()).await;
        let p = provider(&s.net, &dir.path().join("rp-cache"));
        p.post_offer(&cpu_offer()).await.expect("post the resource offer");
        let bridge_before = s.balance(bridge_address()).await;
        let mut bridge = s.bridge(&["--metrics-addr", "127.0.0.1:0"]);

        let client = s.example.address().to_string();
        let id = cli(&s.net, &["jobs", "request-cowsay", "--client", &client, "moo"]);
        let id: U256 = id.trim().parse().expect("a job id");
        let job = s.owner.job(id).await.expect("getJob").expect("the job");
        assert_eq!((job.client, job.payment), (s.example.address(), u(PAYMENT)));
        let record = the_deal(&p, &mut bridge, &s).await;
        // The bridge is the deal's job creator, its max price the escrowed payment.
        assert_eq!(record.deal.members.job_creator, bridge_address());
        assert_eq!(record.deal.terms.payment_collateral, u(PAYMENT));
        assert_eq!(record.deal.terms.price, u(PRICE));
        let cid = provide(&p, &record, dir.path(), "moo").await;

        check_fulfilled(&s, id, &cid, record.deal.id).await;
        let shown =
            cli(&s.net, &["jobs", "show", &id.to_string(), "--json", "--example-client", &client]);
        let shown: serde_json::Value = serde_json::from_str(&shown).expect("jobs show JSON");
        assert_eq!(shown["status"], "fulfilled", "{shown}");
        assert_eq!(shown["results_cid"], cid, "{shown}");
        assert_eq!(shown["spent"], PRICE.to_string(), "{shown}");
        assert_eq!(shown["client_status"], "fulfilled", "{shown}");
        assert_eq!(shown["client_results_cid"], cid, "{shown}");
        // It fronted the payment collateral, got the change back on acceptance and the
        // price from the manager: even.
        assert_eq!(s.balance(bridge_address()).await, bridge_before);
        let row = s.db_job(id).expect("job row");
        assert_eq!(row.attempts, 1);

        // The metrics: one run, one fulfill, one job ended fulfilled, no failure.
        let m = s.metrics_when_idle().await;
        assert_eq!(sample(&m, "lilypad_bridge_jobs_ended_total{outcome=\"fulfilled\"}"), Some(1.0));
        assert_eq!(sample(&m, "lilypad_bridge_jobs_ended_total{outcome=\"cancelled\"}"), Some(0.0));
        assert_eq!(phase_count(&m, "run"), Some(1.0), "{m}");
        assert_eq!(phase_count(&m, "fulfill"), Some(1.0), "{m}");
        assert_eq!(phase_count(&m, "cancel"), Some(0.0), "{m}");
        assert!(phase_count(&m, "scan").is_some_and(|n| n >= 1.0), "{m}");
        assert_eq!(sample_sum(&m, "lilypad_bridge_failures_total"), 0.0, "{m}");
        assert!(bridge.exited().is_none(), "the bridge keeps running\n{}", s.logs());
    });
}

#[test]
fn a_bridge_killed_mid_job_resumes_its_deal_after_a_restart_and_calls_back_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    runtime().block_on(async {
        let s = Setup::start(dir.path()).await;
        let p = provider(&s.net, &dir.path().join("rp-cache"));
        p.post_offer(&cpu_offer()).await.expect("post the resource offer");
        let bridge_before = s.balance(bridge_address()).await;
        let mut bridge = s.bridge(&["--lease-secs", "3"]);

        let job = s.example.request_cowsay("crash").await.expect("requestCowsay");
        let record = the_deal(&p, &mut bridge, &s).await;
        eventually("the bridge records the deal", 30, || async {
            s.db_job(job.job_id).filter(|j| j.deal_id == Some(record.deal.id))
        })
        .await;
        bridge.kill9();

        // Results arrive while no bridge runs; the job is still open on chain.
        let cid = provide(&p, &record, dir.path(), "crash").await;
        let open = s.owner.job(job.job_id).await.expect("getJob").expect("the job");
        assert_eq!(open.status, JobStatus::Requested);
        assert_eq!(s.callbacks().await, (vec![], vec![]));

        let mut bridge = s.bridge(&["--lease-secs", "3"]);
        check_fulfilled(&s, job.job_id, &cid, record.deal.id).await;
        // One deal: the restart resumed it instead of paying for another.
        let deals = p.solver().deals().await.expect("provider deals");
        assert_eq!(deals.len(), 1, "{deals:?}");
        assert_eq!(s.balance(bridge_address()).await, bridge_before);
        let row = s.db_job(job.job_id).expect("job row");
        assert_eq!(row.attempts, 2, "one run before the kill, one after");
        let log = std::fs::read_to_string(dir.path().join("bridge.log")).expect("bridge log");
        assert!(log.contains("resuming the deal an earlier run made"), "{log}");
        assert!(bridge.exited().is_none(), "the bridge keeps running\n{}", s.logs());
    });
}

#[test]
fn failing_jobs_are_cancelled_once_with_their_reason_and_refunded() {
    let dir = tempfile::tempdir().expect("temp dir");
    runtime().block_on(async {
        let s = Setup::start(dir.path()).await;
        // No provider offers anything: no offer can match.
        let bridge_before = s.balance(bridge_address()).await;
        let account_before = s.balance(s.owner.address().expect("owner")).await;
        let mut bridge = s.bridge(&["--match-timeout", "3", "--metrics-addr", "127.0.0.1:0"]);

        let unmatched = s.example.request_cowsay("nobody").await.expect("requestCowsay");
        // An account (no callback) asks for a module that does not exist.
        let payment = format!("{PAYMENT}wei");
        let unknown = cli(
            &s.net,
            &["jobs", "request", "nosuch:v1.0.0", "-i", "Message=x", "--payment", &payment],
        );
        let unknown: U256 = unknown.trim().parse().expect("a job id");

        let OnChainJobOutcome::Cancelled(c) = s.outcome(unmatched.job_id).await else {
            panic!("the unmatched job was fulfilled\n{}", s.logs());
        };
        assert_eq!(
            c.reason,
            "no provider matched the job before its offer expired (no resource offer was available)"
        );
        assert_eq!(c.refund, u(PAYMENT));
        assert_eq!(c.by, bridge_address());
        assert!(!c.callback_failed);
        assert_eq!(
            s.example.status_of(unmatched.job_id).await.expect("statusOf"),
            Some(JobStatus::Cancelled)
        );
        assert_eq!(s.example.cancel_reason_of(unmatched.job_id).await.expect("reason"), c.reason);
        assert_eq!(s.callbacks().await, (vec![], vec![(unmatched.job_id, c.reason.clone())]));
        assert_eq!(s.balance(s.example.address()).await, u(FUNDS), "the client is refunded");

        let OnChainJobOutcome::Cancelled(c) = s.outcome(unknown).await else {
            panic!("the unknown module's job was fulfilled\n{}", s.logs());
        };
        assert!(c.reason.contains("lilypad-module-nosuch"), "{}", c.reason);
        assert_eq!(c.refund, u(PAYMENT));
        assert!(c.callback_failed, "an account gets no callback");
        assert_eq!(s.balance(s.owner.address().expect("owner")).await, account_before);

        // Fatal failures are not retried, and cost the bridge nothing.
        for id in [unmatched.job_id, unknown] {
            let row = eventually("the bridge records the job cancelled", 30, || async {
                s.db_job(id).filter(|j| j.state == JobState::Cancelled)
            })
            .await;
            assert_eq!(row.attempts, 1, "{row:?}");
            assert_eq!(row.deal_id, None);
        }
        // The metrics: two runs failed for good, two cancels, nothing fulfilled.
        let m = s.metrics_when_idle().await;
        assert_eq!(sample(&m, "lilypad_bridge_jobs_ended_total{outcome=\"cancelled\"}"), Some(2.0));
        assert_eq!(sample(&m, "lilypad_bridge_jobs_ended_total{outcome=\"fulfilled\"}"), Some(0.0));
        assert_eq!(sample(&m, "lilypad_bridge_failures_total{reason=\"run_failed\"}"), Some(2.0));
        assert_eq!(sample_sum(&m, "lilypad_bridge_failures_total"), 2.0, "{m}");
        assert_eq!(phase_count(&m, "run"), Some(2.0), "{m}");
        assert_eq!(phase_count(&m, "cancel"), Some(2.0), "{m}");
        assert_eq!(phase_count(&m, "fulfill"), Some(0.0), "{m}");
        assert_eq!(s.balance(bridge_address()).await, bridge_before);
        assert!(bridge.exited().is_none(), "the bridge keeps running\n{}", s.logs());
    });
}
