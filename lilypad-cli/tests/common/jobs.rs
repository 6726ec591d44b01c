//! What the tests that run jobs share: a provider driven through the SDK's provider
//! API, its CPU offer, and `lilypad-cli run` as a child process.

#![allow(dead_code, unreachable_pub)]

use std::{
    collections::BTreeSet,
    io::Read,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::U256;
use lilypad_sdk::{
    core::{
        offer::{ModulePolicy, ResourceOffer},
        spec::MachineSpec,
    },
    devnet::{self, ANVIL_KEYS, anvil_address, anvil_signer},
    job::ProviderClient,
    module::ModuleCache,
    solver::{SolverClient, api::DealRecord},
    storage::StorageClient,
};
use serde_json::Value;

use crate::common::{BIN, LocalNet, now, repo_root};

pub fn provider(net: &LocalNet, cache: &Path) -> ProviderClient {
    let chain = net.devnet.account(devnet::PROVIDER);
    let solver = SolverClient::new(
        &net.solver.url,
        anvil_signer(devnet::PROVIDER),
        31337,
        anvil_address(devnet::SOLVER),
    )
    .expect("solver client");
    let storage = StorageClient::new(&net.storage.url).expect("storage client");
    ProviderClient::new(chain, solver, storage, ModuleCache::new(cache))
}

pub fn cpu_offer(nonce: u64) -> ResourceOffer {
    ResourceOffer {
        provider: anvil_address(devnet::PROVIDER),
        payout: Default::default(),
        spec: MachineSpec { cpu_millicores: 4000, ram_mib: 8192, disk_mib: 10_000, gpus: vec![] },
        modules: ModulePolicy::Any,
        default_price: U256::from(1000u64),
        module_prices: Default::default(),
        timeout_collateral: U256::from(10u64),
        bounds: Default::default(),
        mediators: devnet::MEDIATORS.iter().map(|m| anvil_address(*m)).collect::<BTreeSet<_>>(),
        solver: anvil_address(devnet::SOLVER),
        expiry: now() + 3600,
        nonce: U256::from(nonce),
    }
}

/// `lilypad-cli run MODULE --network ... --output-dir ... EXTRA` signing with `key`.
pub fn run_command(
    net: &LocalNet,
    dir: &Path,
    module: &Path,
    extra: &[&str],
    key: &str,
) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(module)
        .arg("--network")
        .arg(&net.network_file)
        .arg("--output-dir")
        .arg(dir.join("out"))
        .args(extra)
        .env("LILYPAD_HOME", dir.join("home"))
        .env("WEB3_PRIVATE_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `lilypad-cli run ... --json` as the devnet's job creator.
pub fn spawn_run(net: &LocalNet, dir: &Path, module: &Path, extra: &[&str], key: &str) -> Child {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    run_command(net, dir, module, &args, key).spawn().expect("spawn lilypad-cli run")
}

/// Waits for the process and parses its JSON answer; returns (success, json, stderr).
pub async fn finish(mut child: Child, secs: u64, net: &LocalNet) -> (bool, Value, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let mut err = String::new();
            child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
            panic!("lilypad-cli run did not finish in {secs}s; stderr:\n{err}\n{}", net.logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("run printed no JSON ({e}): {out:?}\nstderr:\n{err}\n{}", net.logs())
    });
    (status.success(), json, err)
}

/// The provider's first deal; fails early with the job creator's output if `run` exits.
pub async fn the_deal(p: &ProviderClient, run: &mut Child, net: &LocalNet) -> DealRecord {
    let started = Instant::now();
    loop {
        if let Some(d) = p.solver().deals().await.ok().and_then(|d| d.into_iter().next()) {
            return d;
        }
        if let Some(status) = run.try_wait().expect("wait") {
            let (mut out, mut err) = (String::new(), String::new());
            run.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
            run.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
            panic!("run exited ({status}) before a deal:\n{out}\n{err}\n{}", net.logs());
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no deal in 60 s\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A results directory as a job leaves it, with `stdout`.
pub fn write_results(dir: &Path, stdout: &str) {
    std::fs::create_dir_all(dir.join("outputs")).expect("results dir");
    std::fs::write(dir.join("stdout"), stdout).expect("stdout");
    std::fs::write(dir.join("stderr"), "").expect("stderr");
    std::fs::write(dir.join("exitCode"), "0").expect("exitCode");
    std::fs::write(dir.join("outputs/greeting.txt"), "hello").expect("output");
}

/// A local network, a provider with a CPU offer, `lilypad-cli run` of cowsay with
/// `Message=moo` as the devnet's job creator, and the deal they made.
pub async fn cowsay_deal(dir: &Path) -> (LocalNet, ProviderClient, Child, DealRecord) {
    let net = LocalNet::start(dir).await;
    let p = provider(&net, &dir.join("rp-cache"));
    p.post_offer(&cpu_offer(1)).await.expect("post the resource offer");
    let module = repo_root().join("examples/modules/cowsay");
    let args = ["-i", "Message=moo"];
    let mut child = spawn_run(&net, dir, &module, &args, ANVIL_KEYS[devnet::JOB_CREATOR]);
    let record = the_deal(&p, &mut child, &net).await;
    (net, p, child, record)
}
