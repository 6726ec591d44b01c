//! A local network of real processes for end-to-end tests: a devnet (anvil from
//! node_modules, installed by scripts/setup-contracts.sh; a missing anvil fails the
//! test), a `lilypad-cli storage serve` process and a `lilypad-cli solver` process
//! with its SQLite database, and a network file naming their URLs.

#![allow(dead_code, unreachable_pub)]

pub mod pow_deals;
pub mod snap;

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
    BUILT.get_or_init(|| workspace_bin("lilypad-cli")).clone()
}

/// The binary `name` of the workspace package of the same name, in this test's target
/// directory, built first (`cargo build -p NAME`, a no-op when it is up to date).
///
/// With `LILYPAD_TEST_BIN_DIR` set (scripts/test.sh sets it to the directory where the
/// workspace's test build put every binary), the binary there is used as it is: a
/// `cargo build -p NAME` would compile a second copy of the dependency tree, with the
/// features of NAME alone, while the tests run (minutes and a gigabyte of disk).
pub fn workspace_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("LILYPAD_TEST_BIN_DIR") {
        let bin = Path::new(&dir).join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.exists(),
            "{} is missing: LILYPAD_TEST_BIN_DIR names the directory of the workspace's built \
             binaries (build them with `cargo test --workspace --no-run`, or unset it)",
            bin.display()
        );
        return bin;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", name, "--bin", name])
        .current_dir(repo_root())
        .status()
        .unwrap_or_else(|e| panic!("run cargo build -p {name}: {e}"));
    assert!(status.success(), "cargo build -p {name} failed");
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> -> target/debug/<name>
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is missing after cargo build -p {name}", bin.display());
    bin
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

    /// Spawns `lilypad-cli ARGS`, a service that prints no URL (its stdout is dropped).
    pub fn spawn_service(args: &[&str], env: &[(&str, &str)], log: &Path) -> Self {
        let log_file =
            std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.args(args).env("RUST_LOG", "info").stdout(Stdio::null()).stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn lilypad-cli");
        Self { child, url: String::new(), log: log.to_owned() }
    }

    /// Whether the process has exited (and reaps it).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
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

    /// Starts `lilypad-cli bridge` on this network as the devnet's bridge account (the
    /// default key on a local chain), with its database `db`, its home under this
    /// network's directory, and `extra` arguments; logs to `log`.
    pub fn spawn_bridge(&self, db: &Path, extra: &[&str], log: &Path) -> Proc {
        let network = self.network_file.display().to_string();
        let db = db.display().to_string();
        let mut args = vec!["bridge", "--network", &network, "--db", &db, "--poll-ms", "200"];
        args.extend_from_slice(extra);
        let home = self.dir.join("bridge-home").display().to_string();
        Proc::spawn_service(&args, &[("LILYPAD_HOME", &home)], log)
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

/// Makes `<dir>/lilypad-module-<name>`, a git repository holding the files of `src` with
/// tag `version`, and returns the module base (`file://<dir>/lilypad-module-`) under which
/// `name:version` resolves to it (as it would to the public repository).
pub fn git_module(dir: &Path, name: &str, version: &str, src: &Path) -> String {
    let repo = dir.join(format!("lilypad-module-{name}"));
    std::fs::create_dir_all(&repo).expect("module repo dir");
    for entry in std::fs::read_dir(src).expect("module sources") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), repo.join(entry.file_name())).expect("copy a module file");
    }
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git must be installed to make a module repository");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "module"]);
    git(&["tag", version]);
    format!("file://{}/lilypad-module-", dir.display())
}

/// The address a service last logged for its metrics endpoint (`metrics at
/// http://ADDR/metrics`, e.g. after `--metrics-addr 127.0.0.1:0`; the last: a restart
/// appends to the same log), waiting up to `secs` for the line.
pub async fn metrics_addr(log: &Path, secs: u64) -> String {
    const AT: &str = "metrics at http://";
    eventually("the metrics address in the log", secs, || async {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let rest = &log[log.rfind(AT)? + AT.len()..];
        Some(rest[..rest.find('/')?].to_owned())
    })
    .await
}

/// `GET /metrics` at `addr` over plain HTTP/1.0: the Prometheus text (the status line
/// checked).
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n").expect("send the request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    body.to_owned()
}

/// The value of `series` (a metric name with its labels as exposed, e.g.
/// `x_total{reason="a"}`) in the Prometheus text `text`; `None` when it is absent.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a sample value"))
}

/// The sum of every series of metric `name` (all its label values) in `text`.
pub fn sample_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with('{') || r.starts_with(' ')))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
