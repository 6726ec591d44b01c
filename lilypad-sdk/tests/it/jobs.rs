//! On-chain jobs: an `ExampleClient` requests, the bridge account fulfills or cancels,
//! the SDK sees the events; refusals come back readable.

use lilypad_core::{Address, U256};
use lilypad_sdk::{
    chain::{
        ChainClient, Contract, ExampleJobClient, JobManagerEvent, JobStatus,
        bindings::job_manager::LilypadJobManager,
    },
    devnet::{self, JOB_TIMEOUT_SECS},
};

use crate::common::{Net, addr, balances, start};

/// Tokens escrowed per cowsay request in these tests.
const PAYMENT: u64 = 100;
/// Tokens the example client starts with.
const FUNDS: u64 = 1_000;

struct Jobs {
    net: Net,
    bridge: ChainClient,
    manager: Address,
    example: ExampleJobClient,
}

/// A devnet with an `ExampleClient` owned by the job creator, holding [`FUNDS`] tokens.
async fn setup() -> Jobs {
    let net = start().await;
    let manager = net.devnet.config().contracts.job_manager.expect("the devnet has a job manager");
    let address =
        net.jc.deploy_example_client(manager, U256::from(PAYMENT)).await.expect("deploy client");
    net.jc.transfer(address, U256::from(FUNDS)).await.unwrap();
    let example = net.jc.example_client(address);
    assert_eq!(example.payment().await.unwrap(), U256::from(PAYMENT));
    Jobs { bridge: net.devnet.account(devnet::BRIDGE), manager, example, net }
}

fn u(n: u64) -> U256 {
    U256::from(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_client_job_is_fulfilled_once_by_the_bridge_only() {
    let Jobs { net, bridge, manager, example } = setup().await;
    let c = net.devnet.client();
    let from = c.block_number().await.unwrap();
    let mut requested =
        c.poll_events::<LilypadJobManager::JobRequested>(Contract::JobManager, from);

    let job = example.request_cowsay("hello, chain").await.unwrap();
    assert_eq!(job.job_id, u(1));
    assert_eq!(c.job_count().await.unwrap(), u(1));

    // The SDK sees the request with its inputs, as the bridge will.
    let seen = requested.next_batch().await.unwrap();
    assert_eq!(seen.len(), 1);
    let (e, _) = &seen[0];
    assert_eq!(e.jobId, u(1));
    assert_eq!(e.client, example.address());
    assert_eq!(e.module, "cowsay:v0.0.4");
    assert_eq!(e.inputs, vec!["Message=hello, chain".to_owned()]);
    assert_eq!(e.payment, u(PAYMENT));
    assert_eq!(job.inputs, vec![("Message".to_owned(), "hello, chain".to_owned())]);
    let now = c.latest_timestamp().await.unwrap();
    assert_eq!(job.deadline, now + JOB_TIMEOUT_SECS);

    let on_chain = c.job(u(1)).await.unwrap().expect("job 1 exists");
    assert_eq!(on_chain.status, JobStatus::Requested);
    assert_eq!(on_chain.client, example.address());
    assert_eq!(on_chain.payment, u(PAYMENT));
    assert_eq!(c.job_escrow(u(1)).await.unwrap(), u(PAYMENT));
    assert_eq!(c.job(u(2)).await.unwrap(), None);
    assert_eq!(example.status_of(u(1)).await.unwrap(), Some(JobStatus::Requested));

    // The bridge posts the results and is reimbursed what it spent; the rest goes back.
    let who = [addr(&bridge), example.address(), manager];
    let before = balances(c, &who).await;
    assert_eq!(before[1], u(FUNDS - PAYMENT));
    assert_eq!(before[2], u(PAYMENT));
    let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    let spent = 30;
    let done = bridge.fulfill_job(u(1), cid, u(spent)).await.unwrap();
    assert_eq!(done.results_cid, cid);
    assert_eq!((done.spent, done.refund), (u(spent), u(PAYMENT - spent)));
    assert_eq!(done.bridge, addr(&bridge));
    assert!(!done.callback_failed, "the example client accepts the manager's callback");
    let after = balances(c, &who).await;
    assert_eq!(after[0], before[0] + u(spent));
    assert_eq!(after[1], u(FUNDS - spent));
    assert_eq!(after[2], U256::ZERO);
    assert_eq!(example.results_of(u(1)).await.unwrap(), cid);
    assert_eq!(example.status_of(u(1)).await.unwrap(), Some(JobStatus::Fulfilled));
    assert_eq!(c.job(u(1)).await.unwrap().unwrap().status, JobStatus::Fulfilled);
    assert_eq!(c.job_escrow(u(1)).await.unwrap(), U256::ZERO);

    // Every job event, in order.
    let events: Vec<_> = c
        .poll_job_events(from)
        .unwrap()
        .next_batch()
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert!(
        matches!(&events[..], [JobManagerEvent::JobRequested(_), JobManagerEvent::JobFulfilled(f)]
        if f.resultsCid == cid && f.spent == u(spent)),
        "{events:?}"
    );

    // A job ends once.
    let e = bridge.fulfill_job(u(1), cid, U256::ZERO).await.unwrap_err().to_string();
    assert!(e.starts_with("fulfill reverted: JobAlreadyFinal(job 1, state Fulfilled)"), "{e}");
    let e = bridge.cancel_job(u(1), "late").await.unwrap_err().to_string();
    assert!(e.starts_with("cancel reverted: JobAlreadyFinal(job 1, state Fulfilled)"), "{e}");
    let e = bridge.fulfill_job(u(9), cid, U256::ZERO).await.unwrap_err().to_string();
    assert!(e.starts_with("fulfill reverted: JobNotFound(job 9)"), "{e}");

    // Only the bridge posts results.
    let job = example.request_cowsay("second").await.unwrap();
    assert_eq!(job.job_id, u(2));
    let e = net.jc.fulfill_job(job.job_id, cid, U256::ZERO).await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "fulfill reverted: AccessControlUnauthorizedAccount(account {}",
            addr(&net.jc)
        )) && e.contains("only an account with the bridge role (BRIDGE_ROLE) may do this"),
        "{e}"
    );
    let e = bridge.fulfill_job(job.job_id, cid, u(PAYMENT + 1)).await.unwrap_err().to_string();
    assert!(
        e.starts_with(
            "fulfill reverted: SpentExceedsPayment(job 2, spent 0.000000000000000101 LP, \
             payment 0.0000000000000001 LP)"
        ),
        "{e}"
    );

    // Only the manager calls the client back.
    let e = net
        .jc
        .example_client(example.address())
        .lilypad_fulfilled(job.job_id, "bafyforged")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "lilypadFulfilled reverted: NotManager(caller {}): only the job manager may call the client back",
            addr(&net.jc)
        )
    );
    assert_eq!(example.results_of(job.job_id).await.unwrap(), "");
    // Only the owner spends the client's tokens.
    let e = net.rp.example_client(example.address()).request_cowsay("x").await.unwrap_err();
    assert!(e.to_string().contains("OwnableUnauthorizedAccount"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_expired_jobs_refund_the_client_in_full() {
    let Jobs { net, bridge, manager, example } = setup().await;
    let c = net.devnet.client();
    let from = c.block_number().await.unwrap();

    let job = example.request_cowsay("never runs").await.unwrap();
    assert_eq!(c.token_balance(example.address()).await.unwrap(), u(FUNDS - PAYMENT));
    let cancelled = bridge.cancel_job(job.job_id, "no provider runs cowsay").await.unwrap();
    assert_eq!(cancelled.refund, u(PAYMENT));
    assert_eq!(cancelled.by, addr(&bridge));
    assert!(!cancelled.callback_failed);
    assert_eq!(c.token_balance(example.address()).await.unwrap(), u(FUNDS));
    assert_eq!(c.token_balance(manager).await.unwrap(), U256::ZERO);
    assert_eq!(example.status_of(job.job_id).await.unwrap(), Some(JobStatus::Cancelled));
    assert_eq!(example.cancel_reason_of(job.job_id).await.unwrap(), "no provider runs cowsay");
    assert_eq!(example.results_of(job.job_id).await.unwrap(), "");
    let mut cancels = c.poll_events::<LilypadJobManager::JobCancelled>(Contract::JobManager, from);
    let seen = cancels.next_batch().await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.reason, "no provider runs cowsay");

    // A job the bridge leaves open: anyone may cancel it after its deadline, not before.
    let job = example.request_cowsay("forgotten").await.unwrap();
    let e = net.rp.cancel_expired_job(job.job_id).await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cancelExpired reverted: JobNotExpired(job {}", job.job_id)),
        "{e}"
    );
    devnet::increase_time(c, JOB_TIMEOUT_SECS + 1).await.unwrap();
    let e = bridge.fulfill_job(job.job_id, "bafylate", U256::ZERO).await.unwrap_err().to_string();
    assert!(e.starts_with("fulfill reverted: JobExpired(job 2"), "{e}");
    let expired = net.rp.cancel_expired_job(job.job_id).await.unwrap();
    assert_eq!((expired.reason.as_str(), expired.by), ("expired", addr(&net.rp)));
    assert_eq!(c.token_balance(example.address()).await.unwrap(), u(FUNDS));
    assert_eq!(example.cancel_reason_of(job.job_id).await.unwrap(), "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_runs_a_job_without_a_callback() {
    let net = start().await;
    let c = net.devnet.client();
    let bridge = net.devnet.account(devnet::BRIDGE);
    let client = net.devnet.account(8);
    let from = c.block_number().await.unwrap();
    let inputs = vec![("Message".to_owned(), "a=b c".to_owned()), ("N".to_owned(), "3".to_owned())];
    let job = client.run_job("cowsay:v0.0.4", &inputs, u(50)).await.unwrap();
    assert_eq!(job.inputs, inputs);
    assert_eq!(job.client, addr(&client));
    let mut poller = c.poll_job_events(from).unwrap();
    let events = poller.next_batch().await.unwrap();
    assert!(
        matches!(&events[..], [(JobManagerEvent::JobRequested(r), _)] if r.inputs == ["Message=a=b c", "N=3"]),
        "{events:?}"
    );
    let fund = c.token_balance(addr(&client)).await.unwrap();
    let done = bridge.fulfill_job(job.job_id, "bafyresults", u(20)).await.unwrap();
    // An account has no code: no callback, recorded as CallbackFailed.
    assert!(done.callback_failed);
    assert_eq!(c.token_balance(addr(&client)).await.unwrap(), fund + u(30));
    let events = poller.next_batch().await.unwrap();
    assert!(
        matches!(
            &events[..],
            [(JobManagerEvent::JobFulfilled(_), _), (JobManagerEvent::CallbackFailed(_), _)]
        ),
        "{events:?}"
    );
    // Refusals at request time.
    let e = client.run_job("", &[], u(1)).await.unwrap_err().to_string();
    assert!(e.starts_with("runJob reverted: EmptyModule"), "{e}");
    let bad = vec![("has space".to_owned(), "x".to_owned())];
    let e = client.run_job("m", &bad, u(1)).await.unwrap_err().to_string();
    assert!(e.starts_with("runJob reverted: InvalidInput(index 0)"), "{e}");
    let e = client.run_job("m", &[], U256::ZERO).await.unwrap_err().to_string();
    assert!(e.starts_with("runJob reverted: ZeroPayment"), "{e}");
}
