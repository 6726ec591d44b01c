//! Load test of the solver: signed offers stored durably per second.
//!
//! Starts a real devnet (anvil: `scripts/setup-contracts.sh`) and the solver in
//! this process on 127.0.0.1 with a fresh SQLite database, pre-signs N distinct
//! offers (half resource offers of 64 providers, half job offers of 64 creators;
//! every request and every offer EIP-712 signed), then posts them with C
//! concurrent HTTP/1.1 connections and measures until the last answer. Every
//! answer must be `201 Created`, which the solver sends only after the offer's
//! row (with its request nonce and event) is committed (`synchronous = FULL`).
//!
//! No offer matches another (every job asks for a GPU, no machine has one), so
//! no `createDeal` is sent: the chain is there because the solver needs it to
//! start, and its per-deal transaction cost is not what this measures. The
//! matcher still files every offer.
//!
//! Prints `solver_offers_per_sec=`, `solver_p99_ms=`, `solver_p50_ms=` and the
//! cost of one signature recovery and one verification with a known key
//! (`solver_recover_us=`, `solver_verify_us=`, libsecp256k1 as the solver uses
//! it) beside a recovery with alloy's k256 (`solver_k256_recover_us=`): a posted
//! offer costs one recovery (the request) and one verification (the offer, with
//! the recovered key) instead of two recoveries.
//!
//! `SOLVER_BENCH_OFFERS` (20000) and `SOLVER_BENCH_CONCURRENCY` (64) override
//! the sizes.
//!
//! With `LILYPAD_TEST_POSTGRES_URL` set (scripts/bench.sh starts a throwaway
//! server with scripts/setup-postgres.sh), the same offers are then posted to a
//! second solver on a fresh PostgreSQL database (one replica), which prints
//! `solver_pg_offers_per_sec=`, `solver_pg_p50_ms=`, `solver_pg_p99_ms=`; the
//! SQLite run above is its baseline. Then the same offers go to two replicas on
//! another fresh database (issue #16: one holds the lease and matches, the other
//! stores the offers it takes in for the leader to pick up), alternately, which
//! prints `solver_pg2_offers_per_sec=`, `solver_pg2_p50_ms=`, `solver_pg2_p99_ms=`;
//! the one-replica run is its baseline. Each run counts until the last `201`
//! (the offer committed); the two-replica run then checks that the leader's
//! matcher holds every offer and says how long that took (not timed). Without
//! the variable, a note says the Postgres runs were left out.

use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
};
use futures::StreamExt;
use lilypad_sdk::{
    chain::{sign_job_offer, sign_resource_offer},
    core::{
        eip712,
        offer::{JobOffer, ModulePolicy, ResourceOffer},
        spec::{JobRequirements, MachineSpec},
    },
    devnet::{self, Devnet, DevnetOptions, anvil_address, anvil_signer},
    solver::{
        Database, Limits, Rate, SolverClient, SolverOptions,
        auth::{RequestAuth, recover, request_domain, verify_with_key},
    },
};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn key(n: u64) -> PrivateKeySigner {
    let mut b = [0u8; 32];
    b[0] = 0x11;
    b[24..].copy_from_slice(&n.to_be_bytes());
    PrivateKeySigner::from_bytes(&B256::from(b)).expect("a valid key")
}

struct Prepared {
    path: &'static str,
    body: Vec<u8>,
    auth: RequestAuth,
}

fn median_us(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Microseconds per recovery and per verification with libsecp256k1 (what the
/// solver uses), and per recovery with alloy's k256 (the alternative).
fn signature_costs() -> (f64, f64, f64) {
    let k = key(1);
    let digests: Vec<B256> = (0..200u64).map(|i| keccak256(i.to_be_bytes())).collect();
    let sigs: Vec<[u8; 65]> =
        digests.iter().map(|d| k.sign_hash_sync(d).expect("sign").as_bytes()).collect();
    let (vk, _) = recover(&digests[0], &sigs[0]).expect("recover");
    let mut rec = Vec::new();
    let mut ver = Vec::new();
    let mut k256 = Vec::new();
    let alloy_sigs: Vec<alloy::primitives::Signature> =
        sigs.iter().map(|s| alloy::primitives::Signature::from_raw(s).expect("sig")).collect();
    for _ in 0..5 {
        let t = Instant::now();
        for (d, s) in digests.iter().zip(&sigs) {
            std::hint::black_box(recover(d, s).expect("recover"));
        }
        rec.push(t.elapsed().as_secs_f64() * 1e6 / digests.len() as f64);
        let t = Instant::now();
        for (d, s) in digests.iter().zip(&sigs) {
            verify_with_key(&vk, d, s).expect("verify");
        }
        ver.push(t.elapsed().as_secs_f64() * 1e6 / digests.len() as f64);
        let t = Instant::now();
        for (d, s) in digests.iter().zip(&alloy_sigs) {
            std::hint::black_box(s.recover_address_from_prehash(d).expect("recover"));
        }
        k256.push(t.elapsed().as_secs_f64() * 1e6 / digests.len() as f64);
    }
    (median_us(rec), median_us(ver), median_us(k256))
}

fn main() {
    // `cargo bench` passes `--bench`; this harness has no options of its own.
    let n = env_or("SOLVER_BENCH_OFFERS", 20_000);
    let concurrency = env_or("SOLVER_BENCH_CONCURRENCY", 64);
    let (recover_us, verify_us, k256_us) = signature_costs();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let mut opts = DevnetOptions::new(dir.path().join("devnet"));
        opts.startup_timeout = Duration::from_secs(60);
        let net = Devnet::start(&opts, &|_| {})
            .await
            .unwrap_or_else(|e| panic!("the solver bench needs a devnet: {e}"));
        let solver_addr = anvil_address(devnet::SOLVER);

        // Pre-sign everything (not timed).
        let domain = eip712::domain(31337, net.config().contracts.controller);
        let rdomain = request_domain(31337, solver_addr);
        let mediators: BTreeSet<Address> = [anvil_address(devnet::MEDIATORS[0])].into();
        let expiry = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let providers: Vec<PrivateKeySigner> = (0..64).map(|i| key(1000 + i)).collect();
        let creators: Vec<PrivateKeySigner> = (0..64).map(|i| key(2000 + i)).collect();
        let inputs = br#"{"Message":"moo"}"#;
        let started_signing = Instant::now();
        let prepared: Vec<Prepared> = (0..n as u64)
            .map(|i| {
                let (path, body, signer) = if i % 2 == 0 {
                    let k = &providers[(i as usize / 2) % providers.len()];
                    let offer = ResourceOffer {
                        provider: k.address(),
                        payout: Default::default(),
                        spec: MachineSpec {
                            cpu_millicores: 4000 + (i % 8) as u32 * 1000,
                            ram_mib: 8192,
                            disk_mib: 0,
                            gpus: Vec::new(),
                        },
                        modules: ModulePolicy::Any,
                        default_price: U256::from(10 + i % 50),
                        module_prices: Default::default(),
                        timeout_collateral: U256::from(5u64),
                        bounds: Default::default(),
                        mediators: mediators.clone(),
                        solver: solver_addr,
                        expiry: expiry + 3600,
                        nonce: U256::from(i),
                    };
                    let signed = sign_resource_offer(k, &offer, &domain).expect("sign");
                    ("/api/v1/resource_offers", SolverClient::resource_offer_body(&signed), k)
                } else {
                    let k = &creators[(i as usize / 2) % creators.len()];
                    let offer = JobOffer {
                        creator: k.address(),
                        module_id: B256::repeat_byte((i % 40) as u8 + 1),
                        inputs_hash: keccak256(inputs),
                        requirements: JobRequirements {
                            cpu_millicores: 1000,
                            ram_mib: 1024,
                            gpu_count: 1,
                            ..Default::default()
                        },
                        max_price: U256::from(100u64),
                        payment_collateral: U256::from(100u64),
                        timeout_secs: 600,
                        bounds: Default::default(),
                        mediators: mediators.clone(),
                        solver: solver_addr,
                        target: None,
                        expiry: expiry + 3600,
                        nonce: U256::from(i),
                    };
                    let signed = sign_job_offer(k, &offer, &domain).expect("sign");
                    ("/api/v1/job_offers", SolverClient::job_offer_body(&signed, inputs), k)
                };
                let body = body.expect("body");
                let auth = RequestAuth::sign(
                    signer,
                    &rdomain,
                    "POST",
                    path,
                    &body,
                    U256::from(i),
                    expiry + 590,
                )
                .expect("sign request");
                Prepared { path, body, auth }
            })
            .collect();
        eprintln!("pre-signed {n} offers in {:.1}s", started_signing.elapsed().as_secs_f64());
        let prepared = Arc::new(prepared);

        let sqlite =
            load(&net, Database::from(dir.path().join("solver.db")), 1, &prepared, concurrency)
                .await;
        println!("solver_offers_per_sec={:.0}", sqlite.per_sec);
        println!("solver_p50_ms={:.2}", sqlite.p50_ms);
        println!("solver_p99_ms={:.2}", sqlite.p99_ms);
        println!("solver_recover_us={recover_us:.1}");
        println!("solver_verify_us={verify_us:.1}");
        println!("solver_k256_recover_us={k256_us:.1}");
        match std::env::var("LILYPAD_TEST_POSTGRES_URL") {
            Ok(admin) => {
                let db = FreshDatabase::new(&admin, "pg");
                let pg = load(&net, Database::parse(&db.url), 1, &prepared, concurrency).await;
                println!("solver_pg_offers_per_sec={:.0}", pg.per_sec);
                println!("solver_pg_p50_ms={:.2}", pg.p50_ms);
                println!("solver_pg_p99_ms={:.2}", pg.p99_ms);
                drop(db);
                let db = FreshDatabase::new(&admin, "pg2");
                let pg2 = load(&net, Database::parse(&db.url), 2, &prepared, concurrency).await;
                println!("solver_pg2_offers_per_sec={:.0}", pg2.per_sec);
                println!("solver_pg2_p50_ms={:.2}", pg2.p50_ms);
                println!("solver_pg2_p99_ms={:.2}", pg2.p99_ms);
            }
            Err(_) => eprintln!(
                "note: LILYPAD_TEST_POSTGRES_URL is not set, so the Postgres run was left out \
                 (export LILYPAD_TEST_POSTGRES_URL=$(bash scripts/setup-postgres.sh))"
            ),
        }
        drop(net);
    });
}

/// Offers per second and latency of one load run.
struct Load {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Starts `replicas` solvers on `db`, posts every prepared offer with
/// `concurrency` connections (offer `i` to replica `i % replicas`), checks that
/// each was stored and that the matcher (the leader's, with replicas) holds them
/// all, and stops the solvers.
async fn load(
    net: &Devnet,
    db: Database,
    replicas: usize,
    prepared: &Arc<Vec<Prepared>>,
    concurrency: usize,
) -> Load {
    let n = prepared.len();
    let solver_addr = anvil_address(devnet::SOLVER);
    let what = match replicas {
        1 => db.to_string(),
        r => format!("{db}, {r} replicas"),
    };
    let mut running = Vec::new();
    for _ in 0..replicas {
        let mut sopts = SolverOptions::new(db.clone(), "127.0.0.1:0".parse().expect("addr"));
        // One machine posts everything: the per-peer and per-signer limits would
        // (rightly) throttle it.
        let unlimited = Rate { per_sec: 1e9, burst: 1e9 };
        sopts.limits = Limits { per_signer: unlimited, per_peer: unlimited, ..Limits::default() };
        let solver = lilypad_sdk::solver::start(net.account(devnet::SOLVER), sopts)
            .await
            .unwrap_or_else(|e| panic!("start the solver on {what}: {e}"));
        running.push(solver);
    }
    {
        let clients: Vec<SolverClient> = running
            .iter()
            .map(|r| SolverClient::new(&r.url(), anvil_signer(9), 31337, solver_addr))
            .collect::<Result<_, _>>()
            .expect("client");
        let started = Instant::now();
        let latencies: Vec<(u16, f64)> = futures::stream::iter(0..n)
            .map(|i| {
                let client = clients[i % clients.len()].clone();
                let prepared = prepared.clone();
                async move {
                    let p = &prepared[i];
                    let t = Instant::now();
                    let status =
                        match client.send("POST", p.path, p.body.clone(), Some(&p.auth)).await {
                            Ok(r) => r.status,
                            Err(e) => panic!("request {i}: {e}"),
                        };
                    (status, t.elapsed().as_secs_f64() * 1000.0)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        let failed: Vec<u16> = latencies.iter().map(|l| l.0).filter(|s| *s != 201).collect();
        assert!(
            failed.is_empty(),
            "{} requests were not 201: {:?}",
            failed.len(),
            &failed[..failed.len().min(10)]
        );
        if let [client] = &clients[..] {
            let health = client.health().await.expect("healthz");
            assert_eq!(
                (health.open_jobs + health.open_resources) as usize,
                n,
                "every offer is in the book"
            );
        } else {
            let picked_up = leader_holds(&clients, n, started).await;
            eprintln!(
                "{what}: the leader's matcher held all {n} offers {:.2}s after the last answer",
                picked_up.as_secs_f64() - elapsed
            );
        }
        let mut ms: Vec<f64> = latencies.iter().map(|l| l.1).collect();
        ms.sort_by(f64::total_cmp);
        let p = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
        eprintln!(
            "{what}: {n} signed offers, {concurrency} connections, {elapsed:.2}s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            p(0.5),
            p(0.99),
            ms[ms.len() - 1]
        );
        let load = Load { per_sec: n as f64 / elapsed, p50_ms: p(0.5), p99_ms: p(0.99) };
        for solver in running {
            solver.shutdown().await;
        }
        load
    }
}

/// Waits until the replica of `clients` that holds the lease (its `/healthz` says
/// `"is_leader": true`) has all `n` offers in its matcher, for up to 60 s; returns
/// the time since `started`.
async fn leader_holds(clients: &[SolverClient], n: usize, started: Instant) -> Duration {
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        seen.clear();
        for c in clients {
            let r = c.send("GET", "/healthz", Vec::new(), None).await.expect("healthz");
            let h: serde_json::Value = serde_json::from_slice(&r.body).expect("healthz JSON");
            let count = |k: &str| h.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            let is_leader = h.get("is_leader").and_then(serde_json::Value::as_bool);
            let open = count("open_jobs") + count("open_resources");
            if is_leader == Some(true) && open as usize == n {
                return started.elapsed();
            }
            seen.push((is_leader, open));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no leader holds all {n} offers 60 s after the run started: (is_leader, open offers) \
         of each replica: {seen:?}"
    )
}

/// A fresh database on the Postgres server at `admin` (a URL), dropped at the end.
struct FreshDatabase {
    admin: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    fn new(admin: &str, tag: &str) -> Self {
        let name = format!("lilypad_bench_{tag}_{}", std::process::id());
        Self::run(admin, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        Self::run(admin, format!("CREATE DATABASE {name}"));
        let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
        let host = base.find("://").map_or(0, |i| i + 3);
        let host_end = base[host..].find('/').map_or(base.len(), |i| host + i);
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        let url = format!("{}/{name}{query}", &base[..host_end]);
        Self { admin: admin.to_owned(), name, url }
    }

    /// Runs `sql` on a thread of its own (the sync client must not run on an async worker).
    fn run(admin: &str, sql: String) {
        let admin = admin.to_owned();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
                panic!("{admin}: {e} (bash scripts/setup-postgres.sh starts a server)")
            });
            c.batch_execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
        .join()
        .expect("database thread");
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        Self::run(&self.admin, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}
