//! Slots: the shares a provider splits its machine into, each with its own offer.
//!
//! A machine with GPUs is split by default into one slot per GPU, each with a fair
//! share of the CPU, RAM and disk, plus one CPU-only slot for the share that is left;
//! a machine without GPUs is one slot. A provider can ask instead for `N` equal slots
//! (GPUs dealt out in order) or list each slot's size. Every GPU belongs to at most one
//! slot, and the slots never add up to more than the machine.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::spec::MachineSpec;

/// One share of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// A short stable name (`gpu0`, `cpu0`, `slot2`), unique on the machine.
    pub name: String,
    /// What this slot's offer advertises.
    pub spec: MachineSpec,
    /// The machine's GPU indexes this slot owns (as `nvidia-smi` numbers them), in
    /// the order of `spec.gpus`.
    pub gpu_indexes: Vec<u32>,
}

/// The size of one slot in an explicit plan; `None` takes an equal share of what
/// the sized slots leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotShape {
    /// GPUs (dealt out in index order).
    pub gpus: u32,
    /// CPU in millicores.
    pub cpu_millicores: Option<u32>,
    /// RAM in MiB.
    pub ram_mib: Option<u64>,
    /// Disk in MiB.
    pub disk_mib: Option<u64>,
}

/// How to split a machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SlotPlan {
    /// One slot per GPU plus a CPU-only slot (one slot without GPUs).
    #[default]
    Auto,
    /// `n` equal slots, GPUs dealt out in order.
    Equal(u32),
    /// These slots, in order.
    Shapes(Vec<SlotShape>),
}

/// Why a plan does not fit the machine, or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlotError {
    /// The text is not a plan.
    #[error(
        "slots {0:?}: {1} (expected `auto`, a number of equal slots, or `;`-separated \
         slots like `gpus=1,cpu=4000,ram=16384;cpu=2000`)"
    )]
    Parse(String, String),
    /// The slots ask for more than the machine has.
    #[error("the slots ask for {need} {what} and this machine offers {have}")]
    TooBig {
        /// `GPUs`, `millicores`, `MiB of RAM` or `MiB of disk`.
        what: &'static str,
        /// What the slots add up to.
        need: u64,
        /// What the machine has.
        have: u64,
    },
    /// A slot would get nothing of a resource every job needs.
    #[error("slot {slot} would get no {what}: use fewer slots or size them")]
    Empty {
        /// The slot's name.
        slot: String,
        /// `CPU` or `RAM`.
        what: &'static str,
    },
}

impl FromStr for SlotPlan {
    type Err = SlotError;

    fn from_str(s: &str) -> Result<Self, SlotError> {
        let err = |why: &str| SlotError::Parse(s.to_owned(), why.to_owned());
        let t = s.trim();
        if t.is_empty() || t == "auto" {
            return Ok(Self::Auto);
        }
        if let Ok(n) = t.parse::<u32>() {
            return match n {
                0 => Err(err("zero slots")),
                n => Ok(Self::Equal(n)),
            };
        }
        let mut shapes = Vec::new();
        for part in t.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let mut shape = SlotShape::default();
            for kv in part.split(',').map(str::trim) {
                let (k, v) =
                    kv.split_once('=').ok_or_else(|| err(&format!("{kv:?} is not KEY=VALUE")))?;
                let n: u64 =
                    v.trim().parse().map_err(|_| err(&format!("{kv:?}: not a whole number")))?;
                match k.trim() {
                    "gpus" => shape.gpus = u32::try_from(n).map_err(|_| err("too many GPUs"))?,
                    "cpu" => {
                        shape.cpu_millicores =
                            Some(u32::try_from(n).map_err(|_| err("cpu is in millicores"))?);
                    }
                    "ram" => shape.ram_mib = Some(n),
                    "disk" => shape.disk_mib = Some(n),
                    other => {
                        return Err(err(&format!("unknown key {other:?} (gpus, cpu, ram, disk)")));
                    }
                }
            }
            shapes.push(shape);
        }
        if shapes.is_empty() {
            return Err(err("no slot"));
        }
        Ok(Self::Shapes(shapes))
    }
}

impl fmt::Display for SlotPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Equal(n) => write!(f, "{n}"),
            Self::Shapes(shapes) => {
                for (i, s) in shapes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(";")?;
                    }
                    write!(f, "gpus={}", s.gpus)?;
                    if let Some(c) = s.cpu_millicores {
                        write!(f, ",cpu={c}")?;
                    }
                    if let Some(r) = s.ram_mib {
                        write!(f, ",ram={r}")?;
                    }
                    if let Some(d) = s.disk_mib {
                        write!(f, ",disk={d}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl SlotPlan {
    /// Splits `machine` into slots.
    pub fn split(&self, machine: &MachineSpec) -> Result<Vec<Slot>, SlotError> {
        let gpus = u32::try_from(machine.gpus.len()).unwrap_or(u32::MAX);
        let shapes = match self {
            Self::Auto if gpus == 0 => vec![SlotShape::default()],
            Self::Auto => {
                let mut s = vec![SlotShape { gpus: 1, ..SlotShape::default() }; gpus as usize];
                s.push(SlotShape::default());
                s
            }
            Self::Equal(n) => {
                let (each, extra) = (gpus / n, gpus % n);
                (0..*n)
                    .map(|i| SlotShape {
                        gpus: each + u32::from(i < extra),
                        ..SlotShape::default()
                    })
                    .collect()
            }
            Self::Shapes(s) => s.clone(),
        };
        let need_gpus: u64 = shapes.iter().map(|s| u64::from(s.gpus)).sum();
        if need_gpus > u64::from(gpus) {
            return Err(SlotError::TooBig { what: "GPUs", need: need_gpus, have: gpus.into() });
        }
        let cpu = share(
            "millicores",
            machine.cpu_millicores.into(),
            shapes.iter().map(|s| s.cpu_millicores.map(u64::from)),
        )?;
        let ram = share("MiB of RAM", machine.ram_mib, shapes.iter().map(|s| s.ram_mib))?;
        let disk = share("MiB of disk", machine.disk_mib, shapes.iter().map(|s| s.disk_mib))?;
        let mut next_gpu = 0u32;
        let (mut gpu_slots, mut cpu_slots) = (0, 0);
        let equal = matches!(self, Self::Equal(_) | Self::Shapes(_));
        let mut slots = Vec::with_capacity(shapes.len());
        for (i, shape) in shapes.iter().enumerate() {
            let name = if equal {
                format!("slot{i}")
            } else if shape.gpus > 0 {
                gpu_slots += 1;
                format!("gpu{}", gpu_slots - 1)
            } else {
                cpu_slots += 1;
                format!("cpu{}", cpu_slots - 1)
            };
            let gpu_indexes: Vec<u32> = (next_gpu..next_gpu + shape.gpus).collect();
            next_gpu += shape.gpus;
            let spec = MachineSpec {
                cpu_millicores: u32::try_from(cpu[i]).unwrap_or(u32::MAX),
                ram_mib: ram[i],
                disk_mib: disk[i],
                gpus: gpu_indexes.iter().map(|g| machine.gpus[*g as usize].clone()).collect(),
            };
            if spec.cpu_millicores == 0 {
                return Err(SlotError::Empty { slot: name, what: "CPU" });
            }
            if spec.ram_mib == 0 {
                return Err(SlotError::Empty { slot: name, what: "RAM" });
            }
            slots.push(Slot { name, spec, gpu_indexes });
        }
        Ok(slots)
    }
}

/// Each slot's amount of one resource: the sizes asked for, and an equal share of
/// the rest for the slots that name none (rounded down: the total never exceeds
/// `have`).
fn share(
    what: &'static str,
    have: u64,
    asked: impl Iterator<Item = Option<u64>> + Clone,
) -> Result<Vec<u64>, SlotError> {
    let sized: u64 = asked.clone().flatten().fold(0u64, u64::saturating_add);
    if sized > have {
        return Err(SlotError::TooBig { what, need: sized, have });
    }
    let unsized_count = asked.clone().filter(Option::is_none).count() as u64;
    let each = (have - sized).checked_div(unsized_count).unwrap_or(0);
    Ok(asked.map(|a| a.unwrap_or(each)).collect())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::spec::Gpu;

    fn machine(cpu: u32, ram: u64, gpus: usize) -> MachineSpec {
        MachineSpec {
            cpu_millicores: cpu,
            ram_mib: ram,
            disk_mib: 100_000,
            gpus: (0..gpus)
                .map(|i| Gpu { vendor: "NVIDIA".into(), model: format!("G{i}"), vram_mib: 24_576 })
                .collect(),
        }
    }

    #[test]
    fn auto_is_one_slot_without_gpus_and_one_per_gpu_plus_a_cpu_slot_with_them() {
        let one = SlotPlan::Auto.split(&machine(8000, 32_768, 0)).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].name.as_str(), one[0].spec.clone()), ("cpu0", machine(8000, 32_768, 0)));

        let m = machine(16_000, 65_536, 3);
        let slots = SlotPlan::Auto.split(&m).unwrap();
        let names: Vec<&str> = slots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["gpu0", "gpu1", "gpu2", "cpu0"]);
        for (i, s) in slots[..3].iter().enumerate() {
            assert_eq!(s.gpu_indexes, vec![i as u32]);
            assert_eq!(s.spec.gpus, vec![m.gpus[i].clone()]);
            assert_eq!((s.spec.cpu_millicores, s.spec.ram_mib), (4000, 16_384));
        }
        assert!(slots[3].spec.gpus.is_empty() && slots[3].gpu_indexes.is_empty());
    }

    #[test]
    fn equal_slots_deal_gpus_out_in_order() {
        let slots = SlotPlan::Equal(2).split(&machine(4000, 8192, 3)).unwrap();
        assert_eq!(slots[0].gpu_indexes, vec![0, 1]);
        assert_eq!(slots[1].gpu_indexes, vec![2]);
        assert_eq!(slots[1].spec.cpu_millicores, 2000);
        let cpu_only = SlotPlan::Equal(3).split(&machine(3000, 3072, 0)).unwrap();
        assert!(cpu_only.iter().all(|s| s.spec.cpu_millicores == 1000 && s.spec.ram_mib == 1024));
    }

    #[test]
    fn plans_parse_print_and_round_trip() {
        for (text, plan) in [
            ("auto", SlotPlan::Auto),
            ("3", SlotPlan::Equal(3)),
            (
                "gpus=2,cpu=4000;ram=1024",
                SlotPlan::Shapes(vec![
                    SlotShape { gpus: 2, cpu_millicores: Some(4000), ..Default::default() },
                    SlotShape { ram_mib: Some(1024), ..Default::default() },
                ]),
            ),
        ] {
            assert_eq!(text.parse::<SlotPlan>().unwrap(), plan, "{text}");
            assert_eq!(plan.to_string().parse::<SlotPlan>().unwrap(), plan);
        }
        for bad in ["0", "gpus", "cpu=lots", "vram=3", "cpu=99999999999", ";"] {
            let e = bad.parse::<SlotPlan>().expect_err(bad).to_string();
            assert!(e.contains(bad) && e.contains("expected `auto`"), "{e}");
        }
    }

    #[test]
    fn plans_bigger_than_the_machine_are_refused_with_what_is_short() {
        let m = machine(4000, 8192, 1);
        let e = "gpus=1;gpus=1".parse::<SlotPlan>().unwrap().split(&m).unwrap_err();
        assert_eq!(e, SlotError::TooBig { what: "GPUs", need: 2, have: 1 });
        let e = "cpu=3000;cpu=2000".parse::<SlotPlan>().unwrap().split(&m).unwrap_err();
        assert_eq!(e.to_string(), "the slots ask for 5000 millicores and this machine offers 4000");
        let e = "cpu=4000;gpus=1".parse::<SlotPlan>().unwrap().split(&m).unwrap_err();
        assert_eq!(e, SlotError::Empty { slot: "slot1".into(), what: "CPU" });
    }

    proptest! {
        /// Whatever the plan, the slots add up to no more than the machine, and every
        /// GPU is in at most one slot (exactly one under `auto` and `N`).
        #[test]
        fn slots_never_add_up_to_more_than_the_machine(
            cpu in 1u32..200_000,
            ram in 1u64..1_000_000,
            gpus in 0usize..9,
            n in 1u32..12,
            shapes in proptest::collection::vec(
                (0u32..3, proptest::option::of(1u32..50_000), proptest::option::of(1u64..300_000)),
                1..6,
            ),
        ) {
            let m = machine(cpu, ram, gpus);
            let explicit = SlotPlan::Shapes(shapes.iter().map(|(g, c, r)| SlotShape {
                gpus: *g, cpu_millicores: *c, ram_mib: *r, disk_mib: None,
            }).collect());
            for plan in [SlotPlan::Auto, SlotPlan::Equal(n), explicit] {
                let Ok(slots) = plan.split(&m) else { continue };
                let sum = |f: fn(&Slot) -> u64| slots.iter().map(f).sum::<u64>();
                prop_assert!(sum(|s| s.spec.cpu_millicores.into()) <= u64::from(cpu));
                prop_assert!(sum(|s| s.spec.ram_mib) <= ram);
                prop_assert!(sum(|s| s.spec.disk_mib) <= m.disk_mib);
                let mut owned: Vec<u32> = slots.iter().flat_map(|s| s.gpu_indexes.clone()).collect();
                let len = owned.len();
                owned.sort_unstable();
                owned.dedup();
                prop_assert_eq!(owned.len(), len, "a GPU in two slots");
                if !matches!(plan, SlotPlan::Shapes(_)) {
                    prop_assert_eq!(len, gpus);
                }
                for s in &slots {
                    prop_assert!(s.spec.cpu_millicores > 0 && s.spec.ram_mib > 0);
                    prop_assert_eq!(s.spec.gpus.len(), s.gpu_indexes.len());
                }
            }
        }
    }
}
