//! Finishing deals by hand with `lilypad-cli deals` after `run` has gone, on a local
//! network of real processes (anvil, the solver with SQLite, the content store); the
//! provider's side is driven through the SDK's provider API.

mod common;
#[path = "common/jobs.rs"]
mod jobs;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output},
    sync::mpsc,
    time::{Duration, Instant},
};

use alloy::primitives::{B256, U256};
use common::{BIN, LocalNet, eventually, repo_root, runtime};
use jobs::{cpu_offer, provider, run_command, write_results};
use lilypad_sdk::{
    chain::{ChainClient, DealStatus},
    devnet::{self, ANVIL_KEYS, anvil_address, anvil_signer},
    solver::{SolverClient, api::OfferState},
};
use serde_json::Value;

/// `lilypad-cli run` of cowsay in text mode, with its stderr lines on a channel.
struct TextRun {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl TextRun {
    fn spawn(net: &LocalNet, dir: &Path) -> Self {
        let module = repo_root().join("examples/modules/cowsay");
        let mut child =
            run_command(net, dir, &module, &["-i", "Message=moo"], ANVIL_KEYS[devnet::JOB_CREATOR])
                .spawn()
                .expect("spawn lilypad-cli run");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, seen: Vec::new() }
    }

    /// The first line containing `needle`, waiting up to `secs`.
    fn wait_for(&mut self, needle: &str, secs: u64, net: &LocalNet) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "run printed no {needle:?} in {secs}s; it printed:\n{}\n{}",
                    self.seen.join("\n"),
                    net.logs()
                ),
            }
        }
    }

    /// Sends SIGINT (Ctrl-C) and returns the exit status and everything it printed.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-INT", &pid]).status().expect("run kill -INT");
        assert!(ok.success(), "kill -INT {pid} failed");
        let status = wait_exit(&mut self.child, 60);
        // The reader thread ends with the process's stderr.
        self.seen.extend(self.lines.iter());
        (status, self.seen.join("\n"))
    }
}

fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(secs), "the process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `lilypad-cli deals ARGS --network FILE` as the devnet's job creator.
fn deals(net: &LocalNet, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("deals")
        .args(args)
        .arg("--network")
        .arg(&net.network_file)
        .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::JOB_CREATOR])
        .output()
        .expect("run lilypad-cli deals")
}

/// `deals ARGS --json`: (success, JSON, stderr).
fn deals_json(net: &LocalNet, args: &[&str]) -> (bool, Value, String) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = deals(net, &all);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("deals {args:?} printed no JSON ({e}): {:?}\n{err}", out.stdout)
    });
    (out.status.success(), json, err)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The id after `prefix` in a progress line such as `✔ offer posted: 0x... (0.1s)`.
fn id_after(line: &str, prefix: &str) -> B256 {
    let rest = &line[line.find(prefix).expect("prefix") + prefix.len()..];
    rest.split_whitespace().next().expect("an id").parse().expect("a 32-byte id")
}

fn job_creator_solver(net: &LocalNet) -> SolverClient {
    SolverClient::new(
        &net.solver.url,
        anvil_signer(devnet::JOB_CREATOR),
        31337,
        anvil_address(devnet::SOLVER),
    )
    .expect("solver client")
}

async fn balance(chain: &ChainClient, who: usize) -> U256 {
    chain.token_balance(anvil_address(who)).await.expect("token balance")
}

fn units(v: &Value) -> U256 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("base units: {v}"))
}

#[test]
fn cancel_voids_an_offer_and_claim_timeout_refunds_after_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.client().clone();
        let p = provider(&net, &dir.path().join("rp-cache"));
        let jc_solver = job_creator_solver(&net);

        // 1. An offer nobody has taken yet: `run` goes away without withdrawing it
        //    (SIGKILL), `deals cancel` voids it on chain.
        std::fs::create_dir_all(dir.path().join("first")).expect("dir");
        std::fs::create_dir_all(dir.path().join("second")).expect("dir");
        let mut first = TextRun::spawn(&net, &dir.path().join("first"));
        let line = first.wait_for("offer posted: ", 60, &net);
        let offer_id = id_after(&line, "offer posted: ");
        first.child.kill().expect("kill -9 run");
        let _ = first.child.wait();
        let nonce = jc_solver.job_offer(offer_id).await.expect("the offer").offer.nonce;
        let creator = anvil_address(devnet::JOB_CREATOR);
        assert!(!chain.is_nonce_used(creator, nonce).await.expect("nonce"), "still valid");

        let id = offer_id.to_string();
        let (ok, json, err) = deals_json(&net, &["cancel", &id]);
        assert!(ok, "{json}\n{err}");
        assert_eq!(json["status"], "cancelled", "{json}");
        assert!(chain.is_nonce_used(creator, nonce).await.expect("nonce"), "nonce invalidated");
        let (ok, json, _) = deals_json(&net, &["cancel", &id]);
        assert!(ok && json["status"] == "already_void", "{json}");

        // A provider that would match it now cannot make it a deal.
        p.post_offer(&cpu_offer(1)).await.expect("post the resource offer");
        let reason = eventually("the solver fails the voided offer", 60, || async {
            let s = jc_solver.job_offer(offer_id).await.ok()?;
            (s.state == OfferState::Failed).then(|| s.reason.unwrap_or_default())
        })
        .await;
        assert!(reason.contains("NonceUsed"), "{reason}");
        assert!(p.solver().deals().await.expect("deals").is_empty(), "no deal was made");

        // 2. A deal: Ctrl-C in `run` says what happens next and how to finish it.
        let mut run = TextRun::spawn(&net, &dir.path().join("second"));
        let line = run.wait_for("deal agreed: ", 90, &net);
        let deal_id = id_after(&line, "deal agreed: ");
        let (status, printed) = run.interrupt();
        assert!(!status.success(), "an interrupted run fails:\n{printed}");
        let file = net.network_file.display().to_string();
        for needle in [
            format!("interrupted: deal {deal_id} goes on on chain"),
            "the provider is running the job; its results are due by".to_owned(),
            format!("lilypad-cli deals show {deal_id} --network {file}"),
            format!("lilypad-cli deals claim-timeout {deal_id} --network {file}"),
        ] {
            assert!(printed.contains(&needle), "{needle:?} missing from:\n{printed}");
        }
        let deal = chain.deal(deal_id).await.expect("read").expect("the deal");
        assert_eq!(deal.status, DealStatus::Agreed);
        let id = deal_id.to_string();

        // 3. Accepting before any results: the deal waits for them.
        let out = deals(&net, &["accept", &id]);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("cannot accept the results now: the provider is running the job; its results are due by")
                && err.contains("there are no results yet")
                && err.contains("the chain says: acceptResults reverted: NotAllowed"),
            "{err}"
        );

        // 4. Claiming the timeout too early: when it will be possible.
        let out = deals(&net, &["claim-timeout", &id]);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("too early to claim the timeout: the deadline is ")
                && err.contains(" UTC (in ")
                && err.contains("run this again after it")
                && err.contains("the chain says: claimTimeout reverted: TooEarly"),
            "{err}"
        );
        let (ok, json, _) = deals_json(&net, &["claim-timeout", &id]);
        assert!(!ok, "{json}");
        assert_eq!(json["status"], "not_allowed", "{json}");
        assert_eq!(json["reason"], "too_early", "{json}");
        assert_eq!(json["retry_at"], deal.deadline + 1, "{json}");
        assert!(json["chain_error"].as_str().unwrap_or_default().contains("TooEarly"), "{json}");

        // 5. After the deadline (anvil's clock moved past it) the claim refunds the job
        //    creator: its payment and the provider's timeout collateral.
        let now = chain.latest_timestamp().await.expect("block time");
        devnet::increase_time(&chain, deal.deadline.saturating_sub(now) + 1)
            .await
            .expect("evm_increaseTime");
        let before = balance(&chain, devnet::JOB_CREATOR).await;
        let (ok, json, err) = deals_json(&net, &["claim-timeout", &id]);
        assert!(ok, "{json}\n{err}");
        assert_eq!(json["status"], "finished", "{json}");
        assert_eq!(json["outcome"], "no_results_in_time", "{json}");
        let refunded = units(&json["settlement"]["refunded"]);
        let slashed = units(&json["settlement"]["slashed_collateral"]);
        assert_eq!(refunded, deal.payment_collateral, "{json}");
        assert_eq!(slashed, deal.provider_collateral, "the timeout collateral: {json}");
        assert_eq!(units(&json["settlement"]["provider_paid"]), U256::ZERO, "{json}");
        assert_eq!(balance(&chain, devnet::JOB_CREATOR).await, before + refunded + slashed);

        // 6. Nothing is left to do, and the answer says so.
        let out = deals(&net, &["claim-timeout", &id]);
        let (_, err) = text(&out);
        assert!(!out.status.success());
        assert!(
            err.contains("the deal is over (no results in time); there is nothing left to do")
                && err.contains("AlreadyFinished"),
            "{err}"
        );
    });
}

#[test]
fn accept_by_hand_pays_the_provider_the_price_and_returns_its_collateral() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.client().clone();
        let p = provider(&net, &dir.path().join("rp-cache"));
        p.post_offer(&cpu_offer(1)).await.expect("post the resource offer");
        let mut run = TextRun::spawn(&net, dir.path());
        let line = run.wait_for("deal agreed: ", 90, &net);
        assert!(line.contains("at 0.000000000000001 LP; results due by "), "{line}");
        let deal_id = id_after(&line, "deal agreed: ");
        let (status, printed) = run.interrupt();
        assert!(!status.success(), "{printed}");
        let id = deal_id.to_string();

        // The provider's results arrive after `run` has gone.
        let results = dir.path().join("results");
        write_results(&results, "moo\n");
        let (cid, _) = p.publish_results(deal_id, &results).await.expect("publish + submit");
        let deal = chain.deal(deal_id).await.expect("read").expect("the deal");
        assert_eq!(deal.status, DealStatus::ResultsSubmitted);
        // The solver follows the chain's events; `deals show` reads the CID from it.
        eventually("the solver records the results", 30, || async {
            p.solver().deal(deal_id).await.ok()?.results_cid
        })
        .await;

        let out = deals(&net, &["show", &id]);
        let (shown, err) = text(&out);
        assert!(out.status.success(), "{err}");
        for needle in [
            "price                0.000000000000001 LP".to_owned(),
            "results are in; the job creator has until".to_owned(),
            cid.to_string(),
            format!("lilypad-cli deals accept {id} --network"),
            format!("lilypad-cli deals challenge {id} --network"),
        ] {
            assert!(shown.contains(&needle), "{needle:?} missing from:\n{shown}");
        }
        let out = deals(&net, &["show", &id, "--wei"]);
        let (shown, _) = text(&out);
        assert!(shown.contains("price                1000 wei"), "{shown}");

        let provider_before = balance(&chain, devnet::PROVIDER).await;
        let creator_before = balance(&chain, devnet::JOB_CREATOR).await;
        let (ok, json, err) = deals_json(&net, &["accept", &id]);
        assert!(ok, "{json}\n{err}");
        assert_eq!(json["outcome"], "accepted", "{json}");
        let s = &json["settlement"];
        assert_eq!(units(&s["provider_paid"]), deal.price, "the price, nothing else: {json}");
        let record = p.solver().deal(deal_id).await.expect("the solver's record");
        let t = &record.deal.terms;
        assert_eq!(units(&s["returned_collateral"]), t.timeout_collateral + t.results_collateral);
        assert_eq!(units(&s["refunded"]), t.payment_collateral - t.price);
        // The timeout collateral came back with the results; the acceptance pays the
        // price and returns the results collateral.
        assert_eq!(
            balance(&chain, devnet::PROVIDER).await,
            provider_before + t.price + t.results_collateral
        );
        assert_eq!(
            balance(&chain, devnet::JOB_CREATOR).await,
            creator_before + t.payment_collateral - t.price
        );

        let out = deals(&net, &["challenge", &id]);
        let (_, err) = text(&out);
        assert!(!out.status.success());
        assert!(
            err.contains("cannot challenge the results: the deal is over (accepted)")
                && err.contains("AlreadyFinished"),
            "{err}"
        );
    });
}

#[test]
fn challenge_by_hand_escrows_the_fee_and_leaves_the_verdict_to_the_mediator() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.client().clone();
        let p = provider(&net, &dir.path().join("rp-cache"));
        p.post_offer(&cpu_offer(1)).await.expect("post the resource offer");
        let mut run = TextRun::spawn(&net, dir.path());
        let deal_id = id_after(&run.wait_for("deal agreed: ", 90, &net), "deal agreed: ");
        let (status, printed) = run.interrupt();
        assert!(!status.success(), "{printed}");
        let id = deal_id.to_string();
        let results = dir.path().join("results");
        write_results(&results, "moo\n");
        p.publish_results(deal_id, &results).await.expect("publish + submit");

        // The provider cannot judge its own results.
        let out = Command::new(BIN)
            .args(["deals", "challenge", &id, "--provider", "--network"])
            .arg(&net.network_file)
            .env("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::PROVIDER])
            .output()
            .expect("deals challenge as the provider");
        let (_, err) = text(&out);
        assert!(!out.status.success());
        assert!(
            err.contains(
                "cannot challenge the results from this account: only the deal's job creator"
            ) && err.contains("WrongSender"),
            "{err}"
        );

        let fee = chain.deal(deal_id).await.expect("read").expect("deal").mediation_fee;
        let before = balance(&chain, devnet::JOB_CREATOR).await;
        let (ok, json, err) = deals_json(&net, &["challenge", &id]);
        assert!(ok, "{json}\n{err}");
        assert_eq!(json["status"], "challenged", "{json}");
        assert_eq!(units(&json["mediation_fee"]), fee, "{json}");
        assert_eq!(balance(&chain, devnet::JOB_CREATOR).await, before - fee, "the fee is escrowed");
        let deal = chain.deal(deal_id).await.expect("read").expect("deal");
        assert_eq!(deal.status, DealStatus::ResultsChallenged);

        // Judging again is over: the mediator decides now.
        let out = deals(&net, &["accept", &id]);
        let (_, err) = text(&out);
        assert!(!out.status.success());
        assert!(
            err.contains("cannot accept the results now: the results are challenged; the mediator")
                && err.contains("NotAllowed"),
            "{err}"
        );
    });
}

/// The deal `run` made before it was interrupted (the provider took `offer_nonce`).
async fn interrupted_deal(
    net: &LocalNet,
    dir: &Path,
    p: &lilypad_sdk::job::ProviderClient,
    offer_nonce: u64,
) -> B256 {
    p.post_offer(&cpu_offer(offer_nonce)).await.expect("post the resource offer");
    let mut run = TextRun::spawn(net, dir);
    let deal_id = id_after(&run.wait_for("deal agreed: ", 90, net), "deal agreed: ");
    let (status, printed) = run.interrupt();
    assert!(!status.success(), "{printed}");
    deal_id
}

#[test]
fn failure_reports_are_accepted_or_challenged_by_hand_and_a_silent_mediator_is_redrawn() {
    use lilypad_sdk::core::{settlement::Outcome, state::JobFailure};
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let net = LocalNet::start(dir.path()).await;
        let chain = net.devnet.client().clone();
        let p = provider(&net, &dir.path().join("rp-cache"));

        // 1. A report the job creator accepts: everyone gets their money back.
        let deal_id = interrupted_deal(&net, &dir.path().join("one"), &p, 1).await;
        let id = deal_id.to_string();
        let (creator_before, provider_before) =
            (balance(&chain, devnet::JOB_CREATOR).await, balance(&chain, devnet::PROVIDER).await);
        let record = p.solver().deal(deal_id).await.expect("the solver's record");
        let t = record.deal.terms.clone();
        p.chain()
            .report_failure(deal_id, JobFailure::ImageUnavailable, "no such image")
            .await
            .expect("reportFailure");
        let out = deals(&net, &["show", &id]);
        let (shown, err) = text(&out);
        assert!(out.status.success(), "{err}");
        for needle in [
            format!("lilypad-cli deals accept-failure {id} --network"),
            format!("lilypad-cli deals challenge-failure {id} --network"),
        ] {
            assert!(shown.contains(&needle), "{needle:?} missing from:\n{shown}");
        }
        let (ok, json, err) = deals_json(&net, &["accept-failure", &id]);
        assert!(ok, "{json}\n{err}");
        assert_eq!(json["outcome"], "failure_accepted", "{json}");
        assert_eq!(
            balance(&chain, devnet::JOB_CREATOR).await,
            creator_before + t.payment_collateral,
            "the payment is refunded"
        );
        assert_eq!(
            balance(&chain, devnet::PROVIDER).await,
            provider_before + t.timeout_collateral,
            "the provider's collateral comes back"
        );
        let finished = chain.deal(deal_id).await.expect("read").expect("deal");
        assert_eq!(finished.status, DealStatus::Finished(Outcome::FailureAccepted));

        // 2. A report the job creator challenges; the drawn mediator stays silent, so
        // after its deadline anyone draws the next one.
        let deal_id = interrupted_deal(&net, &dir.path().join("two"), &p, 2).await;
        let id = deal_id.to_string();
        p.chain()
            .report_failure(deal_id, JobFailure::InputsRejected, "undeclared file x")
            .await
            .expect("reportFailure");
        let out = deals(&net, &["redraw-mediator", &id]);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "nothing to redraw before a challenge");
        assert!(err.contains("cannot"), "{err}");

        let (ok, json, err) = deals_json(&net, &["challenge-failure", &id]);
        assert!(ok, "{json}\n{err}");
        assert_eq!(json["status"], "challenged", "{json}");
        assert_eq!(json["action"], "challenge-failure", "{json}");
        let deal = chain.deal(deal_id).await.expect("read").expect("deal");
        assert_eq!(deal.status, DealStatus::FailureChallenged);

        let out = deals(&net, &["redraw-mediator", &id]);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "the mediator still has time");
        assert!(err.contains("TooEarly"), "{err}");

        let chain_now = chain.latest_timestamp().await.expect("chain time");
        devnet::increase_time(&chain, deal.deadline.saturating_sub(chain_now) + 10)
            .await
            .expect("move the chain past the mediator's deadline");
        let (ok, json, err) = deals_json(&net, &["redraw-mediator", &id]);
        assert!(ok, "{json}\n{err}");
        assert_eq!(json["status"], "redrawn", "{json}");
        let redrawn = chain.deal(deal_id).await.expect("read").expect("deal");
        assert_eq!(redrawn.status, DealStatus::FailureChallenged);
        assert!(redrawn.deadline > deal.deadline, "a fresh window for the next mediator");
    });
}
