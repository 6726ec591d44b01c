//! The devnet itself, event streams, the PoW client, failover and timeouts.

use std::{net::TcpListener, time::Duration};

use futures::StreamExt;
use lilypad_core::{B256, U256, pow};
use lilypad_sdk::{
    chain::{
        ChainClient, ChainError, Contract, ContractAddresses, ControllerEvent, NetworkConfig,
        bindings::controller::LilypadController, config::LOCAL_DEPLOYER, roles,
    },
    devnet::{self, Devnet, DevnetError, DevnetOptions},
};

use crate::common::{addr, job_offer, resource_offer, start, test_params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_is_deployed_wired_and_funded() {
    let net = start().await;
    let d = &net.devnet;
    let c = d.client();
    let cfg = d.config();
    assert_eq!(cfg.contracts, ContractAddresses::deployed_by(LOCAL_DEPLOYER));
    assert_eq!(&NetworkConfig::load(&d.network_file()).unwrap(), cfg);
    assert!(cfg.rpc_urls[0].starts_with("http://127.0.0.1:"));
    for (name, address) in cfg.contracts.named() {
        assert!(!c.code_at(address).await.unwrap().is_empty(), "{name} has no code");
    }
    let fund = DevnetOptions::new("x").fund;
    for i in 0..10 {
        assert_eq!(c.token_balance(devnet::anvil_address(i)).await.unwrap(), fund);
    }
    assert_eq!(c.controller_owner().await.unwrap(), LOCAL_DEPLOYER);
    assert_eq!(c.network_params().await.unwrap(), test_params());
    let solver = devnet::anvil_address(devnet::SOLVER);
    assert_eq!(c.solver_url(solver).await.unwrap().as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(c.member_count(roles::MEDIATOR).await.unwrap(), 3);
    assert!(
        c.has_roles(devnet::anvil_address(devnet::PROVIDER), roles::RESOURCE_PROVIDER)
            .await
            .unwrap()
    );
    assert_eq!(c.user(devnet::anvil_address(8)).await.unwrap(), None);
    // The job manager: deployed, the bridge role granted to the bridge account only.
    let manager = cfg.contracts.job_manager.expect("a devnet has a job manager");
    assert_eq!(cfg.contracts.named().len(), 6);
    assert!(!c.code_at(manager).await.unwrap().is_empty(), "the job manager has no code");
    assert!(c.is_bridge(devnet::anvil_address(devnet::BRIDGE)).await.unwrap());
    assert!(!c.is_bridge(LOCAL_DEPLOYER).await.unwrap());
    assert_eq!(c.job_timeout().await.unwrap(), devnet::JOB_TIMEOUT_SECS);
    assert_eq!(c.job_count().await.unwrap(), U256::ZERO);
    let round = c.pow_round().await.unwrap().expect("a round was started");
    assert_eq!(round.round, 1);
    assert!(round.target > U256::ZERO);
    // Users register themselves.
    net.jc.register(roles::JOB_CREATOR | roles::MEDIATOR, "", B256::ZERO).await.unwrap();
    assert_eq!(c.members(roles::MEDIATOR, 0, 10).await.unwrap().len(), 4);
    let e = net.jc.register(0, "", B256::ZERO).await.unwrap_err().to_string();
    assert!(e.starts_with("register reverted: InvalidRoles(0)"), "{e}");

    // Dropping the devnet stops anvil.
    let pid = d.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(net);
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
    });
    assert!(gone, "anvil {pid} still runs after the devnet was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_by_polling_and_by_watching() {
    let net = start().await;
    net.jc.approve_controller(U256::MAX).await.unwrap();
    net.rp.approve_controller(U256::MAX).await.unwrap();
    let finished = net
        .devnet
        .client()
        .watch::<LilypadController::DealFinished>(Contract::Controller)
        .await
        .unwrap();
    let now = net.admin.latest_timestamp().await.unwrap();
    let meds = net.mediators.iter().map(addr).collect();
    let job =
        net.jc.sign_job_offer(&job_offer(addr(&net.jc), addr(&net.solver), &meds, now, 1)).unwrap();
    let res = net
        .rp
        .sign_resource_offer(&resource_offer(addr(&net.rp), addr(&net.solver), &meds, now, 1))
        .unwrap();
    let id = net.solver.create_deal(&job, &res).await.unwrap().deal.id;
    net.rp.submit_results(id, &crate::outcomes::results_cid()).await.unwrap();
    net.jc.accept_results(id).await.unwrap();

    // Polling from the deployment block sees the whole life of the deal, in order.
    let mut poller =
        net.devnet.client().poll_controller_events(net.devnet.config().deployed_at_block);
    let mut names = Vec::new();
    loop {
        let batch = poller.next_batch().await.unwrap();
        if batch.is_empty() {
            break;
        }
        for (event, _) in batch {
            names.push(match event {
                ControllerEvent::DealCreated(e) if e.dealId == id => "created",
                ControllerEvent::ResultsSubmitted(e) if e.dealId == id => "submitted",
                ControllerEvent::DealFinished(e) if e.dealId == id => "finished",
                ControllerEvent::ParamsSet(_) => "params",
                ControllerEvent::OwnershipTransferred(_) => "owner",
                _ => "other",
            });
        }
    }
    assert_eq!(names, ["owner", "params", "created", "submitted", "finished"]);
    let head = net.devnet.client().block_number().await.unwrap();
    assert_eq!(poller.cursor(), head + 1);
    // The stream form yields the same events.
    let mut stream = net
        .devnet
        .client()
        .poll_events::<LilypadController::DealCreated>(Contract::Controller, 0)
        .into_stream();
    let (created, log) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(created.dealId, id);
    assert!(log.block_number.is_some());
    // The filter watcher saw the finish.
    let mut finished = Box::pin(finished);
    let (e, _) = tokio::time::timeout(Duration::from_secs(10), finished.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(e.dealId, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_of_work_round_and_proofs() {
    let net = start().await;
    // An easy target: one hash in 16 meets it.
    let round = net.admin.start_pow_round(U256::MAX >> 4).await.unwrap();
    assert_eq!(round.round, 2);
    assert_eq!(net.devnet.client().pow_target().await.unwrap(), Some(U256::MAX >> 4));
    let miner = &net.rp;
    let node = B256::repeat_byte(0x42);
    let challenge = pow::challenge(round.seed, addr(miner), node);
    let nonce =
        (0u64..).map(U256::from).find(|n| pow::meets_target(challenge, *n, round.target)).unwrap();
    let proof = miner.submit_work(node, nonce).await.unwrap();
    assert_eq!(
        (proof.round, proof.miner, proof.node_id, proof.nonce),
        (2, addr(miner), node, nonce)
    );
    assert!(net.admin.is_proof_used(pow::proof_hash(challenge, nonce)).await.unwrap());
    let e = miner.submit_work(node, nonce).await.unwrap_err().to_string();
    assert!(e.starts_with("submitProof reverted: ProofUsed(hash "), "{e}");
    let bad =
        (0u64..).map(U256::from).find(|n| !pow::meets_target(challenge, *n, round.target)).unwrap();
    let e = miner.submit_work(node, bad).await.unwrap_err().to_string();
    assert!(e.contains("ProofAboveTarget"), "{e}");
    let e = net.jc.start_pow_round(U256::MAX).await.unwrap_err().to_string();
    assert!(e.contains("OwnableUnauthorizedAccount"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_failover_and_timeouts() {
    let net = start().await;
    // A dead first URL: requests fail over to the second.
    let mut cfg = net.devnet.config().clone();
    // Port 1: nothing listens there, and no anvil of a parallel test can take it.
    let dead_url = "http://127.0.0.1:1".to_owned();
    cfg.rpc_urls.insert(0, dead_url.clone());
    cfg.rpc.retries = 1;
    cfg.rpc.initial_backoff_ms = 10;
    let client = ChainClient::connect(cfg.clone()).await.unwrap();
    for _ in 0..3 {
        client.block_number().await.unwrap();
    }
    let fund = DevnetOptions::new("x").fund;
    assert_eq!(client.token_balance(devnet::anvil_address(3)).await.unwrap(), fund);
    // Writes fail over too.
    let writer = client.with_signer(devnet::anvil_signer(7));
    writer.transfer(devnet::anvil_address(8), U256::from(1u64)).await.unwrap();

    // A node that accepts connections and never answers: every call times out.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = net.devnet.config().clone();
    cfg.rpc_urls = vec![format!("http://{}", hole.local_addr().unwrap())];
    cfg.rpc.timeout_secs = 1;
    cfg.rpc.retries = 0;
    let started = std::time::Instant::now();
    let e = ChainClient::connect(cfg).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(matches!(e, ChainError::Timeout { .. } | ChainError::Rpc { .. }), "{e}");
    drop(hole);

    // Only dead nodes: a readable error.
    let mut cfg = net.devnet.config().clone();
    cfg.rpc_urls = vec![dead_url];
    cfg.rpc.retries = 1;
    cfg.rpc.initial_backoff_ms = 10;
    let e = ChainClient::connect(cfg).await.unwrap_err().to_string();
    assert!(e.contains("no RPC node answered"), "{e}");

    // The wrong chain id.
    let mut cfg = net.devnet.config().clone();
    cfg.chain_id = 1;
    let e = ChainClient::connect(cfg).await.unwrap_err().to_string();
    assert!(e.contains("serves chain 31337, but network local is chain 1"), "{e}");
}

#[tokio::test]
async fn a_missing_anvil_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DevnetOptions::new(dir.path());
    opts.anvil = Some(dir.path().join("no-such-anvil"));
    let e = Devnet::start(&opts, &|_| {}).await.unwrap_err();
    assert!(matches!(e, DevnetError::Spawn { .. }), "{e}");
    let e = DevnetError::AnvilNotFound { tried: vec!["node_modules/x".into()] }.to_string();
    assert!(e.contains("run scripts/setup-contracts.sh"), "{e}");
    // The real lookup finds the project's anvil (installed by scripts/setup-contracts.sh).
    let found = devnet::find_anvil().unwrap_or_else(|e| panic!("{e}"));
    assert!(found.is_file(), "{}", found.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_nonce_is_resynchronised() {
    let net = start().await;
    let to = devnet::anvil_address(9);
    let one = U256::from(1u64);
    // This client caches account 7's next nonce...
    let cached = net.devnet.account(7);
    cached.transfer(to, one).await.unwrap();
    // ...then another process (its own nonce manager) sends from the same key.
    let other = ChainClient::connect(net.devnet.config().clone()).await.unwrap();
    other.with_signer(devnet::anvil_signer(7)).transfer(to, one).await.unwrap();
    // The cached nonce is now used: the node refuses it, the manager forgets it...
    let e = cached.transfer(to, one).await.unwrap_err();
    assert!(matches!(e, ChainError::Rejected { call: "transfer", .. }), "{e}");
    assert!(e.to_string().contains("nonce"), "{e}");
    // ...and the next transaction asks the node again.
    cached.transfer(to, one).await.unwrap();
    let fund = DevnetOptions::new("x").fund;
    assert_eq!(net.admin.token_balance(to).await.unwrap(), fund + U256::from(3u64));
}

/// The nonce race of concurrent sends from one account: a send fails after taking
/// its nonce while a later nonce is taken and not yet sent. The next nonce must not
/// be asked of the node before that later one is settled (the node does not know it
/// yet and would hand it out twice); once it is, the node's answer fills the gap
/// and every transaction is mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_resynchronises_nonces_only_once_every_taken_one_is_settled() {
    use alloy::{network::TransactionBuilder, providers::Provider, rpc::types::TransactionRequest};

    let net = start().await;
    let client = &net.jc;
    let me = addr(client);
    let nonces = client.nonce_manager();
    let provider = client.provider();
    let first = provider.get_transaction_count(me).pending().await.unwrap();

    let failed = nonces.take(provider, me).await.unwrap();
    let later = nonces.take(provider, me).await.unwrap();
    assert_eq!((failed.get(), later.get()), (first, first + 1));
    assert_eq!(nonces.unsettled(me), 2);
    // The first send failed: nothing reached the node.
    failed.settle(false);

    // The next take waits for `later`...
    let waiting = tokio::spawn({
        let nonces = nonces.clone();
        let provider = provider.clone();
        async move { nonces.take(&provider, me).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a nonce was handed out while another was unsettled");

    // ... which is sent, leaving a gap at `first` on the node.
    let to = devnet::anvil_address(9);
    let tx = |nonce: u64| {
        TransactionRequest::default()
            .with_from(me)
            .with_to(to)
            .with_value(U256::from(1u64))
            .with_nonce(nonce)
            .with_gas_limit(21_000)
    };
    let sent_later = provider.send_transaction(tx(later.get())).await.unwrap();
    later.settle(true);

    // The node's pending count stops at the gap: the waiting send gets `first`.
    let gap = tokio::time::timeout(Duration::from_secs(30), waiting).await.unwrap().unwrap();
    assert_eq!(gap.get(), first);
    let sent_gap = provider.send_transaction(tx(gap.get())).await.unwrap();
    gap.settle(true);
    for pending in [sent_gap, sent_later] {
        let receipt = pending
            .with_timeout(Some(Duration::from_secs(30)))
            .get_receipt()
            .await
            .expect("both transactions are mined");
        assert!(receipt.status());
    }
    assert_eq!(provider.get_transaction_count(me).await.unwrap(), first + 2);
    assert_eq!(nonces.unsettled(me), 0);

    // A take whose send is dropped (cancelled) counts as not sent: the next take
    // asks the node again and gets the same nonce.
    let dropped = nonces.take(provider, me).await.unwrap();
    assert_eq!(dropped.get(), first + 2);
    drop(dropped);
    let again = nonces.take(provider, me).await.unwrap();
    assert_eq!(again.get(), first + 2);
    again.settle(true);
}
