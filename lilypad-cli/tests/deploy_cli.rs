//! `lilypad-cli deploy` on a chain that is not a devnet: a bare anvil with chain id 421614
//! (Arbitrum Sepolia's, so no devnet key fallback and nothing pre-registered), a deployer
//! key in an encrypted keystore, then every service started on the network file it wrote:
//! the solver, the content store, `lilypad-rp mediate` and `lilypad-rp run` (real
//! Docker), a job through `lilypad-cli run` and an on-chain job through the bridge. Each
//! service registers its own role on chain. Needs anvil (scripts/setup-contracts.sh),
//! dockerd and the example images (scripts/setup-docker.sh,
//! scripts/build-example-images.sh).

mod common;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use alloy::signers::local::PrivateKeySigner;
use common::{Proc, cli_bin, git_module, pow_deals::lilypad_rp, repo_root, runtime};
use lilypad_sdk::{
    chain::{
        ChainClient, DeployOptions, NetworkConfig, Registration, deploy_network, roles,
        verify_deployed,
    },
    core::{Address, U256},
    devnet::{ANVIL_KEYS, anvil_address, find_anvil},
    executor::Executor,
};
use serde_json::Value;

const CHAIN_ID: u64 = 421_614;
const PASSWORD: &str = "correct horse battery staple";
const DEPLOYER: usize = 0;
const SOLVER: usize = 1;
const PROVIDER: usize = 2;
const JOB_CREATOR: usize = 3;
const MEDIATOR: usize = 4;
const BRIDGE: usize = 7;

/// One token in base units.
fn tokens(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

/// A bare anvil (no contracts), killed when dropped.
struct Anvil {
    child: Child,
    port: u16,
}

impl Anvil {
    fn start(dir: &Path) -> Self {
        let anvil = find_anvil().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.join("anvil.log");
        let out = std::fs::File::create(&log).expect("anvil log");
        let mut child = Command::new(anvil)
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", &CHAIN_ID.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn anvil");
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Listening on "))
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.trim().parse().ok())
            {
                return Self { child, port };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("anvil exited ({status}):\n{text}");
            }
            assert!(started.elapsed() < Duration::from_secs(60), "anvil did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes anvil account `index`'s key as an encrypted JSON keystore; returns its path.
fn keystore(dir: &Path, index: usize) -> PathBuf {
    std::fs::create_dir_all(dir).expect("keystore dir");
    let key = alloy::hex::decode(ANVIL_KEYS[index]).expect("hex key");
    let (signer, _) = PrivateKeySigner::encrypt_keystore(
        dir,
        &mut rand08::thread_rng(),
        key,
        PASSWORD,
        Some("deployer.json"),
    )
    .expect("encrypt the keystore");
    assert_eq!(signer.address(), anvil_address(index));
    dir.join("deployer.json")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(cli_bin());
    cmd.args(args)
        .env_remove("WEB3_PRIVATE_KEY")
        .env_remove("LILYPAD_NETWORK")
        .env_remove("LILYPAD_KEYSTORE_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run lilypad-cli")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// A `lilypad-rp` daemon, started and past its "running" line; killed when dropped.
struct Rp {
    child: Child,
    log: PathBuf,
}

impl Rp {
    fn spawn(args: &[&str], network: &Path, key: &str, log: &Path) -> Self {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(lilypad_rp())
            .args(args)
            .arg("--network")
            .arg(network)
            .env("RUST_LOG", "info")
            .env("WEB3_PRIVATE_KEY", key)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn lilypad-rp");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        assert!(
            line.contains("running"),
            "lilypad-rp {args:?} did not start: {line:?}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        Self { child, log: log.to_owned() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn need_docker() {
    let exec = Executor::connect().expect("DOCKER_HOST");
    exec.preflight().await.unwrap_or_else(|e| panic!("dockerd is needed: {e}"));
    let image = lilypad_sdk::core::module::ImageRef::parse("lilypad-example/cowsay:0.1.0")
        .expect("image ref");
    exec.ensure_image(&image, |_| {})
        .await
        .unwrap_or_else(|e| panic!("run scripts/build-example-images.sh: {e}"));
}

#[test]
fn deploy_cli_deploys_a_network_every_service_then_runs_jobs_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    runtime().block_on(async {
        need_docker().await;
        let anvil = Anvil::start(d);
        let keystore = keystore(&d.join("keys"), DEPLOYER);
        let keystore_s = keystore.display().to_string();
        let password = d.join("password.txt");
        std::fs::write(&password, format!("{PASSWORD}\n")).expect("password file");
        let wrong = d.join("wrong.txt");
        std::fs::write(&wrong, "not the password\n").expect("password file");
        let out_file = d.join("testnet.toml");
        let out_s = out_file.display().to_string();
        let (solver_port, storage_port) = (free_port(), free_port());
        let solver_url = format!("http://127.0.0.1:{solver_port}");
        let storage_url = format!("http://127.0.0.1:{storage_port}");
        let (ws, http) = (anvil.ws(), anvil.http());
        let mints = [JOB_CREATOR, PROVIDER, BRIDGE]
            .map(|i| format!("{}=1000", anvil_address(i)))
            .into_iter()
            .chain([format!("{}=5wei", anvil_address(9))])
            .collect::<Vec<_>>();
        let bridge = anvil_address(BRIDGE).to_string();
        let mut args = vec![
            "deploy",
            "--network",
            "arbitrum-sepolia",
            "--rpc-url",
            &ws,
            "--rpc-url",
            &http,
            "--keystore",
            &keystore_s,
            "--name",
            "testnet",
            "--out",
            &out_s,
            "--solver-url",
            &solver_url,
            "--storage-url",
            &storage_url,
            "--bridge",
            &bridge,
        ];
        for m in &mints {
            args.extend(["--mint", m.as_str()]);
        }

        // A wrong password fails clearly, before anything is sent, and shows no key.
        let wrong_s = wrong.display().to_string();
        let mut bad = args.clone();
        bad.extend(["--password-file", &wrong_s]);
        let out = cli(&bad, &[]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "a wrong password deployed: {err}");
        assert!(err.contains("wrong password") && err.contains("deployer.json"), "{err}");
        assert!(!err.contains(ANVIL_KEYS[DEPLOYER].trim_start_matches("0x")), "key shown: {err}");
        assert!(!out_file.exists(), "a network file after a failed deploy");
        let probe = ChainClient::connect_to_deploy(NetworkConfig::undeployed(
            "probe",
            CHAIN_ID,
            vec![http.clone()],
        ))
        .await
        .expect("connect");
        assert_eq!(probe.block_number().await.expect("block"), 0, "nothing was sent");

        // The deployment, with the password from the environment this time.
        let mut good = args.clone();
        good.push("--json");
        let out = cli(&good, &[("LILYPAD_KEYSTORE_PASSWORD", PASSWORD)]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "deploy failed: {err}");
        for step in ["deploying LilypadToken", "deploying LilypadJobManager", "verifying"] {
            assert!(err.contains(step), "no progress line {step:?}: {err}");
        }
        let json: Value = serde_json::from_str(&text(&out.stdout)).expect("deploy --json");
        assert_eq!(json["chain_id"], CHAIN_ID, "{json}");
        assert_eq!(json["network_file"], out_s, "{json}");
        assert_eq!(json["deployer"], anvil_address(DEPLOYER).to_string(), "{json}");
        assert_eq!(json["bridge"], bridge, "{json}");
        let net = NetworkConfig::load(&out_file).expect("the network file loads");
        assert_eq!((net.name.as_str(), net.chain_id), ("testnet", CHAIN_ID));
        assert_eq!(net.rpc_urls, vec![ws.clone(), http.clone()]);
        assert_eq!(net.solver_url.as_deref(), Some(solver_url.as_str()));
        assert_eq!(net.storage_url.as_deref(), Some(storage_url.as_str()));
        assert_eq!(net.deployed_at_block, 1, "the token's block on a fresh chain");
        assert_eq!(json["deployed_at_block"], 1);
        for (name, address) in net.contracts.named() {
            assert_eq!(json["contracts"][name], address.to_string(), "{json}");
        }
        let chain = ChainClient::connect(net.clone()).await.expect("connect to the network");
        verify_deployed(&chain, &net.contracts).await.expect("the contracts are there");
        for i in [JOB_CREATOR, PROVIDER, BRIDGE] {
            assert_eq!(chain.token_balance(anvil_address(i)).await.unwrap(), tokens(1000));
        }
        assert_eq!(chain.token_balance(anvil_address(9)).await.unwrap(), U256::from(5u64));
        assert!(chain.is_bridge(anvil_address(BRIDGE)).await.unwrap());
        assert!(!chain.is_bridge(anvil_address(DEPLOYER)).await.unwrap());
        assert!(chain.pow_round().await.unwrap().is_some(), "the first PoW round started");
        for role in [roles::SOLVER, roles::RESOURCE_PROVIDER, roles::MEDIATOR] {
            assert_eq!(chain.member_count(role).await.unwrap(), 0, "nobody registered yet");
        }

        // It never overwrites a network file unless told to.
        let before = std::fs::read_to_string(&out_file).expect("network file");
        let out = cli(&args, &[("LILYPAD_KEYSTORE_PASSWORD", PASSWORD)]);
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(&out_file).unwrap(), before);

        // The services, each registering itself.
        let store_dir = d.join("store").display().to_string();
        let listen = format!("127.0.0.1:{storage_port}");
        let storage = Proc::spawn(
            &["storage", "serve", "--listen", &listen, "--dir", &store_dir],
            &[],
            &d.join("storage.log"),
        );
        assert_eq!(storage.url, storage_url);
        let listen = format!("127.0.0.1:{solver_port}");
        let db = d.join("solver.db").display().to_string();
        let solver = Proc::spawn(
            &["solver", "--listen", &listen, "--network", &out_s, "--db", &db],
            &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[SOLVER])],
            &d.join("solver.log"),
        );
        assert_eq!(
            chain.solver_url(anvil_address(SOLVER)).await.unwrap().as_deref(),
            Some(solver_url.as_str()),
            "the solver registered its URL\n{}",
            solver.log()
        );
        let med_dir = d.join("mediator").display().to_string();
        let mediator = Rp::spawn(
            &["mediate", "--data-dir", &med_dir, "--executor-name", "deploy-mediator"],
            &out_file,
            ANVIL_KEYS[MEDIATOR],
            &d.join("mediator.log"),
        );
        assert!(chain.has_roles(anvil_address(MEDIATOR), roles::MEDIATOR).await.unwrap());
        assert!(mediator.log().contains("as a mediator"), "{}", mediator.log());
        let rp_dir = d.join("rp").display().to_string();
        let provider = Rp::spawn(
            &[
                "run",
                "--data-dir",
                &rp_dir,
                "--executor-name",
                "deploy-rp",
                "--poll-secs",
                "1",
                "--price",
                "1000wei",
                "--timeout-collateral",
                "50wei",
                "--submit-margin",
                "5",
                "--min-disk-mib",
                "50",
            ],
            &out_file,
            ANVIL_KEYS[PROVIDER],
            &d.join("rp.log"),
        );
        assert!(
            chain.has_roles(anvil_address(PROVIDER), roles::RESOURCE_PROVIDER).await.unwrap(),
            "{}",
            provider.log()
        );
        let logs = || {
            format!(
                "--- solver:\n{}\n--- storage:\n{}\n--- provider:\n{}\n--- mediator:\n{}",
                solver.log(),
                storage.log(),
                provider.log(),
                mediator.log()
            )
        };

        // A job through `lilypad-cli run`.
        let cowsay = repo_root().join("examples/modules/cowsay");
        let home = d.join("jc-home").display().to_string();
        let out_dir = d.join("out").display().to_string();
        let run = cli(
            &[
                "run",
                cowsay.to_str().expect("utf-8 path"),
                "-i",
                "Message=deployed",
                "--network",
                &out_s,
                "--output-dir",
                &out_dir,
                "--json",
            ],
            &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[JOB_CREATOR]), ("LILYPAD_HOME", &home)],
        );
        let (out, err) = (text(&run.stdout), text(&run.stderr));
        assert!(run.status.success(), "run failed: {out}\n{err}\n{}", logs());
        assert!(err.contains("as a job creator"), "{err}");
        let json: Value = serde_json::from_str(&out).expect("run --json");
        assert_eq!(json["status"], "accepted", "{json}");
        let stdout = std::fs::read_to_string(json["stdout"].as_str().expect("stdout path"))
            .expect("job stdout");
        assert!(stdout.contains("< deployed >"), "{stdout}");
        assert_eq!(
            chain.token_balance(anvil_address(PROVIDER)).await.unwrap(),
            tokens(1000) + U256::from(1000u64),
            "the provider was paid its price"
        );

        // An on-chain job: a client contract asks, the bridge runs it, the client is called back.
        let base = git_module(&d.join("modules"), "cowsay", "v0.0.4", &cowsay);
        let bridge_db = d.join("bridge.sqlite").display().to_string();
        let bridge_home = d.join("bridge-home").display().to_string();
        let mut bridge_proc = Proc::spawn_service(
            &[
                "bridge",
                "--network",
                &out_s,
                "--db",
                &bridge_db,
                "--poll-ms",
                "200",
                "--module-base",
                &base,
                "--allow-unpinned-image",
            ],
            &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[BRIDGE]), ("LILYPAD_HOME", &bridge_home)],
            &d.join("bridge.log"),
        );
        let jc = [("WEB3_PRIVATE_KEY", ANVIL_KEYS[JOB_CREATOR])];
        let out = cli(
            &[
                "jobs",
                "deploy-example-client",
                "--network",
                &out_s,
                "--payment",
                "1",
                "--fund",
                "5",
            ],
            &jc,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let client = text(&out.stdout).trim().to_owned();
        let out =
            cli(&["jobs", "request-cowsay", "--client", &client, "--network", &out_s, "moo"], &jc);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let id = text(&out.stdout).trim().to_owned();
        let out = cli(
            &[
                "jobs",
                "show",
                &id,
                "--wait",
                "240",
                "--json",
                "--example-client",
                &client,
                "--network",
                &out_s,
            ],
            &jc,
        );
        let bridge_log = || std::fs::read_to_string(d.join("bridge.log")).unwrap_or_default();
        assert!(out.status.success(), "{}\n{}\n{}", text(&out.stderr), bridge_log(), logs());
        let shown: Value = serde_json::from_str(&text(&out.stdout)).expect("jobs show --json");
        assert_eq!(shown["status"], "fulfilled", "{shown}\n{}\n{}", bridge_log(), logs());
        assert_eq!(shown["client_status"], "fulfilled", "{shown}");
        assert!(bridge_log().contains("as a job creator (the bridge)"), "{}", bridge_log());
        assert!(bridge_proc.exited().is_none(), "the bridge keeps running\n{}", bridge_log());
        assert!(chain.has_roles(anvil_address(BRIDGE), roles::JOB_CREATOR).await.unwrap());
    });
}

#[test]
fn deploy_network_over_a_websocket_rpc_url_and_roles_register_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    runtime().block_on(async {
        let anvil = Anvil::start(dir.path());
        // Chain id 0: the node's.
        let mut config = NetworkConfig::undeployed("ws-only", 0, vec![anvil.ws()]);
        config.rpc.max_receipt_poll_ms = 100;
        // An undeployed network cannot be used, only deployed.
        let known = NetworkConfig { chain_id: CHAIN_ID, ..config.clone() };
        let e = ChainClient::connect(known).await.expect_err("no contracts");
        assert!(e.to_string().contains("no deployment yet"), "{e}");
        let chain = ChainClient::connect_to_deploy(config.clone()).await.expect("ws connect");
        assert_eq!(chain.config().chain_id, CHAIN_ID);
        let admin = chain.with_signer(ANVIL_KEYS[DEPLOYER].parse().expect("key"));
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |m: &str| seen.lock().expect("lock").push(m.to_owned());
        let deployment =
            deploy_network(&admin, &DeployOptions::default(), &progress).await.expect("deploy");
        assert_eq!(deployment.bridge, anvil_address(DEPLOYER), "the deployer by default");
        assert!(seen.lock().expect("lock").iter().any(|m| m.contains("LilypadController at")));
        verify_deployed(&chain, &deployment.contracts).await.expect("verified over ws");

        // A network over ws only: reads, writes, registration (once).
        let mut net = config;
        net.chain_id = CHAIN_ID;
        net.contracts = deployment.contracts;
        let user = ChainClient::connect(net.clone())
            .await
            .expect("connect")
            .with_signer(ANVIL_KEYS[SOLVER].parse().expect("key"));
        let r = user.ensure_registered(roles::SOLVER, "http://solver.example").await.unwrap();
        assert_eq!(r, Registration::Registered);
        let r = user.ensure_registered(roles::SOLVER, "http://solver.example").await.unwrap();
        assert_eq!(r, Registration::Already);
        let r = user.ensure_registered(roles::MEDIATOR, "").await.unwrap();
        assert_eq!(r, Registration::Registered, "a second role is added");
        let entry = user.user(anvil_address(SOLVER)).await.unwrap().expect("registered");
        assert_eq!(entry.roles, roles::SOLVER | roles::MEDIATOR, "the first role is kept");
        assert_eq!(entry.url, "http://solver.example", "and its URL");

        // The wrong addresses are caught: the token where the users registry should be.
        let mut wrong = deployment.contracts;
        wrong.users = wrong.token;
        let e = verify_deployed(&chain, &wrong).await.expect_err("wrong code").to_string();
        assert!(e.starts_with("users at "), "{e}");
        wrong.users = Address::repeat_byte(0x42);
        let e = verify_deployed(&chain, &wrong).await.expect_err("no code").to_string();
        assert!(e.contains("no contract code"), "{e}");

        // A ws URL nobody serves fails with what to check.
        let mut down = net;
        down.rpc_urls = vec![format!("ws://127.0.0.1:{}", free_port())];
        down.rpc.retries = 1;
        let e = ChainClient::connect(down).await.expect_err("nobody listens").to_string();
        assert!(e.contains("WebSocket"), "{e}");
    });
}

#[test]
fn deploy_is_what_an_undeployed_builtin_network_asks_for() {
    let out = cli(&["jobs", "show", "1", "--network", "arbitrum-sepolia"], &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("arbitrum-sepolia") && err.contains("no deployment yet"), "{err}");
    assert!(err.contains("lilypad-cli deploy --network arbitrum-sepolia"), "{err}");
    let out = cli(
        &["solver", "--network", "arbitrum-sepolia", "--db", "/nonexistent/solver.db"],
        &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[SOLVER])],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no deployment yet"), "{err}");
    // Without a key, deploy says where one comes from.
    let out =
        cli(&["deploy", "--network", "arbitrum-sepolia", "--out", "/nonexistent/x.toml"], &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--keystore") && err.contains("WEB3_PRIVATE_KEY"), "{err}");
}
