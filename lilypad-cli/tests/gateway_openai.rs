//! `lilypad-cli gateway` end to end through the official `openai` Python client: a
//! local network in this process (anvil with every contract, the content store, the
//! solver, a Docker provider), the gateway as a child process serving the real
//! embeddings module (examples/modules/embeddings, image built by
//! scripts/build-example-images.sh) and the real chat module
//! (examples/modules/chat, SmolLM2-135M-Instruct), keys made with `gateway keys`,
//! and tests/gateway/openai_client.py checking what the client sees.
//!
//! Needs dockerd, the embeddings and chat images, anvil (scripts/setup-contracts.sh) and the
//! venv of scripts/setup-python.sh (run here; it is idempotent).

mod common;

use std::{path::Path, process::Command, time::Instant};

use common::{BIN, Proc, repo_root, runtime};
use lilypad_sdk::localnet::LocalNetwork;
use serde_json::Value;

const MODEL: &str = "all-MiniLM-L6-v2";
const IMAGE: &str = "lilypad-example/embeddings:0.1.0";
const CHAT_MODEL: &str = "smollm2-135m-instruct";
const CHAT_IMAGE: &str = "lilypad-example/chat:0.1.0";

/// The venv's python with `openai`, made by scripts/setup-python.sh.
fn python() -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/setup-python.sh"))
        .output()
        .expect("run scripts/setup-python.sh");
    assert!(
        out.status.success(),
        "cannot get python with the openai client (scripts/setup-python.sh failed; it needs \
         python3, python3-venv and PyPI):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

/// `lilypad-cli gateway keys ARGS --db DB --json`.
fn keys(db: &Path, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["--json", "gateway", "keys"])
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("lilypad-cli gateway keys");
    assert!(
        out.status.success(),
        "gateway keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("keys JSON")
}

#[test]
fn the_openai_client_gets_embeddings_from_the_embeddings_module_through_the_gateway() {
    let module = repo_root().join("examples/modules/embeddings");
    assert!(module.join("lilypad_module.json.tmpl").exists(), "{} is missing", module.display());
    let chat_module = repo_root().join("examples/modules/chat");
    for image in [IMAGE, CHAT_IMAGE] {
        let inspect = Command::new("docker").args(["image", "inspect", image]).output();
        assert!(
            inspect.is_ok_and(|o| o.status.success()),
            "the image {image} is missing: run scripts/build-example-images.sh"
        );
    }
    let python = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keys.db");

    // Keys: a good one, one with a spend limit of 1 token, one revoked.
    let good = keys(&db, &["create", "--name", "good"]);
    let capped = keys(&db, &["create", "--name", "capped", "--spend-limit", "1"]);
    let revoked = keys(&db, &["create", "--name", "gone"]);
    assert_eq!(keys(&db, &["revoke", "gone"])["revoked"], "gone");
    let list = keys(&db, &["list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
    let text = std::fs::read(&db).expect("read the key database");
    for k in [&good, &capped, &revoked] {
        let key = k["key"].as_str().expect("the key, printed once");
        assert!(key.starts_with("lp-"), "{key}");
        assert!(!String::from_utf8_lossy(&text).contains(&key[12..]), "a key is stored in clear");
    }

    let rt = runtime();
    let net = rt
        .block_on(LocalNetwork::start(&dir.path().join("net"), &|_| {}))
        .expect("local network (anvil from scripts/setup-contracts.sh, dockerd)");
    let network = net.network_file().display().to_string();
    let home = dir.path().join("home").display().to_string();
    let db_s = db.display().to_string();
    let model_arg = format!("{MODEL}={}", module.display());
    let chat_arg = format!("{CHAT_MODEL}={},kind=chat", chat_module.display());
    // The devnet's job creator account pays (the default key on the local chain).
    let gateway = Proc::spawn(
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--network",
            &network,
            "--db",
            &db_s,
            "--model",
            &model_arg,
            "--model",
            &chat_arg,
            "--timeout",
            "280",
        ],
        &[("LILYPAD_HOME", &home)],
        &dir.path().join("gateway.log"),
    );

    let started = Instant::now();
    let out = Command::new(&python)
        .arg(repo_root().join("lilypad-cli/tests/gateway/openai_client.py"))
        .env("GATEWAY_URL", format!("{}/v1", gateway.url))
        .env("MODEL", MODEL)
        .env("CHAT_MODEL", CHAT_MODEL)
        .env("GOOD_KEY", good["key"].as_str().expect("key"))
        .env("CAPPED_KEY", capped["key"].as_str().expect("key"))
        .env("REVOKED_KEY", revoked["key"].as_str().expect("key"))
        .env("WRONG_KEY", "lp-0000000000000000000000000000000000000000000000000000000000000000")
        .output()
        .expect("run the python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the openai client script failed:\n{stdout}\n{}\n--- gateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gateway.log()
    );
    let found: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the script printed no JSON ({e}): {stdout}"));
    eprintln!("openai client done in {:.1}s: {found}", started.elapsed().as_secs_f64());
    assert_eq!(found["dimension"], 384, "all-MiniLM-L6-v2 vectors have 384 dimensions: {found}");
    assert_eq!(found["exhausted"]["status"], 429, "{found}");
    assert_eq!(found["chat"]["streamed_equals_whole"], true, "{found}");

    // The tokens were counted against the keys.
    let list = keys(&db, &["list"]);
    let spent = |name: &str| {
        list.as_array()
            .and_then(|l| l.iter().find(|k| k["name"] == name))
            .and_then(|k| k["spent"].as_u64())
            .unwrap_or_default()
    };
    assert!(spent("good") >= found["tokens"].as_u64().unwrap_or(1), "{list}");
    assert!(spent("capped") >= 1, "{list}");
    drop(gateway);
    rt.block_on(net.shutdown());
}
