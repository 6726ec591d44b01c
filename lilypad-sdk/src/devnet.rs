//! A throwaway local network: anvil with every Lilypad contract deployed and wired.
//!
//! [`Devnet::start`] starts anvil on a free 127.0.0.1 port, deploys the token,
//! the module registry, the users registry, the controller, the proof-of-work
//! contract and the job manager (bridge role: account [`BRIDGE`]) from anvil's first
//! account (so their addresses are always the same,
//! [`ContractAddresses::deployed_by`]), starts a proof-of-work round, registers the
//! well-known accounts in their roles, funds them with tokens and writes a network
//! file. Dropping the [`Devnet`] stops anvil unless it was [`Devnet::detach`]ed.
//!
//! anvil is looked up in `$ANVIL`, then in `node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`
//! of the current directory or any parent (and of this source tree), then on `PATH`.
//! `scripts/setup-contracts.sh` installs it.

use std::{
    fs,
    io::{self, Read, Seek},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};
use lilypad_core::deal::NetworkParams;

use crate::chain::{
    ChainClient, ChainError, ContractAddresses, DeployOptions, NetworkConfig,
    config::{ConfigError, LOCAL_CHAIN_ID, LOCAL_DEPLOYER, RpcOptions},
    deploy::{self, deploy_network},
    roles,
};

pub use crate::chain::dev::{
    ACCOUNT_ROLES, ANVIL_KEYS, BRIDGE, JOB_CREATOR, MEDIATORS, PROVIDER, SOLVER, anvil_address,
    anvil_signer,
};

/// The job manager's default job timeout on a devnet: one day from a request to the last
/// second the bridge may fulfill (the contract allows 5 minutes to 30 days).
pub const JOB_TIMEOUT_SECS: u64 = deploy::JOB_TIMEOUT_SECS;

/// Why a devnet could not start, be found or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// No anvil binary anywhere.
    #[error(
        "anvil not found (looked in $ANVIL, {}, and on PATH): run scripts/setup-contracts.sh \
         (it installs Foundry's anvil from npm), or set ANVIL=/path/to/anvil",
        .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    AnvilNotFound {
        /// The node_modules paths looked at.
        tried: Vec<PathBuf>,
    },
    /// anvil could not be started.
    #[error(
        "cannot start {}: {cause} (run scripts/setup-contracts.sh to install anvil, or point $ANVIL at it)",
        .path.display()
    )]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The failure (part of the message, so not a `source()`).
        cause: io::Error,
    },
    /// anvil exited during startup.
    #[error("anvil exited during startup ({status}); its log ends with:\n{log}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// anvil did not report its address in time.
    #[error("anvil did not start listening within {}s; its log ends with:\n{log}", .after.as_secs())]
    StartTimeout {
        /// The timeout.
        after: Duration,
        /// The end of its log.
        log: String,
    },
    /// A file of the devnet's state could not be read or written.
    #[error("{}: {cause}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure (part of the message, so not a `source()`).
        cause: io::Error,
    },
    /// A devnet is already running from this state directory.
    #[error("a devnet is already running from {} (anvil pid {pid}): stop it first", .dir.display())]
    AlreadyRunning {
        /// The state directory.
        dir: PathBuf,
        /// anvil's pid.
        pid: u32,
    },
    /// No devnet runs from this state directory.
    #[error("no devnet is running from {}", .dir.display())]
    NotRunning {
        /// The state directory.
        dir: PathBuf,
    },
    /// anvil did not stop in time after SIGTERM.
    #[error("anvil (pid {pid}) did not stop within {}s", .after.as_secs())]
    StopTimeout {
        /// anvil's pid.
        pid: u32,
        /// The timeout.
        after: Duration,
    },
    /// Deploying or wiring the contracts failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The network file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The anvil binary; found with [`find_anvil`] when `None`.
    pub anvil: Option<PathBuf>,
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where the log, the network file and the pid file go.
    pub dir: PathBuf,
    /// Network parameters of the controller.
    pub params: NetworkParams,
    /// Tokens minted to each well-known account (base units, 18 decimals).
    pub fund: U256,
    /// Expected hashes per proof of the first proof-of-work round (sets its target).
    pub pow_expected_hashes: f64,
    /// The job manager's job timeout in seconds ([`JOB_TIMEOUT_SECS`] by default;
    /// 300 to 2,592,000).
    pub job_timeout_secs: u64,
    /// The solver URL registered for the solver account and written to the network file.
    pub solver_url: String,
    /// The storage URL written to the network file.
    pub storage_url: String,
    /// How long anvil may take to start listening.
    pub startup_timeout: Duration,
    /// Start anvil in its own process group, so that a Ctrl-C in the terminal does not
    /// reach it (for devnets that outlive this process, see [`Devnet::detach`]). Off, a
    /// Ctrl-C stops anvil with the program (what tests want).
    pub background: bool,
}

impl DevnetOptions {
    /// Defaults with state in `dir`: a free port, 1,000,000 tokens per account, 1-hour
    /// judge and mediation windows, results collateral 2x the price, a 0.001-token fee,
    /// a one-day job timeout for on-chain jobs.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            anvil: None,
            port: 0,
            dir: dir.into(),
            params: NetworkParams::default(),
            fund: U256::from(1_000_000u64) * U256::from(10u64).pow(U256::from(18u64)),
            pow_expected_hashes: 65_536.0,
            job_timeout_secs: JOB_TIMEOUT_SECS,
            solver_url: "http://127.0.0.1:8080".into(),
            storage_url: "http://127.0.0.1:5001".into(),
            startup_timeout: Duration::from_secs(30),
            background: false,
        }
    }
}

pub use crate::chain::dev::files;

/// Finds anvil: `$ANVIL`, then `node_modules` of the current directory or a parent,
/// then of this source tree, then `PATH`.
pub fn find_anvil() -> Result<PathBuf, DevnetError> {
    if let Some(p) = std::env::var_os("ANVIL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    const REL: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
    let mut tried = Vec::new();
    let mut roots: Vec<PathBuf> = std::env::current_dir()
        .map(|d| d.ancestors().map(Path::to_path_buf).collect())
        .unwrap_or_default();
    // The workspace this crate was built from (tests, `cargo run`).
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    for root in roots {
        let candidate = root.join(REL);
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("anvil");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    tried.dedup();
    tried.truncate(3);
    Err(DevnetError::AnvilNotFound { tried })
}

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    config: NetworkConfig,
    child: Option<Child>,
    pid: u32,
    dir: PathBuf,
    client: ChainClient,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DevnetError + '_ {
    move |cause| DevnetError::Io { path: path.to_owned(), cause }
}

/// The last lines of a log file (for error messages).
pub fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(io::SeekFrom::Start(len.saturating_sub(4096)));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Waits for anvil's "Listening on 127.0.0.1:PORT" line in its log.
async fn wait_listening(
    child: &mut Child,
    log: &Path,
    timeout: Duration,
) -> Result<u16, DevnetError> {
    let started = tokio::time::Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Listening on "))
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            return Ok(port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DevnetError::Exited { status: status.to_string(), log: log_tail(log) });
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DevnetError::StartTimeout { after: timeout, log: log_tail(log) });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Devnet {
    /// Starts anvil, deploys and wires the contracts, funds the accounts and writes
    /// `dir/network.toml`. `progress` hears each step.
    pub async fn start(
        opts: &DevnetOptions,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Self, DevnetError> {
        // Refuse bad parameters before starting anything.
        deploy::check_options("local", &deploy_options(opts))?;
        let anvil = match &opts.anvil {
            Some(p) => p.clone(),
            None => find_anvil()?,
        };
        fs::create_dir_all(&opts.dir).map_err(io_err(&opts.dir))?;
        let log_path = opts.dir.join(files::LOG);
        let log = fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log_err = log.try_clone().map_err(io_err(&log_path))?;
        progress(&format!("starting {}", anvil.display()));
        let mut cmd = Command::new(&anvil);
        cmd.args(["--host", "127.0.0.1", "--port", &opts.port.to_string()])
            .args(["--chain-id", &LOCAL_CHAIN_ID.to_string(), "--accounts", "10"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if opts.background {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let mut child =
            cmd.spawn().map_err(|cause| DevnetError::Spawn { path: anvil.clone(), cause })?;
        let pid = child.id();
        let port = match wait_listening(&mut child, &log_path, opts.startup_timeout).await {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        // From here on, dropping `devnet` stops anvil if anything fails.
        let mut config = NetworkConfig {
            name: "local".into(),
            chain_id: LOCAL_CHAIN_ID,
            rpc_urls: vec![format!("http://127.0.0.1:{port}")],
            contracts: ContractAddresses::deployed_by(LOCAL_DEPLOYER),
            solver_url: Some(opts.solver_url.clone()),
            storage_url: Some(opts.storage_url.clone()),
            deployed_at_block: 0,
            min_provider_version: None,
            rpc: RpcOptions { max_receipt_poll_ms: 100, ..RpcOptions::default() },
        };
        progress(&format!("anvil listening on 127.0.0.1:{port} (pid {pid})"));
        let client = match ChainClient::connect(config.clone()).await {
            Ok(c) => c,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.into());
            }
        };
        let mut devnet =
            Self { config: config.clone(), child: Some(child), pid, dir: opts.dir.clone(), client };
        let contracts = devnet.deploy(opts, progress).await?;
        config.contracts = contracts;
        devnet.config = config;
        devnet.client = ChainClient::connect(devnet.config.clone()).await?;
        devnet.wire(opts, progress).await?;
        let path = devnet.network_file();
        devnet.config.save(&path)?;
        progress(&format!("network file written to {}", path.display()));
        Ok(devnet)
    }

    /// The one deploy path ([`deploy_network`]) from anvil's first account, the job
    /// manager's bridge role for [`BRIDGE`].
    async fn deploy(
        &self,
        opts: &DevnetOptions,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<ContractAddresses, DevnetError> {
        let admin = self.client.with_signer(anvil_signer(0));
        let deployment = deploy_network(&admin, &deploy_options(opts), progress).await?;
        Ok(deployment.contracts)
    }

    /// What only a devnet does: registers the well-known accounts in their roles and
    /// funds them with tokens.
    async fn wire(
        &self,
        opts: &DevnetOptions,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), DevnetError> {
        let admin = self.client.with_signer(anvil_signer(0));
        progress("registering the solver, provider, job creator and mediators");
        let mut registrations = vec![
            (SOLVER, roles::SOLVER, opts.solver_url.clone()),
            (PROVIDER, roles::RESOURCE_PROVIDER, String::new()),
            (JOB_CREATOR, roles::JOB_CREATOR, String::new()),
        ];
        registrations.extend(MEDIATORS.iter().map(|m| (*m, roles::MEDIATOR, String::new())));
        let regs = registrations.iter().map(|(i, role, url)| {
            let c = self.client.with_signer(anvil_signer(*i));
            async move { c.register(*role, url, alloy::primitives::B256::ZERO).await }
        });
        futures::future::try_join_all(regs).await?;
        progress(&format!(
            "funding the 10 well-known accounts with {} each",
            lilypad_core::amount::format_amount(opts.fund)
        ));
        admin.mint_many((0..ANVIL_KEYS.len()).map(|i| (anvil_address(i), opts.fund))).await?;
        Ok(())
    }

    /// The network (RPC URL and contract addresses).
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// A read-only client of the devnet; add a key with [`ChainClient::with_signer`].
    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    /// A client signing as well-known account `index` ([`ANVIL_KEYS`]).
    pub fn account(&self, index: usize) -> ChainClient {
        self.client.with_signer(anvil_signer(index))
    }

    /// anvil's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the network file is.
    pub fn network_file(&self) -> PathBuf {
        self.dir.join(files::NETWORK)
    }

    /// Leaves anvil running after this value is dropped and writes its pid file.
    pub fn detach(mut self) -> Result<(NetworkConfig, u32), DevnetError> {
        let path = self.dir.join(files::PID);
        fs::write(&path, format!("{}\n", self.pid)).map_err(io_err(&path))?;
        self.child = None;
        Ok((self.config.clone(), self.pid))
    }

    /// Stops anvil now.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A devnet's deployment: its parameters, the bridge role for [`BRIDGE`].
fn deploy_options(opts: &DevnetOptions) -> DeployOptions {
    DeployOptions {
        params: opts.params.clone(),
        job_timeout_secs: opts.job_timeout_secs,
        bridge: Some(anvil_address(BRIDGE)),
        pow_target: deploy::pow_target_for(opts.pow_expected_hashes),
    }
}

// ---------------------------------------------------------------- anvil controls

async fn anvil_call(
    client: &ChainClient,
    method: &'static str,
    params: serde_json::Value,
) -> Result<serde_json::Value, ChainError> {
    client
        .rpc_call(
            method,
            client.provider().raw_request::<_, serde_json::Value>(method.into(), params),
        )
        .await
}

/// Moves the devnet's clock forward by `secs` and mines a block, so the next
/// transaction sees `now + secs` (anvil's `evm_increaseTime` + `evm_mine`).
pub async fn increase_time(client: &ChainClient, secs: u64) -> Result<(), ChainError> {
    anvil_call(client, "evm_increaseTime", serde_json::json!([secs])).await?;
    mine(client).await
}

/// Mines one block.
pub async fn mine(client: &ChainClient) -> Result<(), ChainError> {
    anvil_call(client, "evm_mine", serde_json::json!([])).await.map(drop)
}

/// Sets the timestamp of the next block (anvil's `anvil_setNextBlockTimestamp`).
pub async fn set_next_block_timestamp(
    client: &ChainClient,
    timestamp: u64,
) -> Result<(), ChainError> {
    anvil_call(client, "anvil_setNextBlockTimestamp", serde_json::json!([timestamp]))
        .await
        .map(drop)
}

/// Gives `who` `wei` ETH for gas (anvil's `anvil_setBalance`).
pub async fn set_eth_balance(
    client: &ChainClient,
    who: Address,
    wei: U256,
) -> Result<(), ChainError> {
    anvil_call(client, "anvil_setBalance", serde_json::json!([who, wei])).await.map(drop)
}

// ---------------------------------------------------------------- detached devnets

/// The pid of the anvil a detached devnet in `dir` runs, if it is still alive.
pub fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(dir.join(files::PID)).ok()?.trim().parse().ok()?;
    is_anvil(pid).then_some(pid)
}

/// Whether `pid` is a live anvil process (Linux: by its `/proc` command line).
fn is_anvil(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("anvil"))
        .unwrap_or(false)
}

/// Stops the detached devnet of `dir` (SIGTERM, then waits up to `timeout`) and
/// removes its state files. Returns the pid it stopped, or `None` when only stale
/// state (anvil already gone) was removed.
pub async fn stop_detached(dir: &Path, timeout: Duration) -> Result<Option<u32>, DevnetError> {
    let Some(pid) = running_pid(dir) else {
        let had_state = dir.join(files::PID).exists() || dir.join(files::NETWORK).exists();
        remove_state(dir)?;
        return if had_state {
            Ok(None)
        } else {
            Err(DevnetError::NotRunning { dir: dir.to_owned() })
        };
    };
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(|cause| DevnetError::Spawn { path: "kill".into(), cause })?;
    if !status.success() && is_anvil(pid) {
        return Err(DevnetError::StopTimeout { pid, after: Duration::ZERO });
    }
    let started = tokio::time::Instant::now();
    while is_anvil(pid) {
        if started.elapsed() > timeout {
            return Err(DevnetError::StopTimeout { pid, after: timeout });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    remove_state(dir)?;
    Ok(Some(pid))
}

fn remove_state(dir: &Path) -> Result<(), DevnetError> {
    for name in [files::PID, files::NETWORK, files::LOG] {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(cause) => return Err(DevnetError::Io { path, cause }),
        }
    }
    // Only if nothing else lives there.
    let _ = fs::remove_dir(dir);
    Ok(())
}

/// Checks a detached devnet can start in `dir`: none is running there. A stale pid file
/// (anvil gone) is removed.
pub fn check_free(dir: &Path) -> Result<(), DevnetError> {
    if let Some(pid) = running_pid(dir) {
        return Err(DevnetError::AlreadyRunning { dir: dir.to_owned(), pid });
    }
    let pid = dir.join(files::PID);
    if pid.exists() {
        fs::remove_file(&pid).map_err(io_err(&pid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_keys_match_their_addresses() {
        assert_eq!(anvil_address(0), LOCAL_DEPLOYER);
        assert_eq!(anvil_address(1).to_string(), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        assert_eq!(anvil_address(9).to_string(), "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720");
    }
}
