//! Running one job in a sandboxed container and writing its results.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt, fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bollard::{
    Docker,
    container::LogOutput,
    errors::Error as DockerError,
    models::{
        ContainerCreateBody, DeviceRequest, HostConfig, HostConfigLogConfig, Mount, MountType,
        ResourcesUlimits,
    },
    query_parameters::{
        AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptions,
        RemoveContainerOptionsBuilder,
    },
};
use futures::{Stream, StreamExt};
use lilypad_core::module::ModuleSpec;
use tokio::{task::JoinHandle, time::Instant};

use super::{ExecError, Executor, LABEL_DEAL, LABEL_EXECUTOR, daemon_message, reference};

const MIB: u64 = 1024 * 1024;
/// Docker refuses memory limits under 6 MiB; a module asking for less gets this.
const MIN_MEMORY_MIB: u64 = 8;
/// Names of the files every results directory has; outputs may not use them.
const RESERVED: [&str; 3] = ["stdout", "stderr", "exitCode"];

/// How a job may run; [`RunOptions::new`] gives safe defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// The deal this job belongs to: the container's `lilypad.deal` label.
    pub deal_id: String,
    /// Where the results go. It must not exist or be empty; it receives
    /// `stdout`, `stderr`, `exitCode` and one directory per output (`outputs/`).
    pub results_dir: PathBuf,
    /// A directory mounted read-only at `/inputs`.
    pub inputs_dir: Option<PathBuf>,
    /// Input files by the name the module declares; each is mounted read-only
    /// at the path the module gives it.
    pub input_files: BTreeMap<String, PathBuf>,
    /// Memory when the module asks for none, in MiB.
    pub default_memory_mib: u64,
    /// CPU when the module asks for none, in millicores.
    pub default_cpu_millicores: u32,
    /// An upper bound on the module's own timeout.
    pub max_timeout: Option<Duration>,
    /// Most processes (and threads) the container may have at once.
    pub pids_limit: i64,
    /// Size of the tmpfs at `/tmp`, in MiB (it counts against the memory limit).
    pub tmp_mib: u64,
    /// Bytes of stdout kept; the rest is dropped and `stdout_truncated` set.
    pub max_stdout_bytes: u64,
    /// Bytes of stderr kept; the rest is dropped and `stderr_truncated` set.
    pub max_stderr_bytes: u64,
    /// Bytes the outputs may hold in total; over it the job is killed and its
    /// outputs are rejected (deleted).
    pub max_output_bytes: u64,
    /// Files and directories the outputs may hold.
    pub max_output_files: u64,
    /// How often the outputs are measured while the job runs.
    pub output_poll_interval: Duration,
    /// Which GPUs to give (ids or indexes as the NVIDIA runtime knows them);
    /// `None` gives any `gpu_count` of them.
    pub gpu_device_ids: Option<Vec<String>>,
}

impl RunOptions {
    /// Options with defaults: 512 MiB and one core when the module does not
    /// say, 256 processes, a 64 MiB `/tmp`, 16 MiB each of stdout and stderr,
    /// 1 GiB and 10,000 files of outputs.
    pub fn new(deal_id: impl Into<String>, results_dir: impl Into<PathBuf>) -> Self {
        Self {
            deal_id: deal_id.into(),
            results_dir: results_dir.into(),
            inputs_dir: None,
            input_files: BTreeMap::new(),
            default_memory_mib: 512,
            default_cpu_millicores: 1000,
            max_timeout: None,
            pids_limit: 256,
            tmp_mib: 64,
            max_stdout_bytes: 16 * MIB,
            max_stderr_bytes: 16 * MIB,
            max_output_bytes: 1024 * MIB,
            max_output_files: 10_000,
            output_poll_interval: Duration::from_millis(200),
            gpu_device_ids: None,
        }
    }
}

/// Why a job that ran did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// It ran past its deadline and was killed.
    DeadlineExceeded {
        /// The deadline.
        deadline: Duration,
    },
    /// The kernel killed it for using more memory than allowed.
    OutOfMemory {
        /// The limit, in MiB.
        limit_mib: u64,
    },
    /// It wrote more output bytes than allowed; they were deleted.
    OutputsTooLarge {
        /// Bytes seen (at least).
        bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// It wrote more output files than allowed; they were deleted.
    TooManyOutputFiles {
        /// Files and directories seen (at least).
        files: u64,
        /// The limit.
        max_files: u64,
    },
    /// It exited with a non-zero code.
    NonZeroExit {
        /// The exit code.
        code: i64,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeadlineExceeded { deadline } => {
                write!(f, "deadline {} exceeded: the job was killed", seconds(*deadline))
            }
            Self::OutOfMemory { limit_mib } => {
                write!(f, "killed: memory limit {limit_mib} MiB exceeded")
            }
            Self::OutputsTooLarge { bytes, max_bytes } => write!(
                f,
                "outputs rejected: at least {} written, the limit is {}",
                size(*bytes),
                size(*max_bytes)
            ),
            Self::TooManyOutputFiles { files, max_files } => write!(
                f,
                "outputs rejected: at least {files} files and directories written, the limit is {max_files}"
            ),
            Self::NonZeroExit { code: 137 } => {
                f.write_str("exited with code 137 (killed by SIGKILL)")
            }
            Self::NonZeroExit { code } => write!(f, "exited with code {code}"),
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn size(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// What happened to a job that ran (whether or not it succeeded).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOutcome {
    /// The results directory (`stdout`, `stderr`, `exitCode`, outputs).
    pub results_dir: PathBuf,
    /// The container's exit code (137 when killed).
    pub exit_code: i64,
    /// Killed at the deadline.
    pub timed_out: bool,
    /// Killed by the kernel for exceeding the memory limit.
    pub oom_killed: bool,
    /// stdout was longer than allowed and was cut.
    pub stdout_truncated: bool,
    /// stderr was longer than allowed and was cut.
    pub stderr_truncated: bool,
    /// Bytes in the outputs (0 when they were rejected).
    pub output_bytes: u64,
    /// Wall-clock time from start to exit.
    pub duration: Duration,
    /// Why it did not succeed, if it did not.
    pub failure: Option<Failure>,
}

impl RunOutcome {
    /// Exit code 0, in time, within every limit.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }

    /// The failure as a sentence a user can read, if any.
    pub fn reason(&self) -> Option<String> {
        self.failure.as_ref().map(ToString::to_string)
    }

    /// The captured stdout file.
    pub fn stdout_path(&self) -> PathBuf {
        self.results_dir.join("stdout")
    }

    /// The captured stderr file.
    pub fn stderr_path(&self) -> PathBuf {
        self.results_dir.join("stderr")
    }

    /// The directory of the default output (`/outputs`).
    pub fn outputs_dir(&self) -> PathBuf {
        self.results_dir.join("outputs")
    }
}

/// Everything decided before the container is created.
struct Plan {
    /// The reference, as messages name it.
    image: String,
    /// The local image id a pinned reference resolved to: what the container
    /// is created from.
    create_from: Option<String>,
    memory_mib: u64,
    nano_cpus: i64,
    deadline: Duration,
    mounts: Vec<Mount>,
    /// Host directories of the outputs.
    output_dirs: Vec<PathBuf>,
    gpu: Option<DeviceRequest>,
    gpu_count: u32,
}

impl Plan {
    fn new(spec: &ModuleSpec, opts: &RunOptions) -> Result<Self, ExecError> {
        let invalid = |m: String| ExecError::Invalid(m);
        if opts.deal_id.is_empty() {
            return Err(invalid(
                "RunOptions::deal_id is empty: every job container is labelled with its deal"
                    .into(),
            ));
        }
        let mut mounts = Vec::new();
        let bind = |source: &Path, target: &str, read_only: bool| Mount {
            target: Some(target.to_owned()),
            source: Some(source.display().to_string()),
            typ: Some(MountType::BIND),
            read_only: Some(read_only),
            ..Default::default()
        };

        // Outputs: one host directory each, under the results directory.
        let mut names = BTreeSet::new();
        let mut paths = BTreeSet::new();
        let mut output_dirs = Vec::new();
        let results = absolute(&opts.results_dir)?;
        for o in &spec.outputs {
            let ok_name = !o.name.is_empty()
                && o.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !o.name.starts_with('.')
                && !RESERVED.contains(&o.name.as_str());
            if !ok_name {
                return Err(invalid(format!(
                    "output name {:?} cannot be a directory of the results (use letters, digits, '.', '_', '-'; not {})",
                    o.name,
                    RESERVED.join(", ")
                )));
            }
            if !names.insert(o.name.as_str()) || !paths.insert(o.path.as_str()) {
                return Err(invalid(format!(
                    "output {:?} at {} is declared twice",
                    o.name, o.path
                )));
            }
            if o.path.trim_end_matches('/').is_empty() {
                return Err(invalid(format!("output {:?} cannot be the container's root", o.name)));
            }
            let dir = results.join(&o.name);
            mounts.push(bind(&dir, &o.path, false));
            output_dirs.push(dir);
        }

        // Inputs: the directory at /inputs, then each declared file at its path.
        let inputs_dir = match &opts.inputs_dir {
            Some(d) => {
                let d = fs::canonicalize(d).map_err(|e| ExecError::io(d, e))?;
                if !d.is_dir() {
                    return Err(invalid(format!("inputs_dir {} is not a directory", d.display())));
                }
                mounts.push(bind(&d, "/inputs", true));
                Some(d)
            }
            None => None,
        };
        for name in opts.input_files.keys() {
            if !spec.input_files.iter().any(|f| &f.name == name) {
                let declared: Vec<&str> =
                    spec.input_files.iter().map(|f| f.name.as_str()).collect();
                return Err(ExecError::UnknownInput {
                    name: name.clone(),
                    declared: if declared.is_empty() { "none".into() } else { declared.join(", ") },
                });
            }
        }
        for f in &spec.input_files {
            match opts.input_files.get(&f.name) {
                Some(host) => {
                    let host = fs::canonicalize(host).map_err(|e| ExecError::io(host, e))?;
                    if !host.is_file() {
                        return Err(invalid(format!(
                            "input file {:?}: {} is not a file",
                            f.name,
                            host.display()
                        )));
                    }
                    mounts.push(bind(&host, &f.path, true));
                }
                None => {
                    // Also fine: the file is already in the inputs directory.
                    let in_dir = inputs_dir.as_ref().zip(f.path.strip_prefix("/inputs/"));
                    if !in_dir.is_some_and(|(d, rel)| d.join(rel).is_file()) {
                        return Err(ExecError::MissingInput {
                            name: f.name.clone(),
                            path: f.path.clone(),
                        });
                    }
                }
            }
        }

        let r = &spec.resources;
        let memory_mib =
            if r.ram_mib > 0 { r.ram_mib } else { opts.default_memory_mib }.max(MIN_MEMORY_MIB);
        let millicores =
            if r.cpu_millicores > 0 { r.cpu_millicores } else { opts.default_cpu_millicores };
        let mut deadline = Duration::from_secs(spec.timeout_secs.max(1));
        if let Some(max) = opts.max_timeout {
            deadline = deadline.min(max);
        }
        let gpu = (r.gpu_count > 0).then(|| DeviceRequest {
            driver: Some(String::new()),
            count: match opts.gpu_device_ids {
                Some(_) => None,
                None => Some(i64::from(r.gpu_count)),
            },
            device_ids: opts.gpu_device_ids.clone(),
            capabilities: Some(vec![vec!["gpu".to_owned()]]),
            options: None,
        });
        Ok(Self {
            image: reference(&spec.image),
            create_from: None,
            memory_mib,
            nano_cpus: i64::from(millicores) * 1_000_000,
            deadline,
            mounts,
            output_dirs,
            gpu,
            gpu_count: r.gpu_count,
        })
    }

    fn container(
        &self,
        spec: &ModuleSpec,
        opts: &RunOptions,
        executor: &str,
    ) -> ContainerCreateBody {
        let memory = i64::try_from(self.memory_mib.saturating_mul(MIB)).unwrap_or(i64::MAX);
        let host = HostConfig {
            // No network at all: only a loopback interface of its own.
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,nosuid,nodev,size={}m", opts.tmp_mib.max(1)),
            )])),
            memory: Some(memory),
            // Equal to memory: no swap, so the limit is a real limit.
            memory_swap: Some(memory),
            nano_cpus: Some(self.nano_cpus),
            pids_limit: Some(opts.pids_limit.max(1)),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("core".into()),
                soft: Some(0),
                hard: Some(0),
            }]),
            ipc_mode: Some("private".into()),
            privileged: Some(false),
            mounts: Some(self.mounts.clone()),
            device_requests: self.gpu.clone().map(|g| vec![g]),
            // Output is streamed through attach; nothing piles up in the daemon's log files.
            log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
            auto_remove: Some(false),
            ..Default::default()
        };
        let (entrypoint, cmd) = if spec.entrypoint.is_empty() {
            (None, (!spec.parameters.is_empty()).then(|| spec.parameters.clone()))
        } else {
            (Some(spec.entrypoint.clone()), Some(spec.parameters.clone()))
        };
        ContainerCreateBody {
            image: Some(self.create_from.clone().unwrap_or_else(|| self.image.clone())),
            entrypoint,
            cmd,
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: spec.working_dir.clone(),
            hostname: Some("lilypad-job".into()),
            network_disabled: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            open_stdin: Some(false),
            labels: Some(HashMap::from([
                (LABEL_EXECUTOR.to_owned(), executor.to_owned()),
                (LABEL_DEAL.to_owned(), opts.deal_id.clone()),
            ])),
            host_config: Some(host),
            ..Default::default()
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, ExecError> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        let cwd = std::env::current_dir().map_err(|e| ExecError::io(path, e))?;
        Ok(cwd.join(path))
    }
}

/// Creates the results directory (which must not exist or be empty) and the
/// output directories.
fn prepare_results(dir: &Path, outputs: &[PathBuf]) -> Result<(), ExecError> {
    if dir.exists() {
        let mut entries = fs::read_dir(dir).map_err(|e| ExecError::io(dir, e))?;
        if entries.next().is_some() {
            return Err(ExecError::Invalid(format!(
                "results directory {} is not empty: give each run a new one",
                dir.display()
            )));
        }
    }
    fs::create_dir_all(dir).map_err(|e| ExecError::io(dir, e))?;
    for o in outputs {
        fs::create_dir_all(o).map_err(|e| ExecError::io(o, e))?;
        // The job runs as its image's user with no capabilities, so it cannot
        // bypass permissions: the directory must be writable by any uid.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(o, fs::Permissions::from_mode(0o777))
                .map_err(|e| ExecError::io(o, e))?;
        }
    }
    Ok(())
}

/// Unique per process and call, readable in `docker ps`.
fn container_name(deal: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let clean: String = deal
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(48)
        .collect();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!(
        "lilypad-{clean}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes the container when dropped without [`Self::remove`] (an error
/// path or a cancelled future), in the background.
struct ContainerGuard {
    docker: Docker,
    id: Option<String>,
}

impl ContainerGuard {
    async fn remove(mut self) -> Result<(), ExecError> {
        match self.id.take() {
            Some(id) => remove_container(&self.docker, &id).await,
            None => Ok(()),
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let docker = self.docker.clone();
            handle.spawn(async move {
                let _ = remove_container(&docker, &id).await;
            });
        }
    }
}

async fn remove_container(docker: &Docker, id: &str) -> Result<(), ExecError> {
    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    match docker.remove_container(id, Some(force)).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(source) => Err(ExecError::Docker { op: "remove container", source }),
    }
}

/// A task aborted when dropped, so a cancelled run leaves none behind.
struct Task<T>(JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Output captured up to a cap.
#[derive(Debug, Default)]
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capped {
    fn new(cap: u64) -> Self {
        Self {
            bytes: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// Reads the attached streams until the container's output closes. Past the
/// caps, output is read and dropped so the job never blocks on a full pipe.
async fn collect_logs(
    mut stream: impl Stream<Item = Result<LogOutput, DockerError>> + Unpin,
    max_stdout: u64,
    max_stderr: u64,
) -> (Capped, Capped) {
    let mut out = Capped::new(max_stdout);
    let mut err = Capped::new(max_stderr);
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.push(&message)
            }
            Ok(LogOutput::StdErr { message }) => err.push(&message),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(_) => break,
        }
    }
    (out, err)
}

/// Bytes and entries under some directories, without following symlinks
/// (a job may plant one pointing anywhere on the host). Stops counting once
/// `max_files` is passed, so a job cannot make the walk itself expensive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    bytes: u64,
    files: u64,
}

fn usage(dirs: &[PathBuf], max_files: u64) -> Usage {
    let mut u = Usage::default();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            u.files += 1;
            if u.files > max_files {
                return u;
            }
            let Ok(meta) = fs::symlink_metadata(entry.path()) else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                u.bytes = u.bytes.saturating_add(meta.len());
            }
        }
    }
    u
}

fn over(u: Usage, opts: &RunOptions) -> Option<Failure> {
    if u.files > opts.max_output_files {
        Some(Failure::TooManyOutputFiles { files: u.files, max_files: opts.max_output_files })
    } else if u.bytes > opts.max_output_bytes {
        Some(Failure::OutputsTooLarge { bytes: u.bytes, max_bytes: opts.max_output_bytes })
    } else {
        None
    }
}

async fn measure(dirs: Vec<PathBuf>, max_files: u64) -> Usage {
    tokio::task::spawn_blocking(move || usage(&dirs, max_files)).await.unwrap_or_default()
}

/// How the wait for the container ended.
enum End {
    Exited,
    Deadline,
    Outputs(Failure),
}

impl Executor {
    /// Runs `spec` to completion in a sandboxed container and writes its
    /// results to `opts.results_dir`.
    ///
    /// `Ok` means the job ran: it may still have failed (see
    /// [`RunOutcome::failure`]). `Err` means it could not run (daemon, image,
    /// options). The container is removed in every case; when this future is
    /// dropped early, it is removed in the background.
    pub async fn run(&self, spec: &ModuleSpec, opts: &RunOptions) -> Result<RunOutcome, ExecError> {
        let docker = self.client().await?.clone();
        let mut plan = Plan::new(spec, opts)?;
        if spec.image.is_pinned() {
            // Run exactly the image the pin names: the container is created from
            // the local id the pin resolved to, never from a name that could be
            // retagged in between.
            match self.local_image(&plan.image, &spec.image).await? {
                Some(id) => plan.create_from = Some(id),
                None => {
                    return Err(ExecError::ImageMissing {
                        image: plan.image.clone(),
                        reason: "no image with that digest is on this machine".into(),
                    });
                }
            }
        }
        prepare_results(&opts.results_dir, &plan.output_dirs)?;

        let create =
            CreateContainerOptionsBuilder::new().name(&container_name(&opts.deal_id)).build();
        let created = docker
            .create_container(Some(create), plan.container(spec, opts, &self.name))
            .await
            .map_err(|e| self.create_error(&plan, e))?;
        let guard = ContainerGuard { docker: docker.clone(), id: Some(created.id.clone()) };
        let result = self.supervise(&docker, &created.id, &plan, opts).await;
        let removed = guard.remove().await;
        let outcome = result?;
        removed?;
        Ok(outcome)
    }

    fn create_error(&self, plan: &Plan, e: DockerError) -> ExecError {
        let message = daemon_message(&e);
        match &e {
            DockerError::DockerResponseServerError { status_code: 404, .. } => {
                ExecError::ImageMissing { image: plan.image.clone(), reason: message }
            }
            _ if plan.gpu.is_some() && is_gpu_error(&message) => {
                ExecError::GpuUnavailable { count: plan.gpu_count, reason: message }
            }
            _ => ExecError::Docker { op: "create container", source: e },
        }
    }

    async fn supervise(
        &self,
        docker: &Docker,
        id: &str,
        plan: &Plan,
        opts: &RunOptions,
    ) -> Result<RunOutcome, ExecError> {
        // Attach before start so no output is missed.
        let attach = docker
            .attach_container(
                id,
                Some(
                    AttachContainerOptionsBuilder::new()
                        .stream(true)
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            )
            .await
            .map_err(|source| ExecError::Docker { op: "attach", source })?;
        let logs = Task(tokio::spawn(collect_logs(
            attach.output,
            opts.max_stdout_bytes,
            opts.max_stderr_bytes,
        )));

        docker.start_container(id, None).await.map_err(|e| {
            let message = daemon_message(&e);
            if plan.gpu.is_some() && is_gpu_error(&message) {
                ExecError::GpuUnavailable { count: plan.gpu_count, reason: message }
            } else {
                ExecError::Docker { op: "start container", source: e }
            }
        })?;
        let started = Instant::now();

        // After start: the default wait condition ("not-running") would return
        // at once for a container that is only created.
        let mut wait = docker.wait_container(id, None);
        let watch = async {
            loop {
                tokio::time::sleep(opts.output_poll_interval).await;
                let u = measure(plan.output_dirs.clone(), opts.max_output_files).await;
                if let Some(f) = over(u, opts) {
                    return f;
                }
            }
        };
        let end = tokio::select! {
            waited = wait.next() => match waited {
                // A non-zero exit arrives as an error; inspect tells the code.
                None | Some(Ok(_) | Err(DockerError::DockerContainerWaitError { .. })) => End::Exited,
                // The daemon connection broke: the job's state is unknown, so
                // it is not reported as a result (the caller removes it).
                Some(Err(source)) => return Err(ExecError::Docker { op: "wait for container", source }),
            },
            () = tokio::time::sleep(plan.deadline) => End::Deadline,
            f = watch => End::Outputs(f),
        };
        drop(wait);
        if !matches!(end, End::Exited) {
            match docker.kill_container(id, None::<KillContainerOptions>).await {
                // 409: it exited meanwhile.
                Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 409, .. }) => {}
                Err(source) => return Err(ExecError::Docker { op: "kill container", source }),
            }
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                docker.wait_container(id, None).next(),
            )
            .await;
        }
        let duration = started.elapsed();

        let state = docker
            .inspect_container(id, None)
            .await
            .map_err(|source| ExecError::Docker { op: "inspect container", source })?
            .state
            .unwrap_or_default();
        let exit_code = state.exit_code.unwrap_or(-1);
        let oom_killed = state.oom_killed.unwrap_or(false);

        // The attached streams close when the container stops.
        let mut logs = logs;
        let (stdout, stderr) =
            match tokio::time::timeout(Duration::from_secs(10), &mut logs.0).await {
                Ok(Ok(captured)) => captured,
                _ => (Capped::default(), Capped::default()),
            };

        // Measured once more after exit: writes after the last poll count too.
        let timed_out = matches!(end, End::Deadline);
        let final_usage = measure(plan.output_dirs.clone(), opts.max_output_files).await;
        let outputs_failure = match end {
            End::Outputs(f) => Some(f),
            _ => over(final_usage, opts),
        };
        let output_bytes = if outputs_failure.is_some() {
            for dir in &plan.output_dirs {
                fs::remove_dir_all(dir).map_err(|e| ExecError::io(dir, e))?;
                fs::create_dir_all(dir).map_err(|e| ExecError::io(dir, e))?;
            }
            0
        } else {
            final_usage.bytes
        };

        let dir = &opts.results_dir;
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            fs::write(&path, bytes).map_err(|e| ExecError::io(&path, e))
        };
        write("stdout", &stdout.bytes)?;
        write("stderr", &stderr.bytes)?;
        write("exitCode", exit_code.to_string().as_bytes())?;

        let failure = if timed_out {
            Some(Failure::DeadlineExceeded { deadline: plan.deadline })
        } else if let Some(f) = outputs_failure {
            Some(f)
        } else if oom_killed {
            Some(Failure::OutOfMemory { limit_mib: plan.memory_mib })
        } else if exit_code != 0 {
            Some(Failure::NonZeroExit { code: exit_code })
        } else {
            None
        };
        Ok(RunOutcome {
            results_dir: dir.clone(),
            exit_code,
            timed_out,
            oom_killed,
            stdout_truncated: stdout.truncated,
            stderr_truncated: stderr.truncated,
            output_bytes,
            duration,
            failure,
        })
    }
}

fn is_gpu_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("device driver") || m.contains("gpu") || m.contains("nvidia")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_output_keeps_the_first_bytes() {
        let mut c = Capped::new(5);
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"defg");
        c.push(b"h");
        assert_eq!(c.bytes, b"abcde");
        assert!(c.truncated);
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            Failure::OutOfMemory { limit_mib: 64 }.to_string(),
            "killed: memory limit 64 MiB exceeded"
        );
        assert_eq!(
            Failure::DeadlineExceeded { deadline: Duration::from_secs(5) }.to_string(),
            "deadline 5 s exceeded: the job was killed"
        );
        assert_eq!(
            Failure::OutputsTooLarge { bytes: 3 * MIB, max_bytes: MIB }.to_string(),
            "outputs rejected: at least 3.0 MiB written, the limit is 1.0 MiB"
        );
    }

    #[test]
    fn usage_counts_files_but_not_symlink_targets() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("a"), [0u8; 100]).expect("write");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub/b"), [0u8; 23]).expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink("/usr", dir.path().join("link")).expect("symlink");
        let u = usage(&[dir.path().to_owned()], 100);
        assert_eq!(u.bytes, 123);
        assert_eq!(u.files, if cfg!(unix) { 4 } else { 3 });
        assert!(usage(&[dir.path().to_owned()], 1).files > 1, "stops past the cap");
    }
}
