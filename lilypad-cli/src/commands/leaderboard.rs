//! `lilypad-cli leaderboard`: providers ranked by reward points, from chain events only.
//!
//! Reads `LilypadPow`'s `RoundStarted` and `ProofSubmitted` events and the
//! controller's deal events from the network's `deployed_at_block`, with the
//! SDK's [`lilypad_sdk::chain::LogPoller`]. A round lasts from its
//! `RoundStarted` block to the next one's (the current round: to the latest
//! block). Per provider:
//!
//! - hashrate: [`hashrate_from_rounds`] over the rounds it has proofs in (proofs
//!   per round at that round's target, over the rounds' durations), with its
//!   relative standard deviation `1/sqrt(proofs)`;
//! - points, multiplier and days offline: [`lilypad_sdk::core::rewards`], from
//!   that hashrate, the rounds present and the block time of its last proof;
//! - reputation: [`lilypad_sdk::core::reputation`] of its deals' events.
//!
//! `docs/pow.md` ("Reward points", "Reputation") states the formulas.
//!
//! [`ChainEvents`] holds the events read so far and reads only new blocks on each
//! update: `lilypad-cli dashboard` keeps one up to date and computes its rows with
//! the same [`ChainEvents::entries`], so both show the same numbers.

use std::collections::{BTreeMap, BTreeSet};

use alloy::providers::Provider;
use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    chain::{ChainClient, Contract, ControllerEvent, Log, LogPoller, bindings::pow::LilypadPow},
    core::{
        Address, B256, U256,
        pow::{MinedRound, hashrate_from_rounds},
        reputation::{self, DealEvent, Reputation},
        rewards::{self, Activity},
        settlement::Outcome,
    },
};
use serde_json::json;

use super::network::{NetworkArgs, load};

/// Arguments of `leaderboard`.
#[derive(Debug, Args)]
pub(crate) struct LeaderboardArgs {
    #[command(flatten)]
    network: NetworkArgs,
}

/// One provider's line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) provider: Address,
    pub(crate) hashrate: f64,
    pub(crate) rel_std: Option<f64>,
    pub(crate) rounds: u64,
    pub(crate) proofs: u64,
    pub(crate) days_offline: u64,
    pub(crate) multiplier: f64,
    pub(crate) points: f64,
    pub(crate) reputation: Reputation,
}

/// Where and when an event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    /// The block number.
    pub(crate) block: u64,
    /// The block's timestamp (seconds).
    pub(crate) time: u64,
    /// The transaction that emitted it.
    pub(crate) tx: Option<B256>,
}

/// One accepted proof of work.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofRecord {
    pub(crate) round: u64,
    pub(crate) miner: Address,
    pub(crate) at: At,
}

/// One round: its target and start time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundRecord {
    pub(crate) target: U256,
    pub(crate) started_at: u64,
}

/// The chain events the leaderboard (and the dashboard) read, kept up to date by
/// [`Self::update`]: each call reads only the blocks since the previous one.
pub(crate) struct ChainEvents {
    client: ChainClient,
    started: LogPoller<LilypadPow::RoundStarted>,
    proof_poller: LogPoller<LilypadPow::ProofSubmitted>,
    controller_poller: LogPoller<ControllerEvent>,
    /// Block timestamps read during one update (each block read once).
    times: BTreeMap<u64, u64>,
    /// Rounds by number.
    pub(crate) rounds: BTreeMap<u64, RoundRecord>,
    /// Every accepted proof, in chain order.
    pub(crate) proofs: Vec<ProofRecord>,
    /// The controller's events, in chain order.
    pub(crate) controller: Vec<(ControllerEvent, At)>,
    /// The last block read.
    pub(crate) head: u64,
    /// That block's timestamp: the leaderboard's "now".
    pub(crate) now: u64,
}

impl ChainEvents {
    /// Nothing read yet: the first [`Self::update`] reads from the network's
    /// `deployed_at_block`.
    pub(crate) fn new(client: &ChainClient) -> Self {
        let from = client.config().deployed_at_block;
        Self {
            client: client.clone(),
            started: client.poll_events(Contract::Pow, from),
            proof_poller: client.poll_events(Contract::Pow, from),
            controller_poller: client.poll_controller_events(from),
            times: BTreeMap::new(),
            rounds: BTreeMap::new(),
            proofs: Vec::new(),
            controller: Vec::new(),
            head: 0,
            now: 0,
        }
    }

    /// Reads the events up to the current head; whether the head moved.
    pub(crate) async fn update(&mut self) -> anyhow::Result<bool> {
        let head = self.client.block_number().await?;
        let now = self.block_time(head).await?;
        while self.started.cursor() <= head {
            for (e, log) in self.started.next_batch_until(head).await? {
                let at = self.at(&log).await?;
                self.rounds.insert(e.round, RoundRecord { target: e.target, started_at: at.time });
            }
        }
        while self.proof_poller.cursor() <= head {
            for (e, log) in self.proof_poller.next_batch_until(head).await? {
                let at = self.at(&log).await?;
                self.proofs.push(ProofRecord { round: e.round, miner: e.miner, at });
            }
        }
        while self.controller_poller.cursor() <= head {
            for (e, log) in self.controller_poller.next_batch_until(head).await? {
                let at = self.at(&log).await?;
                self.controller.push((e, at));
            }
        }
        self.times.clear();
        let moved = head != self.head || now != self.now;
        self.head = head;
        self.now = now;
        Ok(moved)
    }

    async fn block_time(&mut self, n: u64) -> anyhow::Result<u64> {
        if let Some(t) = self.times.get(&n) {
            return Ok(*t);
        }
        let block = self
            .client
            .provider()
            .get_block_by_number(n.into())
            .await
            .with_context(|| format!("reading block {n}"))?
            .with_context(|| format!("block {n} not found"))?;
        self.times.insert(n, block.header.timestamp);
        Ok(block.header.timestamp)
    }

    /// A log's block, timestamp (from the log when the node includes it, else from its
    /// block) and transaction.
    async fn at(&mut self, log: &Log) -> anyhow::Result<At> {
        let block = log.block_number.context("a log without a block number")?;
        let time = match log.block_timestamp {
            Some(t) => t,
            None => self.block_time(block).await?,
        };
        Ok(At { block, time, tx: log.transaction_hash })
    }

    /// Each round's target and duration in seconds (at least 1): to the next round's
    /// start, the current one to now.
    pub(crate) fn round_spans(&self) -> BTreeMap<u64, (U256, u64)> {
        let list: Vec<_> = self.rounds.iter().collect();
        let mut spans = BTreeMap::new();
        for (i, (round, r)) in list.iter().enumerate() {
            let end = list.get(i + 1).map_or(self.now, |(_, next)| next.started_at);
            spans.insert(**round, (r.target, end.saturating_sub(r.started_at).max(1)));
        }
        spans
    }

    /// The controller's events as reputation reads them, in chain order.
    pub(crate) fn deal_events(&self) -> anyhow::Result<Vec<DealEvent>> {
        let mut out = Vec::new();
        for (e, at) in &self.controller {
            out.push(match e {
                ControllerEvent::DealCreated(d) => {
                    DealEvent::Created { deal: d.dealId, provider: d.provider, at: at.time }
                }
                ControllerEvent::ResultsSubmitted(d) => {
                    DealEvent::ResultsSubmitted { deal: d.dealId, at: at.time }
                }
                ControllerEvent::ResultsChallenged(d) => DealEvent::Challenged { deal: d.dealId },
                ControllerEvent::FailureChallenged(d) => DealEvent::Challenged { deal: d.dealId },
                ControllerEvent::DealFinished(d) => {
                    DealEvent::Finished { deal: d.dealId, outcome: outcome(d.outcome, d.dealId)? }
                }
                _ => continue,
            });
        }
        Ok(out)
    }

    /// The leaderboard, best first.
    pub(crate) fn entries(&self) -> anyhow::Result<Vec<Entry>> {
        let rounds = self.round_spans();

        // Proofs per miner per round, and each miner's last proof.
        let mut per_miner: BTreeMap<Address, BTreeMap<u64, u64>> = BTreeMap::new();
        let mut last_proof_at: BTreeMap<Address, u64> = BTreeMap::new();
        for p in &self.proofs {
            *per_miner.entry(p.miner).or_default().entry(p.round).or_default() += 1;
            last_proof_at.insert(p.miner, p.at.time);
        }

        let reputations = reputation::by_provider(self.deal_events()?);

        let everyone: BTreeSet<Address> =
            per_miner.keys().chain(reputations.keys()).copied().collect();
        let mut entries = Vec::new();
        let mut activity = Vec::new();
        for who in everyone {
            let mine = per_miner.get(&who).cloned().unwrap_or_default();
            let mut mined = Vec::new();
            for (round, n) in &mine {
                let (target, secs) = rounds.get(round).copied().unwrap_or((U256::MAX, 1));
                mined.push(MinedRound { target, secs, proofs: *n });
            }
            let proofs: u64 = mine.values().sum();
            let hashrate = if mined.is_empty() { 0.0 } else { hashrate_from_rounds(mined)? };
            let rounds_present = mine.len() as u64;
            activity.push(Activity {
                hashrate,
                rounds_present,
                last_proof_at: last_proof_at.get(&who).copied(),
            });
            entries.push(Entry {
                provider: who,
                hashrate,
                rel_std: (proofs > 0).then(|| 1.0 / (proofs as f64).sqrt()),
                rounds: rounds_present,
                proofs,
                days_offline: 0,
                multiplier: 1.0,
                points: 0.0,
                reputation: reputations
                    .get(&who)
                    .copied()
                    .unwrap_or_else(|| reputation::reputation(&[])),
            });
        }
        for (e, r) in entries.iter_mut().zip(rewards::rewards(&activity, self.now)) {
            e.days_offline = r.days_offline;
            e.multiplier = r.multiplier;
            e.points = r.points;
        }
        entries.sort_by(|a, b| {
            b.points
                .total_cmp(&a.points)
                .then(b.hashrate.total_cmp(&a.hashrate))
                .then(b.reputation.score.total_cmp(&a.reputation.score))
        });
        Ok(entries)
    }
}

/// A `DealFinished` outcome code as an [`Outcome`].
pub(crate) fn outcome(code: u8, deal: B256) -> anyhow::Result<Outcome> {
    Outcome::ALL
        .get(usize::from(code))
        .copied()
        .with_context(|| format!("deal {deal} finished with unknown outcome {code}"))
}

/// The leaderboard from the chain's events, best first.
pub(crate) async fn leaderboard(client: &ChainClient) -> anyhow::Result<Vec<Entry>> {
    let mut events = ChainEvents::new(client);
    events.update().await?;
    events.entries()
}

/// A hashrate with a unit: H/s, kH/s, MH/s, GH/s, TH/s.
fn human_rate(h: f64) -> String {
    let units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s"];
    let mut v = h;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.2} {}", units[u])
}

/// A duration in seconds, short: `42s`, `3m05s`, `2h10m`, or `-` without one.
fn human_secs(secs: Option<u64>) -> String {
    match secs {
        None => "-".to_owned(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The table `leaderboard` prints.
pub(crate) fn table(entries: &[Entry]) -> String {
    let mut out = format!(
        "{:>4}  {:<42}  {:>12}  {:>5}  {:>6}  {:>6}  {:>4}  {:>5}  {:>9}  {:>4}  {:>4}  {:>4}  {:>4}  {:>7}  {:>4}\n",
        "rank",
        "provider",
        "hashrate",
        "+-",
        "rounds",
        "proofs",
        "off",
        "mult",
        "points",
        "jobs",
        "t/o",
        "chal",
        "lost",
        "results",
        "rep"
    );
    for (i, e) in entries.iter().enumerate() {
        let band = e.rel_std.map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0));
        let r = &e.reputation;
        out.push_str(&format!(
            "{:>4}  {:<42}  {:>12}  {:>5}  {:>6}  {:>6}  {:>4}  {:>5}  {:>9.2}  {:>4}  {:>4}  {:>4}  {:>4}  {:>7}  {:>4.2}\n",
            i + 1,
            e.provider.to_string(),
            human_rate(e.hashrate),
            band,
            e.rounds,
            e.proofs,
            format!("{}d", e.days_offline),
            format!("{:.2}x", e.multiplier),
            e.points,
            r.completed,
            r.timed_out,
            r.challenged,
            r.lost,
            human_secs(r.median_secs_to_results),
            r.score
        ));
    }
    if entries.is_empty() {
        out.push_str("(no proofs of work or deals yet)\n");
    }
    out
}

/// The JSON `leaderboard --json` prints.
pub(crate) fn to_json(entries: &[Entry]) -> serde_json::Value {
    let rows: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let r = &e.reputation;
            json!({
                "rank": i + 1,
                "provider": e.provider.to_string(),
                "hashrate": e.hashrate,
                "hashrate_rel_std": e.rel_std,
                "rounds": e.rounds,
                "proofs": e.proofs,
                "days_offline": e.days_offline,
                "multiplier": e.multiplier,
                "points": e.points,
                "jobs_completed": r.completed,
                "reputation": {
                    "score": r.score,
                    "completed": r.completed,
                    "timed_out": r.timed_out,
                    "challenged": r.challenged,
                    "lost": r.lost,
                    "refunded": r.refunded,
                    "open": r.open,
                    "median_secs_to_results": r.median_secs_to_results,
                },
            })
        })
        .collect();
    json!({ "providers": rows })
}

/// Runs `lilypad-cli leaderboard`.
pub(crate) fn run(args: &LeaderboardArgs) -> anyhow::Result<()> {
    let config = load(&args.network)?;
    let entries = lilypad_cli_common::block_on(async {
        let client = ChainClient::connect(config).await?;
        leaderboard(&client).await
    })?;
    if lilypad_cli_common::json() {
        println!("{}", serde_json::to_string_pretty(&to_json(&entries))?);
    } else {
        print!("{}", table(&entries));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(human_secs(None), "-");
        assert_eq!(human_secs(Some(42)), "42s");
        assert_eq!(human_secs(Some(185)), "3m05s");
        assert_eq!(human_secs(Some(7800)), "2h10m");
    }
}
