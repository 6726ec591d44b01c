//! The bridge service on a real anvil with a real SQLite file: contracts request jobs, the
//! bridge runs them through a stand-in runner and ends each one on chain exactly once,
//! across crashes, restarts and a second instance.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEventInterface};
use lilypad_core::{Address, B256, U256};
use lilypad_sdk::{
    bridge::{
        Bridge, BridgeError, BridgeJob, BridgeOptions, CancellationToken, JobRecord, JobRunner,
        JobState, RunContext, RunFailure, RunSuccess, read_jobs,
    },
    chain::{
        ChainClient, ChainError, ExampleJobClient, JobStatus, OnChainJobOutcome,
        bindings::example_client::ExampleClient::ExampleClientEvents,
    },
    devnet::{self, JOB_TIMEOUT_SECS},
};
use tokio::{sync::Barrier, task::JoinHandle};

use crate::common::{Net, addr, start};

/// Tokens escrowed per request.
const PAYMENT: u64 = 100;
/// Tokens the example client starts with.
const FUNDS: u64 = 1_000;
/// What the stand-in runner says each job cost.
const SPENT: u64 = 30;
/// The longest any wait in these tests may take.
const WAIT: Duration = Duration::from_secs(60);

fn u(n: u64) -> U256 {
    U256::from(n)
}

/// The results CID the stand-in runner gives a job: a CIDv1 (raw codec) of the keccak-256
/// of its `Message` input, so each job gets its own, checkable, results.
fn results_cid_for(message: &str) -> String {
    let digest = alloy::primitives::keccak256(message.as_bytes());
    let mh = cid::multihash::Multihash::<64>::wrap(0x1b, digest.as_slice()).expect("32 bytes fit");
    cid::Cid::new_v1(0x55, mh).to_string()
}

/// The deal the stand-in runner records for a job (a stand-in deal id).
fn deal_for(job_id: U256) -> B256 {
    alloy::primitives::keccak256(B256::from(job_id))
}

fn message_of(job: &BridgeJob) -> String {
    job.job.inputs.iter().find(|(k, _)| k == "Message").map(|(_, v)| v.clone()).unwrap_or_default()
}

/// One invocation of a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    runner: &'static str,
    job_id: U256,
    attempt: u32,
    resume_deal: Option<B256>,
}

type Calls = Arc<Mutex<Vec<Call>>>;

/// A stand-in for the network's job flow (module resolution, offer, solver, deal, verified
/// results: tested on their own elsewhere). It records a deal id, then answers
/// [`results_cid_for`] the job's `Message` and [`SPENT`], and logs every invocation.
/// Messages steer it: `fail ...` fails for good, `flaky ...` fails retryably on the first
/// attempt, `always-flaky ...` on every attempt, `pair ...` waits at a two-party barrier,
/// and with `block` set every run waits until cancelled.
struct FixedResultRunner {
    name: &'static str,
    calls: Calls,
    block: bool,
    barrier: Option<Arc<Barrier>>,
    delay: Duration,
}

impl FixedResultRunner {
    fn new(name: &'static str, calls: &Calls) -> Self {
        Self { name, calls: calls.clone(), block: false, barrier: None, delay: Duration::ZERO }
    }
}

#[async_trait::async_trait]
impl JobRunner for FixedResultRunner {
    async fn run(&self, job: &BridgeJob, ctx: &RunContext) -> Result<RunSuccess, RunFailure> {
        self.calls.lock().expect("calls lock").push(Call {
            runner: self.name,
            job_id: job.job.job_id,
            attempt: job.attempt,
            resume_deal: job.resume_deal,
        });
        let message = message_of(job);
        let deal = job.resume_deal.unwrap_or_else(|| deal_for(job.job.job_id));
        ctx.record_deal(deal).await.map_err(|e| RunFailure::retryable(e.to_string()))?;
        if self.block {
            ctx.cancellation().cancelled().await;
            return Err(RunFailure::retryable("cancelled"));
        }
        if message.starts_with("pair") {
            let barrier = self.barrier.as_ref().expect("a barrier for pair jobs");
            tokio::select! {
                _ = barrier.wait() => {}
                () = ctx.cancellation().cancelled() => return Err(RunFailure::retryable("cancelled")),
            }
        }
        tokio::time::sleep(self.delay).await;
        if message.starts_with("fail") {
            return Err(RunFailure::fatal(format!("no provider runs {}", job.job.module)));
        }
        if message.starts_with("always-flaky") || (message.starts_with("flaky") && job.attempt == 1)
        {
            return Err(RunFailure::retryable(format!(
                "solver unreachable (attempt {})",
                job.attempt
            )));
        }
        Ok(RunSuccess {
            results_cid: results_cid_for(&message),
            spent: u(SPENT),
            deal_id: Some(deal),
        })
    }
}

fn calls_of(calls: &Calls) -> Vec<Call> {
    calls.lock().expect("calls lock").clone()
}

/// Short times for a devnet.
fn fast() -> BridgeOptions {
    BridgeOptions {
        concurrency: 2,
        poll_interval: Duration::from_millis(100),
        lease: Duration::from_secs(1),
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        cancel_grace: Duration::from_secs(2),
        ..BridgeOptions::default()
    }
}

struct Setup {
    net: Net,
    bridge: ChainClient,
    example: ExampleJobClient,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let net = start().await;
    let manager = net.devnet.config().contracts.job_manager.expect("the devnet has a job manager");
    let address =
        net.jc.deploy_example_client(manager, u(PAYMENT)).await.expect("deploy ExampleClient");
    net.jc.transfer(address, u(FUNDS)).await.expect("fund the client");
    let example = net.jc.example_client(address);
    let dir = tempfile::tempdir().expect("temp dir");
    Setup {
        bridge: net.devnet.account(devnet::BRIDGE),
        db: dir.path().join("bridge.sqlite"),
        example,
        net,
        _dir: dir,
    }
}

async fn new_bridge(s: &Setup, runner: FixedResultRunner, opts: BridgeOptions) -> Bridge {
    Bridge::new(s.bridge.clone(), &s.db, Arc::new(runner), opts).await.expect("bridge starts")
}

/// Runs `bridge` in a task until the returned token fires.
fn spawn(bridge: &Bridge) -> (CancellationToken, JoinHandle<Result<(), BridgeError>>) {
    let stop = CancellationToken::new();
    let b = bridge.clone();
    let s = stop.clone();
    (stop, tokio::spawn(async move { b.run(s).await }))
}

async fn stop(handle: (CancellationToken, JoinHandle<Result<(), BridgeError>>)) {
    handle.0.cancel();
    tokio::time::timeout(WAIT, handle.1)
        .await
        .expect("the bridge stops in time")
        .expect("the bridge task does not panic")
        .expect("the bridge stops cleanly");
}

/// The callbacks the example client received: (job, results CID) and (job, reason).
async fn callbacks(
    c: &ChainClient,
    example: Address,
) -> (Vec<(U256, String)>, Vec<(U256, String)>) {
    let logs = c
        .provider()
        .get_logs(&Filter::new().address(example).from_block(0))
        .await
        .expect("eth_getLogs");
    let (mut fulfilled, mut cancelled) = (Vec::new(), Vec::new());
    for l in logs {
        match ExampleClientEvents::decode_raw_log(l.topics(), &l.data().data) {
            Ok(ExampleClientEvents::CowsayFulfilled(e)) => fulfilled.push((e.jobId, e.resultsCid)),
            Ok(ExampleClientEvents::CowsayCancelled(e)) => cancelled.push((e.jobId, e.reason)),
            _ => {}
        }
    }
    (fulfilled, cancelled)
}

fn db_job(db: &Path, id: U256) -> JobRecord {
    read_jobs(db)
        .expect("read the bridge db")
        .into_iter()
        .find(|j| j.job.job_id == id)
        .expect("job in db")
}

/// Waits until `pred` holds of job `id`'s row.
async fn wait_db(db: &Path, id: U256, what: &str, pred: impl Fn(&JobRecord) -> bool) -> JobRecord {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(j) =
            read_jobs(db).expect("read the bridge db").into_iter().find(|j| j.job.job_id == id)
            && pred(&j)
        {
            return j;
        }
        assert!(started.elapsed() < WAIT, "job {id} never got {what}: {:?}", read_jobs(db));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_calls(calls: &Calls, n: usize) {
    let started = tokio::time::Instant::now();
    while calls_of(calls).len() < n {
        assert!(started.elapsed() < WAIT, "only {:?} runner calls", calls_of(calls));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_gets_its_results_in_exactly_one_callback() {
    let s = setup().await;
    let c = s.net.devnet.client();
    let calls = Calls::default();
    let bridge = new_bridge(&s, FixedResultRunner::new("a", &calls), fast()).await;
    let before = c.token_balance(addr(&s.bridge)).await.unwrap();
    let running = spawn(&bridge);

    let job = s.example.request_cowsay("hello, bridge").await.unwrap();
    let outcome = s.bridge.wait_for_job(job.job_id, WAIT).await.unwrap();
    let cid = results_cid_for("hello, bridge");
    let OnChainJobOutcome::Fulfilled(f) = &outcome else { panic!("not fulfilled: {outcome:?}") };
    assert_eq!(
        (f.results_cid.as_str(), f.spent, f.refund),
        (cid.as_str(), u(SPENT), u(PAYMENT - SPENT))
    );
    assert_eq!(f.bridge, addr(&s.bridge));
    assert!(!f.callback_failed);
    assert_eq!(s.example.results_of(job.job_id).await.unwrap(), cid);
    assert_eq!(s.example.status_of(job.job_id).await.unwrap(), Some(JobStatus::Fulfilled));
    assert_eq!(c.token_balance(s.example.address()).await.unwrap(), u(FUNDS - SPENT));
    assert_eq!(c.token_balance(addr(&s.bridge)).await.unwrap(), before + u(SPENT));

    // The database follows; a few more polls change nothing.
    let rec = wait_db(&s.db, job.job_id, "fulfilled", |j| j.state == JobState::Fulfilled).await;
    assert_eq!(rec.tx, Some(f.tx));
    assert_eq!(rec.deal_id, Some(deal_for(job.job_id)));
    assert_eq!(
        (rec.results_cid.as_deref(), rec.spent, rec.attempts),
        (Some(cid.as_str()), Some(u(SPENT)), 1)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(running).await;
    assert_eq!(callbacks(c, s.example.address()).await, (vec![(job.job_id, cid)], vec![]));
    assert_eq!(calls_of(&calls).len(), 1);

    // wait_for_job on a job that is over already finds how it ended; unknown ids and open
    // jobs give typed errors.
    assert_eq!(c.wait_for_job(job.job_id, WAIT).await.unwrap(), outcome);
    let e = c.wait_for_job(u(99), WAIT).await.unwrap_err();
    assert!(matches!(e, ChainError::NoSuchJob { job_id } if job_id == u(99)), "{e}");
    let open = s.example.request_cowsay("nobody runs this").await.unwrap();
    let e = c.wait_for_job(open.job_id, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(e, ChainError::Timeout { call: "wait_for_job", .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_stopped_mid_job_resumes_its_deal_and_calls_back_once() {
    let s = setup().await;
    let c = s.net.devnet.client();
    let calls = Calls::default();
    let first = new_bridge(
        &s,
        FixedResultRunner { block: true, ..FixedResultRunner::new("first", &calls) },
        fast(),
    )
    .await;
    let (_stop, task) = spawn(&first);
    let job = s.example.request_cowsay("survive a crash").await.unwrap();
    wait_calls(&calls, 1).await;
    let rec = wait_db(&s.db, job.job_id, "its deal", |j| j.deal_id.is_some()).await;
    assert_eq!(rec.state, JobState::Running);
    // The process dies: no cleanup, its lease stays until it expires.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(c.job(job.job_id).await.unwrap().unwrap().status, JobStatus::Requested);

    let second = new_bridge(&s, FixedResultRunner::new("second", &calls), fast()).await;
    let running = spawn(&second);
    let outcome = s.bridge.wait_for_job(job.job_id, WAIT).await.unwrap();
    assert_eq!(outcome.status(), JobStatus::Fulfilled);
    wait_db(&s.db, job.job_id, "fulfilled", |j| j.state == JobState::Fulfilled).await;
    stop(running).await;
    assert_eq!(
        calls_of(&calls),
        vec![
            Call { runner: "first", job_id: job.job_id, attempt: 1, resume_deal: None },
            // The second instance resumes the recorded deal instead of paying for another.
            Call {
                runner: "second",
                job_id: job.job_id,
                attempt: 2,
                resume_deal: Some(deal_for(job.job_id))
            },
        ]
    );
    let cid = results_cid_for("survive a crash");
    assert_eq!(callbacks(c, s.example.address()).await, (vec![(job.job_id, cid)], vec![]));
    assert_eq!(c.token_balance(s.example.address()).await.unwrap(), u(FUNDS - SPENT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_sending_fulfill_still_gives_one_callback() {
    let s = setup().await;
    let c = s.net.devnet.client();
    let calls = Calls::default();
    let opts = BridgeOptions { fault_crash_after_send: true, ..fast() };
    let crashing = new_bridge(&s, FixedResultRunner::new("crashing", &calls), opts).await;
    let (_stop, task) = spawn(&crashing);
    let job = s.example.request_cowsay("sent, not recorded").await.unwrap();
    let e = tokio::time::timeout(WAIT, task).await.expect("the fault fires").unwrap().unwrap_err();
    assert!(matches!(e, BridgeError::FaultInjected { job_id, .. } if job_id == job.job_id), "{e}");
    // The transaction went out (the fault fires once it is sent, which can be
    // a moment before its block is queryable: wait for it, as CI once had to);
    // the database does not know it.
    let outcome = s.bridge.wait_for_job(job.job_id, WAIT).await.unwrap();
    assert_eq!(outcome.status(), JobStatus::Fulfilled);
    assert_eq!(c.job(job.job_id).await.unwrap().unwrap().status, JobStatus::Fulfilled);
    let rec = db_job(&s.db, job.job_id);
    assert_eq!((rec.state, rec.tx), (JobState::Fulfilling, None));

    let bridge_nonce =
        || async { c.provider().get_transaction_count(addr(&s.bridge)).await.expect("nonce") };
    let nonce = bridge_nonce().await;
    let balance = c.token_balance(addr(&s.bridge)).await.unwrap();
    let restarted = new_bridge(&s, FixedResultRunner::new("restarted", &calls), fast()).await;
    let running = spawn(&restarted);
    wait_db(&s.db, job.job_id, "fulfilled", |j| j.state == JobState::Fulfilled).await;
    stop(running).await;
    // The restarted bridge read the chain: it neither ran the job again nor sent anything.
    assert_eq!(calls_of(&calls).len(), 1);
    assert_eq!(bridge_nonce().await, nonce);
    assert_eq!(c.token_balance(addr(&s.bridge)).await.unwrap(), balance);
    let cid = results_cid_for("sent, not recorded");
    assert_eq!(callbacks(c, s.example.address()).await, (vec![(job.job_id, cid)], vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_jobs_are_cancelled_once_with_their_reason_and_refunded() {
    let s = setup().await;
    let c = s.net.devnet.client();
    let calls = Calls::default();
    let opts = BridgeOptions { max_attempts: 2, ..fast() };
    let bridge = new_bridge(&s, FixedResultRunner::new("a", &calls), opts).await;
    let running = spawn(&bridge);
    let fail = s.example.request_cowsay("fail: bad module").await.unwrap();
    let flaky = s.example.request_cowsay("flaky once").await.unwrap();
    let hopeless = s.example.request_cowsay("always-flaky").await.unwrap();
    assert_eq!(c.token_balance(s.example.address()).await.unwrap(), u(FUNDS - 3 * PAYMENT));

    let OnChainJobOutcome::Cancelled(x) = s.bridge.wait_for_job(fail.job_id, WAIT).await.unwrap()
    else {
        panic!("job 1 was not cancelled")
    };
    assert_eq!(
        (x.reason.as_str(), x.refund, x.by),
        ("no provider runs cowsay:v0.0.4", u(PAYMENT), addr(&s.bridge))
    );
    assert!(!x.callback_failed);
    let f = s.bridge.wait_for_job(flaky.job_id, WAIT).await.unwrap();
    assert_eq!(f.status(), JobStatus::Fulfilled);
    let OnChainJobOutcome::Cancelled(h) =
        s.bridge.wait_for_job(hopeless.job_id, WAIT).await.unwrap()
    else {
        panic!("job 3 was not cancelled")
    };
    assert_eq!(h.reason, "solver unreachable (attempt 2)");
    for id in [fail.job_id, flaky.job_id, hopeless.job_id] {
        wait_db(&s.db, id, "its end", |j| j.state.is_final()).await;
    }
    stop(running).await;

    assert_eq!(
        s.example.cancel_reason_of(fail.job_id).await.unwrap(),
        "no provider runs cowsay:v0.0.4"
    );
    assert_eq!(s.example.status_of(fail.job_id).await.unwrap(), Some(JobStatus::Cancelled));
    // Two full refunds, one job paid for.
    assert_eq!(c.token_balance(s.example.address()).await.unwrap(), u(FUNDS - SPENT));
    let (fulfilled, cancelled) = callbacks(c, s.example.address()).await;
    assert_eq!(fulfilled, vec![(flaky.job_id, results_cid_for("flaky once"))]);
    assert_eq!(
        cancelled,
        vec![
            (fail.job_id, "no provider runs cowsay:v0.0.4".to_owned()),
            (hopeless.job_id, "solver unreachable (attempt 2)".to_owned())
        ]
    );
    let mut runs: BTreeMap<U256, Vec<u32>> = BTreeMap::new();
    for call in calls_of(&calls) {
        runs.entry(call.job_id).or_default().push(call.attempt);
    }
    let want: BTreeMap<U256, Vec<u32>> =
        [(fail.job_id, vec![1]), (flaky.job_id, vec![1, 2]), (hopeless.job_id, vec![1, 2])].into();
    assert_eq!(runs, want);
    assert_eq!(db_job(&s.db, flaky.job_id).attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_job_is_cancelled_without_running_and_bad_setups_are_refused() {
    let s = setup().await;
    let c = s.net.devnet.client();
    let calls = Calls::default();
    let job = s.example.request_cowsay("too late").await.unwrap();
    devnet::increase_time(c, JOB_TIMEOUT_SECS + 1).await.unwrap();

    let bridge = new_bridge(&s, FixedResultRunner::new("a", &calls), fast()).await;
    let running = spawn(&bridge);
    let OnChainJobOutcome::Cancelled(x) = s.bridge.wait_for_job(job.job_id, WAIT).await.unwrap()
    else {
        panic!("not cancelled")
    };
    assert_eq!((x.reason.as_str(), x.by), ("expired", addr(&s.bridge)));
    wait_db(&s.db, job.job_id, "cancelled", |j| j.state == JobState::Cancelled).await;
    stop(running).await;
    assert!(calls_of(&calls).is_empty(), "an expired job is not run: {:?}", calls_of(&calls));
    assert_eq!(c.token_balance(s.example.address()).await.unwrap(), u(FUNDS));
    assert_eq!(callbacks(c, s.example.address()).await.1, vec![(job.job_id, "expired".to_owned())]);

    // Refusals before anything runs.
    let runner = || Arc::new(FixedResultRunner::new("x", &calls));
    let e = Bridge::new(s.net.jc.clone(), &s.db, runner(), fast()).await.unwrap_err();
    assert!(
        matches!(e, BridgeError::NotBridge { account, .. } if account == addr(&s.net.jc)),
        "{e}"
    );
    let e = Bridge::new(c.clone(), &s.db, runner(), fast()).await.unwrap_err();
    assert!(matches!(e, BridgeError::NoSigner), "{e}");
    let opts = BridgeOptions { concurrency: 0, ..fast() };
    let e = Bridge::new(s.bridge.clone(), &s.db, runner(), opts).await.unwrap_err();
    assert_eq!(e.to_string(), "bridge option concurrency = 0: must be at least 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_on_one_database_run_each_job_once() {
    let s = setup().await;
    let c = s.net.devnet.client();
    let calls = Calls::default();
    // One job at a time each: the two `pair` jobs can only meet at the barrier if the two
    // instances hold one each.
    let barrier = Arc::new(Barrier::new(2));
    let opts = |name: &str| BridgeOptions { concurrency: 1, instance: Some(name.into()), ..fast() };
    let runner = |name| FixedResultRunner {
        barrier: Some(barrier.clone()),
        delay: Duration::from_millis(150),
        ..FixedResultRunner::new(name, &calls)
    };
    let a = new_bridge(&s, runner("a"), opts("a")).await;
    let b = new_bridge(&s, runner("b"), opts("b")).await;
    let (ra, rb) = (spawn(&a), spawn(&b));
    let mut jobs = Vec::new();
    for m in ["pair 1", "pair 2", "three", "four", "five", "six"] {
        jobs.push((s.example.request_cowsay(m).await.unwrap().job_id, m));
    }
    for (id, _) in &jobs {
        assert_eq!(s.bridge.wait_for_job(*id, WAIT).await.unwrap().status(), JobStatus::Fulfilled);
        wait_db(&s.db, *id, "fulfilled", |j| j.state == JobState::Fulfilled).await;
    }
    stop(ra).await;
    stop(rb).await;

    let calls = calls_of(&calls);
    let mut ids: Vec<U256> = calls.iter().map(|c| c.job_id).collect();
    ids.sort();
    assert_eq!(
        ids,
        jobs.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "each job runs once: {calls:?}"
    );
    let by = |id| calls.iter().find(|c| c.job_id == id).map(|c| c.runner);
    assert_ne!(by(jobs[0].0), by(jobs[1].0), "the pair ran on both instances: {calls:?}");
    let (mut fulfilled, cancelled) = callbacks(c, s.example.address()).await;
    assert!(cancelled.is_empty());
    // Two instances post in any order.
    fulfilled.sort();
    let want: Vec<(U256, String)> = jobs.iter().map(|(id, m)| (*id, results_cid_for(m))).collect();
    assert_eq!(fulfilled, want);
    assert_eq!(c.token_balance(s.example.address()).await.unwrap(), u(FUNDS - 6 * SPENT));
}

/// The manager's minimum payment (what the bridge needs for its gas) refuses cheaper
/// jobs before anything is escrowed; only the manager's admin sets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_paying_less_than_the_minimum_is_refused_before_escrow() {
    let s = setup().await;
    let c = s.net.devnet.client();
    assert_eq!(c.min_payment().await.unwrap(), U256::ZERO);
    assert!(s.net.jc.set_min_payment(u(PAYMENT + 1)).await.is_err(), "not the admin");
    let admin = s.net.devnet.account(0);
    admin.set_min_payment(u(PAYMENT + 1)).await.expect("setMinPayment by the admin");
    assert_eq!(c.min_payment().await.unwrap(), u(PAYMENT + 1));

    let e = s.example.request_cowsay("too cheap").await.expect_err("below the minimum");
    assert!(e.to_string().contains("PaymentTooLow"), "{e}");
    assert_eq!(c.token_balance(s.example.address()).await.unwrap(), u(FUNDS));
    assert_eq!(c.job_count().await.unwrap(), U256::ZERO);

    admin.set_min_payment(u(PAYMENT)).await.expect("setMinPayment");
    let job = s.example.request_cowsay("enough").await.expect("at the minimum");
    assert_eq!(c.job_escrow(job.job_id).await.unwrap(), u(PAYMENT));
}
