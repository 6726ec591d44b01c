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

use std::collections::{BTreeMap, BTreeSet};

use alloy::providers::Provider;
use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    chain::{ChainClient, Contract, ControllerEvent, Log, LogPoller, bindings::pow::LilypadPow},
    core::{
        Address, U256,
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

/// Every event of a poller up to the head as of now.
async fn drain<T>(mut poller: LogPoller<T>, head: u64) -> anyhow::Result<Vec<(T, Log)>> {
    let mut out = Vec::new();
    while poller.cursor() <= head {
        out.extend(poller.next_batch().await?);
    }
    Ok(out)
}

/// Block timestamps, each block read once.
struct BlockTimes<'a> {
    client: &'a ChainClient,
    seen: BTreeMap<u64, u64>,
}

impl<'a> BlockTimes<'a> {
    fn new(client: &'a ChainClient) -> Self {
        Self { client, seen: BTreeMap::new() }
    }

    /// A log's block timestamp (from the log when the node includes it, else from its block).
    async fn of(&mut self, log: &Log) -> anyhow::Result<u64> {
        if let Some(t) = log.block_timestamp {
            return Ok(t);
        }
        let n = log.block_number.context("a log without a block number")?;
        if let Some(t) = self.seen.get(&n) {
            return Ok(*t);
        }
        let block = self
            .client
            .provider()
            .get_block_by_number(n.into())
            .await
            .with_context(|| format!("reading block {n}"))?
            .with_context(|| format!("block {n} not found"))?;
        self.seen.insert(n, block.header.timestamp);
        Ok(block.header.timestamp)
    }
}

/// The controller's events as reputation reads them, in chain order.
async fn deal_events(
    times: &mut BlockTimes<'_>,
    controller: &[(ControllerEvent, Log)],
) -> anyhow::Result<Vec<DealEvent>> {
    let mut out = Vec::new();
    for (e, log) in controller {
        out.push(match e {
            ControllerEvent::DealCreated(d) => DealEvent::Created {
                deal: d.dealId,
                provider: d.provider,
                at: times.of(log).await?,
            },
            ControllerEvent::ResultsSubmitted(d) => {
                DealEvent::ResultsSubmitted { deal: d.dealId, at: times.of(log).await? }
            }
            ControllerEvent::ResultsChallenged(d) => DealEvent::Challenged { deal: d.dealId },
            ControllerEvent::FailureChallenged(d) => DealEvent::Challenged { deal: d.dealId },
            ControllerEvent::DealFinished(d) => {
                let outcome: u8 = d.outcome;
                let outcome = *Outcome::ALL.get(usize::from(outcome)).with_context(|| {
                    format!("deal {} finished with unknown outcome {outcome}", d.dealId)
                })?;
                DealEvent::Finished { deal: d.dealId, outcome }
            }
            _ => continue,
        });
    }
    Ok(out)
}

/// The leaderboard from the chain's events, best first.
pub(crate) async fn leaderboard(client: &ChainClient) -> anyhow::Result<Vec<Entry>> {
    let from = client.config().deployed_at_block;
    let head = client.block_number().await?;
    let now = client.latest_timestamp().await?;
    let started =
        drain(client.poll_events::<LilypadPow::RoundStarted>(Contract::Pow, from), head).await?;
    let proofs =
        drain(client.poll_events::<LilypadPow::ProofSubmitted>(Contract::Pow, from), head).await?;
    let controller = drain(client.poll_controller_events(from), head).await?;
    let mut times = BlockTimes::new(client);

    // Rounds: target and duration in seconds (at least 1).
    let mut starts: BTreeMap<u64, (U256, u64)> = BTreeMap::new();
    for (e, log) in &started {
        starts.insert(e.round, (e.target, times.of(log).await?));
    }
    let mut rounds: BTreeMap<u64, (U256, u64)> = BTreeMap::new();
    let list: Vec<_> = starts.iter().collect();
    for (i, (round, (target, t0))) in list.iter().enumerate() {
        let end = list.get(i + 1).map_or(now, |(_, (_, t1))| *t1);
        rounds.insert(**round, (*target, end.saturating_sub(*t0).max(1)));
    }

    // Proofs per miner per round, and each miner's last proof.
    let mut per_miner: BTreeMap<Address, BTreeMap<u64, u64>> = BTreeMap::new();
    let mut last_proof: BTreeMap<Address, &Log> = BTreeMap::new();
    for (e, log) in &proofs {
        *per_miner.entry(e.miner).or_default().entry(e.round).or_default() += 1;
        last_proof.insert(e.miner, log);
    }
    let mut last_proof_at: BTreeMap<Address, u64> = BTreeMap::new();
    for (who, log) in last_proof {
        last_proof_at.insert(who, times.of(log).await?);
    }

    let reputations = reputation::by_provider(deal_events(&mut times, &controller).await?);

    let everyone: BTreeSet<Address> = per_miner.keys().chain(reputations.keys()).copied().collect();
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
    for (e, r) in entries.iter_mut().zip(rewards::rewards(&activity, now)) {
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
