//! `lilypad-rp spec`: what this machine can offer.

use std::path::Path;

use anyhow::Context;
use lilypad_sdk::core::spec::MachineSpec;
use sysinfo::{Disks, System};

const MIB: u64 = 1024 * 1024;

/// Detects CPU (all logical cores), total RAM and the free space of the
/// filesystem holding `data_dir`.
pub(crate) fn detect(data_dir: &Path) -> anyhow::Result<MachineSpec> {
    let dir = data_dir
        .canonicalize()
        .with_context(|| format!("data dir {}: cannot resolve it", data_dir.display()))?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu_millicores = u32::try_from(cores.saturating_mul(1000)).unwrap_or(u32::MAX);
    let mut sys = System::new().context("cannot read system information")?;
    sys.refresh_memory();
    let ram_mib = sys.total_memory() / MIB;
    let disks = Disks::new_with_refreshed_list().context("cannot list mounted filesystems")?;
    // The disk whose mount point is the longest prefix of the data dir holds it.
    let disk_mib = disks
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space() / MIB)
        .with_context(|| format!("no mounted filesystem holds {}", dir.display()))?;
    Ok(MachineSpec { cpu_millicores, ram_mib, disk_mib, gpus: Vec::new() })
}

pub(crate) fn run(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let mut spec = detect(data_dir)?;
    let gpus = crate::doctor::nvidia_gpus();
    if let Some(Ok(g)) = &gpus {
        spec.gpus.clone_from(g);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&spec)?);
    } else {
        println!("cpu:   {} millicores", spec.cpu_millicores);
        println!("ram:   {} MiB", spec.ram_mib);
        println!("disk:  {} MiB free under {}", spec.disk_mib, data_dir.display());
        match gpus {
            None => println!("gpus:  none (nvidia-smi not found)"),
            Some(Err(e)) => println!("gpus:  unknown: {e}"),
            Some(Ok(_)) if spec.gpus.is_empty() => println!("gpus:  none"),
            Some(Ok(_)) => {
                for g in &spec.gpus {
                    println!("gpu:   {} {} ({} MiB)", g.vendor, g.model, g.vram_mib);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_this_machine() {
        let spec = detect(Path::new(".")).unwrap();
        assert!(spec.cpu_millicores >= 1000);
        assert!(spec.ram_mib > 0);
        // Compare with /proc/meminfo read independently.
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert_eq!(spec.ram_mib, kib / 1024);
    }

    #[test]
    fn missing_data_dir_is_a_clear_error() {
        let e = detect(Path::new("/definitely/not/here")).unwrap_err().to_string();
        assert!(e.contains("/definitely/not/here"), "{e}");
    }
}
