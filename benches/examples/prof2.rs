//! scratch (not committed)
#![allow(missing_docs, clippy::unwrap_used)]
use lilypad_benches::{NOW, workload};
use lilypad_core::matcher::Matcher;
use std::time::{Duration, Instant};
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let reps: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(9);
    let w = workload(n, n, 0x1111_7bad ^ n as u64);
    let mut ts = Vec::new();
    for _ in 0..reps {
        let (rs, js) = (w.resources.clone(), w.jobs.clone());
        let t = Instant::now();
        let mut m = Matcher::new(w.network.clone());
        let mut out = Vec::with_capacity(js.len());
        for (id, r) in rs {
            out.extend(m.add_resource(id, r, NOW).unwrap());
        }
        for (id, j) in js {
            out.extend(m.add_job(id, j, NOW).unwrap());
        }
        ts.push(t.elapsed());
        std::hint::black_box((out, m));
    }
    ts.sort();
    println!(
        "{:?}",
        ts.iter().map(|d: &Duration| (d.as_secs_f64() * 1e4).round() / 10.0).collect::<Vec<_>>()
    );
}
