//! Device discovery from many threads at once, as the first OpenCL call of
//! the process: pocl initializes its devices then, and unserialized first
//! queries raced (a thread saw no device, or the process crashed).

#![cfg(feature = "opencl")]

use std::sync::Barrier;

use lilypad_rp::pow::opencl;

#[test]
fn concurrent_first_discovery_sees_every_device() {
    let threads = 8;
    let barrier = Barrier::new(threads);
    let counts: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    opencl::devices().map(|d| d.len()).unwrap_or_else(|e| panic!("{e}"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("discovery thread")).collect()
    });
    assert!(counts[0] > 0 && counts.iter().all(|&c| c == counts[0]), "{counts:?}");
}
