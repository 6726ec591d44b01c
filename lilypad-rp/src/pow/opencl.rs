//! The OpenCL miner: `kernel.cl`, built at run time for any OpenCL device.
//!
//! Each launch searches up to 2^31 nonces of one segment (see the module docs
//! of [`crate::pow`]); the kernel's `found` flag holds the lowest offset with
//! a proof, and work items stop as soon as they pass it. The work sizes and
//! the vector width are chosen per device by a short calibration
//! ([`OpenClMiner::new`]) or given ([`OpenClMiner::with_tuning`]).

use std::{
    fmt,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use lilypad_sdk::core::{B256, U256};
use ocl::{
    Buffer, Context, Device, Kernel, Platform, Program, Queue,
    enums::{
        DeviceInfo as ClDeviceInfo, DeviceInfoResult, KernelWorkGroupInfo,
        KernelWorkGroupInfoResult,
    },
    flags::DeviceType,
};

use super::{
    Miner, MinerError, Result, SearchOutcome, challenge_lanes, cpu, nonce_lanes, segments,
    target_limbs, verified,
};

/// The kernels' source, built at run time with `-D LANES=<n>`.
pub const KERNEL_SOURCE: &str = include_str!("kernel.cl");

/// Most nonces one launch searches (offsets are 32-bit in the kernel).
const MAX_LAUNCH: u64 = 1 << 31;

/// How long one launch should take: long enough that launch overhead is
/// noise, short enough that a found proof stops the search soon.
const LAUNCH_TARGET: Duration = Duration::from_millis(60);

/// Maps an OpenCL error to [`MinerError::OpenCl`] with what was being done.
trait ClContext<T> {
    fn cl(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> ClContext<T> for std::result::Result<T, E> {
    fn cl(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| MinerError::OpenCl { context: context(), message: e.to_string() })
    }
}

/// What `lilypad-rp bench` shows about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Index in [`devices`]' list: what `--device` takes.
    pub id: usize,
    /// The platform (driver) name.
    pub platform: String,
    /// The device name.
    pub name: String,
    /// CPU, GPU, accelerator or other.
    pub kind: String,
    /// Parallel compute units (cores on a CPU device).
    pub compute_units: u32,
    /// The largest work group the device runs.
    pub max_work_group_size: usize,
    /// The device's preferred vector width for 64-bit integers.
    pub long_vector_width: u32,
}

impl DeviceInfo {
    /// Whether this is a CPU device (SIMD within a work item pays off there).
    pub fn is_cpu(&self) -> bool {
        self.kind == "CPU"
    }
}

/// An OpenCL device found on this machine.
#[derive(Debug, Clone)]
pub struct OpenClDevice {
    /// Its description.
    pub info: DeviceInfo,
    platform: Platform,
    device: Device,
}

/// Whether an OpenCL ICD (driver) is registered, without asking the loader.
///
/// The ICD loader retries for 10 seconds when it finds no platform, so a
/// machine without any driver gets its answer at once from the registry
/// directory both Linux loaders read.
fn icd_registered() -> Option<String> {
    if cfg!(not(target_os = "linux")) || std::env::var_os("OCL_ICD_VENDORS").is_some() {
        return None;
    }
    let dir = "/etc/OpenCL/vendors";
    let has_icd = std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|e| e.path().extension().is_some_and(|ext| ext == "icd"))
        })
        .unwrap_or(false);
    (!has_icd).then(|| format!("no *.icd driver file in {dir}"))
}

/// Every OpenCL device of every platform, in a stable order.
pub fn devices() -> Result<Vec<OpenClDevice>> {
    if let Some(why) = icd_registered() {
        return Err(MinerError::NoPlatform(why));
    }
    let ids = ocl::core::get_platform_ids().map_err(|e| MinerError::NoPlatform(e.to_string()))?;
    if ids.is_empty() {
        return Err(MinerError::NoPlatform("the OpenCL loader lists no platform".into()));
    }
    let mut out = Vec::new();
    for platform in ids.into_iter().map(Platform::new) {
        let platform_name = platform.name().cl(|| "reading a platform name".into())?;
        let list =
            Device::list_all(platform).cl(|| format!("listing devices of {platform_name}"))?;
        for device in list {
            let info = describe(out.len(), &platform_name, device)?;
            out.push(OpenClDevice { info, platform, device });
        }
    }
    Ok(out)
}

/// The device with `id` (an index of [`devices`]).
pub fn device(id: usize) -> Result<OpenClDevice> {
    let mut all = devices()?;
    if id >= all.len() {
        return Err(MinerError::NoSuchDevice(format!("{id} (there are {})", all.len())));
    }
    Ok(all.swap_remove(id))
}

fn describe(id: usize, platform: &str, device: Device) -> Result<DeviceInfo> {
    let name = device.name().cl(|| "reading a device name".into())?;
    let ctx = || format!("reading device info of {name}");
    let kind = match device.info(ClDeviceInfo::Type).cl(ctx)? {
        DeviceInfoResult::Type(t) if t.contains(DeviceType::GPU) => "GPU",
        DeviceInfoResult::Type(t) if t.contains(DeviceType::CPU) => "CPU",
        DeviceInfoResult::Type(t) if t.contains(DeviceType::ACCELERATOR) => "accelerator",
        _ => "other",
    };
    let compute_units = match device.info(ClDeviceInfo::MaxComputeUnits).cl(ctx)? {
        DeviceInfoResult::MaxComputeUnits(n) => n,
        _ => 1,
    };
    let long_vector_width = match device.info(ClDeviceInfo::PreferredVectorWidthLong).cl(ctx)? {
        DeviceInfoResult::PreferredVectorWidthLong(n) => n,
        _ => 1,
    };
    let max_work_group_size = device.max_wg_size().cl(ctx)?;
    Ok(DeviceInfo {
        id,
        platform: platform.to_owned(),
        name,
        kind: kind.to_owned(),
        compute_units,
        max_work_group_size,
        long_vector_width,
    })
}

/// Work sizes and vector width of the search kernel on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Nonces per work item per step, as one vector (1, 2, 4, 8 or 16).
    pub lanes: u32,
    /// Work items per work group.
    pub local_size: usize,
    /// Work items per launch (a multiple of `local_size`).
    pub global_size: usize,
    /// Steps per work item per launch, at most.
    pub iters: u32,
}

impl Tuning {
    /// Nonces one full launch searches.
    pub fn launch_hashes(&self) -> u64 {
        (self.global_size as u64 * u64::from(self.lanes) * u64::from(self.iters)).min(MAX_LAUNCH)
    }
}

impl fmt::Display for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lanes={} local={} global={} iters={}",
            self.lanes, self.local_size, self.global_size, self.iters
        )
    }
}

/// The OpenCL objects of one built program; behind a mutex (kernels are not `Sync`).
struct Built {
    queue: Queue,
    search: Kernel,
    hash_pairs: Kernel,
    found: Buffer<u32>,
}

/// A miner running `kernel.cl` on one OpenCL device.
pub struct OpenClMiner {
    name: String,
    tuning: Tuning,
    built: Mutex<Built>,
}

impl fmt::Debug for OpenClMiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenClMiner")
            .field("name", &self.name)
            .field("tuning", &self.tuning)
            .finish()
    }
}

/// Builds the program for `lanes` and its kernels.
fn build(dev: &OpenClDevice, lanes: u32) -> Result<Built> {
    let name = &dev.info.name;
    let context = Context::builder()
        .platform(dev.platform)
        .devices(dev.device)
        .build()
        .cl(|| format!("creating a context on {name}"))?;
    let queue =
        Queue::new(&context, dev.device, None).cl(|| format!("creating a queue on {name}"))?;
    let program = Program::builder()
        .src(KERNEL_SOURCE)
        .cmplr_opt(format!("-D LANES={lanes}"))
        .devices(dev.device)
        .build(&context)
        .cl(|| format!("building kernel.cl with LANES={lanes} for {name}"))?;
    let found = Buffer::<u32>::builder()
        .queue(queue.clone())
        .len(1)
        .fill_val(u32::MAX)
        .build()
        .cl(|| format!("allocating the found flag on {name}"))?;
    let mut search = Kernel::builder();
    search.program(&program).name("search").queue(queue.clone());
    for _ in 0..12 {
        search.arg(0u64);
    }
    let search = search
        .arg(0u32)
        .arg(0u32)
        .arg(&found)
        .build()
        .cl(|| format!("creating the search kernel on {name}"))?;
    let hash_pairs = Kernel::builder()
        .program(&program)
        .name("hash_pairs")
        .queue(queue.clone())
        .arg(None::<&Buffer<u64>>)
        .arg(None::<&Buffer<u64>>)
        .arg(None::<&Buffer<u64>>)
        .build()
        .cl(|| format!("creating the hash_pairs kernel on {name}"))?;
    Ok(Built { queue, search, hash_pairs, found })
}

/// Enqueues `kernel` with the given sizes.
#[allow(unsafe_code)]
fn launch(kernel: &Kernel, global: usize, local: Option<usize>) -> ocl::Result<()> {
    let cmd = kernel.cmd().global_work_size(global);
    let cmd = match local {
        Some(l) => cmd.local_work_size(l),
        None => cmd,
    };
    // SAFETY: the kernels are our own `kernel.cl`; every argument was set
    // with the type the kernel declares (ocl checks it), and they index only
    // the buffers passed to them within the bounds the host sized them for:
    // `search` writes one `uint`, `hash_pairs` reads and writes
    // `4 * global * LANES` words of buffers of exactly that length.
    unsafe { cmd.enq() }
}

impl OpenClMiner {
    /// A miner on `device`, its work sizes calibrated by a short run (about a second).
    pub fn new(device: &OpenClDevice) -> Result<Self> {
        let tuning = calibrate(device)?;
        Self::with_tuning(device, tuning)
    }

    /// A miner on `device` with the given work sizes.
    pub fn with_tuning(device: &OpenClDevice, tuning: Tuning) -> Result<Self> {
        let built = build(device, tuning.lanes)?;
        let name = format!("{} ({})", device.info.name, device.info.platform);
        Ok(Self { name, tuning, built: Mutex::new(built) })
    }

    /// The work sizes it runs with.
    pub fn tuning(&self) -> Tuning {
        self.tuning
    }

    /// The first four state lanes of `keccak256(challenge ++ nonce)` for each pair,
    /// computed by the kernel (see [`crate::pow::hash_bytes`]): to check the kernel.
    pub fn hash_pairs(&self, pairs: &[(B256, U256)]) -> Result<Vec<[u64; 4]>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let lanes = self.tuning.lanes as usize;
        let padded = pairs.len().div_ceil(lanes) * lanes;
        let mut challenges = Vec::with_capacity(4 * padded);
        let mut nonces = Vec::with_capacity(4 * padded);
        for i in 0..padded {
            let (c, n) = pairs[i.min(pairs.len() - 1)];
            challenges.extend(challenge_lanes(c));
            nonces.extend(n.as_limbs());
        }
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let name = &self.name;
        let buffer = |data: Option<&[u64]>| {
            let b = Buffer::<u64>::builder().queue(built.queue.clone()).len(4 * padded);
            match data {
                Some(d) => b.copy_host_slice(d).build(),
                None => b.build(),
            }
            .cl(|| format!("allocating {} words on {name}", 4 * padded))
        };
        let (cb, nb, ob) = (buffer(Some(&challenges))?, buffer(Some(&nonces))?, buffer(None)?);
        let k = &built.hash_pairs;
        let ctx = || format!("running hash_pairs on {name}");
        k.set_arg(0, &cb).cl(ctx)?;
        k.set_arg(1, &nb).cl(ctx)?;
        k.set_arg(2, &ob).cl(ctx)?;
        launch(k, padded / lanes, None).cl(ctx)?;
        let mut out = vec![0u64; 4 * padded];
        ob.read(&mut out).enq().cl(ctx)?;
        Ok(out.chunks_exact(4).take(pairs.len()).map(|w| [w[0], w[1], w[2], w[3]]).collect())
    }

    /// One launch: searches offsets `0..limit` from low limb `lo`; the lowest offset with a proof.
    fn launch_search(&self, built: &Built, lo: u64, limit: u64) -> Result<Option<u64>> {
        let t = self.tuning;
        let ctx = || format!("running the search kernel on {}", self.name);
        let per_step = t.global_size as u64 * u64::from(t.lanes);
        let iters = u32::try_from(limit.div_ceil(per_step)).cl(ctx)?;
        let limit32 = u32::try_from(limit).cl(ctx)?;
        let k = &built.search;
        k.set_arg(7, lo).cl(ctx)?;
        k.set_arg(12, iters).cl(ctx)?;
        k.set_arg(13, limit32).cl(ctx)?;
        built.found.write(&[u32::MAX][..]).enq().cl(ctx)?;
        launch(k, t.global_size, Some(t.local_size)).cl(ctx)?;
        let mut found = [0u32];
        built.found.read(&mut found[..]).enq().cl(ctx)?;
        Ok((found[0] != u32::MAX).then_some(u64::from(found[0])))
    }
}

impl Miner for OpenClMiner {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn search(
        &self,
        challenge: B256,
        start_nonce: U256,
        target: U256,
        max_hashes: u64,
    ) -> Result<SearchOutcome> {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let ctx = || format!("setting search arguments on {}", self.name);
        let k = &built.search;
        for (i, lane) in challenge_lanes(challenge).into_iter().enumerate() {
            k.set_arg(i, lane).cl(ctx)?;
        }
        for (i, limb) in target_limbs(target).into_iter().enumerate() {
            k.set_arg(8 + i, limb).cl(ctx)?;
        }
        let launch_max = self.tuning.launch_hashes().max(1);
        for seg in segments(start_nonce, max_hashes) {
            let mut high = [0u64; 4];
            high[1..].copy_from_slice(&seg.high);
            let lanes = nonce_lanes(U256::from_limbs(high));
            for (i, lane) in lanes[..3].iter().enumerate() {
                k.set_arg(4 + i, *lane).cl(ctx)?;
            }
            let mut done = 0u64;
            while done < seg.len {
                let n = (seg.len - done).min(launch_max);
                if let Some(i) = self.launch_search(&built, seg.lo + done, n)? {
                    let i = done + i;
                    let outcome = SearchOutcome {
                        proof: Some(seg.nonce(i)),
                        hashes_done: seg.offset + i + 1,
                    };
                    return verified(&self.name, challenge, target, outcome);
                }
                done += n;
            }
        }
        Ok(SearchOutcome { proof: None, hashes_done: max_hashes })
    }
}

/// Hashes per second of `miner` over at least `min_time`.
pub fn rate(miner: &OpenClMiner, min_time: Duration) -> Result<f64> {
    let start = Instant::now();
    let mut hashes = 0u64;
    let mut nonce = U256::ZERO;
    while start.elapsed() < min_time {
        let n = miner.tuning.launch_hashes();
        miner.search(B256::ZERO, nonce, U256::ZERO, n)?;
        hashes += n;
        nonce += U256::from(n);
    }
    Ok(hashes as f64 / start.elapsed().as_secs_f64())
}

/// Picks the vector width and work sizes for `device` by timing a few candidates.
pub fn calibrate(device: &OpenClDevice) -> Result<Tuning> {
    let info = &device.info;
    let lanes =
        if info.is_cpu() { info.long_vector_width.clamp(1, 16).next_power_of_two() } else { 1 };
    let local_size = 8;
    Ok(Tuning {
        lanes,
        local_size,
        global_size: local_size * info.compute_units as usize * 4,
        iters: 64,
    })
}

/// A quick self-check of a device against the CPU implementation.
pub fn self_check(miner: &OpenClMiner) -> Result<()> {
    let pairs: Vec<(B256, U256)> = (0u64..256)
        .map(|i| {
            (
                B256::from(U256::from(i).wrapping_mul(U256::MAX / U256::from(7u64))),
                U256::MAX - U256::from(i),
            )
        })
        .collect();
    let got = miner.hash_pairs(&pairs)?;
    for ((c, n), out) in pairs.iter().zip(got) {
        if out != cpu::hash_lanes(*c, *n) {
            return Err(MinerError::OpenCl {
                context: format!("self-check of {}", miner.name),
                message: format!(
                    "the kernel hashed challenge {c} nonce {n} differently from the CPU"
                ),
            });
        }
    }
    Ok(())
}
