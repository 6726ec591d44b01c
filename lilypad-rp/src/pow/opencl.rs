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

use crate::gpus::PciAddress;

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
    /// Its PCI address, where the driver tells (NVIDIA's `cl_nv_device_attribute_query`
    /// or `cl_khr_pci_bus_info`): how `lilypad-rp run --mine` finds which GPU it is.
    pub pci: Option<PciAddress>,
}

impl DeviceInfo {
    /// Whether this is a CPU device (SIMD within a work item pays off there).
    pub fn is_cpu(&self) -> bool {
        self.kind == "CPU"
    }

    /// Whether this is a GPU device.
    pub fn is_gpu(&self) -> bool {
        self.kind == "GPU"
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

/// Why no OpenCL driver can be registered, found without asking the loader.
///
/// The ICD loader retries for 10 seconds when it finds no platform, so a
/// machine without any driver gets its answer at once from the registry
/// directory the Linux loaders read (`OCL_ICD_VENDORS` when it names a
/// directory, else `/etc/OpenCL/vendors`).
fn missing_icd() -> Option<String> {
    if cfg!(not(target_os = "linux")) {
        return None;
    }
    let dir = match std::env::var_os("OCL_ICD_VENDORS") {
        Some(v) if std::path::Path::new(&v).is_dir() => std::path::PathBuf::from(v),
        // A single driver file or library: leave it to the loader.
        Some(_) => return None,
        None => std::path::PathBuf::from("/etc/OpenCL/vendors"),
    };
    let has_icd = std::fs::read_dir(&dir)
        .map(|entries| {
            entries.flatten().any(|e| e.path().extension().is_some_and(|ext| ext == "icd"))
        })
        .unwrap_or(false);
    (!has_icd).then(|| format!("no *.icd driver file in {}", dir.display()))
}

/// Serializes device discovery: pocl initializes its devices on the first
/// query, and concurrent first queries from several threads raced there
/// (a thread saw no device, or the process crashed).
static DISCOVERY: Mutex<()> = Mutex::new(());

/// Every OpenCL device of every platform, in a stable order; an error when there is none.
pub fn devices() -> Result<Vec<OpenClDevice>> {
    if let Some(why) = missing_icd() {
        return Err(MinerError::NoPlatform(why));
    }
    let _one_at_a_time = DISCOVERY.lock().unwrap_or_else(PoisonError::into_inner);
    let ids = ocl::core::get_platform_ids().map_err(|e| MinerError::NoPlatform(e.to_string()))?;
    if ids.is_empty() {
        return Err(MinerError::NoPlatform("the OpenCL loader lists no platform".into()));
    }
    let mut out = Vec::new();
    let mut names = Vec::new();
    for platform in ids.into_iter().map(Platform::new) {
        let platform_name = platform.name().cl(|| "reading a platform name".into())?;
        // A platform without devices answers with an error (CL_DEVICE_NOT_FOUND).
        let list = Device::list_all(platform).unwrap_or_default();
        for device in list {
            let info = describe(out.len(), &platform_name, device)?;
            out.push(OpenClDevice { info, platform, device });
        }
        names.push(platform_name);
    }
    if out.is_empty() {
        return Err(MinerError::NoDevice(names.join(", ")));
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
    let pci = pci_address(device);
    Ok(DeviceInfo {
        id,
        platform: platform.to_owned(),
        name,
        kind: kind.to_owned(),
        compute_units,
        max_work_group_size,
        long_vector_width,
        pci,
    })
}

/// `cl_khr_pci_bus_info`'s query: four `cl_uint`s, domain, bus, device, function.
const CL_DEVICE_PCI_BUS_INFO_KHR: u32 = 0x410F;
/// `cl_nv_device_attribute_query`: the bus number (`cl_uint`).
const CL_DEVICE_PCI_BUS_ID_NV: u32 = 0x4008;
/// `cl_nv_device_attribute_query`: `device << 3 | function` (`cl_uint`).
const CL_DEVICE_PCI_SLOT_ID_NV: u32 = 0x4009;
/// `cl_nv_device_attribute_query` of recent drivers: the PCI domain (`cl_uint`).
const CL_DEVICE_PCI_DOMAIN_ID_NV: u32 = 0x400A;

/// The device's PCI address, if its driver answers one of the queries for it (a
/// driver answers a query it does not know with an error, which is `None` here).
fn pci_address(device: Device) -> Option<PciAddress> {
    let words = |request: u32| -> Option<Vec<u32>> {
        let raw = ocl::core::get_device_info_raw(device.as_core(), request).ok()?;
        (!raw.is_empty() && raw.len() % 4 == 0).then(|| {
            raw.chunks_exact(4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect()
        })
    };
    let byte = |v: u32| u8::try_from(v).ok();
    if let Some(w) = words(CL_DEVICE_PCI_BUS_INFO_KHR).filter(|w| w.len() == 4) {
        return Some(PciAddress {
            domain: Some(w[0]),
            bus: byte(w[1])?,
            device: byte(w[2]).filter(|d| *d < 32)?,
            function: byte(w[3]).filter(|f| *f < 8)?,
        });
    }
    let bus = *words(CL_DEVICE_PCI_BUS_ID_NV)?.first()?;
    let slot = *words(CL_DEVICE_PCI_SLOT_ID_NV)?.first()?;
    Some(PciAddress {
        domain: words(CL_DEVICE_PCI_DOMAIN_ID_NV).and_then(|w| w.first().copied()),
        bus: byte(bus)?,
        device: byte((slot >> 3) & 0x1f)?,
        function: byte(slot & 7)?,
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
    /// The largest work group the search kernel runs on this device.
    max_local: usize,
    /// The kernel's preferred work-group size multiple (a GPU's SIMD width).
    local_multiple: usize,
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
    let wg =
        |kind| search.wg_info(dev.device, kind).cl(|| format!("querying work sizes on {name}"));
    let max_local = match wg(KernelWorkGroupInfo::WorkGroupSize)? {
        KernelWorkGroupInfoResult::WorkGroupSize(n) if n > 0 => n,
        _ => dev.info.max_work_group_size.max(1),
    };
    let local_multiple = match wg(KernelWorkGroupInfo::PreferredWorkGroupSizeMultiple)? {
        KernelWorkGroupInfoResult::PreferredWorkGroupSizeMultiple(n) if n > 0 => n.min(max_local),
        _ => 1,
    };
    Ok(Built { queue, search, hash_pairs, found, max_local, local_multiple })
}

/// Enqueues `kernel` with the given sizes.
#[allow(unsafe_code)]
fn launch(kernel: &Kernel, global: usize, local: usize) -> ocl::Result<()> {
    let cmd = kernel.cmd().global_work_size(global).local_work_size(local);
    // SAFETY: the kernels are our own `kernel.cl`; every argument was set
    // with the type the kernel declares (ocl checks it), and they index only
    // the buffers passed to them within the bounds the host sized them for:
    // `search` writes one `uint`, `hash_pairs` reads and writes
    // `4 * global * LANES` words of buffers of exactly that length.
    unsafe { cmd.enq() }
}

impl OpenClMiner {
    /// A miner on `device`, its vector width and work sizes calibrated by
    /// timing a few candidates (about a second), its hashes checked against
    /// the CPU implementation.
    pub fn new(device: &OpenClDevice) -> Result<Self> {
        let miner = calibrate(device)?;
        self_check(&miner)?;
        Ok(miner)
    }

    /// A miner on `device` with the given work sizes, its hashes checked
    /// against the CPU implementation.
    pub fn with_tuning(device: &OpenClDevice, tuning: Tuning) -> Result<Self> {
        let miner = Self::unchecked(device, tuning)?;
        self_check(&miner)?;
        Ok(miner)
    }

    fn unchecked(device: &OpenClDevice, tuning: Tuning) -> Result<Self> {
        let offsets_fit =
            (tuning.global_size as u64).saturating_mul(u64::from(tuning.lanes)) <= MAX_LAUNCH;
        if !matches!(tuning.lanes, 1 | 2 | 4 | 8 | 16)
            || tuning.local_size == 0
            || tuning.iters == 0
            || !offsets_fit
        {
            return Err(MinerError::BadTuning {
                tuning: tuning.to_string(),
                why: "lanes must be 1, 2, 4, 8 or 16, local size and iters at least 1, \
                      and global size * lanes at most 2^31 (32-bit offsets)",
            });
        }
        let mut tuning = tuning;
        tuning.global_size =
            tuning.global_size.div_ceil(tuning.local_size).max(1) * tuning.local_size;
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
        // Whole work groups of the tuned size: left to choose, pocl picks
        // groups of 4096 whose private arrays overflow its threads' stacks.
        let lanes = self.tuning.lanes as usize;
        let local = self.tuning.local_size;
        let padded = pairs.len().div_ceil(lanes * local) * lanes * local;
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
        launch(k, padded / lanes, local).cl(ctx)?;
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
        launch(k, t.global_size, t.local_size).cl(ctx)?;
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

/// Hashes per second of `miner` over at least `min_time` (a full-range search, target 0).
fn rate(miner: &dyn Miner, launch: u64, min_time: Duration) -> Result<f64> {
    let start = Instant::now();
    let mut hashes = 0u64;
    let mut nonce = U256::ZERO;
    while hashes == 0 || start.elapsed() < min_time {
        miner.search(B256::ZERO, nonce, U256::ZERO, launch)?;
        hashes += launch;
        nonce += U256::from(launch);
    }
    Ok(hashes as f64 / start.elapsed().as_secs_f64())
}

/// Candidate work sizes for `lanes` on a device: `(local, work groups per compute unit)`.
fn size_candidates(info: &DeviceInfo, built: &Built) -> Vec<(usize, usize)> {
    let m = built.local_multiple;
    let cap = built.max_local;
    let mut out = Vec::new();
    if info.is_cpu() {
        // CPU devices run a work group per core: one vector work item per
        // group, or the driver's preferred multiple for drivers that
        // vectorize across work items.
        for local in [1, m] {
            for groups in [1, 4] {
                out.push((local.min(cap), groups));
            }
        }
    } else {
        // GPUs need many work items in flight per compute unit.
        for local in [m * 2, m * 4, m * 8] {
            for groups in [8, 32] {
                out.push((local.clamp(1, cap), groups));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Builds the kernel for a few vector widths and work sizes, times each and keeps the fastest.
fn calibrate(device: &OpenClDevice) -> Result<OpenClMiner> {
    let info = &device.info;
    let w = info.long_vector_width.clamp(1, 16).next_power_of_two();
    let lane_candidates: Vec<u32> = if info.is_cpu() {
        // The SIMD width in 64-bit lanes and half of it (some CPUs split wide vectors).
        if w > 1 { vec![w / 2, w] } else { vec![1, 2] }
    } else {
        vec![1]
    };
    let cu = info.compute_units.max(1) as usize;
    let mut best: Option<(f64, OpenClMiner)> = None;
    for lanes in lane_candidates {
        let start = Tuning { lanes, local_size: 1, global_size: cu, iters: 1 };
        let mut miner = OpenClMiner::unchecked(device, start)?;
        let candidates = {
            let built = miner.built.lock().unwrap_or_else(PoisonError::into_inner);
            size_candidates(info, &built)
        };
        let mut lanes_best: Option<(f64, Tuning)> = None;
        for (local, groups) in candidates {
            let global = local * groups * cu;
            // Size a launch from a first short one, then time one of about 100 ms.
            miner.tuning = Tuning { lanes, local_size: local, global_size: global, iters: 16 };
            let quick = rate(&miner, miner.tuning.launch_hashes(), Duration::ZERO)?;
            miner.tuning.iters = iters_for(quick, Duration::from_millis(100), global, lanes);
            let r = rate(&miner, miner.tuning.launch_hashes(), Duration::ZERO)?;
            if lanes_best.is_none_or(|(b, _)| r > b) {
                lanes_best = Some((r, miner.tuning));
            }
        }
        let Some((r, tuning)) = lanes_best else { continue };
        if best.as_ref().is_none_or(|(b, _)| r > *b) {
            miner.tuning = tuning;
            best = Some((r, miner));
        }
    }
    let (r, mut miner) = best.ok_or_else(|| MinerError::OpenCl {
        context: format!("calibrating {}", info.name),
        message: "no work size to try".into(),
    })?;
    miner.tuning.iters = iters_for(r, LAUNCH_TARGET, miner.tuning.global_size, miner.tuning.lanes);
    Ok(miner)
}

/// Steps per work item for launches of about `time` at `rate` hashes per second.
fn iters_for(rate: f64, time: Duration, global: usize, lanes: u32) -> u32 {
    let per_step = (global as f64 * f64::from(lanes)).max(1.0);
    let max_iters = (MAX_LAUNCH as f64 / per_step).floor().max(1.0);
    // Truncating a positive, clamped float is intended.
    (rate * time.as_secs_f64() / per_step).clamp(1.0, max_iters) as u32
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
