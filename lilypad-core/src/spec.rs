//! Machine specs offered by providers and the requirements jobs ask for.
//!
//! Units: CPU in millicores, RAM, VRAM and disk in MiB.

use serde::{Deserialize, Serialize};

/// One GPU of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gpu {
    /// Vendor as reported by the driver, e.g. `NVIDIA`.
    pub vendor: String,
    /// Model name, e.g. `RTX 4090`.
    pub model: String,
    /// Video memory in MiB.
    pub vram_mib: u64,
}

/// What a resource provider offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct MachineSpec {
    /// CPU in millicores (1000 = one core).
    pub cpu_millicores: u32,
    /// RAM in MiB.
    pub ram_mib: u64,
    /// Disk in MiB.
    pub disk_mib: u64,
    /// GPUs, possibly none.
    #[serde(default)]
    pub gpus: Vec<Gpu>,
}

/// What a job needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct JobRequirements {
    /// CPU in millicores.
    pub cpu_millicores: u32,
    /// RAM in MiB.
    pub ram_mib: u64,
    /// Disk in MiB.
    #[serde(default)]
    pub disk_mib: u64,
    /// Number of GPUs.
    #[serde(default)]
    pub gpu_count: u32,
    /// Minimum VRAM of each of those GPUs, in MiB.
    #[serde(default)]
    pub gpu_vram_mib: u64,
}

/// Why a machine does not fit a job; the first failing dimension, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpecMismatch {
    /// Not enough CPU.
    #[error("needs {need} millicores of CPU, offer has {have}")]
    Cpu {
        /// Asked for.
        need: u32,
        /// Offered.
        have: u32,
    },
    /// Not enough RAM.
    #[error("needs {need} MiB of RAM, offer has {have}")]
    Ram {
        /// Asked for.
        need: u64,
        /// Offered.
        have: u64,
    },
    /// Not enough disk.
    #[error("needs {need} MiB of disk, offer has {have}")]
    Disk {
        /// Asked for.
        need: u64,
        /// Offered.
        have: u64,
    },
    /// Not enough GPUs with enough VRAM.
    #[error("needs {need} GPU(s) with at least {vram_mib} MiB VRAM, offer has {have}")]
    Gpus {
        /// GPUs asked for.
        need: u32,
        /// Minimum VRAM per GPU.
        vram_mib: u64,
        /// GPUs of the offer with that much VRAM.
        have: u32,
    },
}

impl MachineSpec {
    /// Number of GPUs with at least `vram_mib` of VRAM.
    pub fn gpus_with_vram(&self, vram_mib: u64) -> u32 {
        let n = self.gpus.iter().filter(|g| g.vram_mib >= vram_mib).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Checks that this machine can run a job with `req`.
    pub fn fits(&self, req: &JobRequirements) -> Result<(), SpecMismatch> {
        if self.cpu_millicores < req.cpu_millicores {
            return Err(SpecMismatch::Cpu { need: req.cpu_millicores, have: self.cpu_millicores });
        }
        if self.ram_mib < req.ram_mib {
            return Err(SpecMismatch::Ram { need: req.ram_mib, have: self.ram_mib });
        }
        if self.disk_mib < req.disk_mib {
            return Err(SpecMismatch::Disk { need: req.disk_mib, have: self.disk_mib });
        }
        if req.gpu_count > 0 {
            let have = self.gpus_with_vram(req.gpu_vram_mib);
            if have < req.gpu_count {
                return Err(SpecMismatch::Gpus {
                    need: req.gpu_count,
                    vram_mib: req.gpu_vram_mib,
                    have,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(vram_mib: u64) -> Gpu {
        Gpu { vendor: "NVIDIA".into(), model: "T".into(), vram_mib }
    }

    #[test]
    fn fit_checks_every_dimension_in_order() {
        let m = MachineSpec {
            cpu_millicores: 4000,
            ram_mib: 8192,
            disk_mib: 100,
            gpus: vec![gpu(8192), gpu(24576)],
        };
        let ok = JobRequirements {
            cpu_millicores: 4000,
            ram_mib: 8192,
            disk_mib: 100,
            gpu_count: 1,
            gpu_vram_mib: 24576,
        };
        assert_eq!(m.fits(&ok), Ok(()));
        assert!(matches!(
            m.fits(&JobRequirements { cpu_millicores: 4001, ..ok }),
            Err(SpecMismatch::Cpu { .. })
        ));
        assert!(matches!(
            m.fits(&JobRequirements { ram_mib: 8193, ..ok }),
            Err(SpecMismatch::Ram { .. })
        ));
        assert!(matches!(
            m.fits(&JobRequirements { disk_mib: 101, ..ok }),
            Err(SpecMismatch::Disk { .. })
        ));
        assert_eq!(
            m.fits(&JobRequirements { gpu_count: 2, ..ok }),
            Err(SpecMismatch::Gpus { need: 2, vram_mib: 24576, have: 1 })
        );
        assert_eq!(m.fits(&JobRequirements { gpu_count: 2, gpu_vram_mib: 8192, ..ok }), Ok(()));
    }
}
