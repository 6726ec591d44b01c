//! What the dashboard shows, computed from [`ChainEvents`] after each refresh: the
//! leaderboard (the very rows `leaderboard --json` prints), every deal's timeline,
//! per-provider history and the network's charts.

use std::collections::{BTreeMap, BTreeSet};

use lilypad_sdk::{
    chain::ControllerEvent,
    core::{
        Address, B256, U256,
        pow::{MinedRound, hashrate_from_rounds},
    },
    storage::Cid,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::super::leaderboard::{At, ChainEvents, Entry, outcome, to_json};

/// One step of a deal's timeline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Step {
    /// `created`, `results_submitted`, `results_challenged`, `failure_reported`,
    /// `failure_challenged`, `mediator_drawn`, `mediator_redraw` or `finished`.
    pub(crate) kind: &'static str,
    pub(crate) block: u64,
    pub(crate) time: u64,
    pub(crate) tx: Option<B256>,
    /// What the step says in words (the outcome, the mediator, the CID).
    pub(crate) detail: String,
}

/// An address as `leaderboard --json` writes it (EIP-55 checksummed).
fn checksummed<S: serde::Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&a.to_string())
}

/// A deal as its events tell it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Deal {
    pub(crate) id: B256,
    #[serde(serialize_with = "checksummed")]
    pub(crate) job_creator: Address,
    #[serde(serialize_with = "checksummed")]
    pub(crate) provider: Address,
    #[serde(serialize_with = "checksummed")]
    pub(crate) solver: Address,
    pub(crate) job_offer: B256,
    pub(crate) resource_offer: B256,
    pub(crate) module_id: B256,
    /// Base units, decimal.
    pub(crate) price: String,
    /// `open`, `results_submitted`, `challenged`, `failure_reported` or `finished`.
    pub(crate) state: &'static str,
    /// The outcome's snake_case name once finished.
    pub(crate) outcome: Option<String>,
    pub(crate) results_cid: Option<String>,
    pub(crate) timeline: Vec<Step>,
}

impl Deal {
    fn at(&self, kind: &str) -> Option<u64> {
        self.timeline.iter().find(|s| s.kind == kind).map(|s| s.time)
    }
}

/// The solver's public numbers (`/healthz`, `/metrics`), when it answers.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct SolverView {
    pub(crate) url: Option<String>,
    pub(crate) reachable: bool,
    pub(crate) open_job_offers: Option<u64>,
    pub(crate) open_resource_offers: Option<u64>,
    /// What the waiting resource offers put on the market, each slot once.
    pub(crate) offered: Option<lilypad_sdk::core::matcher::Capacity>,
    pub(crate) error: Option<String>,
}

/// Everything the API serves, as of one chain head.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) version: u64,
    pub(crate) head: u64,
    pub(crate) now: u64,
    pub(crate) entries: Vec<Entry>,
    /// `to_json(&entries)`: what `leaderboard --json` prints.
    pub(crate) leaderboard: Value,
    pub(crate) deals: BTreeMap<B256, Deal>,
    /// Deal ids by job or resource offer id.
    pub(crate) offers: BTreeMap<B256, Vec<B256>>,
    /// Per round: start, duration, target and proofs per miner.
    pub(crate) rounds: Vec<Round>,
    pub(crate) solver: SolverView,
}

/// One proof-of-work round.
#[derive(Debug, Clone)]
pub(crate) struct Round {
    pub(crate) round: u64,
    pub(crate) started_at: u64,
    pub(crate) secs: u64,
    pub(crate) target: U256,
    pub(crate) proofs: BTreeMap<Address, u64>,
}

fn step(kind: &'static str, at: &At, detail: String) -> Step {
    Step { kind, block: at.block, time: at.time, tx: at.tx, detail }
}

/// Every deal's timeline from the controller's events.
fn deals(events: &ChainEvents) -> anyhow::Result<BTreeMap<B256, Deal>> {
    let mut deals: BTreeMap<B256, Deal> = BTreeMap::new();
    for (e, at) in &events.controller {
        if let ControllerEvent::DealCreated(d) = e {
            deals.insert(
                d.dealId,
                Deal {
                    id: d.dealId,
                    job_creator: d.jobCreator,
                    provider: d.provider,
                    solver: d.solver,
                    job_offer: d.terms.jobOfferHash,
                    resource_offer: d.terms.resourceOfferHash,
                    module_id: d.terms.moduleId,
                    price: d.terms.price.to_string(),
                    state: "open",
                    outcome: None,
                    results_cid: None,
                    timeline: vec![step("created", at, format!("price {}", d.terms.price))],
                },
            );
            continue;
        }
        let (id, kind, state, detail) = match e {
            ControllerEvent::ResultsSubmitted(r) => {
                let cid = Cid::try_from(r.resultsCid.as_ref())
                    .map_or_else(|_| format!("{} (malformed)", r.resultsCid), |c| c.to_string());
                if let Some(d) = deals.get_mut(&r.dealId) {
                    d.results_cid = Some(cid.clone());
                }
                (r.dealId, "results_submitted", "results_submitted", cid)
            }
            ControllerEvent::ResultsChallenged(r) => {
                (r.dealId, "results_challenged", "challenged", format!("fee {}", r.mediationFee))
            }
            ControllerEvent::FailureReported(r) => {
                (r.dealId, "failure_reported", "failure_reported", r.detail.clone())
            }
            ControllerEvent::FailureChallenged(r) => {
                (r.dealId, "failure_challenged", "challenged", format!("fee {}", r.mediationFee))
            }
            ControllerEvent::MediatorDrawn(r) => {
                (r.dealId, "mediator_drawn", "challenged", format!("mediator {}", r.mediator))
            }
            ControllerEvent::MediatorRedraw(r) => {
                (r.dealId, "mediator_redraw", "challenged", format!("round {}", r.round))
            }
            ControllerEvent::DealFinished(r) => {
                let o = outcome(r.outcome, r.dealId)?;
                if let Some(d) = deals.get_mut(&r.dealId) {
                    d.outcome = Some(snake(&o));
                }
                let detail = format!(
                    "{o}; paid: job creator {}, provider {}, mediator {}",
                    r.toJobCreator, r.toProvider, r.toMediator
                );
                (r.dealId, "finished", "finished", detail)
            }
            _ => continue,
        };
        if let Some(d) = deals.get_mut(&id) {
            d.state = state;
            d.timeline.push(step(kind, at, detail));
        }
    }
    Ok(deals)
}

/// An outcome's snake_case name (as the API and `deals --json` spell it).
fn snake(o: &lilypad_sdk::core::settlement::Outcome) -> String {
    serde_json::to_value(o).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn rounds(events: &ChainEvents) -> Vec<Round> {
    let mut out: BTreeMap<u64, Round> = events
        .round_spans()
        .into_iter()
        .map(|(round, (target, secs))| {
            let started_at = events.rounds.get(&round).map_or(0, |r| r.started_at);
            (round, Round { round, started_at, secs, target, proofs: BTreeMap::new() })
        })
        .collect();
    for p in &events.proofs {
        if let Some(r) = out.get_mut(&p.round) {
            *r.proofs.entry(p.miner).or_default() += 1;
        }
    }
    out.into_values().collect()
}

impl Snapshot {
    /// The snapshot of `events` (already updated), numbered `version`.
    pub(crate) fn build(
        events: &ChainEvents,
        version: u64,
        solver: SolverView,
    ) -> anyhow::Result<Self> {
        let entries = events.entries()?;
        let deals = deals(events)?;
        let mut offers: BTreeMap<B256, Vec<B256>> = BTreeMap::new();
        for d in deals.values() {
            offers.entry(d.job_offer).or_default().push(d.id);
            offers.entry(d.resource_offer).or_default().push(d.id);
        }
        Ok(Self {
            version,
            head: events.head,
            now: events.now,
            leaderboard: to_json(&entries),
            entries,
            deals,
            offers,
            rounds: rounds(events),
            solver,
        })
    }

    /// The leaderboard row of `who` (as `leaderboard --json` has it), if listed.
    pub(crate) fn row(&self, who: Address) -> Option<&Value> {
        let who = who.to_string();
        self.leaderboard["providers"].as_array()?.iter().find(|r| r["provider"] == who.as_str())
    }

    /// Deals of an address in either role, newest first.
    fn deals_of(&self, who: Address) -> (Vec<&Deal>, Vec<&Deal>) {
        (
            newest(self.deals.values().filter(|d| d.provider == who).collect()),
            newest(self.deals.values().filter(|d| d.job_creator == who).collect()),
        )
    }

    /// The `n` newest deals.
    fn recent(&self, n: usize) -> Vec<Value> {
        newest(self.deals.values().collect()).into_iter().take(n).map(summary).collect()
    }

    /// `/api/providers/{addr}`: its row, its history per round and its deals.
    pub(crate) fn provider(&self, who: Address) -> Option<Value> {
        let row = self.row(who)?.clone();
        let history: Vec<Value> = self
            .rounds
            .iter()
            .map(|r| {
                let proofs = r.proofs.get(&who).copied().unwrap_or(0);
                let hashrate = if proofs == 0 {
                    0.0
                } else {
                    hashrate_from_rounds(vec![MinedRound { target: r.target, secs: r.secs, proofs }])
                        .unwrap_or(0.0)
                };
                json!({ "round": r.round, "started_at": r.started_at, "proofs": proofs, "hashrate": hashrate })
            })
            .collect();
        let (as_provider, _) = self.deals_of(who);
        Some(json!({
            "provider": who.to_string(),
            "row": row,
            "rounds": history,
            "deals": as_provider.iter().map(|d| summary(d)).collect::<Vec<_>>(),
            "deals_per_hour": hourly(as_provider.iter().filter_map(|d| d.at("created")), self.now),
        }))
    }

    /// `/api/address/{addr}`: what the chain knows of any address.
    pub(crate) fn address(&self, who: Address) -> Value {
        let (as_provider, as_creator) = self.deals_of(who);
        json!({
            "address": who.to_string(),
            "provider": self.row(who),
            "deals_as_provider": as_provider.iter().map(|d| summary(d)).collect::<Vec<_>>(),
            "deals_as_job_creator": as_creator.iter().map(|d| summary(d)).collect::<Vec<_>>(),
        })
    }

    /// `/api/network`: providers, offers, deals per hour, outcomes, phase medians.
    pub(crate) fn network(&self) -> Value {
        let online = self.entries.iter().filter(|e| e.proofs > 0 && e.days_offline == 0).count();
        let created: Vec<u64> = self.deals.values().filter_map(|d| d.at("created")).collect();
        let mut outcomes: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for d in self.deals.values() {
            if let (Some(o), Some(t)) = (&d.outcome, d.at("finished")) {
                outcomes.entry(o.clone()).or_default().push(t);
            }
        }
        let outcomes: BTreeMap<String, Value> =
            outcomes.into_iter().map(|(o, t)| (o, hourly(t.into_iter(), self.now))).collect();
        let phase = |from: &str, to: &str| {
            median(self.deals.values().filter_map(|d| Some(d.at(to)?.saturating_sub(d.at(from)?))))
        };
        let per_round: Vec<Value> = self
            .rounds
            .iter()
            .map(|r| json!({ "round": r.round, "started_at": r.started_at, "providers": r.proofs.len(), "proofs": r.proofs.values().sum::<u64>() }))
            .collect();
        let states = self.deals.values().fold(BTreeMap::<&str, u64>::new(), |mut m, d| {
            *m.entry(d.state).or_default() += 1;
            m
        });
        let miners: BTreeSet<Address> =
            self.entries.iter().filter(|e| e.proofs > 0).map(|e| e.provider).collect();
        json!({
            "head": self.head,
            "now": self.now,
            "providers": self.entries.len(),
            "miners": miners.len(),
            "providers_online": online,
            "solver": self.solver,
            "deals": self.deals.len(),
            "deal_states": states,
            "jobs_per_hour": hourly(created.into_iter(), self.now),
            "outcomes_per_hour": outcomes,
            "median_secs": {
                "created_to_results": phase("created", "results_submitted"),
                "results_to_finished": phase("results_submitted", "finished"),
                "challenged_to_finished": phase("results_challenged", "finished"),
                "created_to_finished": phase("created", "finished"),
            },
            "rounds": per_round,
            "recent_deals": self.recent(20),
        })
    }
}

/// Deals, newest first.
fn newest(mut v: Vec<&Deal>) -> Vec<&Deal> {
    v.sort_by_key(|d| std::cmp::Reverse(d.timeline.first().map_or(0, |s| s.block)));
    v
}

/// A deal in a list.
fn summary(d: &Deal) -> Value {
    json!({
        "id": d.id,
        "provider": d.provider.to_string(),
        "job_creator": d.job_creator.to_string(),
        "state": d.state,
        "outcome": d.outcome,
        "created_at": d.at("created"),
    })
}

/// Counts per hour (chain time) over the 24 hours up to `now`, oldest first:
/// `{"start": hour_start_of_first_bucket, "counts": [...]}`.
fn hourly(times: impl Iterator<Item = u64>, now: u64) -> Value {
    const HOURS: u64 = 24;
    let last = now / 3600;
    let first = last.saturating_sub(HOURS - 1);
    let mut counts = vec![0u64; HOURS as usize];
    for t in times {
        let h = t / 3600;
        if (first..=last).contains(&h) {
            counts[(h - first) as usize] += 1;
        }
    }
    json!({ "start": first * 3600, "counts": counts })
}

/// The median of some durations (the mean of the middle two for an even count).
fn median(values: impl Iterator<Item = u64>) -> Option<u64> {
    let mut v: Vec<u64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_hours() {
        assert_eq!(median([].into_iter()), None);
        assert_eq!(median([40, 100].into_iter()), Some(70));
        assert_eq!(median([5, 1, 3].into_iter()), Some(3));
        let h = hourly([3600 * 30 + 5, 3600 * 30 + 9, 3600 * 2].into_iter(), 3600 * 30 + 100);
        assert_eq!(h["start"], 3600 * 7);
        assert_eq!(h["counts"][23], 2);
        assert_eq!(
            h["counts"].as_array().unwrap().iter().filter_map(|c| c.as_u64()).sum::<u64>(),
            2
        );
    }
}
