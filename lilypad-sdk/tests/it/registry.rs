//! Pulling by digest from a real registry (Debian's `docker-registry`, the
//! distribution project, installed by `scripts/setup-docker.sh`), and a
//! registry that serves content not matching the digest asked for.
//!
//! Each test starts its own registry on a free loopback port (dockerd treats
//! 127.0.0.0/8 registries as insecure, so plain HTTP works) and stops it after.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use bollard::{
    Docker,
    auth::DockerCredentials,
    models::ContainerCreateBody,
    query_parameters::{
        CommitContainerOptionsBuilder, PushImageOptionsBuilder, RemoveContainerOptionsBuilder,
        RemoveImageOptionsBuilder,
    },
};
use futures::StreamExt;
use lilypad_core::module::ImageRef;
use lilypad_sdk::executor::{ExecError, PullProgress, RunOptions};

use crate::executor::{BUSYBOX_IMAGE, assert_no_leftovers, executor, sh_spec};

/// A `docker-registry` process on 127.0.0.1, stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start docker-registry ({e}): run scripts/setup-docker.sh (apt-get install docker-registry)")
            });
        let registry = Self { child, port, _dir: dir };
        let t = Instant::now();
        while http_get(port, "/v2/").is_none_or(|r| !r.starts_with("HTTP/1.1 200")) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "docker-registry did not answer on port {port}"
            );
            thread::sleep(Duration::from_millis(100));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn docker() -> Docker {
    // The tests' own client for setup (commit, push, remove); the executor
    // under test has its own.
    Docker::connect_with_defaults().expect("docker client")
}

/// A new image (the busybox image plus a file with `nonce`), so its top layer
/// exists nowhere else; returns its id.
async fn unique_image(docker: &Docker, repo: &str, tag: &str, nonce: &str) -> String {
    let created = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            ContainerCreateBody {
                image: Some(BUSYBOX_IMAGE.into()),
                entrypoint: Some(vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    format!("echo {nonce} > /nonce"),
                ]),
                network_disabled: Some(true),
                host_config: Some(bollard::models::HostConfig {
                    network_mode: Some("none".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create container");
    docker.start_container(&created.id, None).await.expect("start");
    let _ = docker.wait_container(&created.id, None).next().await;
    let image = docker
        .commit_container(
            CommitContainerOptionsBuilder::new().container(&created.id).repo(repo).tag(tag).build(),
            bollard::models::ContainerConfig {
                entrypoint: Some(vec!["/bin/cat".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("commit");
    docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .expect("remove container");
    image.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_by_digest_with_progress_from_a_real_registry() {
    let exec = executor("pull").await;
    let registry = Registry::start();
    let docker = docker();
    let repo = format!("127.0.0.1:{}/lilypad-it/pull", registry.port);
    let nonce = format!("nonce-{}-{}", std::process::id(), registry.port);
    let id = unique_image(&docker, &repo, "v1", &nonce).await;

    let mut push = docker.push_image(
        &repo,
        Some(PushImageOptionsBuilder::new().tag("v1").build()),
        Some(DockerCredentials::default()),
    );
    while let Some(event) = push.next().await {
        let event = event.expect("push");
        assert!(event.error_detail.is_none(), "push failed: {event:?}");
    }
    let pushed = docker.inspect_image(&id).await.expect("inspect");
    let digest_ref = pushed
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.starts_with(&repo))
        .expect("the push recorded a digest");
    let digest = digest_ref.rsplit('@').next().expect("digest").to_owned();

    // Gone from this machine: the pull must fetch the unique layer.
    docker
        .remove_image(&id, Some(RemoveImageOptionsBuilder::new().force(true).build()), None)
        .await
        .expect("remove image");
    assert!(docker.inspect_image(&digest_ref).await.is_err());

    let image = ImageRef::parse(&digest_ref).expect("pinned image ref");
    let mut events: Vec<PullProgress> = Vec::new();
    let ready = exec.ensure_image(&image, |p| events.push(p)).await.expect("pull by digest");
    assert!(ready.pulled);
    assert_eq!(ready.id, id, "content addressed: the same image came back");
    assert_eq!(ready.reference, format!("{repo}@{digest}"));
    assert!(
        events.iter().any(|e| e.layer.is_some() && e.status == "Pull complete"),
        "a layer was pulled: {events:?}"
    );
    assert!(
        events.iter().any(|e| e.status.contains(&digest)),
        "the digest is reported: {events:?}"
    );

    // Present now: no pull, no events.
    let mut again = 0;
    let ready = exec.ensure_image(&image, |_| again += 1).await.expect("present");
    assert!(!ready.pulled);
    assert_eq!(again, 0);

    // And it runs, pinned.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = sh_spec("cat /nonce");
    spec.image = image;
    let out = exec
        .run(&spec, &RunOptions::new("deal-pinned", dir.path().join("r")))
        .await
        .expect("run the pulled image");
    assert_eq!(std::fs::read_to_string(out.stdout_path()).expect("stdout"), format!("{nonce}\n"));

    // A digest the registry does not have is refused, naming the image.
    let missing = format!("{repo}@sha256:{}", "0".repeat(64));
    let e = exec
        .ensure_image(&ImageRef::parse(&missing).expect("ref"), |_| {})
        .await
        .expect_err("unknown digest");
    assert!(matches!(e, ExecError::ImageMissing { .. } | ExecError::Pull { .. }), "{e:?}");
    assert!(e.to_string().contains(&missing), "{e}");

    docker
        .remove_image(&id, Some(RemoveImageOptionsBuilder::new().force(true).build()), None)
        .await
        .expect("remove image");
    assert_no_leftovers(&exec).await;
}

/// A registry that answers every manifest request with the same document,
/// whatever digest was asked for: what a compromised registry or a
/// man-in-the-middle would do.
struct TamperingRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicBool>,
}

/// A well-formed image manifest (its layers need not exist: the daemon checks
/// the manifest's digest before fetching anything it names).
const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;

impl TamperingRegistry {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicBool::new(false));
        let (stop2, served2) = (stop.clone(), served.clone());
        thread::spawn(move || {
            let started = Instant::now();
            // Bounded: the thread ends with the test or after a minute.
            while !stop2.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if serve(stream) {
                            served2.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self { port, stop, served }
    }
}

impl Drop for TamperingRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers one request; true when it served the manifest.
fn serve(stream: TcpStream) -> bool {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return false;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body, extra, manifest) = if path == "/v2/" {
        ("200 OK", "{}".to_owned(), String::new(), false)
    } else if let Some((_, reference)) = path.split_once("/manifests/") {
        (
            "200 OK",
            MANIFEST.to_owned(),
            format!(
                "Content-Type: application/vnd.docker.distribution.manifest.v2+json\r\nDocker-Content-Digest: {reference}\r\n"
            ),
            true,
        )
    } else {
        (
            "404 Not Found",
            r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#.to_owned(),
            String::new(),
            false,
        )
    };
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status}\r\nDocker-Distribution-API-Version: registry/2.0\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(body.as_bytes());
    }
    manifest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_does_not_match_the_digest_is_refused() {
    let exec = executor("tamper").await;
    let registry = TamperingRegistry::start();
    // Any digest but the manifest's own.
    let asked = format!("sha256:{}", "ab".repeat(32));
    let image =
        ImageRef::parse(&format!("127.0.0.1:{}/lilypad-it/tampered@{asked}", registry.port))
            .expect("image ref");
    let e = exec.ensure_image(&image, |_| {}).await.expect_err("must refuse the manifest");
    assert!(registry.served.load(Ordering::Relaxed), "the daemon fetched the manifest");
    match &e {
        ExecError::DigestMismatch { expected, detail, .. } => {
            assert_eq!(expected, &asked);
            // dockerd itself hashed the manifest and refused it.
            assert!(detail.contains("verification failed"), "{detail}");
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(e.to_string().contains("does not match the pinned digest"), "{e}");
    assert!(docker().inspect_image(&image.to_string()).await.is_err(), "nothing was stored");
    assert_no_leftovers(&exec).await;
}
