//! `lilypad-rp run --mine`: which miners run, and the engine's pause flags for them.
//!
//! When the slots have GPUs, one OpenCL miner runs per GPU that an OpenCL GPU device
//! matches (by PCI address, else by order: see [`lilypad_rp::gpus`]), each paused
//! while a job runs on its GPU (its entry of `EngineConfig::gpu_mining_pauses`). A
//! GPU without a matching device, or whose device fails to start a miner, is logged
//! and not mined. When no GPU miner starts (no GPU slot, no OpenCL GPU device, or
//! built without the `opencl` feature), one CPU miner runs, paused while any job
//! runs (`EngineConfig::mining_pause`), as before GPUs were mined.
//!
//! # OpenCL drivers and SIGTERM
//!
//! OpenCL is loaded only when the slots have GPUs. A driver built on LLVM (pocl, and
//! so may be others) installs LLVM's handlers for SIGINT and SIGTERM when it first
//! compiles a kernel. LLVM's handler puts back the handler it found and raises the
//! signal again. So the order matters:
//!
//! - our handler (tokio's, [`crate::provider_cmd`]'s `cancel_on_signal`) installed
//!   first: LLVM's handler restores it and re-raises, tokio sees the signal and the
//!   daemon stops cleanly (exit status 0);
//! - OpenCL loaded first: tokio's handler calls the handler it found (LLVM's) before
//!   its own work, LLVM's restores the default action and re-raises, and the process
//!   dies of SIGTERM before tokio sees it.
//!
//! `run` therefore registers its signal handlers before it starts any miner (checked
//! with pocl by the e2e test `fake_gpu_mining_...` in `tests/provider_e2e.rs`, which
//! forces pocl's CPU device to stand in for a GPU and sends SIGTERM).

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use lilypad_rp::{
    mining::{MineOptions, mine},
    pow::{CpuMiner, Miner},
};
use lilypad_sdk::{chain::ChainClient, provider::EngineConfig};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a miner whose loop failed waits before it starts again.
const RESTART: Duration = Duration::from_secs(10);

/// Starts the miners for `config.slots` and gives the engine their pause flags.
///
/// `cpu_as_gpu` (a hidden test flag) lets OpenCL CPU devices stand in for GPUs, so
/// that the GPU path runs on machines without one. Must be called after the signal
/// handlers are installed (see the module docs).
pub(crate) async fn start(
    chain: &ChainClient,
    config: &mut EngineConfig,
    cpu_as_gpu: bool,
    cancel: &CancellationToken,
) {
    let gpus: BTreeSet<u32> =
        config.slots.iter().flat_map(|s| s.gpu_indexes.iter().copied()).collect();
    let gpu_miners = if gpus.is_empty() { Vec::new() } else { gpu_miners(gpus, cpu_as_gpu).await };
    let mut miners: Vec<(Option<u32>, Arc<dyn Miner>, MineOptions)> = Vec::new();
    let fresh = || MineOptions { metrics: Some(config.metrics.clone()), ..MineOptions::default() };
    for (gpu, miner) in gpu_miners {
        let opts = fresh();
        config.gpu_mining_pauses.insert(gpu, Arc::clone(&opts.pause));
        miners.push((Some(gpu), miner, opts));
    }
    if miners.is_empty() {
        let opts = fresh();
        config.mining_pause = Some(Arc::clone(&opts.pause));
        let miner: Arc<dyn Miner> = Arc::new(CpuMiner::new());
        tracing::info!(miner = %miner.name(), "--mine: mining on the CPU, paused while any job runs");
        miners.push((None, miner, opts));
    }
    for (gpu, miner, opts) in miners {
        let span = match gpu {
            Some(g) => tracing::info_span!("miner", gpu = g),
            None => tracing::info_span!("miner", cpu = true),
        };
        let (chain, cancel) = (chain.clone(), cancel.clone());
        tokio::spawn(
            async move {
                // A failed read or submission (the node down, a nonce taken by a
                // sibling miner's transaction) stops `mine`; the daemon mines on.
                loop {
                    tokio::select! {
                        r = mine(&chain, Arc::clone(&miner), &opts) => if let Err(e) = r {
                            tracing::error!("mining stopped: {e:#}; starting again in {}s", RESTART.as_secs());
                        },
                        () = cancel.cancelled() => return,
                    }
                    tokio::select! {
                        () = tokio::time::sleep(RESTART) => {}
                        () = cancel.cancelled() => return,
                    }
                }
            }
            .instrument(span),
        );
    }
}

/// One OpenCL miner per GPU in `gpus` that an OpenCL device matches, calibrated (off
/// the async threads: about a second per device).
#[cfg(feature = "opencl")]
async fn gpu_miners(gpus: BTreeSet<u32>, cpu_as_gpu: bool) -> Vec<(u32, Arc<dyn Miner>)> {
    let found = tokio::task::spawn_blocking(move || open_gpu_miners(&gpus, cpu_as_gpu)).await;
    found.unwrap_or_else(|e| {
        tracing::warn!("--mine: looking for OpenCL GPU devices failed ({e}); mining on the CPU");
        Vec::new()
    })
}

#[cfg(not(feature = "opencl"))]
async fn gpu_miners(gpus: BTreeSet<u32>, _cpu_as_gpu: bool) -> Vec<(u32, Arc<dyn Miner>)> {
    tracing::warn!(
        ?gpus,
        "--mine: built without the opencl feature, so the GPUs are not mined; mining on the CPU"
    );
    Vec::new()
}

#[cfg(feature = "opencl")]
fn open_gpu_miners(gpus: &BTreeSet<u32>, cpu_as_gpu: bool) -> Vec<(u32, Arc<dyn Miner>)> {
    use lilypad_rp::{
        gpus::{ClGpu, GpuMatch, map_gpus},
        pow::opencl::{self, OpenClMiner},
    };

    let wanted: Vec<u32> = gpus.iter().copied().collect();
    let devices = match opencl::devices() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(
                gpus = ?wanted,
                "--mine: no OpenCL device ({e}); the GPUs are not mined, mining on the CPU"
            );
            return Vec::new();
        }
    };
    let candidates: Vec<&opencl::OpenClDevice> =
        devices.iter().filter(|d| d.info.is_gpu() || (cpu_as_gpu && d.info.is_cpu())).collect();
    if cpu_as_gpu {
        tracing::warn!(
            "--mine-opencl-cpu-as-gpu: OpenCL CPU devices stand in for GPUs (test only)"
        );
    }
    let cl: Vec<ClGpu> = candidates
        .iter()
        .map(|d| ClGpu { pci: d.info.pci, nvidia: d.info.platform.contains("NVIDIA") })
        .collect();
    let smi = crate::doctor::nvidia_pci_addresses();
    let mut out = Vec::new();
    for (gpu, found) in map_gpus(&wanted, &smi, &cl) {
        let (i, how) = match found {
            GpuMatch::Pci(i, addr) => (i, format!("PCI {addr}")),
            GpuMatch::Order(i) => (i, "by order, no PCI addresses to compare".to_owned()),
            GpuMatch::None(why) => {
                tracing::warn!(
                    gpu,
                    "--mine: no OpenCL GPU device matches GPU {gpu} ({why}); it is not mined"
                );
                continue;
            }
        };
        let device = candidates[i];
        match OpenClMiner::new(device) {
            Ok(miner) => {
                tracing::info!(
                    gpu,
                    device = %device.info.name,
                    platform = %device.info.platform,
                    tuning = %miner.tuning(),
                    "--mine: GPU {gpu} mines on OpenCL device {} ({how}), paused while a job runs on it",
                    device.info.id
                );
                out.push((gpu, Arc::new(miner) as Arc<dyn Miner>));
            }
            Err(e) => tracing::warn!(
                gpu,
                "--mine: OpenCL device {} ({}) of GPU {gpu} is unusable, it is not mined: {e}",
                device.info.id,
                device.info.name
            ),
        }
    }
    if out.is_empty() {
        tracing::warn!(gpus = ?wanted, "--mine: no GPU can be mined; mining on the CPU");
    }
    out
}
