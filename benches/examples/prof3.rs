//! scratch (not committed)
#![allow(missing_docs, clippy::unwrap_used)]
use lilypad_benches::{NOW, workload};
use lilypad_core::matcher::naive;
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let w = workload(n, n, 0x1111_7bad ^ n as u64);
    std::hint::black_box(naive::match_all(&w.jobs, &w.resources, &w.network, NOW));
}
