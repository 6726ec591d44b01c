//! `lilypad-rp mine`: mine `LilypadPow` rounds with the best miner on this machine.

use std::sync::Arc;

use lilypad_cli_common::network::{self, NetworkArgs, Role};
use lilypad_rp::{
    mining::{MineOptions, mine},
    pow::{CpuMiner, Miner},
};
use lilypad_sdk::{chain::ChainClient, core::B256};

/// Parses a node id: up to 32 bytes of hex, left-padded with zeros.
pub(crate) fn parse_node_id(s: &str) -> Result<B256, String> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.len() > 64 || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(format!("{s:?}: expected up to 32 bytes of hex (an even number of digits)"));
    }
    let mut bytes = [0u8; 32];
    let off = 32 - hex.len() / 2;
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        bytes[off + i] = u8::from_str_radix(digits, 16).map_err(|e| e.to_string())?;
    }
    Ok(B256::from(bytes))
}

/// The OpenCL miner on the first GPU (else the first device), or the CPU miner.
fn best_miner(force_cpu: bool) -> Arc<dyn Miner> {
    #[cfg(feature = "opencl")]
    if !force_cpu {
        use lilypad_rp::pow::opencl::{self, OpenClMiner};
        match opencl::devices() {
            Ok(devices) => {
                let pick = devices.iter().find(|d| !d.info.is_cpu()).or(devices.first());
                if let Some(d) = pick {
                    match OpenClMiner::new(d) {
                        Ok(m) => return Arc::new(m),
                        Err(e) => tracing::warn!("OpenCL device {} unusable: {e}", d.info.name),
                    }
                }
            }
            Err(e) => tracing::info!("no OpenCL device, mining on the CPU: {e}"),
        }
    }
    let _ = force_cpu;
    Arc::new(CpuMiner::new())
}

/// Runs `lilypad-rp mine`.
pub(crate) fn run(
    network: &NetworkArgs,
    node_id: B256,
    rounds: Option<u64>,
    proofs_per_round: u64,
    cpu: bool,
) -> anyhow::Result<()> {
    let config = network::load(network)?;
    let key = network::key(&config, Role::Provider)?;
    let miner = best_miner(cpu);
    let opts = MineOptions {
        node_id,
        rounds,
        proofs_per_round: proofs_per_round.max(1),
        ..MineOptions::default()
    };
    let proofs = lilypad_cli_common::block_on(async {
        let client = ChainClient::connect(config).await?.with_signer(key);
        mine(&client, miner, &opts).await
    })?;
    tracing::info!(proofs = proofs.len(), "done");
    Ok(())
}
