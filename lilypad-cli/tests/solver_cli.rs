//! `lilypad-cli solver` as a real process against a real devnet (anvil from
//! node_modules, installed by scripts/setup-contracts.sh; a missing anvil fails
//! the test) with a real database, driven through `SolverClient` and raw HTTP
//! requests. Each test runs twice: on SQLite, and (`_on_postgres`) on a fresh
//! database of the PostgreSQL server at `LILYPAD_TEST_POSTGRES_URL`
//! (scripts/setup-postgres.sh starts one; a missing variable fails the test).

mod common;
#[path = "common/solver.rs"]
mod solver;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use futures::StreamExt;
use lilypad_sdk::{
    chain::DealStatus,
    devnet::{self, ANVIL_KEYS, anvil_address, anvil_signer},
    solver::{
        SolverClient, SolverError,
        api::{EventKind, OfferState, SolverEvent},
        auth::{RequestAuth, request_domain},
    },
};
use solver::{
    Backend, INPUTS, PROVIDER2, SolverDb, SolverProc, approved_devnet, client, deals_on_chain,
    devnet, job, resource, signed_job, signed_resource,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A test body run on SQLite (`$sqlite`) and on Postgres (`$postgres`).
macro_rules! on_both {
    ($body:ident: $sqlite:ident, $postgres:ident) => {
        #[test]
        fn $sqlite() {
            $body(Backend::Sqlite)
        }

        #[test]
        fn $postgres() {
            $body(Backend::Postgres)
        }
    };
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// Polls `f` until it gives `Some`, for up to 30 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The events a client's stream yields until it is quiet for `quiet` after the
/// first one (which may take up to 15 s on a loaded machine: the stream connects
/// and signs first; every caller expects at least one event).
async fn events_until_quiet(
    c: &SolverClient,
    after: Option<u64>,
    quiet: Duration,
) -> Vec<SolverEvent> {
    let mut stream = c.events(after);
    let mut out = Vec::new();
    let mut wait = Duration::from_secs(15);
    while let Ok(Some(e)) = tokio::time::timeout(wait, stream.next()).await {
        out.push(e.expect("event stream"));
        wait = quiet.max(Duration::from_secs(1));
    }
    out
}

async fn status_of(c: &SolverClient, id: B256) -> OfferState {
    c.job_offer(id).await.expect("job offer status").state
}

on_both!(requests_must_be_signed: requests_must_be_signed_fresh_and_by_the_right_party,
    requests_must_be_signed_fresh_and_by_the_right_party_on_postgres);
// A test body (clippy allows unwrap only in `#[test]` functions themselves).
#[allow(clippy::unwrap_used)]
fn requests_must_be_signed(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SolverDb::new(backend, dir.path());
    let rt = runtime();
    let net = rt.block_on(devnet(dir.path()));
    let solver = SolverProc::start(
        &net.network_file(),
        &db,
        &dir.path().join("solver.log"),
        &[
            "--max-body-bytes",
            "65536",
            "--max-inputs-bytes",
            "1024",
            "--signer-burst",
            "20",
            "--signer-rate",
            "1",
        ],
    );
    rt.block_on(async {
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        let rp = client(&solver.url, devnet::PROVIDER);

        // Health and metrics need no signature.
        let h = jc.health().await.expect("healthz");
        assert_eq!(
            (h.status.as_str(), h.solver, h.chain_id),
            ("ok", anvil_address(devnet::SOLVER), 31337)
        );

        // A signed resource offer is stored (201).
        let res = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 1));
        let receipt = rp.post_resource_offer(&res).await.expect("post resource offer");
        assert_eq!((receipt.id, receipt.state), (res.id, OfferState::Open));
        // The same offer again: 409.
        let e = rp.post_resource_offer(&res).await.unwrap_err();
        assert!(matches!(&e, SolverError::Conflict(r) if r.contains("posted already")), "{e}");

        // Unsigned: 401.
        let r = rp.send("GET", "/api/v1/deals", Vec::new(), None).await.expect("send");
        assert_eq!(r.status, 401);
        assert!(
            matches!(r.error(None), SolverError::Unauthorized(m) if m.contains("missing header"))
        );

        // Replayed: the first use works, the second is 409.
        let auth = rp.sign("GET", "/api/v1/deals", &[]).expect("sign");
        assert_eq!(
            rp.send("GET", "/api/v1/deals", Vec::new(), Some(&auth)).await.expect("send").status,
            200
        );
        let r = rp.send("GET", "/api/v1/deals", Vec::new(), Some(&auth)).await.expect("send");
        assert_eq!(r.status, 409, "{:?}", String::from_utf8_lossy(&r.body));
        assert!(matches!(r.error(None), SolverError::Conflict(m) if m.contains("replay")));

        // Expired: 401.
        let d = request_domain(31337, anvil_address(devnet::SOLVER));
        let old = RequestAuth::sign(
            &anvil_signer(devnet::PROVIDER),
            &d,
            "GET",
            "/api/v1/deals",
            &[],
            U256::from(1),
            now() - 1,
        )
        .expect("sign");
        let r = rp.send("GET", "/api/v1/deals", Vec::new(), Some(&old)).await.expect("send");
        assert_eq!(r.status, 401);
        assert!(matches!(r.error(None), SolverError::Unauthorized(m) if m.contains("expired")));
        // Too far ahead: 401.
        let far = RequestAuth::sign(
            &anvil_signer(devnet::PROVIDER),
            &d,
            "GET",
            "/api/v1/deals",
            &[],
            U256::from(2),
            now() + 100_000,
        )
        .expect("sign");
        let r = rp.send("GET", "/api/v1/deals", Vec::new(), Some(&far)).await.expect("send");
        assert_eq!(r.status, 401);

        // Wrong signer: the header names the provider, the key is the job creator's.
        let mut forged = jc.sign("GET", "/api/v1/deals", &[]).expect("sign");
        forged.signer = anvil_address(devnet::PROVIDER);
        let r = rp.send("GET", "/api/v1/deals", Vec::new(), Some(&forged)).await.expect("send");
        assert_eq!(r.status, 401);
        assert!(
            matches!(r.error(None), SolverError::Unauthorized(m) if m.contains("is signed by"))
        );
        // Signed for another solver: 401.
        let other = SolverClient::new(
            &solver.url,
            anvil_signer(devnet::PROVIDER),
            31337,
            Address::repeat_byte(9),
        )
        .expect("client");
        assert!(matches!(other.deals().await, Err(SolverError::Unauthorized(_))));
        // A body changed after signing: 401.
        let offer2 = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 2));
        let body = SolverClient::resource_offer_body(&offer2).expect("body");
        let auth = rp.sign("POST", "/api/v1/resource_offers", &body).expect("sign");
        let mut tampered = body.clone();
        tampered.push(b' ');
        let r =
            rp.send("POST", "/api/v1/resource_offers", tampered, Some(&auth)).await.expect("send");
        assert_eq!(r.status, 401);

        // The signer must be the offer's provider / creator: 403.
        let e = jc.post_resource_offer(&offer2).await.unwrap_err();
        assert!(matches!(&e, SolverError::Forbidden(m) if m.contains("only the provider")), "{e}");
        let j = signed_job(&net, &job(1, 0));
        let e = rp.post_job_offer(&j, INPUTS).await.unwrap_err();
        assert!(matches!(&e, SolverError::Forbidden(m) if m.contains("only the creator")), "{e}");

        // Bad offers: 400 with the reason.
        let e = jc.post_job_offer(&j, b"other inputs").await.unwrap_err();
        assert!(matches!(&e, SolverError::BadRequest(m) if m.contains("inputs_hash")), "{e}");
        let mut bad_sig = j.clone();
        bad_sig.offer.nonce = U256::from(99); // the signature is of nonce 1
        let e = jc.post_job_offer(&bad_sig, INPUTS).await.unwrap_err();
        assert!(matches!(&e, SolverError::BadRequest(m) if m.contains("offer signature")), "{e}");
        let mut other_solver = job(3, 0);
        other_solver.solver = Address::repeat_byte(9);
        let e = jc.post_job_offer(&signed_job(&net, &other_solver), INPUTS).await.unwrap_err();
        assert!(matches!(&e, SolverError::BadRequest(m) if m.contains("names solver")), "{e}");
        let mut expired = job(4, 0);
        expired.expiry = now() - 10;
        let e = jc.post_job_offer(&signed_job(&net, &expired), INPUTS).await.unwrap_err();
        assert!(matches!(&e, SolverError::BadRequest(m) if m.contains("expir")), "{e}");

        // Oversized: the body (413 before any signature work) and the inputs.
        let big = vec![b'x'; 70_000];
        let r = jc.send("POST", "/api/v1/job_offers", big, None).await.expect("send");
        assert_eq!(r.status, 413);
        let mut big_job = job(5, 0);
        let big_inputs = vec![7u8; 2000];
        big_job.inputs_hash = keccak256(&big_inputs);
        let e = jc.post_job_offer(&signed_job(&net, &big_job), &big_inputs).await.unwrap_err();
        assert!(matches!(&e, SolverError::PayloadTooLarge(m) if m.contains("inputs")), "{e}");

        // A valid job offer with a GPU the provider lacks stays open.
        let j = signed_job(&net, &job(6, 4));
        assert_eq!(jc.post_job_offer(&j, INPUTS).await.expect("post job").state, OfferState::Open);
        let st = jc.job_offer(j.id).await.expect("status");
        assert_eq!(st.state, OfferState::Open);
        assert_eq!(st.mismatches.len(), 1, "{st:?}");
        assert_eq!(st.mismatches[0].offers, 1);
        assert!(st.mismatches[0].reason.contains("GPU"), "{}", st.mismatches[0].reason);
        // The reasons reveal nothing of the provider's offer: no id, no address, no figure.
        let text = serde_json::to_string(&st.mismatches).expect("json");
        for secret in [format!("{:x}", res.id), format!("{:x}", res.offer.provider)] {
            let secret = secret.trim_start_matches("0x");
            assert!(!text.to_lowercase().contains(secret), "{text} reveals {secret}");
        }
        for m in &st.mismatches {
            assert!(!m.reason.chars().any(|c| c.is_ascii_digit()), "{text} has figures");
        }
        // Only its creator may read it.
        assert!(matches!(rp.job_offer(j.id).await, Err(SolverError::Forbidden(_))));

        // Per-signer rate limit (burst 20, 1/s): a burst of 40 requests hits 429.
        let spare = client(&solver.url, 9);
        let mut limited = 0u64;
        let started = Instant::now();
        for _ in 0..40 {
            match spare.deals().await {
                Ok(_) => {}
                Err(SolverError::RateLimited { retry_after_secs, .. }) => {
                    assert!(retry_after_secs.is_some_and(|s| s >= 1));
                    limited += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // At most the burst plus what refilled meanwhile got through.
        let refilled = started.elapsed().as_secs() + 1;
        assert!(
            limited >= 20 - refilled.min(20) && limited > 0,
            "{limited} of 40 requests were limited"
        );
        // ... and another signer is not affected.
        jc.deals().await.expect("another signer has its own bucket");

        let m = jc.metrics().await.expect("metrics");
        assert!(m.contains("solver_offers_accepted_total{kind=\"resource\"} 1"), "{m}");
        assert!(m.contains("solver_offers_accepted_total{kind=\"job\"} 1"), "{m}");
        assert!(m.contains("solver_offers_rejected_total{reason=\"forbidden\"} 2"), "{m}");
        assert!(m.contains("solver_offers_rejected_total{reason=\"unauthorized\"} 1"), "{m}");
        assert!(m.contains("solver_http_request_duration_seconds_bucket"), "{m}");
    });
    assert!(
        !solver.log().contains(ANVIL_KEYS[devnet::SOLVER].trim_start_matches("0x")),
        "key in the log"
    );
}

on_both!(two_providers: two_providers_one_job_one_deal_and_each_party_sees_only_its_own,
    two_providers_one_job_one_deal_and_each_party_sees_only_its_own_on_postgres);
fn two_providers(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SolverDb::new(backend, dir.path());
    let rt = runtime();
    let net = rt.block_on(devnet(dir.path()));
    let solver = SolverProc::start(&net.network_file(), &db, &dir.path().join("solver.log"), &[]);
    rt.block_on(async {
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        let rp = client(&solver.url, devnet::PROVIDER);
        let rp2 = client(&solver.url, PROVIDER2);
        for p in [devnet::PROVIDER, PROVIDER2] {
            net.account(p).approve_controller(U256::from(1_000_000u64)).await.expect("approve");
        }
        let r1 = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 1));
        let r2 = signed_resource(&net, PROVIDER2, &resource(PROVIDER2, 1));
        rp.post_resource_offer(&r1).await.expect("post r1");
        rp2.post_resource_offer(&r2).await.expect("post r2");

        // The job creator has not approved the controller: createDeal reverts, the job
        // fails with the decoded reason, the provider's offer goes back into the book.
        let j1 = signed_job(&net, &job(1, 1));
        assert_eq!(jc.post_job_offer(&j1, INPUTS).await.expect("post j1").state, OfferState::Matching);
        let failed = eventually("the job to fail", || async {
            let s = jc.job_offer(j1.id).await.expect("status");
            (s.state == OfferState::Failed).then_some(s)
        })
        .await;
        let reason = failed.reason.expect("a reason");
        assert!(reason.contains("createDeal") && reason.contains("Allowance"), "{reason}");
        let events = events_until_quiet(&jc, None, Duration::from_millis(500)).await;
        assert!(
            events.iter().any(|e| matches!(&e.kind, EventKind::OfferFailed { offer_id, .. } if *offer_id == j1.id)),
            "{events:?}"
        );
        eventually("both resource offers to be open", || async {
            let a = rp.resource_offer(r1.id).await.expect("r1").state;
            let b = rp2.resource_offer(r2.id).await.expect("r2").state;
            (a == OfferState::Open && b == OfferState::Open).then_some(())
        })
        .await;

        // Approved now: one job, two fitting providers, exactly one deal.
        net.account(devnet::JOB_CREATOR).approve_controller(U256::from(1_000_000u64)).await.expect("approve");
        let j2 = signed_job(&net, &job(2, 1));
        jc.post_job_offer(&j2, INPUTS).await.expect("post j2");
        let deal_id = eventually("the deal", || async {
            let s = jc.job_offer(j2.id).await.expect("status");
            (s.state == OfferState::Matched).then_some(s.deal_id).flatten()
        })
        .await;
        assert_eq!(deals_on_chain(net.client()).await, vec![deal_id]);
        let on_chain = net.client().deal(deal_id).await.expect("getDeal").expect("the deal exists");
        let (winner, loser, loser_offer) = if on_chain.provider == anvil_address(devnet::PROVIDER) {
            (&rp, &rp2, r2.id)
        } else {
            (&rp2, &rp, r1.id)
        };
        assert_eq!(loser.resource_offer(loser_offer).await.expect("loser offer").state, OfferState::Open);

        // The deal: both parties read it; the other provider cannot.
        let d = jc.deal(deal_id).await.expect("jc reads the deal");
        assert_eq!((d.status, d.deal.inputs_hash), (DealStatus::Agreed, keccak256(INPUTS)));
        assert_eq!(winner.deal(deal_id).await.expect("rp reads the deal"), d);
        assert!(matches!(loser.deal(deal_id).await, Err(SolverError::Forbidden(_))));
        assert_eq!(jc.deals().await.expect("jc deals").len(), 1);
        assert_eq!(winner.deals().await.expect("rp deals").len(), 1);
        assert!(loser.deals().await.expect("loser deals").is_empty());
        assert!(matches!(rp.deal(B256::repeat_byte(1)).await, Err(SolverError::NotFound(_))));

        // Inputs: the deal's provider gets them, and its job creator (its own, to re-run
        // the job: `lilypad-cli verify`); nobody else.
        assert_eq!(winner.job_inputs(deal_id).await.expect("provider fetches inputs"), INPUTS);
        assert!(matches!(loser.job_inputs(deal_id).await, Err(SolverError::Forbidden(_))));
        assert_eq!(jc.job_inputs(deal_id).await.expect("the job creator's own"), INPUTS);
        // Nor another creator's job offer.
        assert!(matches!(rp.job_offer(j2.id).await, Err(SolverError::Forbidden(_))));

        // Events: each sees its own only; resuming after an event skips it.
        let jc_events = events_until_quiet(&jc, None, Duration::from_millis(500)).await;
        assert!(jc_events.iter().any(|e| matches!(&e.kind, EventKind::DealCreated { deal, .. } if deal.id == deal_id)));
        assert!(jc_events.windows(2).all(|w| w[0].seq < w[1].seq));
        let winner_events = events_until_quiet(winner, None, Duration::from_millis(500)).await;
        assert!(winner_events.iter().any(|e| matches!(&e.kind, EventKind::DealCreated { .. })));
        let loser_events = events_until_quiet(loser, None, Duration::from_millis(500)).await;
        assert!(!loser_events.is_empty());
        for e in &loser_events {
            assert!(
                matches!(&e.kind, EventKind::OfferAccepted { offer_id, .. } if *offer_id == loser_offer),
                "the other provider sees {e:?}"
            );
        }
        let first = jc_events[0].seq;
        let resumed = events_until_quiet(&jc, Some(first), Duration::from_millis(500)).await;
        assert_eq!(resumed, jc_events[1..].to_vec());

        // A live event arrives on an open stream.
        let mut live = jc.events(jc_events.last().map(|e| e.seq));
        let j3 = signed_job(&net, &job(3, 8));
        jc.post_job_offer(&j3, INPUTS).await.expect("post j3");
        let e = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("a live event")
            .expect("stream open")
            .expect("event");
        assert!(matches!(e.kind, EventKind::OfferAccepted { offer_id, .. } if offer_id == j3.id), "{e:?}");
        // Why j3 (8 GPUs) does not match: the waiting offer has one.
        let st = jc.job_offer(j3.id).await.expect("status");
        assert_eq!(st.mismatches.len(), 1);
        assert_eq!(st.mismatches[0].offers, 1);
        assert!(st.mismatches[0].reason.contains("GPU"), "{:?}", st.mismatches);
    });
}

on_both!(kill_9: kill_9_between_offer_and_match_and_between_deal_and_results_loses_nothing,
    kill_9_between_offer_and_match_and_between_deal_and_results_loses_nothing_on_postgres);
fn kill_9(backend: Backend) {
    let (dir, rt, net) = approved_devnet();
    let db = SolverDb::new(backend, dir.path());
    let log = dir.path().join("solver.log");

    // 1. A job offer is stored, then the solver is killed before anything matches it.
    let solver = SolverProc::start(&net.network_file(), &db, &log, &[]);
    let j = signed_job(&net, &job(1, 1));
    let seen = rt.block_on(async {
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        assert_eq!(jc.post_job_offer(&j, INPUTS).await.expect("post job").state, OfferState::Open);
        events_until_quiet(&jc, None, Duration::from_millis(300)).await
    });
    solver.kill9();

    // 2. Restarted: the job is still there; a resource offer now makes the deal.
    let solver = SolverProc::start(&net.network_file(), &db, &log, &[]);
    let (deal_id, rp_last) = rt.block_on(async {
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        let rp = client(&solver.url, devnet::PROVIDER);
        assert_eq!(jc.health().await.expect("health").open_jobs, 1);
        assert_eq!(status_of(&jc, j.id).await, OfferState::Open);
        let r = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 1));
        rp.post_resource_offer(&r).await.expect("post resource");
        let deal_id = eventually("the deal", || async {
            let s = jc.job_offer(j.id).await.expect("status");
            (s.state == OfferState::Matched).then_some(s.deal_id).flatten()
        })
        .await;
        assert_eq!(deals_on_chain(net.client()).await, vec![deal_id]);
        // The event log survived the kill: the old events, then the new ones.
        let after = events_until_quiet(&jc, None, Duration::from_millis(300)).await;
        assert_eq!(after[..seen.len()], seen[..]);
        let rp_events = events_until_quiet(&rp, None, Duration::from_millis(300)).await;
        (deal_id, rp_events.last().map(|e| e.seq))
    });
    solver.kill9();

    // 3. While the solver is down, the provider submits results on chain.
    let cid: Bytes = Bytes::from_static(b"\x01\x55\x12\x20results-of-the-job-0123456789abcdef");
    rt.block_on(async {
        net.account(devnet::PROVIDER)
            .submit_results_raw(deal_id, cid.clone())
            .await
            .expect("submitResults");
    });

    // 4. Restarted: the solver catches up from its block cursor.
    let solver = SolverProc::start(&net.network_file(), &db, &log, &[]);
    rt.block_on(async {
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        let rp = client(&solver.url, devnet::PROVIDER);
        let d = eventually("results_submitted", || async {
            let d = rp.deal(deal_id).await.expect("deal");
            (d.status == DealStatus::ResultsSubmitted).then_some(d)
        })
        .await;
        assert_eq!(d.results_cid.as_ref(), Some(&cid));
        assert_eq!(status_of(&jc, j.id).await, OfferState::Matched);
        assert_eq!(jc.deals().await.expect("deals").len(), 1);
        // The provider resumes its stream where it stopped and gets exactly the news.
        let news = events_until_quiet(&rp, rp_last, Duration::from_millis(500)).await;
        assert_eq!(news.len(), 1, "{news:?}");
        assert!(matches!(&news[0].kind, EventKind::ResultsSubmitted { deal_id: d, results_cid } if *d == deal_id && *results_cid == cid));
        // The job creator accepts; the solver sees the deal finish.
        net.account(devnet::JOB_CREATOR).accept_results(deal_id).await.expect("acceptResults");
        eventually("finished", || async {
            let d = jc.deal(deal_id).await.expect("deal");
            d.status.is_finished().then_some(())
        })
        .await;
        // Nothing was used twice: one deal on chain.
        assert_eq!(deals_on_chain(net.client()).await, vec![deal_id]);
    });
    drop(solver);
}

#[test]
fn missing_network_or_key_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str], key: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lilypad-cli"));
        cmd.args(["solver", "--db"]).arg(dir.path().join("s.db")).args(args);
        cmd.env_remove("LILYPAD_NETWORK")
            .env_remove("LILYPAD_RPC_URL")
            .env_remove("WEB3_PRIVATE_KEY");
        if let Some(k) = key {
            cmd.env("WEB3_PRIVATE_KEY", k);
        }
        let out = cmd.output().expect("run lilypad-cli solver");
        assert!(!out.status.success());
        String::from_utf8(out.stderr).expect("utf-8")
    };
    let e = run(&[], Some(ANVIL_KEYS[1]));
    assert!(e.contains("no network: pass --network FILE"), "{e}");
    // A public chain (no devnet key applies to it) needs a key.
    let public = dir.path().join("public.toml");
    let mut config = lilypad_sdk::chain::NetworkConfig::local();
    config.chain_id = 42161;
    config.save(&public).expect("write the network file");
    let public = public.to_str().expect("utf-8 path");
    let e = run(&["--network", public], None);
    assert!(e.contains("no key to sign with") && e.contains("WEB3_PRIVATE_KEY"), "{e}");
    let e = run(&["--rpc-url", "http://127.0.0.1:1"], Some("0xnot-a-key"));
    assert!(e.contains("not a private key") && !e.contains("not-a-key"), "{e}");
}

on_both!(shared_slots: offers_sharing_a_slot_keep_their_slots_across_a_kill_9_and_never_make_two_deals,
    offers_sharing_a_slot_keep_their_slots_across_a_kill_9_and_never_make_two_deals_on_postgres);
fn shared_slots(backend: Backend) {
    let (dir, rt, net) = approved_devnet();
    let db = SolverDb::new(backend, dir.path());
    let log = dir.path().join("solver.log");
    let slots = |names: &[&str]| names.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let two_gpus = |nonce| {
        let mut r = resource(devnet::PROVIDER, nonce);
        r.spec.gpus.push(r.spec.gpus[0].clone());
        r.spec.cpu_millicores *= 2;
        signed_resource(&net, devnet::PROVIDER, &r)
    };

    // 1. Each GPU slot offered alone; then the solver dies.
    let solver = SolverProc::start(&net.network_file(), &db, &log, &[]);
    let gpu0 = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 1));
    let gpu1 = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 2));
    rt.block_on(async {
        let rp = client(&solver.url, devnet::PROVIDER);
        for (offer, slot) in [(&gpu0, "gpu0"), (&gpu1, "gpu1")] {
            let r = rp.post_resource_offer_taking(offer, &slots(&[slot])).await.expect("post");
            assert_eq!(r.state, OfferState::Open);
        }
    });
    solver.kill9();

    // 2. Restarted: the slots' offers are back with their slots, so an offer of both
    // together is taken in; one over a slot nobody offered is refused.
    let solver = SolverProc::start(&net.network_file(), &db, &log, &[]);
    rt.block_on(async {
        let rp = client(&solver.url, devnet::PROVIDER);
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        let both = two_gpus(3);
        let r =
            rp.post_resource_offer_taking(&both, &slots(&["gpu0", "gpu1"])).await.expect("post");
        assert_eq!(r.state, OfferState::Open, "the group over two waiting slots");
        // The public capacity counts each slot once: the group repeats them.
        let one = resource(devnet::PROVIDER, 1);
        let offered = jc.health().await.expect("healthz").offered;
        assert_eq!((offered.providers, offered.offers, offered.gpus), (1, 2, 2), "{offered:?}");
        assert_eq!(offered.cpu_millicores, 2 * u64::from(one.spec.cpu_millicores));
        assert_eq!(offered.ram_mib, 2 * one.spec.ram_mib);
        let stray = two_gpus(4);
        let r =
            rp.post_resource_offer_taking(&stray, &slots(&["gpu1", "gpu2"])).await.expect("post");
        assert_eq!(r.state, OfferState::Failed, "a group over a slot never offered");
        let why = rp.resource_offer(stray.id).await.expect("status").reason.unwrap_or_default();
        assert!(why.contains("\"gpu2\""), "{why}");
        // Malformed slots are a 400 that names them.
        let e = rp.post_resource_offer_taking(&two_gpus(5), &slots(&["gpu0", ""])).await;
        assert!(format!("{e:?}").contains("invalid slots"), "{e:?}");

        // 3. A two-GPU job takes the group; both slots' own offers are withdrawn.
        let j = signed_job(&net, &job(1, 2));
        jc.post_job_offer(&j, INPUTS).await.expect("post job");
        let deal_id = eventually("the deal", || async {
            let s = jc.job_offer(j.id).await.expect("status");
            (s.state == OfferState::Matched).then_some(s.deal_id).flatten()
        })
        .await;
        let made = rp.deal(deal_id).await.expect("deal");
        assert_eq!(made.deal.resource_offer_id, both.id);
        for single in [&gpu0, &gpu1] {
            let s = rp.resource_offer(single.id).await.expect("status");
            assert_eq!(s.state, OfferState::Failed, "{s:?}");
            assert!(s.reason.as_deref().unwrap_or_default().starts_with("withdrawn"), "{s:?}");
        }
        let offered = jc.health().await.expect("healthz").offered;
        assert_eq!(offered, Default::default(), "nothing is on offer after the match");

        // 4. Nothing is left of either slot: a one-GPU job waits.
        let j1 = signed_job(&net, &job(2, 1));
        assert_eq!(jc.post_job_offer(&j1, INPUTS).await.expect("post").state, OfferState::Open);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(status_of(&jc, j1.id).await, OfferState::Open);
        assert_eq!(deals_on_chain(net.client()).await, vec![deal_id]);
    });
    drop(solver);
}

on_both!(min_reputation: min_reputation_jobs_wait_for_a_good_provider_across_a_kill_9_and_preference_picks_it,
    min_reputation_jobs_wait_for_a_good_provider_across_a_kill_9_and_preference_picks_it_on_postgres);
fn min_reputation(backend: Backend) {
    let (dir, rt, net) = approved_devnet();
    let db = SolverDb::new(backend, dir.path());
    let log = dir.path().join("solver.log");

    // 1. PROVIDER completes a deal (results accepted): it scores (1+1)/(1+2) = 0.667,
    // PROVIDER2, with no deal, 0.5.
    let solver = SolverProc::start(&net.network_file(), &db, &log, &[]);
    let loose = signed_resource(&net, PROVIDER2, &resource(PROVIDER2, 1));
    let picky = signed_job(&net, &job(2, 1));
    rt.block_on(async {
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        let rp = client(&solver.url, devnet::PROVIDER);
        let j = signed_job(&net, &job(1, 1));
        jc.post_job_offer(&j, INPUTS).await.expect("post job");
        let r = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 1));
        rp.post_resource_offer(&r).await.expect("post resource");
        let deal_id = eventually("the deal", || async {
            let s = jc.job_offer(j.id).await.expect("status");
            (s.state == OfferState::Matched).then_some(s.deal_id).flatten()
        })
        .await;
        let cid = Bytes::from_static(b"\x01\x55\x12\x20results-of-the-job-0123456789abcdef");
        net.account(devnet::PROVIDER).submit_results_raw(deal_id, cid).await.expect("submit");
        net.account(devnet::JOB_CREATOR).accept_results(deal_id).await.expect("accept");
        eventually("finished", || async {
            jc.deal(deal_id).await.expect("deal").status.is_finished().then_some(())
        })
        .await;

        // 2. A job asking for 0.6 passes PROVIDER2's waiting offer by and says why.
        let rp2 = client(&solver.url, PROVIDER2);
        rp2.post_resource_offer(&loose).await.expect("post resource");
        let st = jc.post_job_offer_requiring(&picky, INPUTS, Some(0.6)).await.expect("post");
        assert_eq!(st.state, OfferState::Open);
        // Out of range is refused with the reason, and nothing is stored.
        for bad in [1.5, -0.1] {
            let other = signed_job(&net, &job(9, 1));
            let e = jc.post_job_offer_requiring(&other, INPUTS, Some(bad)).await;
            let e = format!("{:?}", e.expect_err("refused"));
            assert!(e.contains("invalid min_reputation") && e.contains("from 0 to 1"), "{e}");
        }
    });
    solver.kill9();

    // 3. Restarted: the minimum came back with the offer (else PROVIDER2's offer,
    // reloaded after it, would take it) and the scores from the database.
    let solver = SolverProc::start(&net.network_file(), &db, &log, &["--prefer-reputation"]);
    rt.block_on(async {
        let jc = client(&solver.url, devnet::JOB_CREATOR);
        let rp = client(&solver.url, devnet::PROVIDER);
        let st = jc.job_offer(picky.id).await.expect("status");
        assert_eq!(st.state, OfferState::Open);
        assert_eq!(st.mismatches.len(), 1, "{:?}", st.mismatches);
        assert_eq!(st.mismatches[0].reason, "the provider's reputation is under your minimum");

        // 4. PROVIDER's next offer takes it.
        let r = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 2));
        rp.post_resource_offer(&r).await.expect("post resource");
        let deal_id = eventually("the picky deal", || async {
            let s = jc.job_offer(picky.id).await.expect("status");
            (s.state == OfferState::Matched).then_some(s.deal_id).flatten()
        })
        .await;
        assert_eq!(rp.deal(deal_id).await.expect("deal").deal.resource_offer_id, r.id);

        // 5. With --prefer-reputation, of two offers at one price the better provider's
        // wins although PROVIDER2's is older.
        let r = signed_resource(&net, devnet::PROVIDER, &resource(devnet::PROVIDER, 3));
        rp.post_resource_offer(&r).await.expect("post resource");
        let j = signed_job(&net, &job(3, 1));
        jc.post_job_offer(&j, INPUTS).await.expect("post job");
        let deal_id = eventually("the preferred deal", || async {
            let s = jc.job_offer(j.id).await.expect("status");
            (s.state == OfferState::Matched).then_some(s.deal_id).flatten()
        })
        .await;
        assert_eq!(rp.deal(deal_id).await.expect("deal").deal.resource_offer_id, r.id);
        let rp2 = client(&solver.url, PROVIDER2);
        assert_eq!(rp2.resource_offer(loose.id).await.expect("status").state, OfferState::Open);
    });
    drop(solver);
}
