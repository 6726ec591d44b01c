//! Running modules in Docker, sandboxed (feature `docker`).
//!
//! The executor is what a provider (or a mediator re-running a job) uses to
//! turn a [`ModuleSpec`](lilypad_core::module::ModuleSpec) into results:
//!
//! 1. [`Executor::connect`] and [`Executor::preflight`]: reach dockerd and
//!    report its version (a clear error says how to start it otherwise);
//! 2. [`Executor::ensure_image`]: the image is present, or pulled by digest
//!    with progress, and a digest mismatch is refused;
//! 3. [`Executor::run`]: the job runs without network, capabilities or a
//!    writable root filesystem, within memory, CPU, process, time, log and
//!    output limits, and leaves a results directory in the Lilypad layout
//!    (`stdout`, `stderr`, `exitCode`, `outputs/`). The container is always
//!    removed.
//!
//! Every container carries the labels [`LABEL_EXECUTOR`] (the executor's
//! name) and [`LABEL_DEAL`], so a restarted provider finds and removes what a
//! crash left behind with [`Executor::cleanup_leftovers`].
//!
//! See `docs/execution.md` for the sandbox flags and why each is there.

mod image;
mod run;

use std::{collections::HashMap, time::Duration};

use bollard::{
    Docker,
    query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder},
};
use lilypad_core::module::ImageRef;
use tokio::sync::OnceCell;

pub use image::{ImageReady, PullProgress};
pub use run::{Failure, RunOptions, RunOutcome};

/// Label naming the executor that created a container (see [`Executor::with_name`]).
pub const LABEL_EXECUTOR: &str = "lilypad.executor";
/// Label carrying the deal id a container runs.
pub const LABEL_DEAL: &str = "lilypad.deal";

/// The default socket when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How to start dockerd, for error messages.
const START_HINT: &str = "start it with scripts/setup-docker.sh, or as root: `dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false &` (or `systemctl start docker`); if it runs, give this user access to the socket (`usermod -aG docker $USER`, then log in again) or point DOCKER_HOST at it";

/// What the executor could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// dockerd does not answer (not running, socket missing, no permission).
    #[error("cannot reach dockerd at {host}: {reason}\n  {START_HINT}")]
    DockerUnreachable {
        /// The host tried (`unix:///var/run/docker.sock`, `tcp://...`).
        host: String,
        /// Why, as the client saw it.
        reason: String,
    },
    /// The image is not on this machine and could not be pulled.
    #[error(
        "image {image} is not on this machine and could not be pulled: {reason}\n  pull it with Executor::ensure_image from a registry that has it; the example modules' images are built by scripts/build-example-images.sh"
    )]
    ImageMissing {
        /// The image.
        image: String,
        /// What the daemon said.
        reason: String,
    },
    /// The pulled image does not have the digest the module pins.
    #[error(
        "image {image}: the registry's content does not match the pinned digest {expected}{}{}",
        if got.is_empty() { String::new() } else { format!(" (got {})", got.join(", ")) },
        if detail.is_empty() { String::new() } else { format!(": {detail}") }
    )]
    DigestMismatch {
        /// The image as asked for.
        image: String,
        /// The digest the module pins.
        expected: String,
        /// Digests the daemon reports, if any.
        got: Vec<String>,
        /// What the daemon said, if it refused the content itself.
        detail: String,
    },
    /// Pulling failed.
    #[error("pulling {image} failed: {reason}")]
    Pull {
        /// The image.
        image: String,
        /// What the daemon or registry said.
        reason: String,
    },
    /// Pulling took longer than allowed, or stalled.
    #[error("pulling {image}: {what} after {} s", .after.as_secs())]
    PullTimeout {
        /// The image.
        image: String,
        /// "no progress" or "not finished".
        what: &'static str,
        /// The limit that ran out.
        after: Duration,
    },
    /// The module asks for GPUs the daemon cannot give.
    #[error(
        "the module asks for {count} GPU(s) but dockerd cannot provide them: {reason}\n  install the NVIDIA Container Toolkit (nvidia-container-toolkit), run `nvidia-ctk runtime configure --runtime=docker` and restart dockerd"
    )]
    GpuUnavailable {
        /// GPUs asked for.
        count: u32,
        /// What the daemon said.
        reason: String,
    },
    /// A declared input file was not given.
    #[error(
        "input file {name:?} (mounted at {path}) was not given: pass it in RunOptions::input_files or put it in RunOptions::inputs_dir"
    )]
    MissingInput {
        /// The input's name in the module.
        name: String,
        /// Where the module expects it.
        path: String,
    },
    /// An input file the module does not declare.
    #[error("input file {name:?} is not declared by the module (it declares: {declared})")]
    UnknownInput {
        /// The name given.
        name: String,
        /// What the module declares, comma separated.
        declared: String,
    },
    /// Options or a spec this executor refuses.
    #[error("{0}")]
    Invalid(String),
    /// A file-system operation on the results or inputs failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Any other daemon error.
    #[error("docker {op}: {source}")]
    Docker {
        /// The operation (create, start, inspect, ...).
        op: &'static str,
        /// The client's error.
        #[source]
        source: bollard::errors::Error,
    },
}

impl ExecError {
    fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }
}

/// The daemon, as [`Executor::preflight`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerInfo {
    /// The host connected to.
    pub host: String,
    /// dockerd's version, e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// The API version the daemon speaks (the client negotiated down to it).
    pub api_version: String,
    /// Operating system and architecture, e.g. `linux/amd64`.
    pub platform: String,
    /// Kernel version.
    pub kernel_version: String,
    /// Cgroup version (`1` or `2`), if reported.
    pub cgroup_version: Option<String>,
    /// Container runtimes the daemon knows (`runc`, `nvidia`, ...), sorted.
    pub runtimes: Vec<String>,
}

/// A handle on dockerd that runs modules.
#[derive(Debug)]
pub struct Executor {
    host: String,
    raw: Docker,
    /// The client after API version negotiation: dockerd 20.10 speaks API 1.41
    /// and refuses the newer default of the client.
    negotiated: OnceCell<Docker>,
    name: String,
    pull_timeout: Duration,
    pull_stall_timeout: Duration,
}

impl Executor {
    /// Connects to `DOCKER_HOST`, or to [`DEFAULT_DOCKER_HOST`] when it is not set.
    ///
    /// No request is made yet; [`Self::preflight`] checks the daemon answers.
    pub fn connect() -> Result<Self, ExecError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
        Self::connect_to(&host)
    }

    /// Connects to `host` (`unix:///path`, `tcp://host:port` or `http://...`).
    pub fn connect_to(host: &str) -> Result<Self, ExecError> {
        let raw = Docker::connect_with_host(host).map_err(|e| ExecError::DockerUnreachable {
            host: host.to_owned(),
            reason: unreachable_reason(&e),
        })?;
        Ok(Self {
            host: host.to_owned(),
            raw,
            negotiated: OnceCell::new(),
            name: "default".to_owned(),
            pull_timeout: Duration::from_secs(3600),
            pull_stall_timeout: Duration::from_secs(120),
        })
    }

    /// Names this executor: its containers carry `lilypad.executor=<name>` and
    /// [`Self::cleanup_leftovers`] removes only those. Two providers sharing a
    /// dockerd must use different names. The default is `default`.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Limits on pulling: `total` for a whole pull, `stall` without any progress event.
    #[must_use]
    pub fn with_pull_timeouts(mut self, total: Duration, stall: Duration) -> Self {
        self.pull_timeout = total;
        self.pull_stall_timeout = stall;
        self
    }

    /// The executor's name (see [`Self::with_name`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The daemon host this executor talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    async fn client(&self) -> Result<&Docker, ExecError> {
        self.negotiated
            .get_or_try_init(|| async {
                let unreachable = |reason: String| ExecError::DockerUnreachable {
                    host: self.host.clone(),
                    reason,
                };
                match tokio::time::timeout(
                    Duration::from_secs(15),
                    self.raw.clone().negotiate_version(),
                )
                .await
                {
                    Ok(Ok(d)) => Ok(d),
                    Ok(Err(e)) => Err(unreachable(unreachable_reason(&e))),
                    Err(_) => Err(unreachable("no answer within 15 s".to_owned())),
                }
            })
            .await
    }

    /// Checks the daemon answers and reports what it is.
    pub async fn preflight(&self) -> Result<DockerInfo, ExecError> {
        let docker = self.client().await?;
        let unreachable = |e: bollard::errors::Error| ExecError::DockerUnreachable {
            host: self.host.clone(),
            reason: unreachable_reason(&e),
        };
        let version = docker.version().await.map_err(unreachable)?;
        let info = docker.info().await.map_err(unreachable)?;
        let mut runtimes: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        runtimes.sort();
        Ok(DockerInfo {
            host: self.host.clone(),
            server_version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            platform: format!(
                "{}/{}",
                version.os.unwrap_or_default(),
                version.arch.unwrap_or_default()
            ),
            kernel_version: version.kernel_version.unwrap_or_default(),
            cgroup_version: info.cgroup_version.map(|v| v.to_string()).filter(|v| !v.is_empty()),
            runtimes,
        })
    }

    /// Ids of this executor's containers, all of them or those of one deal,
    /// whatever their state.
    pub async fn containers(&self, deal: Option<&str>) -> Result<Vec<String>, ExecError> {
        let docker = self.client().await?;
        let mut labels = vec![format!("{LABEL_EXECUTOR}={}", self.name)];
        if let Some(deal) = deal {
            labels.push(format!("{LABEL_DEAL}={deal}"));
        }
        let filters = HashMap::from([("label".to_owned(), labels)]);
        let list = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new().all(true).filters(&filters).build(),
            ))
            .await
            .map_err(|source| ExecError::Docker { op: "list containers", source })?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Removes every container this executor (by name) left behind, e.g. after
    /// a crash; returns how many. Call it when a provider starts.
    pub async fn cleanup_leftovers(&self) -> Result<usize, ExecError> {
        let docker = self.client().await?;
        let ids = self.containers(None).await?;
        for id in &ids {
            match docker
                .remove_container(
                    id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await
            {
                Ok(()) => {}
                // Gone meanwhile, or already being removed: the goal is reached.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => {}
                Err(source) => return Err(ExecError::Docker { op: "remove container", source }),
            }
        }
        Ok(ids.len())
    }
}

/// The reference the daemon resolves: by digest when pinned, else by tag.
fn reference(image: &ImageRef) -> String {
    match (&image.digest, &image.tag) {
        (Some(d), _) => format!("{}@{d}", image.repository),
        (None, Some(t)) => format!("{}:{t}", image.repository),
        (None, None) => format!("{}:latest", image.repository),
    }
}

/// A readable reason for a failed connection, without the client's type names.
fn unreachable_reason(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::SocketNotFoundError(path) => {
            format!("the socket {path} does not exist (dockerd is not running)")
        }
        E::RequestTimeoutError => "no answer in time".to_owned(),
        other => {
            let text = error_chain(other);
            if text.contains("ermission denied") {
                format!("permission denied on the socket ({text})")
            } else if text.contains("onnection refused") || text.contains("No such file") {
                format!("nothing listens there (dockerd is not running): {text}")
            } else {
                text
            }
        }
    }
}

/// An error with all its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The daemon's message of a failed request, or the client's error.
fn daemon_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_prefer_the_digest() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = |s: &str| reference(&ImageRef::parse(s).expect("valid"));
        assert_eq!(r("a/b"), "a/b:latest");
        assert_eq!(r("localhost:5000/a:1"), "localhost:5000/a:1");
        assert_eq!(r(&format!("localhost:5000/a:1@{d}")), format!("localhost:5000/a@{d}"));
    }

    #[test]
    fn a_missing_socket_says_how_to_start_dockerd() {
        let e = Executor::connect_to("unix:///nonexistent/docker.sock").expect_err("no socket");
        let text = e.to_string();
        assert!(text.contains("/nonexistent/docker.sock"), "{text}");
        assert!(text.contains("dockerd is not running"), "{text}");
        assert!(text.contains("dockerd --bridge=none"), "{text}");
    }
}
