//! `lilypad-rp bench`: hashes per second of each OpenCL device and of the CPU fallback.
//!
//! The miners are measured in the same run, in interleaved slices of about a
//! second (round robin), so background load on the machine falls on all of
//! them alike; each gets `seconds` of wall time in total.

use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use lilypad_rp::pow::{CpuMiner, Miner, MinerError};
use lilypad_sdk::core::{B256, U256};

/// Time one search call should take, so slices end on time.
const CALL: Duration = Duration::from_millis(100);
/// Wall time of one slice of one miner.
const SLICE: Duration = Duration::from_secs(1);

/// A miner being measured and what it has done so far.
struct Run {
    label: String,
    miner: Box<dyn Miner>,
    /// Nonces per search call, adjusted toward [`CALL`].
    chunk: u64,
    next_nonce: U256,
    hashes: u64,
    time: Duration,
}

impl Run {
    fn new(label: String, miner: Box<dyn Miner>) -> Self {
        Self {
            label,
            miner,
            chunk: 1 << 16,
            next_nonce: U256::ZERO,
            hashes: 0,
            time: Duration::ZERO,
        }
    }

    /// Searches (target 0: the whole range, no early exit) for `slice` of wall time.
    fn slice(&mut self, slice: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < slice {
            let t = Instant::now();
            let out = self
                .miner
                .search(B256::ZERO, self.next_nonce, U256::ZERO, self.chunk)
                .with_context(|| format!("benchmarking {}", self.label))?;
            let took = t.elapsed();
            self.hashes += out.hashes_done;
            self.next_nonce += U256::from(out.hashes_done);
            // Aim the next call at CALL; a float estimate is fine for sizing.
            let per_sec = out.hashes_done as f64 / took.as_secs_f64().max(1e-6);
            self.chunk = (per_sec * CALL.as_secs_f64()).clamp(1024.0, 1e12) as u64;
        }
        self.time += start.elapsed();
        Ok(())
    }

    fn rate(&self) -> f64 {
        self.hashes as f64 / self.time.as_secs_f64().max(1e-9)
    }
}

/// Hashes per second for humans: `12.34 MH/s`.
fn human(rate: f64) -> String {
    match rate {
        r if r >= 1e9 => format!("{:.2} GH/s", r / 1e9),
        r if r >= 1e6 => format!("{:.2} MH/s", r / 1e6),
        r if r >= 1e3 => format!("{:.2} kH/s", r / 1e3),
        r => format!("{r:.0} H/s"),
    }
}

#[cfg(feature = "opencl")]
fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner().with_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// The OpenCL miners to measure (all devices, or `device`), or why there are none.
#[cfg(feature = "opencl")]
fn opencl_runs(device: Option<usize>) -> anyhow::Result<Vec<Run>> {
    use lilypad_rp::pow::opencl::{self, OpenClMiner};
    let devices = match device {
        Some(id) => vec![opencl::device(id)?],
        None => opencl::devices()?,
    };
    println!("OpenCL devices:");
    for d in &devices {
        let i = &d.info;
        println!(
            "  [{}] {} | {} | {} | {} compute units",
            i.id, i.platform, i.name, i.kind, i.compute_units
        );
    }
    let mut runs = Vec::new();
    for d in &devices {
        let pb = spinner(format!("calibrating work sizes on [{}] {}", d.info.id, d.info.name));
        let miner = OpenClMiner::new(d);
        pb.finish_and_clear();
        let miner = miner?;
        println!("  [{}] tuned: {}", d.info.id, miner.tuning());
        runs.push(Run::new(format!("[{}] {}", d.info.id, d.info.name), Box::new(miner)));
    }
    Ok(runs)
}

fn no_platform(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<MinerError>(),
        Some(MinerError::NoPlatform(_) | MinerError::NoDevice(_))
    ) || cfg!(not(feature = "opencl"))
}

#[cfg(not(feature = "opencl"))]
fn opencl_runs(_device: Option<usize>) -> anyhow::Result<Vec<Run>> {
    anyhow::bail!(
        "this lilypad-rp was built without the `opencl` feature; rebuild with default features"
    )
}

pub(crate) fn run(device: Option<usize>, seconds: u64) -> anyhow::Result<()> {
    anyhow::ensure!(seconds > 0, "--seconds must be at least 1");
    // Without any OpenCL device, the CPU fallback is still measured, then
    // the error (which says what to install or fix) is returned.
    let (mut runs, opencl_error) = match opencl_runs(device) {
        Ok(runs) => (runs, None),
        Err(e) if no_platform(&e) => (Vec::new(), Some(e)),
        Err(e) => return Err(e),
    };
    let opencl_count = runs.len();
    let cpu = CpuMiner::new();
    runs.push(Run::new(cpu.name(), Box::new(cpu)));

    let total = Duration::from_secs(seconds);
    let pb = ProgressBar::new(seconds * runs.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} measuring {msg} [{bar:30}] {pos}/{len} s")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut round = Duration::ZERO;
    while round < total {
        let slice = SLICE.min(total - round);
        for r in &mut runs {
            pb.set_message(r.label.clone());
            r.slice(slice)?;
            pb.inc(slice.as_secs());
        }
        round += slice;
    }
    pb.finish_and_clear();

    println!("hashes per second ({seconds} s each, interleaved):");
    for r in &runs {
        println!("  {:<50} {:>12}  ({} hashes)", r.label, human(r.rate()), r.hashes);
    }
    if let Some(e) = opencl_error {
        return Err(e);
    }
    let cpu_rate = runs[opencl_count].rate();
    let best = runs[..opencl_count].iter().map(Run::rate).fold(0.0, f64::max);
    println!("opencl_vs_cpu={:.2}", best / cpu_rate);
    Ok(())
}
