//! A local network of real processes for end-to-end tests: a devnet (anvil from
//! node_modules, installed by scripts/setup-contracts.sh; a missing anvil fails the
//! test), a `lilypad-cli storage serve` process and a `lilypad-cli solver` process
//! with its SQLite database, and a network file naming their URLs.

#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lilypad_sdk::{
    chain::NetworkConfig,
    devnet::{self, ANVIL_KEYS, Devnet, DevnetOptions},
};

/// The CLI under test (empty when this module is included by another crate's tests,
/// which use [`cli_bin`]).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_lilypad-cli") {
    Some(p) => p,
    None => "",
};

/// The `lilypad-cli` binary: this crate's, or, from another crate's tests, the one in
/// the same target directory, built first (`cargo build -p lilypad-cli`, a no-op when
/// it is up to date).
pub fn cli_bin() -> PathBuf {
    if !BIN.is_empty() {
        return PathBuf::from(BIN);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "lilypad-cli", "--bin", "lilypad-cli"])
                .current_dir(repo_root())
                .status()
                .expect("run cargo build -p lilypad-cli");
            assert!(status.success(), "cargo build -p lilypad-cli failed");
            let exe = std::env::current_exe().expect("test executable path");
            // target/debug/deps/<test> -> target/debug/lilypad-cli
            let bin = exe
                .parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join(format!("lilypad-cli{}", std::env::consts::EXE_SUFFIX));
            assert!(bin.exists(), "{} is missing after cargo build -p lilypad-cli", bin.display());
            bin
        })
        .clone()
}

/// A multi-threaded runtime for a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A child process, killed with SIGKILL when dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// The URL it printed.
    pub url: String,
    /// Its log (stderr).
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `lilypad-cli ARGS` and reads the URL from the first stdout line
    /// (`... listening on http://...`).
    pub fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Self {
        let log_file =
            std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let mut cmd = Command::new(cli_bin());
        cmd.args(args).env("RUST_LOG", "info").stdout(Stdio::piped()).stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn lilypad-cli");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read the first line");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| {
                panic!(
                    "lilypad-cli {args:?} did not start: {line:?}; its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .to_owned();
        Self { child, url, log: log.to_owned() }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A devnet with storage and solver processes.
pub struct LocalNet {
    /// The chain.
    pub devnet: Devnet,
    /// `lilypad-cli storage serve`.
    pub storage: Proc,
    /// `lilypad-cli solver`.
    pub solver: Proc,
    /// The store's directory.
    pub store_dir: PathBuf,
    /// The solver's database.
    pub db: PathBuf,
    /// The network file with the processes' URLs.
    pub network_file: PathBuf,
    /// The devnet's network, with the URLs.
    pub config: NetworkConfig,
    dir: PathBuf,
}

impl LocalNet {
    /// Starts everything under `dir`.
    pub async fn start(dir: &Path) -> Self {
        let mut opts = DevnetOptions::new(dir.join("devnet"));
        opts.startup_timeout = Duration::from_secs(60);
        let devnet = Devnet::start(&opts, &|_| {})
            .await
            .unwrap_or_else(|e| panic!("cannot start a devnet: {e}"));
        let store_dir = dir.join("store");
        let store_s = store_dir.display().to_string();
        let storage = Proc::spawn(
            &["storage", "serve", "--listen", "127.0.0.1:0", "--dir", &store_s],
            &[],
            &dir.join("storage.log"),
        );
        let db = dir.join("solver.db");
        let solver = Self::spawn_solver(&devnet.network_file(), &db, &dir.join("solver.log"));
        let mut config = devnet.config().clone();
        config.solver_url = Some(solver.url.clone());
        config.storage_url = Some(storage.url.clone());
        let network_file = dir.join("network.toml");
        config.save(&network_file).expect("write the network file");
        Self { devnet, storage, solver, store_dir, db, network_file, config, dir: dir.to_owned() }
    }

    fn spawn_solver(network: &Path, db: &Path, log: &Path) -> Proc {
        let network = network.display().to_string();
        let db = db.display().to_string();
        Proc::spawn(
            &["solver", "--listen", "127.0.0.1:0", "--network", &network, "--db", &db],
            &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::SOLVER])],
            log,
        )
    }

    /// Kills the solver with SIGKILL and starts a new one on the same database; the
    /// network file is rewritten with its new URL.
    pub fn restart_solver_kill9(&mut self) {
        let log = self.dir.join("solver.log");
        let old = std::mem::replace(
            &mut self.solver,
            Proc {
                child: Command::new("true").spawn().expect("spawn true"),
                url: String::new(),
                log: log.clone(),
            },
        );
        old.kill9();
        self.solver = Self::spawn_solver(&self.devnet.network_file(), &self.db, &log);
        self.config.solver_url = Some(self.solver.url.clone());
        self.config.save(&self.network_file).expect("rewrite the network file");
    }

    /// Logs of the processes, for failure messages.
    pub fn logs(&self) -> String {
        format!("--- solver log:\n{}\n--- storage log:\n{}", self.solver.log(), self.storage.log())
    }
}

/// Polls `f` until it gives `Some`, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Unix time now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}
