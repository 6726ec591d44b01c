//! `lilypad-cli leaderboard`: providers ranked by proof-of-work hashrate, from chain events only.
//!
//! Reads `LilypadPow`'s `RoundStarted` and `ProofSubmitted` events and the
//! controller's `DealCreated` and `DealFinished` events from the network's
//! `deployed_at_block`, with the SDK's [`lilypad_sdk::chain::LogPoller`]. A
//! round lasts from its `RoundStarted` block to the next one's (the current
//! round: to the latest block). Per miner, over the rounds it has proofs in:
//!
//! - hashrate: [`hashrate_from_rounds`] (proofs per round at that round's
//!   target, over the rounds' durations), with its relative standard deviation
//!   `1/sqrt(proofs)`;
//! - jobs completed: deals whose provider it is that finished `Accepted`,
//!   `NoJudgementInTime` or `MediationAccepted`;
//! - points: see `docs/pow.md` ("Reward points").

use std::collections::{BTreeMap, BTreeSet};

use alloy::providers::Provider;
use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    chain::{ChainClient, Contract, ControllerEvent, Log, LogPoller, bindings::pow::LilypadPow},
    core::{
        Address, B256, U256,
        pow::{MinedRound, hashrate_from_rounds},
    },
};
use serde_json::json;

use super::network::{NetworkArgs, load};

/// Rounds present after which the time-on-network multiplier stops growing (at 4x).
pub(crate) const FULL_MULTIPLIER_ROUNDS: u64 = 100;
/// The largest time-on-network multiplier.
pub(crate) const MAX_MULTIPLIER: f64 = 4.0;

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
    pub(crate) jobs_completed: u64,
    pub(crate) points: f64,
}

/// The time-on-network multiplier: 1x at 0 rounds present, linearly to 4x at
/// [`FULL_MULTIPLIER_ROUNDS`], 4x after.
pub(crate) fn multiplier(rounds_present: u64) -> f64 {
    let r = rounds_present.min(FULL_MULTIPLIER_ROUNDS) as f64;
    1.0 + (MAX_MULTIPLIER - 1.0) * r / FULL_MULTIPLIER_ROUNDS as f64
}

/// Reward points: 1000 x the provider's share of the summed estimated hashrate x its multiplier.
pub(crate) fn points(hashrate: f64, total_hashrate: f64, rounds_present: u64) -> f64 {
    if total_hashrate <= 0.0 {
        return 0.0;
    }
    1000.0 * hashrate / total_hashrate * multiplier(rounds_present)
}

/// Every event of a poller up to the head as of now.
async fn drain<T>(mut poller: LogPoller<T>, head: u64) -> anyhow::Result<Vec<(T, Log)>> {
    let mut out = Vec::new();
    while poller.cursor() <= head {
        out.extend(poller.next_batch().await?);
    }
    Ok(out)
}

/// A log's block timestamp (from the log when the node includes it, else from its block).
async fn log_time(client: &ChainClient, log: &Log) -> anyhow::Result<u64> {
    if let Some(t) = log.block_timestamp {
        return Ok(t);
    }
    let n = log.block_number.context("a log without a block number")?;
    let block = client
        .provider()
        .get_block_by_number(n.into())
        .await
        .with_context(|| format!("reading block {n}"))?
        .with_context(|| format!("block {n} not found"))?;
    Ok(block.header.timestamp)
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

    // Rounds: target and duration in seconds (at least 1).
    let mut starts: BTreeMap<u64, (U256, u64)> = BTreeMap::new();
    for (e, log) in &started {
        starts.insert(e.round, (e.target, log_time(client, log).await?));
    }
    let mut rounds: BTreeMap<u64, (U256, u64)> = BTreeMap::new();
    let list: Vec<_> = starts.iter().collect();
    for (i, (round, (target, t0))) in list.iter().enumerate() {
        let end = list.get(i + 1).map_or(now, |(_, (_, t1))| *t1);
        rounds.insert(**round, (*target, end.saturating_sub(*t0).max(1)));
    }

    // Proofs per miner per round.
    let mut per_miner: BTreeMap<Address, BTreeMap<u64, u64>> = BTreeMap::new();
    for (e, _) in &proofs {
        *per_miner.entry(e.miner).or_default().entry(e.round).or_default() += 1;
    }

    // Jobs completed per provider.
    let mut provider_of: BTreeMap<B256, Address> = BTreeMap::new();
    let mut jobs: BTreeMap<Address, u64> = BTreeMap::new();
    for (e, _) in &controller {
        match e {
            ControllerEvent::DealCreated(d) => {
                provider_of.insert(d.dealId, d.provider);
            }
            ControllerEvent::DealFinished(d) => {
                // Outcome: 0 Accepted, 2 NoJudgementInTime, 3 MediationAccepted pay the provider.
                let outcome: u8 = d.outcome;
                if matches!(outcome, 0 | 2 | 3)
                    && let Some(p) = provider_of.get(&d.dealId)
                {
                    *jobs.entry(*p).or_default() += 1;
                }
            }
            _ => {}
        }
    }

    let everyone: BTreeSet<Address> = per_miner.keys().chain(jobs.keys()).copied().collect();
    let mut entries = Vec::new();
    for who in everyone {
        let mine = per_miner.get(&who).cloned().unwrap_or_default();
        let mut mined = Vec::new();
        for (round, n) in &mine {
            let (target, secs) = rounds.get(round).copied().unwrap_or((U256::MAX, 1));
            mined.push(MinedRound { target, secs, proofs: *n });
        }
        let proofs: u64 = mine.values().sum();
        let hashrate = if mined.is_empty() { 0.0 } else { hashrate_from_rounds(mined)? };
        entries.push(Entry {
            provider: who,
            hashrate,
            rel_std: (proofs > 0).then(|| 1.0 / (proofs as f64).sqrt()),
            rounds: mine.len() as u64,
            proofs,
            jobs_completed: jobs.get(&who).copied().unwrap_or(0),
            points: 0.0,
        });
    }
    let total: f64 = entries.iter().map(|e| e.hashrate).sum();
    for e in &mut entries {
        e.points = points(e.hashrate, total, e.rounds);
    }
    entries.sort_by(|a, b| b.hashrate.total_cmp(&a.hashrate).then(b.points.total_cmp(&a.points)));
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

/// The table `leaderboard` prints.
pub(crate) fn table(entries: &[Entry]) -> String {
    let mut out = format!(
        "{:>4}  {:<42}  {:>12}  {:>6}  {:>6}  {:>6}  {:>4}  {:>9}\n",
        "rank", "provider", "hashrate", "+-", "rounds", "proofs", "jobs", "points"
    );
    for (i, e) in entries.iter().enumerate() {
        let band = e.rel_std.map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0));
        out.push_str(&format!(
            "{:>4}  {:<42}  {:>12}  {:>6}  {:>6}  {:>6}  {:>4}  {:>9.2}\n",
            i + 1,
            e.provider.to_string(),
            human_rate(e.hashrate),
            band,
            e.rounds,
            e.proofs,
            e.jobs_completed,
            e.points
        ));
    }
    if entries.is_empty() {
        out.push_str("(no proofs of work or completed jobs yet)\n");
    }
    out
}

/// The JSON `leaderboard --json` prints.
pub(crate) fn to_json(entries: &[Entry]) -> serde_json::Value {
    let rows: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "rank": i + 1,
                "provider": e.provider.to_string(),
                "hashrate": e.hashrate,
                "hashrate_rel_std": e.rel_std,
                "rounds": e.rounds,
                "proofs": e.proofs,
                "jobs_completed": e.jobs_completed,
                "points": e.points,
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
    fn multiplier_grows_linearly_to_four() {
        assert!((multiplier(0) - 1.0).abs() < 1e-12);
        assert!((multiplier(50) - 2.5).abs() < 1e-12);
        assert!((multiplier(100) - 4.0).abs() < 1e-12);
        assert!((multiplier(1000) - 4.0).abs() < 1e-12);
        assert!((points(1.0, 4.0, 100) - 1000.0).abs() < 1e-9);
        assert_eq!(points(1.0, 0.0, 1), 0.0);
    }
}
