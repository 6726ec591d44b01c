//! Mining against a real devnet (anvil from node_modules, installed by
//! scripts/setup-contracts.sh): the CPU miner's proofs are accepted by
//! `LilypadPow`, a wrong nonce is refused with a readable error. A missing
//! anvil fails these tests; they are never skipped.

use std::{sync::Arc, time::Duration};

use lilypad_rp::{
    mining::{MineOptions, mine, random_nonce},
    pow::{CpuMiner, Miner},
};
use lilypad_sdk::{
    core::{
        B256, U256,
        pow::{challenge, meets_target, proof_hash},
    },
    devnet::{self, Devnet, DevnetOptions},
};

async fn start(dir: &std::path::Path) -> Devnet {
    let mut opts = DevnetOptions::new(dir);
    opts.startup_timeout = Duration::from_secs(60);
    match Devnet::start(&opts, &|_| {}).await {
        Ok(d) => d,
        Err(e) => panic!("cannot start a devnet: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_miner_proof_is_accepted_by_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let net = start(dir.path()).await;
    let rp = net.account(devnet::PROVIDER);
    let me = rp.address().unwrap();
    let round = net.client().pow_round().await.unwrap().expect("the devnet starts a round");
    let node_id = B256::repeat_byte(7);

    // The miner by hand: search, check, submit.
    let ch = challenge(round.seed, me, node_id);
    let out = CpuMiner::new().search(ch, random_nonce(), round.target, 1 << 26).unwrap();
    let nonce = out.proof.expect("a proof within 2^26 hashes at the devnet's target");
    assert!(meets_target(ch, nonce, round.target));
    let accepted = rp.submit_work(node_id, nonce).await.unwrap();
    assert_eq!((accepted.round, accepted.miner, accepted.node_id), (round.round, me, node_id));
    assert_eq!((accepted.nonce, accepted.target), (nonce, round.target));
    assert!(rp.is_proof_used(proof_hash(ch, nonce)).await.unwrap());

    // The same proof twice is refused.
    let e = rp.submit_work(node_id, nonce).await.unwrap_err().to_string();
    assert!(e.contains("ProofUsed"), "{e}");

    // The mining loop: one round, two proofs, on the same round.
    let opts = MineOptions {
        node_id,
        rounds: Some(1),
        proofs_per_round: 2,
        round_poll: Duration::from_millis(300),
        ..MineOptions::default()
    };
    let proofs = mine(&rp, Arc::new(CpuMiner::new()), &opts).await.unwrap();
    assert_eq!(proofs.len(), 2);
    for p in &proofs {
        assert_eq!(p.accepted.miner, me);
        assert_eq!(p.accepted.round, round.round);
        assert!(p.estimated_hashrate > 0.0 && p.hashes > 0);
    }
    net.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_nonce_is_rejected_with_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let net = start(dir.path()).await;
    let rp = net.account(devnet::PROVIDER);
    let round = net.client().pow_round().await.unwrap().unwrap();
    let ch = challenge(round.seed, rp.address().unwrap(), B256::ZERO);
    // The first nonce from 0 that does NOT meet the target.
    let bad = (0u64..).map(U256::from).find(|n| !meets_target(ch, *n, round.target)).unwrap();
    let e = rp.submit_work(B256::ZERO, bad).await.unwrap_err().to_string();
    assert!(e.starts_with("submitProof reverted: ProofAboveTarget("), "{e}");
    assert!(e.contains("the proof does not meet the round's target"), "{e}");

    // A valid proof for another miner's challenge is wrong for this sender.
    let other = net.account(devnet::SOLVER);
    let theirs = challenge(round.seed, other.address().unwrap(), B256::ZERO);
    let out = CpuMiner::new().search(theirs, U256::ZERO, round.target, 1 << 26).unwrap();
    let nonce = out.proof.unwrap();
    if !meets_target(ch, nonce, round.target) {
        let e = rp.submit_work(B256::ZERO, nonce).await.unwrap_err().to_string();
        assert!(e.contains("ProofAboveTarget"), "{e}");
    }
    other.submit_work(B256::ZERO, nonce).await.unwrap();
    net.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_miner_hashes_nothing_until_resumed() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let net = start(dir.path()).await;
    let rp = net.account(devnet::PROVIDER);
    let pause = Arc::new(AtomicBool::new(true));
    let opts = MineOptions {
        rounds: Some(1),
        round_poll: Duration::from_millis(300),
        batch_time: Duration::from_millis(100),
        pause: Arc::clone(&pause),
        ..MineOptions::default()
    };
    let miner = tokio::spawn(async move { mine(&rp, Arc::new(CpuMiner::new()), &opts).await });

    // Paused (as while a job runs): well past many batch times, no proof is made.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!miner.is_finished(), "a paused miner found a proof");

    // Resumed: the round's proof follows.
    pause.store(false, Ordering::Relaxed);
    let proofs = tokio::time::timeout(Duration::from_secs(60), miner)
        .await
        .expect("the resumed miner finishes its round")
        .unwrap()
        .unwrap();
    assert_eq!(proofs.len(), 1);
}
