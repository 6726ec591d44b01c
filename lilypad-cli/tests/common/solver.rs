//! What the tests of `lilypad-cli solver` processes share (tests/solver_cli.rs and
//! tests/solver_failover.rs): the solver's database (a SQLite file or a fresh
//! PostgreSQL database), a solver process, signed offers that match one another
//! one to one, and the deals on chain.

#![allow(dead_code, unreachable_pub)]

use std::{
    collections::BTreeSet,
    path::Path,
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256, keccak256};
use lilypad_sdk::{
    chain::{
        ChainClient, ControllerEvent, SignedJobOffer, SignedResourceOffer, sign_job_offer,
        sign_resource_offer,
    },
    core::{
        eip712,
        offer::{JobOffer, ModulePolicy, ResourceOffer},
        spec::{Gpu, JobRequirements, MachineSpec},
    },
    devnet::{self, ANVIL_KEYS, Devnet, DevnetOptions, anvil_address, anvil_signer},
    solver::SolverClient,
};

use crate::common::{Proc, now, runtime, sample, scrape};

/// The second provider: a funded spare account (devnet funds all ten).
pub const PROVIDER2: usize = 8;

/// A devnet under `dir`.
pub async fn devnet(dir: &Path) -> Devnet {
    let mut opts = DevnetOptions::new(dir.join("devnet"));
    opts.startup_timeout = Duration::from_secs(60);
    Devnet::start(&opts, &|_| {}).await.unwrap_or_else(|e| panic!("cannot start a devnet: {e}"))
}

/// Where a test's solver keeps its state.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A fresh database of the server at `LILYPAD_TEST_POSTGRES_URL`.
    Postgres,
}

/// The solver's database: a file in the test's directory, or a fresh Postgres
/// database dropped at the end.
pub struct SolverDb {
    /// What `--db` gets: the file's path or the database's URL.
    pub arg: String,
    postgres: Option<(String, String)>,
}

impl SolverDb {
    const VAR: &'static str = "LILYPAD_TEST_POSTGRES_URL";

    /// A database for a test under `dir`.
    pub fn new(backend: Backend, dir: &Path) -> Self {
        match backend {
            Backend::Sqlite => {
                Self { arg: dir.join("solver.db").display().to_string(), postgres: None }
            }
            Backend::Postgres => {
                let admin = std::env::var(Self::VAR).unwrap_or_else(|_| {
                    panic!(
                        "{} is not set: the solver's Postgres tests need a PostgreSQL server. \
                         From the repository root run `export {}=$(bash scripts/setup-postgres.sh)`, \
                         then run the tests again",
                        Self::VAR,
                        Self::VAR
                    )
                });
                Self::fresh_on(&admin)
            }
        }
    }

    /// A fresh database on the PostgreSQL server at `admin` (a URL of a database
    /// there that may create databases), dropped at the end.
    pub fn fresh_on(admin: &str) -> Self {
        let admin = admin.to_owned();
        let name = format!(
            "lilypad_cli_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        );
        Self::admin(&admin, &format!("CREATE DATABASE {name}"));
        let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
        let host_end = base.find("://").map_or(0, |i| i + 3);
        let host_end = base[host_end..].find('/').map_or(base.len(), |i| host_end + i);
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        let arg = format!("{}/{name}{query}", &base[..host_end]);
        Self { arg, postgres: Some((admin, name)) }
    }

    /// On Postgres: asserts that a started solver migrated this very database (a
    /// URL taken for a file name would leave it empty).
    pub fn assert_in_use(&self) {
        if self.postgres.is_none() {
            return;
        }
        let url = self.arg.clone();
        let version: i32 = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            c.query_one("SELECT MAX(version) FROM schema_migrations", &[])
                .expect("the solver made schema_migrations")
                .get(0)
        })
        .join()
        .expect("check thread");
        assert!(version >= 1, "schema version {version}");
    }

    /// Runs `sql` on the server's admin database (on a thread of its own: the sync
    /// client must not run inside an async runtime).
    fn admin(url: &str, sql: &str) {
        let (url, sql) = (url.to_owned(), sql.to_owned());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("{url}: {e} (start it with scripts/setup-postgres.sh)"));
            c.batch_execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
        .join()
        .expect("admin thread");
    }
}

impl Drop for SolverDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres {
            let (admin, sql) =
                (admin.clone(), format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                    let _ = c.batch_execute(&sql);
                }
            })
            .join();
        }
    }
}

/// A `lilypad-cli solver` process (the shared harness's [`Proc`]); killed with
/// SIGKILL when dropped.
pub struct SolverProc;

impl SolverProc {
    /// Starts `lilypad-cli solver` on `db` with `extra` arguments, logging to `log`;
    /// on Postgres, waits until it holds the lease (it is the only replica).
    pub fn start(network: &Path, db: &SolverDb, log: &Path, extra: &[&str]) -> Proc {
        let solver = Self::start_replica(network, db, log, extra);
        if db.postgres.is_some() {
            // A replica on Postgres matches once it holds the lease; after a kill -9 the
            // dead process's lease has to expire first (5 s).
            let addr = solver.url.trim_start_matches("http://").to_owned();
            let t0 = Instant::now();
            while sample(&scrape(&addr), "solver_leader") != Some(1.0) {
                assert!(t0.elapsed() < Duration::from_secs(20), "the solver never took the lease");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        solver
    }

    /// Starts `lilypad-cli solver` on `db` like [`Self::start`], without waiting for
    /// the lease: one replica of several on a Postgres database.
    pub fn start_replica(network: &Path, db: &SolverDb, log: &Path, extra: &[&str]) -> Proc {
        let (network, arg) = (network.display().to_string(), db.arg.clone());
        let mut args =
            vec!["solver", "--listen", "127.0.0.1:0", "--network", &network, "--db", &arg];
        args.extend_from_slice(extra);
        let solver = Proc::spawn(&args, &[("WEB3_PRIVATE_KEY", ANVIL_KEYS[devnet::SOLVER])], log);
        db.assert_in_use();
        solver
    }
}

/// A client of the solver at `url` signing as well-known account `account`.
pub fn client(url: &str, account: usize) -> SolverClient {
    SolverClient::new(url, anvil_signer(account), 31337, anvil_address(devnet::SOLVER))
        .expect("solver client")
}

/// The devnet's mediators.
pub fn mediators() -> BTreeSet<Address> {
    devnet::MEDIATORS.iter().map(|m| anvil_address(*m)).collect()
}

/// The inputs of every job offer.
pub const INPUTS: &[u8] = br#"{"Message":"moo"}"#;

/// A job offer of the job creator asking for `gpus` GPUs.
pub fn job(nonce: u64, gpus: u32) -> JobOffer {
    job_of(devnet::JOB_CREATOR, nonce, gpus)
}

/// A job offer of well-known account `creator` asking for `gpus` GPUs.
pub fn job_of(creator: usize, nonce: u64, gpus: u32) -> JobOffer {
    JobOffer {
        creator: anvil_address(creator),
        module_id: B256::repeat_byte(7),
        inputs_hash: keccak256(INPUTS),
        requirements: JobRequirements {
            cpu_millicores: 1000,
            ram_mib: 512,
            gpu_count: gpus,
            ..Default::default()
        },
        max_price: U256::from(50u64),
        payment_collateral: U256::from(100u64),
        timeout_secs: 600,
        bounds: Default::default(),
        mediators: mediators(),
        solver: anvil_address(devnet::SOLVER),
        target: None,
        expiry: now() + 3600,
        nonce: U256::from(nonce),
    }
}

/// A resource offer of well-known account `account`: one GPU, so it takes one job.
pub fn resource(account: usize, nonce: u64) -> ResourceOffer {
    ResourceOffer {
        provider: anvil_address(account),
        payout: Default::default(),
        spec: MachineSpec {
            cpu_millicores: 4000,
            ram_mib: 8192,
            disk_mib: 10_000,
            gpus: vec![Gpu { vendor: "NVIDIA".into(), model: "RTX 4090".into(), vram_mib: 24_576 }],
        },
        modules: ModulePolicy::Any,
        default_price: U256::from(30u64),
        module_prices: Default::default(),
        timeout_collateral: U256::from(7u64),
        bounds: Default::default(),
        mediators: mediators(),
        solver: anvil_address(devnet::SOLVER),
        expiry: now() + 3600,
        nonce: U256::from(nonce),
    }
}

/// The controller's EIP-712 domain.
pub fn domain(net: &Devnet) -> alloy::sol_types::Eip712Domain {
    eip712::domain(31337, net.config().contracts.controller)
}

/// `offer` signed by the job creator.
pub fn signed_job(net: &Devnet, offer: &JobOffer) -> SignedJobOffer {
    signed_job_of(net, devnet::JOB_CREATOR, offer)
}

/// `offer` signed by well-known account `account`.
pub fn signed_job_of(net: &Devnet, account: usize, offer: &JobOffer) -> SignedJobOffer {
    sign_job_offer(&anvil_signer(account), offer, &domain(net)).expect("sign job")
}

/// `offer` signed by well-known account `account`.
pub fn signed_resource(net: &Devnet, account: usize, offer: &ResourceOffer) -> SignedResourceOffer {
    sign_resource_offer(&anvil_signer(account), offer, &domain(net)).expect("sign resource")
}

/// DealCreated events of this solver on chain.
pub async fn deals_on_chain(chain: &ChainClient) -> Vec<B256> {
    deals_created(chain).await.into_iter().map(|d| d.deal_id).collect()
}

/// A deal on chain as its `DealCreated` event tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealOnChain {
    /// The deal id.
    pub deal_id: B256,
    /// The job offer it took.
    pub job_offer_id: B256,
    /// The resource offer it took.
    pub resource_offer_id: B256,
}

/// Every `DealCreated` event of this solver on chain, in chain order.
pub async fn deals_created(chain: &ChainClient) -> Vec<DealOnChain> {
    let mut poller = chain.poll_controller_events(0);
    let mut out = Vec::new();
    loop {
        let batch = poller.next_batch().await.expect("eth_getLogs");
        if batch.is_empty() {
            return out;
        }
        for (e, _) in batch {
            if let ControllerEvent::DealCreated(d) = e {
                assert_eq!(d.solver, anvil_address(devnet::SOLVER));
                out.push(DealOnChain {
                    deal_id: d.dealId,
                    job_offer_id: d.terms.jobOfferHash,
                    resource_offer_id: d.terms.resourceOfferHash,
                });
            }
        }
    }
}

/// A devnet whose provider and job creator approved the controller, and the runtime.
pub fn approved_devnet() -> (tempfile::TempDir, tokio::runtime::Runtime, Devnet) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = runtime();
    let net = rt.block_on(devnet(dir.path()));
    rt.block_on(async {
        for p in [devnet::PROVIDER, devnet::JOB_CREATOR] {
            net.account(p).approve_controller(U256::from(1_000_000u64)).await.expect("approve");
        }
    });
    (dir, rt, net)
}
