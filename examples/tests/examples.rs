//! Runs the example programs against a real local network (anvil with every
//! contract, the solver, the content store; dockerd for the jobs): the provider
//! example offers this machine, the backend example runs a cowsay job for a user
//! and streams its steps, the deal watcher follows the deal to its end.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lilypad_sdk::{
    devnet::{self, ANVIL_KEYS},
    localnet::{LocalNetwork, LocalOptions},
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned()
}

/// An example program with the network, a key and a private home.
fn example(bin: &str, network: &Path, key_index: usize, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--network", network.to_str().expect("utf-8 path")])
        .args(args)
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[key_index])
        .env("LILYPAD_HOME", home)
        .env("RUST_LOG", "warn");
    cmd
}

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for the first stdout line containing `needle`; returns that line.
fn wait_line(child: &mut Child, needle: &str) -> String {
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.contains(needle)))
        .unwrap_or_else(|| panic!("the program ended without printing {needle:?}"));
    // Keep draining so the program never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    line
}

/// One HTTP/1.1 request; the whole answer (head and body) once the server closes.
fn http(addr: &str, method: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(300))).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read answer");
    answer
}

#[test]
fn the_examples_run_a_job_end_to_end_on_the_local_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // A network with no provider: the provider example is the only one.
    let net = rt
        .block_on(LocalNetwork::start_with(
            &dir.path().join("net"),
            &|_| {},
            LocalOptions::default().without_provider(),
        ))
        .expect("local network (anvil from scripts/setup-contracts.sh)");
    let network = net.network_file();
    let home = dir.path().join("home");

    let mut provider = example(
        env!("CARGO_BIN_EXE_provider"),
        &network,
        devnet::PROVIDER,
        &home,
        &["--data-dir", dir.path().join("provider").to_str().expect("utf-8")],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("start the provider example");
    let line = wait_line(&mut provider, "is offering this machine");
    assert!(line.contains(&devnet::anvil_address(devnet::PROVIDER).to_string()), "{line}");
    let _provider = Running(provider);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut backend = example(
        env!("CARGO_BIN_EXE_backend"),
        &network,
        devnet::JOB_CREATOR,
        &home,
        &["--listen", &addr],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("start the backend example");
    wait_line(&mut backend, "listening on");
    let _backend = Running(backend);

    // A user asks for a job; the answer is at once, with the job's id.
    let module = repo_root().join("examples/modules/cowsay");
    let body = serde_json::json!({
        "module": module.to_str().expect("utf-8"),
        "inputs": { "Message": "moo from the backend" },
    })
    .to_string();
    let answer = http(&addr, "POST", "/jobs", &body);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(answer.ends_with("{\"id\":1}"), "{answer}");

    // The steps stream as server-sent events until the job is done.
    let started = Instant::now();
    let stream = http(&addr, "GET", "/jobs/1/events", "");
    assert!(stream.contains("content-type: text/event-stream"), "{stream}");
    let steps: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| d.split("\"event\":\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    for expected in
        ["module_resolved", "offer_posted", "deal_agreed", "results_verified", "accepted"]
    {
        assert!(steps.contains(&expected), "no {expected} step in {steps:?}:\n{stream}");
    }
    assert!(stream.contains("event: done"), "the stream did not end with done:\n{stream}");
    eprintln!("job done in {:.1}s", started.elapsed().as_secs_f64());

    // The job's own output, through the backend.
    let view = http(&addr, "GET", "/jobs/1", "");
    let json: serde_json::Value =
        serde_json::from_str(view.split("\r\n\r\n").nth(1).expect("body")).expect("JSON body");
    assert_eq!(json["state"], "done", "{json}");
    assert!(json["stdout"].as_str().is_some_and(|s| s.contains("moo from the backend")), "{json}");
    let deal_id = json["deal_id"].as_str().expect("deal id").to_owned();
    assert_eq!(http(&addr, "GET", "/jobs/9", "").lines().next(), Some("HTTP/1.1 404 Not Found"));

    // The watcher follows the (finished) deal and stops by itself.
    let out = example(
        env!("CARGO_BIN_EXE_deal-watcher"),
        &network,
        devnet::JOB_CREATOR,
        &home,
        &[&deal_id],
    )
    .output()
    .expect("run the deal watcher");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout.trim(),
        format!(
            "deal {deal_id}: Finished(Accepted) (provider {})",
            devnet::anvil_address(devnet::PROVIDER)
        ),
        "{stdout}"
    );
    // With no deal id it picks this account's newest deal: the same one.
    let out =
        example(env!("CARGO_BIN_EXE_deal-watcher"), &network, devnet::JOB_CREATOR, &home, &[])
            .output()
            .expect("run the deal watcher");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("deal {deal_id}: ")));

    rt.block_on(net.shutdown());
}
