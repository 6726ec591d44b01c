//! The devnet's background services (solver, content store, provider): detached
//! processes of our own binaries, each with a pid file and a log in the devnet's
//! state directory.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

/// A service's pid file.
pub(crate) fn pid_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pid"))
}

/// A service's log.
pub(crate) fn log_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// A free port on 127.0.0.1 (bound and released; the service binds it right after).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// The pid of service `name` if it is alive and one of ours (Linux `/proc`).
pub(crate) fn running(dir: &Path, name: &str) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pid_file(dir, name)).ok()?.trim().parse().ok()?;
    // `<pid> (<comm>) <state> ...`: a zombie has exited.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next())?;
    if matches!(state, Some('Z' | 'X')) {
        return None;
    }
    // The command line reads empty for a moment while a process execs; otherwise it
    // must be one of ours (a recycled pid is someone else's).
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (cmdline.is_empty() || String::from_utf8_lossy(&cmdline).contains("lilypad")).then_some(pid)
}

/// Starts `exe args...` detached (its own process group, so a Ctrl-C in this
/// terminal later does not stop it), logging to `<name>.log`.
pub(crate) fn spawn(
    dir: &Path,
    name: &str,
    exe: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> anyhow::Result<u32> {
    let log = log_file(dir, name);
    let out = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err).env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().with_context(|| format!("starting {}", exe.display()))?;
    let pid = child.id();
    fs::write(pid_file(dir, name), pid.to_string())?;
    Ok(pid)
}

/// Waits until something accepts connections on `port`, or the service died.
pub(crate) async fn wait_listening(
    dir: &Path,
    name: &str,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if running(dir, name).is_none() {
            anyhow::bail!("the {name} exited at start; its log:\n{}", tail(&log_file(dir, name)));
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "the {name} did not listen on port {port} within {}s; its log:\n{}",
                timeout.as_secs(),
                tail(&log_file(dir, name))
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops service `name` (SIGTERM, then SIGKILL after `timeout`) and removes its
/// pid file. Returns its pid if it was running.
pub(crate) async fn stop(dir: &Path, name: &str, timeout: Duration) -> anyhow::Result<Option<u32>> {
    let Some(pid) = running(dir, name) else {
        let _ = fs::remove_file(pid_file(dir, name));
        return Ok(None);
    };
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let started = Instant::now();
    while running(dir, name).is_some() {
        if started.elapsed() > timeout {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            tokio::time::sleep(Duration::from_millis(100)).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = fs::remove_file(pid_file(dir, name));
    Ok(Some(pid))
}

/// The last lines of a log.
pub(crate) fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
