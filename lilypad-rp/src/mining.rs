//! Mining `LilypadPow` rounds: search, re-check on the host, submit on chain.
//!
//! [`mine`] follows the chain's rounds. For each round it reads the seed and
//! target, derives the challenge with [`challenge`] for the signer and the node
//! id, and searches from a random nonce in batches of about
//! [`MineOptions::batch_time`] until it has [`MineOptions::proofs_per_round`]
//! proofs or the round changes. Every proof is re-checked with
//! [`meets_target`] before it is submitted with
//! [`ChainClient::submit_work`].
//!
//! # Pausing
//!
//! [`MineOptions::pause`] is an [`AtomicBool`] checked between search batches
//! (so within about one batch, 0.5 s by default): while it is `true` no hash
//! is computed and the miner only follows the round; the miner logs when it
//! pauses and resumes. It is the hook for the provider daemon (`lilypad-rp run
//! --mine`) to pause mining while it runs a job: the CPU miner's flag is
//! `EngineConfig::mining_pause` (set while any job runs), each GPU miner's is its
//! GPU's entry of `EngineConfig::gpu_mining_pauses` (set while a job runs on that
//! GPU). `pause.store(true, Ordering::Relaxed)` when a job starts, `false` when it
//! ends.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use lilypad_sdk::{
    chain::{AcceptedProof, ChainClient, PowRound},
    core::{
        Address, B256, U256,
        pow::{challenge, hashrate_estimate, meets_target},
    },
    provider::ProviderMetrics,
};

use crate::pow::Miner;

/// How a miner runs.
#[derive(Debug, Clone)]
pub struct MineOptions {
    /// The node the proofs are for (`bytes32`).
    pub node_id: B256,
    /// Stop after this many rounds with all their proofs submitted (`None`: never).
    pub rounds: Option<u64>,
    /// Proofs to submit per round before waiting for the next round (each is a transaction).
    pub proofs_per_round: u64,
    /// Aimed-for duration of one search batch (the pause and round-change latency).
    pub batch_time: Duration,
    /// How often to ask the chain whether the round changed.
    pub round_poll: Duration,
    /// While `true`, no hashing (see the module docs).
    pub pause: Arc<AtomicBool>,
    /// Counts each accepted proof (`lilypad_provider_mining_proofs_total`), if set.
    pub metrics: Option<ProviderMetrics>,
}

impl Default for MineOptions {
    fn default() -> Self {
        Self {
            node_id: B256::ZERO,
            rounds: None,
            proofs_per_round: 1,
            batch_time: Duration::from_millis(500),
            round_poll: Duration::from_secs(2),
            pause: Arc::new(AtomicBool::new(false)),
            metrics: None,
        }
    }
}

/// A proof found and accepted on chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinedProof {
    /// What the contract emitted.
    pub accepted: AcceptedProof,
    /// Hashes computed in this round up to the proof.
    pub hashes: u64,
    /// Seconds spent hashing in this round up to the proof.
    pub secs: f64,
    /// Hashes per second measured locally (`hashes / secs`).
    pub measured_hashrate: f64,
    /// `lilypad_core::pow::hashrate_estimate` of the proof's target over the seconds
    /// (at least 1): the rate the chain would credit.
    pub estimated_hashrate: f64,
}

/// A random 256-bit start nonce, so that restarts and miners sharing a key do not repeat work.
pub fn random_nonce() -> U256 {
    U256::from_be_bytes(rand::random::<[u8; 32]>())
}

/// Searches one round from `start` until `opts.proofs_per_round` proofs are submitted,
/// the round changes or `opts.pause` is set for long. Returns the proofs. `paused` is
/// whether the miner was last seen paused (a change is logged).
async fn mine_round(
    client: &ChainClient,
    miner: &Arc<dyn Miner>,
    me: Address,
    round: PowRound,
    opts: &MineOptions,
    paused: &mut bool,
) -> anyhow::Result<(Vec<MinedProof>, bool)> {
    let ch = challenge(round.seed, me, opts.node_id);
    let mut nonce = random_nonce();
    let mut batch: u64 = 1 << 16;
    let (mut hashes, mut busy) = (0u64, Duration::ZERO);
    let mut proofs = Vec::new();
    let mut last_poll = Instant::now();
    tracing::info!(round = round.round, round_target = %format_args!("{:#x}", round.target), "mining round");
    loop {
        if last_poll.elapsed() >= opts.round_poll {
            last_poll = Instant::now();
            if client.pow_round().await?.map(|r| r.round) != Some(round.round) {
                tracing::info!(round = round.round, "the round changed");
                return Ok((proofs, false));
            }
        }
        let pause = opts.pause.load(Ordering::Relaxed);
        if pause != *paused {
            *paused = pause;
            if pause {
                tracing::info!(round = round.round, "mining paused (a job runs)");
            } else {
                tracing::info!(round = round.round, "mining resumed");
            }
        }
        if pause {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let m = Arc::clone(miner);
        let (start, target) = (nonce, round.target);
        let t0 = Instant::now();
        let outcome =
            tokio::task::spawn_blocking(move || m.search(ch, start, target, batch)).await??;
        let took = t0.elapsed();
        busy += took;
        hashes += outcome.hashes_done;
        nonce = nonce.wrapping_add(U256::from(outcome.hashes_done));
        // Aim the next batch at `batch_time`.
        if outcome.proof.is_none() && !took.is_zero() {
            let scaled = batch as f64 * opts.batch_time.as_secs_f64() / took.as_secs_f64();
            batch = (scaled as u64).clamp(1 << 12, 1 << 40);
        }
        let Some(proof) = outcome.proof else { continue };
        if !meets_target(ch, proof, round.target) {
            anyhow::bail!("{} returned nonce {proof} that does not meet the target", miner.name());
        }
        let accepted = match client.submit_work(opts.node_id, proof).await {
            Ok(a) => a,
            Err(e) if client.pow_round().await?.map(|r| r.round) != Some(round.round) => {
                tracing::warn!(round = round.round, "proof not accepted, the round ended: {e}");
                return Ok((proofs, false));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(m) = &opts.metrics {
            m.count_mining_proof();
        }
        let secs = busy.as_secs_f64();
        let mined = MinedProof {
            accepted,
            hashes,
            secs,
            measured_hashrate: if secs > 0.0 { hashes as f64 / secs } else { 0.0 },
            estimated_hashrate: hashrate_estimate([round.target], busy.as_secs().max(1))?,
        };
        tracing::info!(
            round = round.round,
            nonce = %format_args!("{proof:#x}"),
            tx = %accepted.tx,
            hashes,
            secs = format_args!("{secs:.2}"),
            measured_hs = format_args!("{:.0}", mined.measured_hashrate),
            estimated_hs = format_args!("{:.0}", mined.estimated_hashrate),
            "proof accepted"
        );
        proofs.push(mined);
        if proofs.len() as u64 >= opts.proofs_per_round {
            return Ok((proofs, true));
        }
    }
}

/// Mines rounds until `opts.rounds` are done (forever when `None`); returns every accepted proof.
///
/// `client` must have a signer: proofs are the signer's. Before the first round
/// exists, and after a round's proofs are in, it waits for the next round.
pub async fn mine(
    client: &ChainClient,
    miner: Arc<dyn Miner>,
    opts: &MineOptions,
) -> anyhow::Result<Vec<MinedProof>> {
    let me = client
        .address()
        .ok_or_else(|| anyhow::anyhow!("mining needs a signing key (the miner's address)"))?;
    tracing::info!(miner = %me, node_id = %opts.node_id, using = %miner.name(), "mining");
    let (mut all, mut rounds_done, mut done_round) = (Vec::new(), 0u64, None);
    let mut paused = false;
    loop {
        if opts.rounds.is_some_and(|n| rounds_done >= n) {
            return Ok(all);
        }
        let round = match client.pow_round().await? {
            Some(r) if Some(r.round) != done_round => r,
            current => {
                if current.is_none() {
                    tracing::info!("no proof-of-work round yet, waiting");
                }
                tokio::time::sleep(opts.round_poll).await;
                continue;
            }
        };
        let (proofs, complete) = mine_round(client, &miner, me, round, opts, &mut paused).await?;
        all.extend(proofs);
        if complete {
            done_round = Some(round.round);
            rounds_done += 1;
        }
    }
}
