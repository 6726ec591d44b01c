//! The checks `lilypad-rp run` makes before it offers anything, and `lilypad-rp doctor`
//! prints as a table: Docker, GPUs, OpenCL, disk, the network's services, the wallet.

use std::{path::Path, process::Command};

use lilypad_sdk::{
    chain::ChainClient,
    core::{
        Address, U256,
        amount::{AmountStyle, format_tokens},
        spec::Gpu,
    },
    executor::Executor,
    solver::SolverClient,
    storage::StorageClient,
};

/// A check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    /// Works, but worth knowing (no GPU, allowance to be approved...).
    Note,
    Fail,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) status: Status,
    /// What was found, or what is wrong and how to fix it.
    pub(crate) detail: String,
}

impl Check {
    pub(crate) fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self { name, status, detail: detail.into() }
    }
}

/// What the checks need.
pub(crate) struct Context<'a> {
    pub(crate) executor: &'a Executor,
    pub(crate) data_dir: &'a Path,
    pub(crate) chain: &'a ChainClient,
    pub(crate) me: Address,
    /// Tokens the offers escrow at worst (timeout plus results collateral, one deal per slot).
    pub(crate) collateral_needed: U256,
    /// Least free disk for job data, in MiB.
    pub(crate) min_disk_mib: u64,
    /// How amounts are shown.
    pub(crate) amounts: AmountStyle,
}

/// GPUs as `nvidia-smi` lists them; `None` when it is not installed.
pub(crate) fn nvidia_gpus() -> Option<Result<Vec<Gpu>, String>> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("nvidia-smi: {e}"))),
    };
    if !out.status.success() {
        return Some(Err(format!(
            "nvidia-smi failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Some(Ok(parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout))))
}

/// Each GPU's PCI address as `nvidia-smi` numbers them (to match OpenCL devices with
/// GPUs); empty when `nvidia-smi` is missing, fails or answers in another shape.
#[cfg(feature = "opencl")]
pub(crate) fn nvidia_pci_addresses() -> std::collections::BTreeMap<u32, lilypad_rp::gpus::PciAddress>
{
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=index,pci.bus_id", "--format=csv,noheader"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            lilypad_rp::gpus::parse_nvidia_smi_pci(&String::from_utf8_lossy(&o.stdout))
        }
        Ok(o) => {
            tracing::debug!("nvidia-smi --query-gpu=index,pci.bus_id failed ({})", o.status);
            Default::default()
        }
        Err(e) => {
            tracing::debug!("nvidia-smi --query-gpu=index,pci.bus_id: {e}");
            Default::default()
        }
    }
}

/// Parses `name, MiB` lines.
pub(crate) fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|l| {
            let (name, mem) = l.rsplit_once(',')?;
            Some(Gpu {
                vendor: "NVIDIA".into(),
                model: name.trim().trim_start_matches("NVIDIA ").to_owned(),
                vram_mib: mem.trim().parse().ok()?,
            })
        })
        .collect()
}

fn opencl_check() -> Check {
    #[cfg(feature = "opencl")]
    {
        match lilypad_rp::pow::opencl::devices() {
            Ok(d) if !d.is_empty() => {
                let names: Vec<String> = d.iter().map(|d| d.info.name.clone()).collect();
                Check::new("opencl", Status::Ok, names.join(", "))
            }
            Ok(_) => Check::new("opencl", Status::Note, "no OpenCL device: mining uses the CPU"),
            Err(e) => Check::new(
                "opencl",
                Status::Note,
                format!(
                    "no OpenCL platform ({e}): mining uses the CPU; install ocl-icd-libopencl1 and a driver (pocl-opencl-icd for CPUs) to use one"
                ),
            ),
        }
    }
    #[cfg(not(feature = "opencl"))]
    Check::new("opencl", Status::Note, "built without the opencl feature: mining uses the CPU")
}

fn disk_check(data_dir: &Path, min: u64) -> Check {
    if let Err(e) = std::fs::create_dir_all(data_dir) {
        return Check::new(
            "disk",
            Status::Fail,
            format!("cannot create the data dir {}: {e}; pass --data-dir DIR", data_dir.display()),
        );
    }
    match crate::spec::detect(data_dir) {
        Ok(s) if s.disk_mib >= min => Check::new(
            "disk",
            Status::Ok,
            format!("{} MiB free under {}", s.disk_mib, data_dir.display()),
        ),
        Ok(s) => Check::new(
            "disk",
            Status::Fail,
            format!(
                "only {} MiB free under {} (at least {min} MiB needed, --min-disk-mib): free space or pass --data-dir on a larger disk",
                s.disk_mib,
                data_dir.display()
            ),
        ),
        Err(e) => Check::new("disk", Status::Fail, format!("{e:#}")),
    }
}

/// Every check, in order.
pub(crate) async fn checks(
    cx: &Context<'_>,
    opencl: bool,
    solver: Option<&SolverClient>,
    storage: Option<&StorageClient>,
) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match cx.executor.preflight().await {
        Ok(i) => Check::new(
            "docker",
            Status::Ok,
            format!(
                "dockerd {} (API {}) at {}, {}",
                i.server_version, i.api_version, i.host, i.platform
            ),
        ),
        Err(e) => Check::new("docker", Status::Fail, e.to_string()),
    });
    out.push(match nvidia_gpus() {
        None => Check::new("gpus", Status::Note, "none (nvidia-smi not found): CPU jobs only"),
        Some(Ok(g)) if g.is_empty() => Check::new("gpus", Status::Note, "nvidia-smi lists no GPU"),
        Some(Ok(g)) => Check::new(
            "gpus",
            Status::Ok,
            g.iter().map(|g| format!("{} ({} MiB)", g.model, g.vram_mib)).collect::<Vec<_>>().join(", "),
        ),
        Some(Err(e)) => Check::new(
            "gpus",
            Status::Fail,
            format!("{e}: fix the NVIDIA driver (nvidia-smi must work) or uninstall it to offer CPU only"),
        ),
    });
    if opencl {
        out.push(opencl_check());
    }
    out.push(disk_check(cx.data_dir, cx.min_disk_mib));
    let rpc = cx.chain.config().rpc_urls.join(", ");
    out.push(match cx.chain.block_number().await {
        Ok(b) => Check::new("chain", Status::Ok, format!("{rpc} at block {b}")),
        Err(e) => Check::new(
            "chain",
            Status::Fail,
            format!("{rpc} does not answer: {e}; check rpc_url in the network file (for a local chain: `lilypad-cli devnet up`)"),
        ),
    });
    if let Some(s) = solver {
        out.push(match s.health().await {
            Ok(h) => Check::new("solver", Status::Ok, format!("{} ({})", s.url(), h.solver)),
            Err(e) => Check::new(
                "solver",
                Status::Fail,
                format!("{} does not answer: {e}; check solver_url in the network file", s.url()),
            ),
        });
    }
    if let Some(s) = storage {
        // Any answer from the store (even "not found") shows it serves.
        let probe = lilypad_sdk::storage::unixfs::add_bytes(b"lilypad-rp doctor").map(|d| d.root);
        let answer = match probe {
            Ok(cid) => s.get_block(&cid).await.map(drop),
            Err(e) => Err(e),
        };
        out.push(match answer {
            Ok(())
            | Err(
                lilypad_sdk::storage::StorageError::NotFound { .. }
                | lilypad_sdk::storage::StorageError::Status { status: 404, .. },
            ) => Check::new("storage", Status::Ok, s.base_url().to_owned()),
            Err(e) => Check::new(
                "storage",
                Status::Fail,
                format!(
                    "{} does not answer: {e}; check storage_url in the network file",
                    s.base_url()
                ),
            ),
        });
    }
    out.push(match cx.chain.eth_balance(cx.me).await {
        Ok(b) if b.is_zero() => Check::new(
            "gas",
            Status::Fail,
            format!("{} has no ETH for gas: fund it before offering", cx.me),
        ),
        Ok(b) => Check::new(
            "gas",
            Status::Ok,
            match cx.amounts {
                AmountStyle::BaseUnits => format!("{b} wei"),
                // ETH has the token's 18 decimals.
                AmountStyle::Tokens => format!("{} ETH", format_tokens(b)),
            },
        ),
        Err(e) => Check::new("gas", Status::Fail, e.to_string()),
    });
    out.push(match cx.chain.token_balance(cx.me).await {
        Ok(b) if b < cx.collateral_needed => Check::new(
            "balance",
            Status::Fail,
            format!(
                "{} holds {}, the offers escrow up to {} (one deal per slot): get tokens, lower --timeout-collateral/--price or use fewer --slots",
                cx.me,
                cx.amounts.format(b),
                cx.amounts.format(cx.collateral_needed)
            ),
        ),
        Ok(b) => Check::new(
            "balance",
            Status::Ok,
            format!(
                "{} (the offers escrow up to {}, one deal per slot)",
                cx.amounts.format(b),
                cx.amounts.format(cx.collateral_needed)
            ),
        ),
        Err(e) => Check::new("balance", Status::Fail, e.to_string()),
    });
    let controller = cx.chain.config().contracts.controller;
    out.push(match cx.chain.allowance(cx.me, controller).await {
        Ok(a) if a < cx.collateral_needed => Check::new(
            "allowance",
            Status::Note,
            format!(
                "{}: the controller is approved for {} when an offer is posted",
                cx.amounts.format(a),
                cx.amounts.format(cx.collateral_needed)
            ),
        ),
        Ok(a) => Check::new("allowance", Status::Ok, cx.amounts.format(a)),
        Err(e) => Check::new("allowance", Status::Fail, e.to_string()),
    });
    out
}

/// The table `doctor` prints.
pub(crate) fn table(checks: &[Check]) -> String {
    let mut s = String::new();
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Note => "note",
            Status::Fail => "FAIL",
        };
        s.push_str(&format!("{:<10} {:<5} {}\n", c.name, status, c.detail));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_parse() {
        let g = parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564\nTesla T4, 15360\n");
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].model.as_str(), g[0].vram_mib), ("GeForce RTX 4090", 24564));
        assert_eq!((g[1].model.as_str(), g[1].vram_mib), ("Tesla T4", 15360));
        assert!(parse_nvidia_smi("garbage").is_empty());
    }
}
