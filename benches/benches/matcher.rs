//! The indexed matcher against the naive reference pass, on the same offers.
//!
//! - batch: insert every resource offer, then every job offer, into a
//!   `Matcher`; the baseline runs `naive::match_all` on the same offers. Both
//!   give the same matches (asserted once, outside the timing).
//! - incremental: the cost of adding one job offer while 100,000 resource
//!   offers rest (the matched offer is put back, untimed, so the set stays
//!   at 100k).
//!
//! After criterion, prints `speedup_vs_naive_<n>x<n>=<ratio>` per size (ratio
//! of median times measured here with `Instant`, naive and indexed runs
//! interleaved so that both see the same load) and
//! `incremental_match_100k_us=<median>`, then the same with every provider
//! scored and `prefer_reputation` on (`..._prefer_reputation_us`) and with
//! the scores but the option off (`..._scored_us`: the default path with a
//! full score table), the three measured in turns. Run with
//! `cargo bench -p lilypad-benches --bench matcher`.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BatchSize, Criterion};
use lilypad_benches::{NOW, Workload, workload};
use lilypad_core::{
    matcher::{Match, Matched, Matcher, NetworkModules, naive},
    offer::{JobOffer, OfferId, ResourceOffer},
};

const SEED: u64 = 0x1111_7bad;
const RESTING: usize = 100_000;

type Jobs = Vec<(OfferId, JobOffer)>;
type Resources = Vec<(OfferId, ResourceOffer)>;

/// Inserts every resource offer, then every job offer. Returns the matches
/// with the offers handed back, and the matcher, so that dropping them is
/// not timed (the naive pass drops nothing either).
fn run_indexed(
    network: &NetworkModules,
    resources: Resources,
    jobs: Jobs,
) -> (Vec<Matched>, Matcher) {
    let mut matcher = Matcher::new(network.clone());
    let mut matches = Vec::with_capacity(jobs.len());
    for (id, resource) in resources {
        match matcher.add_resource(id, resource, NOW) {
            Ok(m) => matches.extend(m),
            Err(e) => panic!("workload offer refused: {e}"),
        }
    }
    for (id, job) in jobs {
        match matcher.add_job(id, job, NOW) {
            Ok(m) => matches.extend(m),
            Err(e) => panic!("workload offer refused: {e}"),
        }
    }
    (matches, matcher)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// One timed batch run of the indexed matcher (cloning the input is not timed).
fn time_indexed(w: &Workload) -> Duration {
    let (resources, jobs) = (w.resources.clone(), w.jobs.clone());
    let start = Instant::now();
    let out = black_box(run_indexed(&w.network, resources, jobs));
    let elapsed = start.elapsed();
    drop(out);
    elapsed
}

/// One timed run of the naive pass.
fn time_naive(w: &Workload) -> Duration {
    let start = Instant::now();
    black_box(naive::match_all(&w.jobs, &w.resources, &w.network, NOW));
    start.elapsed()
}

/// Medians of interleaved runs (`rounds` x one naive and three indexed), so
/// that both sides see the same share of a busy machine.
fn compare(w: &Workload, rounds: usize) -> (Duration, Duration) {
    let (mut indexed, mut naive) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        naive.push(time_naive(w));
        indexed.extend((0..3).map(|_| time_indexed(w)));
    }
    (median(indexed), median(naive))
}

/// A matcher with `n` resting resource offers and no resting jobs, and a
/// pool of job offers.
struct Resting {
    matcher: Matcher,
    jobs: Jobs,
}

impl Resting {
    fn new(n: usize) -> Self {
        let w = workload(2_000, n, SEED ^ 0x0010_0000);
        let (matches, matcher) = run_indexed(&w.network, w.resources, Vec::new());
        assert!(matches.is_empty());
        Self { matcher, jobs: w.jobs }
    }

    /// [`Self::new`] with a score for every provider (few distinct values, so
    /// that ties are common) and `prefer_reputation` as given.
    fn scored(n: usize, prefer: bool) -> Self {
        let mut book = Self::new(n);
        let providers: Vec<_> =
            book.matcher.resources().into_iter().map(|(_, r)| r.provider).collect();
        for p in providers {
            let score = [0.3, 0.5, 0.7, 0.9][usize::from(p.0[0] ^ p.0[3]) % 4];
            book.matcher.set_score(p, score);
        }
        book.matcher.prefer_reputation(prefer);
        book
    }

    /// Adds the `i`th job of the pool, timed; then undoes it, untimed.
    fn add_one(&mut self, i: usize) -> Duration {
        let (id, job) = self.jobs[i % self.jobs.len()].clone();
        let start = Instant::now();
        let result = black_box(self.matcher.add_job(id, job, NOW));
        let elapsed = start.elapsed();
        match result {
            Ok(Some(m)) => {
                let id = m.deal.resource;
                if let Err(e) = self.matcher.add_resource(id, m.resource, NOW) {
                    panic!("cannot put {id} back: {e}");
                }
            }
            Ok(None) => {
                self.matcher.remove_job(&id);
            }
            Err(e) => panic!("workload offer refused: {e}"),
        }
        elapsed
    }
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`)
    // criterion runs each routine once, so keep that run small.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full { &[1_000, 10_000] } else { &[1_000] };
    let resting = if full { RESTING } else { 10_000 };

    let workloads: Vec<(usize, Workload)> =
        sizes.iter().map(|&n| (n, workload(n, n, SEED ^ n as u64))).collect();
    for (n, w) in &workloads {
        let (indexed, _) = run_indexed(&w.network, w.resources.clone(), w.jobs.clone());
        let indexed: Vec<Match> = indexed.into_iter().map(|m| m.deal).collect();
        let reference = naive::match_all(&w.jobs, &w.resources, &w.network, NOW);
        assert_eq!(indexed, reference, "indexed and naive disagree at {n}x{n}");
        println!("matcher_{n}x{n}_matched_jobs={}", indexed.len());
    }

    let mut c = Criterion::default().configure_from_args();
    for (n, w) in &workloads {
        let mut group = c.benchmark_group(format!("matcher_{n}x{n}"));
        if *n >= 10_000 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(5));
        } else {
            group.measurement_time(Duration::from_secs(3));
        }
        group.bench_function("indexed", |b| {
            b.iter_batched(
                || (w.resources.clone(), w.jobs.clone()),
                |(resources, jobs)| run_indexed(&w.network, resources, jobs),
                BatchSize::LargeInput,
            );
        });
        group.bench_function("naive", |b| {
            b.iter(|| naive::match_all(&w.jobs, &w.resources, &w.network, NOW));
        });
        group.finish();
    }

    let mut book = Resting::new(resting);
    c.bench_function(&format!("matcher_add_job_{}k_resting", resting / 1000), |b| {
        let mut i = 0;
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    i += 1;
                    book.add_one(i)
                })
                .sum()
        });
    });
    c.final_summary();

    if !full {
        return;
    }
    for (n, w) in &workloads {
        let (indexed, naive) = compare(w, if *n >= 10_000 { 5 } else { 15 });
        println!("matcher_{n}x{n}_indexed_ms={:.3}", indexed.as_secs_f64() * 1e3);
        println!("matcher_{n}x{n}_naive_ms={:.3}", naive.as_secs_f64() * 1e3);
        println!("speedup_vs_naive_{n}x{n}={:.1}", naive.as_secs_f64() / indexed.as_secs_f64());
    }
    let mut scored = Resting::scored(resting, false);
    let mut preferring = Resting::scored(resting, true);
    let (mut plain_t, mut scored_t, mut prefer_t) = (Vec::new(), Vec::new(), Vec::new());
    // Blocks of 250 adds in turn: each book keeps its cache warm within a
    // block, and all three see the same load.
    for block in 0..20 {
        let adds = block * 250..(block + 1) * 250;
        plain_t.extend(adds.clone().map(|i| book.add_one(i)));
        scored_t.extend(adds.clone().map(|i| scored.add_one(i)));
        prefer_t.extend(adds.map(|i| preferring.add_one(i)));
    }
    let us = |t: Vec<Duration>| median(t).as_secs_f64() * 1e6;
    println!("incremental_match_100k_us={:.3}", us(plain_t));
    println!("incremental_match_100k_scored_us={:.3}", us(scored_t));
    println!("incremental_match_100k_prefer_reputation_us={:.3}", us(prefer_t));
}
