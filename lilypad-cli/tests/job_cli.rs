//! `lilypad-cli run` end to end on a local network of real processes (anvil, the
//! solver with SQLite, the content store), with the provider's side driven through
//! the SDK's provider API (the Docker provider is tested in its own suite).

mod common;
#[path = "common/jobs.rs"]
mod jobs;

use std::{path::Path, process::Command};

use common::{BIN, LocalNet, eventually, repo_root, runtime};
use jobs::{cowsay_deal, cpu_offer, finish, provider, spawn_run, write_results};
use lilypad_sdk::{
    chain::{DealStatus, Draw},
    core::settlement::Outcome,
    devnet::{self, ANVIL_KEYS, anvil_address, anvil_signer},
    solver::SolverClient,
    storage::{ContentStore, StorageClient},
};
use serde_json::Value;

async fn finished_outcome(c: &SolverClient, deal: alloy::primitives::B256) -> Option<Outcome> {
    let r = c.deal(deal).await.ok()?;
    r.status.outcome()
}

#[test]
fn run_gets_verified_results_accepts_them_and_deals_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let (net, p, child, record) = cowsay_deal(dir.path()).await;
        let job = p.prepare(&record.deal).await.expect("the provider prepares the job");
        assert_eq!(job.inputs.values.get("Message").map(String::as_str), Some("moo"));
        assert!(
            job.spec.entrypoint.iter().chain(&job.spec.parameters).any(|a| a == "moo"),
            "{:?}",
            job.spec
        );
        let results = dir.path().join("results");
        write_results(&results, " _____\n< moo >\n -----\n");
        let (cid, _) = p.publish_results(record.deal.id, &results).await.expect("publish + submit");

        let (ok, json, err) = finish(child, 120, &net).await;
        assert!(ok, "run failed: {json}\n{err}");
        assert_eq!(json["status"], "accepted", "{json}");
        assert_eq!(json["results_cid"], cid.to_string());
        assert_eq!(json["deal_id"], record.deal.id.to_string());
        // "provider paid" is the price; the provider's collateral is reported apart.
        let t = &record.deal.terms;
        assert_eq!(json["settlement"]["provider_paid"], t.price.to_string(), "{json}");
        assert_eq!(
            json["settlement"]["returned_collateral"],
            (t.timeout_collateral + t.results_collateral).to_string(),
            "{json}"
        );
        let stdout = std::fs::read_to_string(json["stdout"].as_str().expect("stdout path"))
            .expect("read stdout");
        assert!(stdout.contains("< moo >"), "{stdout}");
        let outputs = Path::new(json["outputs"].as_str().expect("outputs path"));
        assert_eq!(std::fs::read_to_string(outputs.join("greeting.txt")).expect("output"), "hello");

        // The chain says accepted; so does the solver, which followed the chain's events.
        let outcome = eventually("the deal finished on the solver", 30, || {
            finished_outcome(p.solver(), record.deal.id)
        })
        .await;
        assert_eq!(outcome, Outcome::Accepted);

        // `deals list` and `deals show` as the job creator.
        let out = Command::new(BIN)
            .args(["deals", "list", "--json", "--network"])
            .arg(&net.network_file)
            .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::JOB_CREATOR])
            .output()
            .expect("deals list");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let list: Value = serde_json::from_slice(&out.stdout).expect("deals list JSON");
        assert_eq!(list[0]["id"], record.deal.id.to_string(), "{list}");
        assert_eq!(list[0]["results_cid"], cid.to_string(), "{list}");
        let out = Command::new(BIN)
            .args(["deals", "show", &record.deal.id.to_string(), "--network"])
            .arg(&net.network_file)
            .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::JOB_CREATOR])
            .output()
            .expect("deals show");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(&cid.to_string()), "{text}");
    });
}

#[test]
fn results_that_do_not_match_their_cid_are_refused_and_challenged() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let (net, p, child, record) = cowsay_deal(dir.path()).await;

        // Publish honest-looking results, then corrupt one stored block on the store's
        // disk before the CID goes on chain: the store now serves bytes that do not
        // hash to what the CID names.
        let results = dir.path().join("results");
        write_results(&results, "moo\n");
        let storage = StorageClient::new(&net.storage.url).expect("storage client");
        let cid = storage.publish_dir(&results).await.expect("publish");
        let store = ContentStore::open(&net.store_dir).expect("open the store's directory");
        let block = store.block_path(&cid);
        let mut bytes = std::fs::read(&block).expect("read the root block");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&block, bytes).expect("corrupt the root block");
        p.chain().submit_results(record.deal.id, &cid).await.expect("submit on chain");

        let (ok, json, err) = finish(child, 120, &net).await;
        assert!(!ok, "run must fail: {json}\n{err}");
        assert_eq!(json["status"], "results_rejected", "{json}\n{err}");
        let msg = json["error"].as_str().unwrap_or_default();
        assert!(msg.contains("failed verification") && msg.contains("challenged"), "{msg}");
        // Nothing of the refused download is left in the output directory.
        let out = dir.path().join("out").join(record.deal.id.to_string());
        assert!(!out.exists(), "{} must not exist", out.display());

        let on_chain = p.chain().deal(record.deal.id).await.expect("read the deal").expect("deal");
        // The draw is lazy: nobody knows the mediator in the challenge's own block.
        assert!(on_chain.mediator.is_none(), "no mediator yet: {on_chain:?}");
        let set = p.chain().deal_mediators(record.deal.id).await.expect("the deal's mediators");
        match p.chain().draw_mediator(record.deal.id, &set).await.expect("drawMediator") {
            Draw::Drawn { mediator, round } => {
                assert!(set.contains(&mediator), "{mediator} is one of {set:?}");
                assert_eq!(round, 0);
            }
            other => panic!("a mediator is drawn: {other:?}"),
        }
        let state = eventually("the solver sees the challenge", 30, || async {
            let r = p.solver().deal(record.deal.id).await.ok()?;
            (r.status == DealStatus::ResultsChallenged).then_some(r.status)
        })
        .await;
        assert_eq!(state, DealStatus::ResultsChallenged);
    });
}

#[test]
fn a_job_nobody_can_run_says_why_and_withdraws_its_offer() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let p = provider(&net, &dir.path().join("rp-cache"));
        p.post_offer(&cpu_offer(1)).await.expect("post a CPU-only resource offer");
        let module = repo_root().join("examples/modules/gpu-hello");
        let child = spawn_run(
            &net,
            dir.path(),
            &module,
            &["--match-timeout", "4"],
            ANVIL_KEYS[devnet::JOB_CREATOR],
        );
        let (ok, json, err) = finish(child, 120, &net).await;
        assert!(!ok, "{json}");
        assert_eq!(json["status"], "no_match", "{json}\n{err}");
        let reasons = json["reasons"].as_array().expect("reasons").clone();
        assert_eq!(reasons.len(), 1, "{json}");
        assert!(reasons[0].as_str().unwrap_or_default().contains("GPU"), "{json}");
        // The offer's nonce is spent on chain: no solver can make it a deal later.
        assert!(p.solver().deals().await.expect("deals").is_empty());
    });
}

#[test]
fn insufficient_funds_are_reported_before_anything_is_posted() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        // A fresh key: no tokens.
        let key = "0x1111111111111111111111111111111111111111111111111111111111111111";
        let module = repo_root().join("examples/modules/cowsay");
        let child = spawn_run(&net, dir.path(), &module, &["-i", "Message=moo"], key);
        let (ok, json, err) = finish(child, 60, &net).await;
        assert!(!ok, "{json}");
        assert_eq!(json["status"], "insufficient_funds", "{json}\n{err}");
        assert!(
            json["error"].as_str().unwrap_or_default().contains("nothing was posted"),
            "{json}"
        );
        let health = p_health(&net).await;
        assert_eq!(health, 0, "the solver holds no job offer");
    });
}

async fn p_health(net: &LocalNet) -> u64 {
    let c =
        SolverClient::new(&net.solver.url, anvil_signer(0), 31337, anvil_address(devnet::SOLVER))
            .expect("client");
    c.health().await.expect("health").open_jobs
}

/// What the job creator can check itself (declared input files, the inputs cap,
/// a template that renders, an image pinned by digest for a published module) is
/// checked before any token moves or any offer is posted.
#[test]
fn what_the_job_creator_can_check_is_refused_before_anything_is_paid() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.client();
        let me = anvil_address(devnet::JOB_CREATOR);
        let controller = net.config.contracts.controller;
        let before = (
            chain.token_balance(me).await.expect("balance"),
            chain.allowance(me, controller).await.expect("allowance"),
        );
        let key = ANVIL_KEYS[devnet::JOB_CREATOR];
        let cowsay = repo_root().join("examples/modules/cowsay");
        let refused = |module: &Path, extra: &[&str], extra_env: &[(&str, &str)]| {
            let mut cmd = jobs::run_command(&net, dir.path(), module, extra, key);
            cmd.arg("--json").envs(extra_env.iter().copied());
            let out = cmd.output().expect("run lilypad-cli run");
            let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
            });
            assert!(!out.status.success(), "{json}");
            json
        };

        // An input file the module does not declare.
        let file = dir.path().join("data.txt");
        std::fs::write(&file, "x").unwrap();
        let arg = format!("Data={}", file.display());
        let json = refused(&cowsay, &["--input-file", &arg], &[]);
        assert_eq!(json["status"], "invalid_job", "{json}");
        assert!(json["error"].as_str().unwrap().contains("Data"), "{json}");

        // Inputs over the cap every provider enforces.
        let big = format!("Message={}", "m".repeat(70 * 1024));
        let json = refused(&cowsay, &["-i", &big], &[]);
        assert_eq!(json["status"], "invalid_job", "{json}");

        // A template that does not render.
        let broken = dir.path().join("broken");
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(broken.join("lilypad_module.json.tmpl"), "{ {{ .Message ").unwrap();
        let json = refused(&broken, &[], &[]);
        assert_ne!(json["status"], "ok", "{json}");
        assert!(json["error"].as_str().is_some(), "{json}");

        // A published (git) module whose image is a tag, not a digest.
        let base = common::git_module(dir.path(), "cowsay", "v0.0.1", &cowsay);
        let json = refused(Path::new("cowsay:v0.0.1"), &[], &[("LILYPAD_MODULE_BASE", &base)]);
        assert_eq!(json["status"], "invalid_job", "{json}");
        assert!(json["error"].as_str().unwrap().contains("lilypad-example/cowsay"), "{json}");

        let after = (
            chain.token_balance(me).await.expect("balance"),
            chain.allowance(me, controller).await.expect("allowance"),
        );
        assert_eq!(after, before, "no token moved and nothing was approved");
        assert_eq!(p_health(&net).await, 0, "the solver holds no job offer");
    });
}

#[test]
fn a_job_whose_minimum_reputation_no_provider_meets_says_why() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let p = provider(&net, &dir.path().join("rp-cache"));
        // A provider with no deal scores 0.5: under the job's minimum.
        p.post_offer(&cpu_offer(1)).await.expect("post a CPU-only resource offer");
        let module = repo_root().join("examples/modules/cowsay");
        let args = ["-i", "Message=moo", "--min-reputation", "0.9", "--match-timeout", "4"];
        let child = spawn_run(&net, dir.path(), &module, &args, ANVIL_KEYS[devnet::JOB_CREATOR]);
        let (ok, json, err) = finish(child, 120, &net).await;
        assert!(!ok, "{json}");
        assert_eq!(json["status"], "no_match", "{json}\n{err}");
        assert_eq!(json["reasons"].as_array().map(Vec::len), Some(1), "{json}");
        let reason = json["reasons"][0].as_str().unwrap_or_default();
        assert!(reason.contains("reputation is under your minimum"), "{json}");
        assert!(p.solver().deals().await.expect("deals").is_empty());
    });
}

#[test]
fn a_minimum_reputation_outside_0_to_1_is_refused_by_name() {
    for bad in ["1.5", "-0.1", "NaN", "inf", "high"] {
        let out = Command::new(BIN)
            .args(["run", "cowsay:v0.0.4", &format!("--min-reputation={bad}")])
            .output()
            .expect("run lilypad-cli");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--min-reputation"), "{bad}: {err}");
        assert!(err.contains("from 0 to 1") || err.contains("not a number"), "{bad}: {err}");
    }
}
