//! Which OpenCL device is which GPU: the GPUs `nvidia-smi` numbers (the indexes
//! of the provider's slots, Docker's device ids) matched with OpenCL devices, so
//! that `lilypad-rp run --mine` mines on a GPU with the miner the engine pauses
//! while a job runs on that GPU.
//!
//! The match is by PCI address when both sides give one (`nvidia-smi
//! --query-gpu=index,pci.bus_id`; NVIDIA's OpenCL driver through
//! `cl_nv_device_attribute_query`, other drivers through `cl_khr_pci_bus_info`),
//! else by order: the GPU with `nvidia-smi` index `i` is the `i`-th OpenCL GPU
//! device (of NVIDIA's platform when it has any), which is how both enumerate
//! NVIDIA GPUs unless `CUDA_VISIBLE_DEVICES` reorders them. [`map_gpus`] is the
//! pure part.

use std::{collections::BTreeMap, fmt, str::FromStr};

/// A PCI address: domain, bus, device and function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// The PCI domain (segment); `None` where the driver does not say (NVIDIA's
    /// OpenCL driver gives the bus and slot only).
    pub domain: Option<u32>,
    /// The bus number.
    pub bus: u8,
    /// The device number on the bus (0 to 31).
    pub device: u8,
    /// The function number (0 to 7).
    pub function: u8,
}

impl PciAddress {
    /// Whether both name the same device; the domains are compared only when both are known.
    pub fn same_device(&self, other: &Self) -> bool {
        (self.bus, self.device, self.function) == (other.bus, other.device, other.function)
            && match (self.domain, other.domain) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.domain {
            write!(f, "{d:04x}:")?;
        }
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
    }
}

/// Why a string is not a PCI address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a PCI address (DOMAIN:BUS:DEVICE.FUNCTION in hex, as 00000000:01:00.0)")]
pub struct BadPciAddress(String);

impl FromStr for PciAddress {
    type Err = BadPciAddress;

    /// Parses `nvidia-smi`'s `pci.bus_id` (`00000000:01:00.0`) or `lspci -D`'s
    /// `0000:01:00.0`; the domain may be left out (`01:00.0`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPciAddress(s.to_owned());
        let (rest, function) = s.trim().rsplit_once('.').ok_or_else(bad)?;
        let mut parts: Vec<&str> = rest.split(':').collect();
        let device = parts.pop().ok_or_else(bad)?;
        let bus = parts.pop().ok_or_else(bad)?;
        let domain = match parts.as_slice() {
            [] => None,
            [d] => Some(u32::from_str_radix(d, 16).map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        let hex = |p: &str, max: u8| {
            u8::from_str_radix(p, 16).ok().filter(|v| *v <= max && !p.is_empty()).ok_or_else(bad)
        };
        Ok(Self {
            domain,
            bus: hex(bus, u8::MAX)?,
            device: hex(device, 31)?,
            function: hex(function, 7)?,
        })
    }
}

/// Parses `nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader` (`0, 00000000:01:00.0`
/// lines) into each GPU's PCI address; lines of another shape are skipped.
pub fn parse_nvidia_smi_pci(text: &str) -> BTreeMap<u32, PciAddress> {
    text.lines()
        .filter_map(|l| {
            let (index, bus_id) = l.split_once(',')?;
            Some((index.trim().parse().ok()?, bus_id.trim().parse().ok()?))
        })
        .collect()
}

/// An OpenCL device that may be one of the GPUs, as [`map_gpus`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClGpu {
    /// Its PCI address, if the driver tells.
    pub pci: Option<PciAddress>,
    /// Whether it is on NVIDIA's OpenCL platform.
    pub nvidia: bool,
}

/// How one GPU was matched with an OpenCL device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuMatch {
    /// The OpenCL device at this index has the GPU's PCI address.
    Pci(usize, PciAddress),
    /// No PCI addresses to compare: the OpenCL GPU device at this index, by order.
    Order(usize),
    /// No OpenCL device is this GPU; why.
    None(String),
}

/// Matches each of `gpus` (`nvidia-smi` indexes) with one of the OpenCL devices `cl`
/// (the machine's OpenCL GPU devices, in discovery order), given the GPUs' PCI
/// addresses from `nvidia-smi` (`smi_pci`, possibly empty).
///
/// By PCI address when `smi_pci` has some and at least one device gives one:
/// a GPU whose address no device has is not matched (a device without an address is
/// never guessed at). Otherwise by order: GPU index `i` is the `i`-th of the devices
/// on NVIDIA's platform, or of all devices when none is. No device is given to two GPUs.
pub fn map_gpus(
    gpus: &[u32],
    smi_pci: &BTreeMap<u32, PciAddress>,
    cl: &[ClGpu],
) -> Vec<(u32, GpuMatch)> {
    let nvidia: Vec<usize> = (0..cl.len()).filter(|i| cl[*i].nvidia).collect();
    let candidates: Vec<usize> = if nvidia.is_empty() { (0..cl.len()).collect() } else { nvidia };
    let by_pci = !smi_pci.is_empty() && candidates.iter().any(|i| cl[*i].pci.is_some());
    let mut used = vec![false; cl.len()];
    gpus.iter()
        .map(|&gpu| {
            let found = if by_pci {
                match smi_pci.get(&gpu) {
                    None => GpuMatch::None("nvidia-smi gave no PCI bus id for it".into()),
                    Some(addr) => candidates
                        .iter()
                        .copied()
                        .find(|i| !used[*i] && cl[*i].pci.is_some_and(|p| p.same_device(addr)))
                        .map_or_else(
                            || GpuMatch::None(format!("no OpenCL GPU device at PCI {addr}")),
                            |i| GpuMatch::Pci(i, *addr),
                        ),
                }
            } else {
                match candidates.get(gpu as usize) {
                    Some(&i) if !used[i] => GpuMatch::Order(i),
                    _ => GpuMatch::None(format!(
                        "{} OpenCL GPU device(s), and its index is {gpu}",
                        candidates.len()
                    )),
                }
            };
            if let GpuMatch::Pci(i, _) | GpuMatch::Order(i) = found {
                used[i] = true;
            }
            (gpu, found)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pci(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    #[test]
    fn pci_addresses_parse_as_nvidia_smi_and_lspci_print_them() {
        let a = pci("00000000:01:00.0");
        assert_eq!(a, PciAddress { domain: Some(0), bus: 1, device: 0, function: 0 });
        assert_eq!(a.to_string(), "0000:01:00.0");
        let b = pci("0001:C1:1f.7");
        assert_eq!(b, PciAddress { domain: Some(1), bus: 0xc1, device: 31, function: 7 });
        assert_eq!(pci("41:00.1"), PciAddress { domain: None, bus: 0x41, device: 0, function: 1 });
        assert_eq!(pci("41:00.1").to_string(), "41:00.1");
        for bad in [
            "",
            "NVIDIA RTX 4090",
            "24564",
            "01:00",
            "01:20.0",
            "01:00.8",
            "0:0:01:00.0",
            "x:01:00.0",
            ":00.0",
        ] {
            let e = bad.parse::<PciAddress>().expect_err(bad);
            assert!(e.to_string().contains("not a PCI address"), "{e}");
        }
        // The domain is compared only when both sides know it.
        assert!(pci("0000:01:00.0").same_device(&pci("01:00.0")));
        assert!(!pci("0000:01:00.0").same_device(&pci("0001:01:00.0")));
        assert!(!pci("01:00.0").same_device(&pci("02:00.0")));
    }

    #[test]
    fn nvidia_smi_bus_ids_parse_and_other_output_is_skipped() {
        let m = parse_nvidia_smi_pci("0, 00000000:01:00.0\n1, 00000000:41:00.0\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[&1], pci("0000:41:00.0"));
        // What the tests' fake nvidia-smi prints whatever it is asked.
        assert!(parse_nvidia_smi_pci("NVIDIA RTX 4090, 24564\n").is_empty());
        assert!(parse_nvidia_smi_pci("").is_empty());
    }

    fn dev(pci_id: Option<&str>, nvidia: bool) -> ClGpu {
        ClGpu { pci: pci_id.map(pci), nvidia }
    }

    #[test]
    fn gpus_match_by_pci_address_whatever_the_order() {
        let smi: BTreeMap<u32, PciAddress> = [
            (0, pci("00000000:01:00.0")),
            (1, pci("00000000:41:00.0")),
            (2, pci("00000000:81:00.0")),
        ]
        .into_iter()
        .collect();
        // OpenCL lists them in another order, without the domain (NVIDIA's query).
        let cl = [dev(Some("41:00.0"), true), dev(Some("01:00.0"), true)];
        let m = map_gpus(&[0, 1, 2], &smi, &cl);
        assert_eq!(m[0], (0, GpuMatch::Pci(1, pci("0000:01:00.0"))));
        assert_eq!(m[1], (1, GpuMatch::Pci(0, pci("0000:41:00.0"))));
        assert!(matches!(&m[2], (2, GpuMatch::None(why)) if why.contains("0000:81:00.0")), "{m:?}");
        // Only the slots' GPUs are asked for.
        assert_eq!(map_gpus(&[1], &smi, &cl), vec![(1, GpuMatch::Pci(0, pci("0000:41:00.0")))]);
        // A GPU nvidia-smi gave no address for is not guessed at.
        let m = map_gpus(&[5], &smi, &cl);
        assert!(
            matches!(&m[0], (5, GpuMatch::None(why)) if why.contains("no PCI bus id")),
            "{m:?}"
        );
    }

    #[test]
    fn without_pci_addresses_gpus_match_by_order_on_nvidia_s_platform_first() {
        let none = BTreeMap::new();
        // An integrated GPU on another platform comes first in discovery order.
        let cl = [dev(None, false), dev(None, true), dev(None, true)];
        let m = map_gpus(&[0, 1, 2], &none, &cl);
        assert_eq!(m[0], (0, GpuMatch::Order(1)));
        assert_eq!(m[1], (1, GpuMatch::Order(2)));
        assert!(matches!(&m[2], (2, GpuMatch::None(why)) if why.contains("2 OpenCL GPU")), "{m:?}");
        // No NVIDIA platform: every device, in order.
        let cl = [dev(None, false), dev(None, false)];
        assert_eq!(map_gpus(&[1], &none, &cl), vec![(1, GpuMatch::Order(1))]);
        // nvidia-smi's addresses but none from OpenCL: by order too.
        let smi: BTreeMap<u32, PciAddress> = [(0, pci("00000000:01:00.0"))].into_iter().collect();
        assert_eq!(map_gpus(&[0], &smi, &cl), vec![(0, GpuMatch::Order(0))]);
        // No OpenCL GPU at all.
        let m = map_gpus(&[0], &none, &[]);
        assert!(matches!(&m[0], (0, GpuMatch::None(why)) if why.contains("0 OpenCL GPU")), "{m:?}");
    }

    #[test]
    fn no_device_is_given_to_two_gpus() {
        // Two GPUs with the same address (a bad nvidia-smi answer) get one device.
        let smi: BTreeMap<u32, PciAddress> =
            [(0, pci("0000:01:00.0")), (1, pci("0000:01:00.0"))].into_iter().collect();
        let cl = [dev(Some("0000:01:00.0"), true)];
        let m = map_gpus(&[0, 1], &smi, &cl);
        assert_eq!(m[0].1, GpuMatch::Pci(0, pci("0000:01:00.0")));
        assert!(matches!(m[1].1, GpuMatch::None(_)), "{m:?}");
        // A repeated index by order, likewise.
        let m = map_gpus(&[0, 0], &BTreeMap::new(), &[dev(None, true)]);
        assert_eq!(m[0].1, GpuMatch::Order(0));
        assert!(matches!(m[1].1, GpuMatch::None(_)), "{m:?}");
    }
}
