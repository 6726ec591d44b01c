//! scratch profiling (not committed)
#![allow(missing_docs, clippy::unwrap_used)]
use lilypad_benches::{NOW, workload};
use lilypad_core::matcher::Matcher;
use std::time::Instant;
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let reps: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let w = workload(n, n, 0x1111_7bad ^ n as u64);
    let mut tr = f64::MAX;
    let mut tj = f64::MAX;
    let mut tt = f64::MAX;
    for _ in 0..reps {
        let (rs, js) = (w.resources.clone(), w.jobs.clone());
        let mut m = Matcher::new(w.network.clone());
        let t = Instant::now();
        for (id, r) in rs {
            m.add_resource(id, r, NOW).unwrap();
        }
        let a = t.elapsed().as_secs_f64();
        if std::env::args().nth(3).is_some() {
            tr = tr.min(a);
            continue;
        }
        let t2 = Instant::now();
        let mut k = Vec::with_capacity(n);
        for (id, j) in js {
            if let Some(x) = m.add_job(id, j, NOW).unwrap() {
                k.push(x);
            }
        }
        let b = t2.elapsed().as_secs_f64();
        tr = tr.min(a);
        tj = tj.min(b);
        tt = tt.min(a + b);
        std::hint::black_box(k);
    }
    println!(
        "min: resources {:.2} ms, jobs {:.2} ms, total {:.2} ms",
        tr * 1e3,
        tj * 1e3,
        tt * 1e3
    );
}
