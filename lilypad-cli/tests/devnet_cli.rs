//! `lilypad-cli devnet up | status | down`, run as a user would: the real binary, a
//! real anvil (from node_modules, installed by scripts/setup-contracts.sh).

use std::process::Command;

fn cli(args: &[&str], home: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lilypad-cli"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("LILYPAD_HOME", home)
        .output()
        .expect("run lilypad-cli");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

/// Stops the devnet even when an assertion fails half way.
struct Down<'a>(&'a std::path::Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = cli(&["devnet", "down"], self.0);
    }
}

#[test]
fn up_status_down() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("devnet");
    let _down = Down(home.path());
    let (ok, out, err) = cli(&["devnet", "up"], home.path());
    assert!(ok, "devnet up failed: {err}");
    assert!(out.starts_with("devnet up: anvil (pid "), "{out}");
    assert!(out.contains("controller  0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"), "{out}");
    assert!(out.contains("job_manager 0x5FC8d32690cc91D4c39d9d3abcBD16989F875707"), "{out}");
    assert!(out.contains("0x14dC79964da2C08b23698B3D3cc7Ca32193d9955 "), "{out}");
    assert!(out.contains("bridge (BRIDGE_ROLE of the job manager"), "{out}");
    assert!(
        out.contains(&format!("export LILYPAD_NETWORK={}", dir.join("network.toml").display())),
        "{out}"
    );
    assert!(out.contains("lilypad-cli devnet down\n"), "the default dir needs no --dir: {out}");
    assert!(dir.join("network.toml").is_file() && dir.join("anvil.pid").is_file());
    // The content store and the solver run beside anvil, at the URLs of the network file.
    for service in ["storage", "solver"] {
        assert!(out.contains(&format!("  {service:<8} pid ")), "{out}");
        assert!(dir.join(format!("{service}.pid")).is_file(), "{service}.pid");
    }
    let network = std::fs::read_to_string(dir.join("network.toml")).unwrap();
    let solver_url = network
        .lines()
        .find_map(|l| l.strip_prefix("solver_url = "))
        .map(|u| u.trim_matches('"').to_owned())
        .expect("solver_url in the network file");
    let health = http_get(solver_url.trim_start_matches("http://"), "/healthz");
    assert!(health.contains("\"status\":\"ok\""), "solver at {solver_url}: {health:?}");

    // A second devnet in the same place is refused.
    let (ok, _, err) = cli(&["devnet", "up"], home.path());
    assert!(!ok);
    assert!(err.contains("a devnet is already running from"), "{err}");

    let (ok, out, err) = cli(&["devnet", "status"], home.path());
    assert!(ok, "devnet status failed: {err}");
    assert!(out.contains("  solver   running, pid "), "{out}");
    assert!(out.contains("  storage  running, pid "), "{out}");
    assert!(out.starts_with("devnet running: anvil pid "), "{out}");
    assert!(out.contains("bytes of code"), "{out}");
    assert!(!out.contains("NO CODE"), "{out}");
    assert!(out.contains("0x90F79bf6EB2c4f870365E785982E1f101E93b906      1000000 LP"), "{out}");
    assert!(out.contains("mediation fee 0.001 LP"), "{out}");
    assert!(out.contains("proof of work: round 1"), "{out}");
    assert!(out.contains("job manager: 0 jobs, job timeout 86400s, bridge role granted"), "{out}");

    let (ok, out, err) = cli(&["devnet", "down"], home.path());
    assert!(ok, "devnet down failed: {err}");
    assert!(out.starts_with("devnet down: stopped anvil (pid "), "{out}");
    assert!(!dir.exists());

    let (ok, _, err) = cli(&["devnet", "status"], home.path());
    assert!(!ok);
    assert!(err.contains("no devnet is running from"), "{err}");
    let (ok, _, err) = cli(&["devnet", "down", "--dir", dir.to_str().unwrap()], home.path());
    assert!(!ok);
    assert!(err.contains("start one with `lilypad-cli devnet up`"), "{err}");
}

#[test]
fn a_missing_anvil_is_explained() {
    let home = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli(&["devnet", "up", "--anvil", "/nonexistent/anvil"], home.path());
    assert!(!ok);
    assert!(err.contains("run scripts/setup-contracts.sh"), "{err}");
}

/// A plain HTTP/1.0 GET (no client library needed for one health check).
fn http_get(host_port: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host_port).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n").expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}
