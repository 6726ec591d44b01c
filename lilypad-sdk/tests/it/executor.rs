//! The Docker executor on a real dockerd: sandbox, limits, results layout.
//!
//! These tests fail (never skip) when dockerd does not answer or the example
//! images are missing: run `scripts/setup-docker.sh` and
//! `scripts/build-example-images.sh` (both run by `scripts/setup.sh`).
//! Each test uses an executor of its own name, so it can check by label that
//! it left no container behind while the others run in parallel.

use std::{
    collections::BTreeMap,
    fs,
    io::ErrorKind,
    net::TcpListener,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lilypad_core::{
    module::{ImageRef, ModuleSpec, spec::OutputSpec},
    spec::{Gpu, JobRequirements, MachineSpec},
};
use lilypad_sdk::{
    executor::{ExecError, Executor, Failure, RunOptions, RunOutcome},
    module::load_local,
};

/// The busybox image of the cowsay example, also used for ad-hoc shell jobs.
pub(crate) const BUSYBOX_IMAGE: &str = "lilypad-example/cowsay:0.1.0";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An executor named after the test, after checking dockerd answers and the
/// example images exist.
pub(crate) async fn executor(test: &str) -> Executor {
    let exec = Executor::connect()
        .unwrap_or_else(|e| panic!("dockerd is not reachable (run scripts/setup-docker.sh): {e}"))
        .with_name(format!("it-{test}"));
    if let Err(e) = exec.preflight().await {
        panic!("dockerd is not reachable (run scripts/setup-docker.sh): {e}");
    }
    for image in ["cowsay", "wordcount", "gpu-hello"] {
        let image = ImageRef::parse(&format!("lilypad-example/{image}:0.1.0")).expect("image ref");
        let ready = exec.ensure_image(&image, |_| {}).await.unwrap_or_else(|e| {
            panic!("example image missing (run scripts/build-example-images.sh): {e}")
        });
        assert!(!ready.pulled, "example images are built locally, never pulled");
    }
    // A previous, interrupted run of this test may have left containers.
    exec.cleanup_leftovers().await.expect("cleanup");
    exec
}

/// Fails the test if the executor has any container left.
pub(crate) async fn assert_no_leftovers(exec: &Executor) {
    let left = exec.containers(None).await.expect("list containers");
    assert!(left.is_empty(), "containers left behind by {}: {left:?}", exec.name());
}

/// A shell job on the busybox image: 500 millicores, 64 MiB, 30 s.
pub(crate) fn sh_spec(script: &str) -> ModuleSpec {
    ModuleSpec {
        image: ImageRef::parse(BUSYBOX_IMAGE).expect("image ref"),
        entrypoint: vec!["/bin/sh".into(), "-c".into(), script.into()],
        parameters: vec![],
        env: vec![],
        working_dir: None,
        resources: JobRequirements { cpu_millicores: 500, ram_mib: 64, ..Default::default() },
        timeout_secs: 30,
        outputs: vec![OutputSpec { name: "outputs".into(), path: "/outputs".into() }],
        input_files: vec![],
        verification: Default::default(),
    }
}

fn render(module: &str, inputs: &[(&str, &str)]) -> ModuleSpec {
    let m = load_local(&repo_root().join("examples/modules").join(module)).expect("load module");
    let inputs: BTreeMap<String, String> =
        inputs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    m.render(&inputs).expect("render module").1
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn results(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("results")
}

async fn run_ok(exec: &Executor, spec: &ModuleSpec, opts: &RunOptions) -> RunOutcome {
    exec.run(spec, opts).await.unwrap_or_else(|e| panic!("the job could not run: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_reports_the_daemon() {
    let exec = executor("preflight").await;
    let info = exec.preflight().await.expect("preflight");
    assert!(!info.server_version.is_empty(), "{info:?}");
    assert!(info.api_version.starts_with("1."), "{info:?}");
    assert!(info.platform.starts_with("linux/"), "{info:?}");
    assert!(info.runtimes.iter().any(|r| r == "runc"), "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_socket_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("docker.sock");
    // A socket file nobody listens on: what a crashed dockerd leaves.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind socket"));
    let exec = Executor::connect_to(&format!("unix://{}", path.display())).expect("socket exists");
    let e = exec.preflight().await.expect_err("nobody listens");
    assert!(matches!(e, ExecError::DockerUnreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("dockerd is not running"), "{text}");
    assert!(text.contains("scripts/setup-docker.sh"), "{text}");
    assert!(text.contains("dockerd --bridge=none"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cowsay_says_the_message_and_writes_outputs() {
    let exec = executor("cowsay").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = render("cowsay", &[("Message", "hello from the executor test")]);
    let opts = RunOptions::new("deal-cowsay", results(&dir));
    let out = run_ok(&exec, &spec, &opts).await;

    assert!(out.succeeded(), "{:?}: {}", out.reason(), read(out.stderr_path()));
    assert_eq!(out.exit_code, 0);
    let stdout = read(out.stdout_path());
    assert!(stdout.contains("< hello from the executor test >"), "{stdout}");
    assert!(stdout.contains("(oo)"), "a cow: {stdout}");
    assert_eq!(read(out.outputs_dir().join("cowsay.txt")), stdout, "the picture is an output too");
    assert_eq!(read(results(&dir).join("exitCode")), "0");
    assert_eq!(read(out.stderr_path()), "");
    assert!(out.output_bytes > 0);
    assert!(!out.stdout_truncated && !out.timed_out && !out.oom_killed);
    assert!(exec.containers(Some("deal-cowsay")).await.expect("list").is_empty());
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_entrypoint_parameters_and_working_dir_are_honoured() {
    let exec = executor("env").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec =
        sh_spec(r#"echo "greeting=$GREETING empty=[$EMPTY]"; echo "pwd=$(pwd)"; echo "args=$*""#);
    spec.parameters = vec!["sh".into(), "one".into(), "two words".into()];
    spec.env = vec![("GREETING".into(), "a=b c".into()), ("EMPTY".into(), String::new())];
    spec.working_dir = Some("/tmp".into());
    let out = run_ok(&exec, &spec, &RunOptions::new("deal-env", results(&dir))).await;
    assert!(out.succeeded(), "{:?}: {}", out.reason(), read(out.stderr_path()));
    assert_eq!(read(out.stdout_path()), "greeting=a=b c empty=[]\npwd=/tmp\nargs=one two words\n");

    // The rendered cowsay module: its entrypoint is the cowsay script and COW picks the art.
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = render("cowsay", &[("Message", "moo"), ("Cow", "tux")]);
    let out = run_ok(&exec, &spec, &RunOptions::new("deal-env-2", results(&dir))).await;
    let stdout = read(out.stdout_path());
    assert!(stdout.contains("< moo >") && stdout.contains("|o_o |"), "{stdout}");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordcount_reads_its_input_file() {
    let exec = executor("wordcount").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let text = dir.path().join("text.txt");
    fs::write(&text, "the quick brown fox\njumps over\n the lazy dog\n").expect("write input");
    let spec = render("wordcount", &[]);
    assert_eq!(spec.input_files.len(), 1, "the template declares its input file");

    // Not given: refused before anything runs.
    let e =
        exec.run(&spec, &RunOptions::new("deal-wc", results(&dir))).await.expect_err("no input");
    assert!(matches!(&e, ExecError::MissingInput { name, .. } if name == "Text"), "{e}");
    let mut opts = RunOptions::new("deal-wc", dir.path().join("results-2"));
    opts.input_files.insert("Txt".into(), text.clone());
    let e = exec.run(&spec, &opts).await.expect_err("a name the module does not declare");
    assert!(e.to_string().contains("declares: Text"), "{e}");

    let mut opts = RunOptions::new("deal-wc", results(&dir));
    opts.input_files.insert("Text".into(), text.clone());
    let out = run_ok(&exec, &spec, &opts).await;
    assert!(out.succeeded(), "{:?}: {}", out.reason(), read(out.stderr_path()));
    assert_eq!(read(out.outputs_dir().join("counts.txt")), "9 /inputs/text.txt\n9 total\n");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_and_the_root_filesystem_are_read_only() {
    let exec = executor("readonly").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let inputs = dir.path().join("inputs");
    fs::create_dir(&inputs).expect("mkdir");
    fs::write(inputs.join("data.txt"), "original\n").expect("write");
    let spec = sh_spec(
        "cat /inputs/data.txt; \
         echo changed > /inputs/data.txt && echo INPUT_WRITTEN; \
         touch /inputs/new && echo INPUT_CREATED; \
         touch /bin/x && echo ROOT_WRITTEN; \
         echo ok > /tmp/scratch && echo TMP_OK; \
         echo ok > /outputs/out && echo OUTPUT_OK",
    );
    let mut opts = RunOptions::new("deal-ro", results(&dir));
    opts.inputs_dir = Some(inputs.clone());
    let out = run_ok(&exec, &spec, &opts).await;
    let stdout = read(out.stdout_path());
    let stderr = read(out.stderr_path());
    assert!(stdout.starts_with("original\n"), "{stdout}");
    assert!(!stdout.contains("INPUT_WRITTEN") && !stdout.contains("INPUT_CREATED"), "{stdout}");
    assert!(!stdout.contains("ROOT_WRITTEN"), "{stdout}");
    assert!(stdout.contains("TMP_OK") && stdout.contains("OUTPUT_OK"), "{stdout}\n{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(read(inputs.join("data.txt")), "original\n");
    assert!(!inputs.join("new").exists());
    assert_eq!(read(out.outputs_dir().join("out")), "ok\n");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_memory_limit_is_a_clean_oom_failure() {
    let exec = executor("oom").await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Holds 200 MB in a shell variable: far over 64 MiB.
    let spec = sh_spec(r#"x=$(head -c 200000000 /dev/zero | tr '\0' a); echo "held ${#x} bytes""#);
    let out = run_ok(&exec, &spec, &RunOptions::new("deal-oom", results(&dir))).await;
    assert!(out.oom_killed, "{out:?}");
    assert_eq!(out.failure, Some(Failure::OutOfMemory { limit_mib: 64 }));
    assert_eq!(out.reason().as_deref(), Some("killed: memory limit 64 MiB exceeded"));
    assert!(!read(out.stdout_path()).contains("held"));
    assert_eq!(read(results(&dir).join("exitCode")), "137");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_the_job_is_killed_and_removed() {
    let exec = executor("deadline").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = sh_spec("echo started; sleep 120; echo finished");
    spec.timeout_secs = 2;
    let t = Instant::now();
    let out = run_ok(&exec, &spec, &RunOptions::new("deal-deadline", results(&dir))).await;
    assert!(t.elapsed() < Duration::from_secs(30), "killed promptly: {:?}", t.elapsed());
    assert!(out.timed_out);
    assert!(out.duration >= Duration::from_secs(2), "{:?}", out.duration);
    assert_eq!(out.reason().as_deref(), Some("deadline 2 s exceeded: the job was killed"));
    assert_eq!(read(out.stdout_path()), "started\n", "output up to the kill is kept");
    assert_no_leftovers(&exec).await;

    // The provider's own bound applies when it is shorter than the module's.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new("deal-deadline-2", results(&dir));
    opts.max_timeout = Some(Duration::from_secs(1));
    let out = run_ok(&exec, &sh_spec("sleep 120"), &opts).await;
    assert_eq!(out.failure, Some(Failure::DeadlineExceeded { deadline: Duration::from_secs(1) }));
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_has_no_network() {
    let exec = executor("network").await;
    let dir = tempfile::tempdir().expect("temp dir");
    // A host listener the job will try to reach.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    // The outside address is only tried when the job sees no interface but
    // loopback, so a broken sandbox could not send a packet out. 192.0.2.1 is
    // TEST-NET-1 (RFC 5737), reserved for documentation.
    let spec = sh_spec(&format!(
        "echo \"interfaces: $(ls /sys/class/net | tr '\\n' ' ')\"; \
         echo \"routes: $(tail -n +2 /proc/net/route | wc -l)\"; \
         echo hello | nc -w 2 127.0.0.1 {port} && echo HOST_REACHED; \
         if [ \"$(ls /sys/class/net)\" = lo ]; then \
           nc -w 2 192.0.2.1 80 </dev/null && echo OUTSIDE_REACHED; \
         fi; echo done"
    ));
    let out = run_ok(&exec, &spec, &RunOptions::new("deal-net", results(&dir))).await;
    let stdout = read(out.stdout_path());
    let stderr = read(out.stderr_path());
    assert!(stdout.contains("interfaces: lo \n"), "{stdout}");
    assert!(stdout.contains("routes: 0\n"), "{stdout}");
    assert!(!stdout.contains("HOST_REACHED") && !stdout.contains("OUTSIDE_REACHED"), "{stdout}");
    assert!(stdout.ends_with("done\n"), "{stdout}");
    assert!(stderr.contains("Connection refused"), "its own loopback: {stderr}");
    assert!(stderr.contains("Network is unreachable"), "{stderr}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the host listener saw a connection from {peer}"),
        Err(e) => panic!("accept: {e}"),
    }
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_over_the_cap_are_rejected() {
    let exec = executor("outputs-cap").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new("deal-big", results(&dir));
    opts.max_output_bytes = 1024 * 1024;
    let spec = sh_spec("head -c 5000000 /dev/zero > /outputs/big; echo wrote");
    let out = run_ok(&exec, &spec, &opts).await;
    match &out.failure {
        Some(Failure::OutputsTooLarge { bytes, max_bytes }) => {
            assert!(*bytes > 1024 * 1024, "{bytes}");
            assert_eq!(*max_bytes, 1024 * 1024);
        }
        other => panic!("expected outputs rejected, got {other:?}"),
    }
    assert!(out.reason().expect("reason").starts_with("outputs rejected"), "{:?}", out.reason());
    assert_eq!(out.output_bytes, 0);
    assert_eq!(fs::read_dir(out.outputs_dir()).expect("outputs dir").count(), 0, "deleted");

    // Many small files count too.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new("deal-many", results(&dir));
    opts.max_output_files = 50;
    let spec = sh_spec("i=0; while [ $i -lt 300 ]; do : > /outputs/f$i; i=$((i+1)); done");
    let out = run_ok(&exec, &spec, &opts).await;
    assert!(
        matches!(out.failure, Some(Failure::TooManyOutputFiles { max_files: 50, .. })),
        "{out:?}"
    );

    // A job that keeps writing is stopped while it runs, long before its deadline.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new("deal-stream", results(&dir));
    opts.max_output_bytes = 1024 * 1024;
    let mut spec =
        sh_spec("while :; do head -c 100000 /dev/zero >> /outputs/grow; sleep 0.05; done");
    spec.timeout_secs = 60;
    let t = Instant::now();
    let out = run_ok(&exec, &spec, &opts).await;
    assert!(matches!(out.failure, Some(Failure::OutputsTooLarge { .. })), "{out:?}");
    assert!(!out.timed_out && t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_over_the_cap_is_truncated_and_flagged() {
    let exec = executor("stdout-cap").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new("deal-chatty", results(&dir));
    opts.max_stdout_bytes = 1000;
    // 200 KB of stdout, then a short stderr line that must still arrive whole.
    let spec = sh_spec("yes 0123456789 | head -c 200000; echo bye >&2");
    let out = run_ok(&exec, &spec, &opts).await;
    assert!(out.succeeded(), "{:?}", out.reason());
    assert!(out.stdout_truncated && !out.stderr_truncated);
    let stdout = fs::read(out.stdout_path()).expect("stdout");
    assert_eq!(stdout.len(), 1000);
    assert!(stdout.starts_with(b"0123456789\n0123456789\n"));
    assert_eq!(read(out.stderr_path()), "bye\n");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pids_limit_contains_a_fork_bomb() {
    let exec = executor("pids").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new("deal-forks", results(&dir));
    opts.pids_limit = 32;
    let spec =
        sh_spec("i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; echo spawned $i");
    let out = run_ok(&exec, &spec, &opts).await;
    assert!(!read(out.stdout_path()).contains("spawned 100"));
    assert!(read(out.stderr_path()).contains("can't fork"), "{}", read(out.stderr_path()));
    assert!(matches!(out.failure, Some(Failure::NonZeroExit { .. })), "{out:?}");

    // A real fork bomb runs into the limit until the deadline kills it all.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new("deal-bomb", results(&dir));
    opts.pids_limit = 64;
    let mut spec = sh_spec("bomb() { bomb | bomb & }; bomb; sleep 60");
    spec.timeout_secs = 3;
    let out = run_ok(&exec, &spec, &opts).await;
    assert!(out.timed_out || out.exit_code != 0, "{out:?}");
    assert_no_leftovers(&exec).await;

    // And the machine still runs jobs.
    let dir = tempfile::tempdir().expect("temp dir");
    let out =
        run_ok(&exec, &sh_spec("echo alive"), &RunOptions::new("deal-after", results(&dir))).await;
    assert_eq!(read(out.stdout_path()), "alive\n");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_module_gets_its_gpu_request_to_docker() {
    let exec = executor("gpu").await;
    let info = exec.preflight().await.expect("preflight");
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = render("gpu-hello", &[]);
    assert_eq!(spec.resources.gpu_count, 1);
    let result = exec.run(&spec, &RunOptions::new("deal-gpu", results(&dir))).await;
    if info.runtimes.iter().any(|r| r == "nvidia") {
        // A GPU machine with the NVIDIA toolkit: the job sees its device.
        let out = result.expect("the GPU job runs");
        assert!(read(out.stdout_path()).contains("GPU devices:"), "{}", read(out.stdout_path()));
    } else {
        // No GPU runtime here: dockerd refuses the device request, clearly.
        let e = result.expect_err("no GPU runtime");
        assert!(matches!(e, ExecError::GpuUnavailable { count: 1, .. }), "{e:?}");
        assert!(e.to_string().contains("NVIDIA Container Toolkit"), "{e}");
    }
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_a_clear_error() {
    let exec = executor("missing-image").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = sh_spec("true");
    spec.image = ImageRef::parse("lilypad-example/no-such-image:0.0.0").expect("image ref");
    let e = exec
        .run(&spec, &RunOptions::new("deal-noimage", results(&dir)))
        .await
        .expect_err("no image");
    assert!(matches!(e, ExecError::ImageMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("lilypad-example/no-such-image:0.0.0"), "{e}");
    assert_no_leftovers(&exec).await;
}

/// The local id of `reference` (the sha256 of its config).
async fn image_id(reference: &str) -> String {
    let docker = bollard::Docker::connect_with_local_defaults().expect("docker client");
    docker.inspect_image(reference).await.expect("inspect image").id.expect("image id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pinned_by_its_local_id_runs_that_very_image() {
    // A locally built image has no repo digest: the example model modules pin
    // their image id, and the name in front of it binds nothing.
    let exec = executor("pin-by-id").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let id = image_id(BUSYBOX_IMAGE).await;
    let mut spec = sh_spec("echo pinned-by-id > /outputs/said");
    spec.image =
        ImageRef::parse(&format!("lilypad-example/not-a-tag-here:0.0.0@{id}")).expect("image ref");
    let ready = exec.ensure_image(&spec.image, |_| {}).await.expect("the pinned id is here");
    assert_eq!(ready.id, id);
    assert!(!ready.pulled);
    let out =
        exec.run(&spec, &RunOptions::new("deal-pin-id", results(&dir))).await.expect("it runs");
    assert!(out.failure.is_none(), "{out:?}");
    assert_eq!(read(out.outputs_dir().join("said")).trim(), "pinned-by-id");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_no_local_image_has_is_missing_and_never_falls_back_to_the_tag() {
    let exec = executor("pin-missing").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = sh_spec("true");
    // The tag exists here; the digest names nothing.
    let wrong = format!("sha256:{}", "0e".repeat(32));
    spec.image = ImageRef::parse(&format!("{BUSYBOX_IMAGE}@{wrong}")).expect("image ref");
    let e = exec
        .run(&spec, &RunOptions::new("deal-pin-missing", results(&dir)))
        .await
        .expect_err("no image has that digest");
    assert!(matches!(e, ExecError::ImageMissing { .. }), "{e:?}");
    assert!(e.to_string().contains(&wrong), "{e}");
    assert_no_leftovers(&exec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_directory_is_never_reused() {
    let exec = executor("results-dir").await;
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("stale"), "x").expect("write");
    let e = exec
        .run(&sh_spec("true"), &RunOptions::new("deal-reuse", dir.path()))
        .await
        .expect_err("not empty");
    assert!(e.to_string().contains("is not empty"), "{e}");
}

/// Polls `run` until its job has written `outputs/started`, so it is running.
async fn drive_until_started(
    run: &mut (impl Future<Output = Result<RunOutcome, ExecError>> + Unpin),
    results: &Path,
) {
    let marker = results.join("outputs/started");
    let t = Instant::now();
    tokio::select! {
        r = run => panic!("the job ended early: {r:?}"),
        () = async {
            while !marker.exists() {
                assert!(t.elapsed() < Duration::from_secs(60), "the job did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_crashed_jobs_leave_no_container() {
    let exec = executor("cleanup").await;
    let dir = tempfile::tempdir().expect("temp dir");

    // Cancelled: the run future is dropped while the job runs.
    let spec = sh_spec("touch /outputs/started; sleep 120");
    let opts = RunOptions::new("deal-cancel", results(&dir));
    let mut run = Box::pin(exec.run(&spec, &opts));
    drive_until_started(&mut run, &results(&dir)).await;
    drop(run);
    let t = Instant::now();
    while !exec.containers(Some("deal-cancel")).await.expect("list").is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "the cancelled job's container stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Crashed: a provider died mid-job (simulated: the future is forgotten, so
    // nothing removes the container); the next start cleans up by label.
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = RunOptions::new("deal-crash", results(&dir));
    let mut run = std::mem::ManuallyDrop::new(Box::pin(exec.run(&spec, &opts)));
    drive_until_started(&mut *run, &results(&dir)).await;
    assert_eq!(exec.containers(Some("deal-crash")).await.expect("list").len(), 1);
    let other = Executor::connect().expect("connect").with_name("it-cleanup-other");
    assert_eq!(other.cleanup_leftovers().await.expect("cleanup"), 0, "only its own containers");
    assert_eq!(exec.cleanup_leftovers().await.expect("cleanup"), 1);
    assert_no_leftovers(&exec).await;
}

#[test]
fn gpu_hello_only_fits_machines_with_a_gpu() {
    let req = render("gpu-hello", &[]).resources;
    let cpu_only =
        MachineSpec { cpu_millicores: 8000, ram_mib: 16384, disk_mib: 100_000, gpus: vec![] };
    let gpu = |vram_mib| Gpu { vendor: "NVIDIA".into(), model: "test".into(), vram_mib };
    let with_gpu = MachineSpec { gpus: vec![gpu(8192)], ..cpu_only };
    let small_gpu = MachineSpec { gpus: vec![gpu(512)], ..cpu_only };
    assert!(cpu_only.fits(&req).is_err());
    assert!(small_gpu.fits(&req).is_err(), "1024 MiB of VRAM asked");
    assert_eq!(with_gpu.fits(&req), Ok(()));
    // The CPU examples fit the CPU-only machine.
    assert_eq!(cpu_only.fits(&render("cowsay", &[]).resources), Ok(()));
    assert_eq!(cpu_only.fits(&render("wordcount", &[]).resources), Ok(()));
}
