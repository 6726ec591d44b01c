//! The bridge service: runs the jobs smart contracts request from `LilypadJobManager`, and
//! ends each one on chain exactly once.
//!
//! [`Bridge::run`] watches the manager's events from a durable block cursor, keeps one row
//! per job in SQLite (WAL), runs each job through a [`JobRunner`] (the network's job
//! flow), then calls `fulfill(jobId, resultsCid, spent)` or `cancel(jobId, reason)`; the
//! manager settles the escrow and calls the client back. A job's states:
//!
//! ```text
//! requested -> claimed(owner, lease) -> running -> fulfilling(tx) -> fulfilled
//!                                          \-----> cancelling(tx) -> cancelled
//! ```
//!
//! Restarts resume where the database says; two instances sharing the database file
//! split the jobs by lease. `docs/bridge.md` has the exactly-once argument, the options
//! and the failure modes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lilypad_sdk::bridge::{Bridge, BridgeOptions, CancellationToken, JobRunner};
//! use lilypad_sdk::chain::{ChainClient, NetworkConfig, PrivateKeySigner};
//!
//! async fn serve(
//!     key: PrivateKeySigner,
//!     runner: Arc<dyn JobRunner>,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     let net = NetworkConfig::load("network.toml".as_ref())?;
//!     let chain = ChainClient::connect(net).await?.with_signer(key);
//!     let bridge = Bridge::new(chain, "bridge.sqlite".as_ref(), runner, BridgeOptions::default()).await?;
//!     let shutdown = CancellationToken::new();
//!     bridge.run(shutdown).await?;
//!     Ok(())
//! }
//! ```

#[cfg(feature = "jobs")]
mod job_runner;
mod metrics;
mod runner;
mod store;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use lilypad_core::amount::Amount;
use tokio::{sync::watch, task::JoinSet};
pub use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

#[cfg(feature = "jobs")]
pub use self::job_runner::JobCreatorRunner;
use self::metrics::{Failure, InFlight, Phase};
use self::store::{SeenFinal, Store, now_ms};
pub use self::{
    metrics::BridgeMetrics,
    runner::{BridgeJob, JobRunner, RunContext, RunFailure, RunSuccess},
    store::read_jobs,
};
use crate::chain::{
    ChainClient, ChainError, JobManagerEvent, JobStatus, OnChainJobOutcome, RequestedJob, Revert,
    bindings::job_manager::LilypadJobManager::LilypadJobManagerErrors as Jm,
};

/// The reason the bridge gives a client whose job's deadline passed before it could post
/// results: the manager's own `EXPIRED_REASON`, so clients see one reason for expiry.
pub const EXPIRED_REASON: &str = "expired";
/// The longest results CID and cancel reason the manager takes (`MAX_RESULTS_BYTES`,
/// `MAX_REASON_BYTES`).
pub const MAX_CHAIN_STRING_BYTES: usize = 128;

/// Where a job stands in the bridge's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Seen in a `JobRequested` event; nobody holds it.
    Requested,
    /// An instance holds its lease and is about to run it.
    Claimed,
    /// The runner was started (at least once); the deal id is kept once known.
    Running,
    /// The results are recorded; the `fulfill` transaction is being sent (or was).
    Fulfilling,
    /// Over on chain: fulfilled.
    Fulfilled,
    /// The reason is recorded; the `cancel` transaction is being sent (or was).
    Cancelling,
    /// Over on chain: cancelled (by the bridge, or by anyone after the deadline).
    Cancelled,
}

impl JobState {
    /// Whether the job is over on chain.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Fulfilled | Self::Cancelled)
    }
}

/// A job's row in the bridge database ([`read_jobs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The job as its `JobRequested` event asked for it.
    pub job: RequestedJob,
    /// The block of its `JobRequested` event.
    pub block: u64,
    /// Where it stands.
    pub state: JobState,
    /// The instance holding its lease, if any.
    pub owner: Option<String>,
    /// Until when (unix milliseconds, wall clock) the owner holds it.
    pub lease_until_ms: u64,
    /// Not to be taken up before (unix milliseconds): backoff after a failure.
    pub not_before_ms: u64,
    /// How many times the runner was started for it.
    pub attempts: u32,
    /// How many steps failed (drives the backoff).
    pub tries: u32,
    /// Its deal, once the runner recorded one.
    pub deal_id: Option<B256>,
    /// The results to post (from `fulfilling` on).
    pub results_cid: Option<String>,
    /// What the bridge claims for running it (from `fulfilling` on).
    pub spent: Option<U256>,
    /// The cancel reason (from `cancelling` on).
    pub reason: Option<String>,
    /// The last fulfill or cancel transaction sent, or the one that ended the job.
    pub tx: Option<B256>,
    /// The last error, for operators.
    pub last_error: Option<String>,
}

/// What can go wrong in the bridge. While it runs, only [`BridgeError::FaultInjected`]
/// stops [`Bridge::run`]: every other error is logged and retried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A chain call failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The database failed.
    #[error("bridge database {}: {cause}", .path.display())]
    Db {
        /// The database file.
        path: PathBuf,
        /// SQLite's error (part of the message, so not a `source()`).
        cause: rusqlite::Error,
    },
    /// A directory for the database could not be created.
    #[error("{}: {cause}", .path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure (part of the message, so not a `source()`).
        cause: std::io::Error,
    },
    /// The database belongs to another network.
    #[error(
        "bridge database {} was made for {field} {stored}, but this network's is {network}: \
         give each network its own database file",
        .path.display()
    )]
    WrongNetwork {
        /// The database file.
        path: PathBuf,
        /// `chain_id` or `job_manager`.
        field: &'static str,
        /// What the database holds.
        stored: String,
        /// What the network file says.
        network: String,
    },
    /// The chain client has no key.
    #[error(
        "the bridge sends transactions and needs a key: set WEB3_PRIVATE_KEY (or use ChainClient::with_signer)"
    )]
    NoSigner,
    /// The key's account lacks the manager's bridge role.
    #[error(
        "account {account} lacks BRIDGE_ROLE of the job manager {manager}: the manager's admin \
         grants it (ChainClient::grant_bridge); on a devnet the bridge is well-known account 7"
    )]
    NotBridge {
        /// The key's account.
        account: Address,
        /// The job manager.
        manager: Address,
    },
    /// An option is out of range.
    #[error("bridge option {field} = {value}: {reason}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        reason: &'static str,
    },
    /// Another instance holds the job now (its lease expired here), or it is over.
    #[error(
        "job {job_id} is no longer held by this bridge instance (lease lost, or the job is over)"
    )]
    LeaseLost {
        /// The job id.
        job_id: U256,
    },
    /// A `fault_*` option stopped the bridge on purpose (tests of crash recovery).
    #[error("fault injected: {what} (job {job_id})")]
    FaultInjected {
        /// Which fault.
        what: &'static str,
        /// The job id.
        job_id: U256,
    },
    /// A bug or a runtime failure (a background thread panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

/// How the bridge behaves. `Default` suits a public chain; tests shorten the times.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    /// Jobs this instance drives at once (at least 1). Default 4.
    pub concurrency: usize,
    /// Blocks an event must be under before the bridge acts on it (reorg safety); 0 on a
    /// local chain (anvil does not reorganise). Default 0.
    pub confirmations: u64,
    /// Pause between scans of new blocks. Default 2 s.
    pub poll_interval: Duration,
    /// How long a claim holds a job (renewed every third of it while the job is driven);
    /// after an instance dies, its jobs wait this long before another takes them over.
    /// Default 60 s.
    pub lease: Duration,
    /// Runs of a job (the first plus retries after retryable failures) before it is
    /// cancelled with the last failure's reason. Default 3.
    pub max_attempts: u32,
    /// First pause after a failure (RPC, database, a retryable run), doubled per failure
    /// up to [`Self::max_backoff`]. Default 2 s.
    pub backoff: Duration,
    /// The longest pause after failures. Default 2 min.
    pub max_backoff: Duration,
    /// How long a runner may take to return after its cancellation fires before the
    /// bridge drops it. Default 10 s.
    pub cancel_grace: Duration,
    /// The first block to scan when the database has no cursor yet; default the network's
    /// `deployed_at_block`.
    pub start_block: Option<u64>,
    /// The name of this instance in leases; default host, process id and a counter.
    pub instance: Option<String>,
    /// Testing only: after the node accepted a `fulfill` or `cancel` transaction and before
    /// the database records it, [`Bridge::run`] returns [`BridgeError::FaultInjected`],
    /// as if the process had died there.
    pub fault_crash_after_send: bool,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            confirmations: 0,
            poll_interval: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            max_attempts: 3,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(120),
            cancel_grace: Duration::from_secs(10),
            start_block: None,
            instance: None,
            fault_crash_after_send: false,
        }
    }
}

impl BridgeOptions {
    fn validate(&self) -> Result<(), BridgeError> {
        let bad =
            |field, value: String, reason| Err(BridgeError::InvalidOption { field, value, reason });
        if self.concurrency == 0 {
            return bad("concurrency", "0".into(), "must be at least 1");
        }
        if self.lease < Duration::from_millis(300) {
            return bad("lease", format!("{:?}", self.lease), "must be at least 300 ms");
        }
        if self.poll_interval.is_zero() {
            return bad("poll_interval", "0".into(), "must be positive");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts", "0".into(), "must be at least 1");
        }
        if self.backoff.is_zero() || self.max_backoff < self.backoff {
            return bad(
                "backoff",
                format!("{:?} (max {:?})", self.backoff, self.max_backoff),
                "must be positive and at most max_backoff",
            );
        }
        Ok(())
    }

    /// The pause after `failures` consecutive failures.
    fn backoff_after(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn default_instance() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{host}-{}-{}-{n}", std::process::id(), now_ms())
}

/// The bridge service; see the module docs.
#[derive(Debug, Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

struct Inner {
    chain: ChainClient,
    manager: Address,
    store: Store,
    runner: Arc<dyn JobRunner>,
    opts: BridgeOptions,
    owner: String,
    metrics: BridgeMetrics,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("manager", &self.manager)
            .field("owner", &self.owner)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// What a job's driver does next.
enum Next {
    /// Go on in this state.
    Go(JobState),
    /// Stop driving this job (over, lost, given up until later, or shutting down).
    Stop,
}

impl Bridge {
    /// A bridge acting with `chain`'s key (which must hold the manager's `BRIDGE_ROLE`),
    /// keeping its state in the SQLite file `db` (created if missing; a file made for
    /// another chain or manager is refused), running jobs with `runner`.
    pub async fn new(
        chain: ChainClient,
        db: &Path,
        runner: Arc<dyn JobRunner>,
        opts: BridgeOptions,
    ) -> Result<Self, BridgeError> {
        opts.validate()?;
        let account = chain.address().ok_or(BridgeError::NoSigner)?;
        let manager = chain.job_manager_address()?;
        if !chain.is_bridge(account).await? {
            return Err(BridgeError::NotBridge { account, manager });
        }
        // The bridge pays gas for every deal and callback out of its own account; the
        // manager's minimum payment is what keeps a client from making it pay more
        // than the job brings in.
        let minimum = chain.min_payment().await?;
        if minimum.is_zero() {
            tracing::warn!(
                %manager,
                "the job manager has no minimum payment: a job paying less than the bridge's \
                 gas costs the bridge money (the manager's admin sets it with setMinPayment)"
            );
        } else {
            tracing::info!(%manager, min_payment = %minimum, "jobs below the minimum payment are refused by the manager");
        }
        let (path, chain_id) = (db.to_owned(), chain.config().chain_id);
        let store = tokio::task::spawn_blocking(move || Store::open(&path, chain_id, manager))
            .await
            .map_err(|e| BridgeError::Internal(format!("opening the database: {e}")))??;
        let owner = opts.instance.clone().unwrap_or_else(default_instance);
        let metrics = BridgeMetrics::new();
        Ok(Self { inner: Arc::new(Inner { chain, manager, store, runner, opts, owner, metrics }) })
    }

    /// The bridge's metrics (serve them with [`crate::metrics::serve`]).
    pub fn metrics(&self) -> &BridgeMetrics {
        &self.inner.metrics
    }

    /// This instance's name in leases.
    pub fn instance(&self) -> &str {
        &self.inner.owner
    }

    /// Every job in the database, in id order.
    pub async fn jobs(&self) -> Result<Vec<JobRecord>, BridgeError> {
        self.inner.store.jobs().await
    }

    /// Runs until `shutdown` fires: scans new blocks, claims jobs (up to
    /// [`BridgeOptions::concurrency`] at a time), drives each to its end on chain. On
    /// shutdown, runners are cancelled, transactions in flight are awaited and leases
    /// released. Errors are logged and retried with backoff; only a `fault_*` option makes
    /// this return an error.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), BridgeError> {
        let inner = &self.inner;
        info!(
            instance = %inner.owner,
            manager = %inner.manager,
            concurrency = inner.opts.concurrency,
            confirmations = inner.opts.confirmations,
            "bridge started"
        );
        let (now_tx, now_rx) = watch::channel(0u64);
        let mut tasks: JoinSet<Result<(), BridgeError>> = JoinSet::new();
        // The jobs this instance drives: never claimed twice here, even if a stall let
        // their lease lapse.
        let mut driving: HashMap<tokio::task::Id, U256> = HashMap::new();
        let mut failures = 0u32;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let started = Instant::now();
            let scanned = inner.tick(&now_tx).await;
            inner.metrics.observe(Phase::Scan, started);
            match scanned {
                Ok(()) => failures = 0,
                Err(e) => {
                    inner.metrics.failed(Failure::ScanError);
                    failures = failures.saturating_add(1);
                    warn!(error = %e, failures, "scanning the chain failed; retrying after a pause");
                }
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                Self::reaped(done, &mut driving, &inner.metrics)?;
            }
            let free = inner.opts.concurrency.saturating_sub(tasks.len());
            if failures == 0 && free > 0 {
                let busy = driving.values().copied().collect();
                match inner.store.claim(inner.owner.clone(), free, inner.opts.lease, busy).await {
                    Ok(claimed) => {
                        for rec in claimed {
                            let rec_id = rec.job.job_id;
                            let span = info_span!("job", id = %rec.job.job_id);
                            debug!(parent: &span, state = ?rec.state, attempts = rec.attempts, "claimed");
                            let job =
                                inner.clone().drive(rec, shutdown.child_token(), now_rx.clone());
                            let id = rec_id;
                            let handle = tasks.spawn(job.instrument(span));
                            driving.insert(handle.id(), id);
                        }
                    }
                    Err(e) => {
                        inner.metrics.failed(Failure::ScanError);
                        failures = failures.saturating_add(1);
                        warn!(error = %e, "claiming jobs failed; retrying after a pause");
                    }
                }
            }
            let pause = if failures == 0 {
                inner.opts.poll_interval
            } else {
                inner.opts.backoff_after(failures)
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    Self::reaped(done, &mut driving, &inner.metrics)?;
                }
            }
        }
        info!(in_flight = tasks.len(), "bridge stopping");
        while let Some(done) = tasks.join_next_with_id().await {
            Self::reaped(done, &mut driving, &inner.metrics)?;
        }
        info!("bridge stopped");
        Ok(())
    }

    fn reaped(
        done: Result<(tokio::task::Id, Result<(), BridgeError>), tokio::task::JoinError>,
        driving: &mut HashMap<tokio::task::Id, U256>,
        metrics: &BridgeMetrics,
    ) -> Result<(), BridgeError> {
        driving.remove(&match &done {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        });
        match done.map(|(_, r)| r) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e @ BridgeError::FaultInjected { .. })) => Err(e),
            Ok(Err(e)) => {
                warn!(error = %e, "a job driver failed");
                Ok(())
            }
            Err(e) => {
                metrics.failed(Failure::DriverPanic);
                warn!(error = %e, "a job driver panicked; its lease will expire and the job be taken up again");
                Ok(())
            }
        }
    }
}

impl Inner {
    /// One scan: new events up to head - confirmations into the database, then chain time.
    async fn tick(&self, now_tx: &watch::Sender<u64>) -> Result<(), BridgeError> {
        let head = self.chain.block_number().await?;
        let last = head.saturating_sub(self.opts.confirmations);
        let from = match self.store.cursor().await? {
            Some(c) => c,
            None => self.opts.start_block.unwrap_or(self.chain.config().deployed_at_block),
        };
        let mut poller = self.chain.poll_job_events(from)?;
        while poller.cursor() <= last {
            let batch = poller.next_batch_until(last).await?;
            let mut jobs = Vec::new();
            let mut finals = Vec::new();
            for (event, log) in batch {
                match event {
                    JobManagerEvent::JobRequested(e) => {
                        info!(id = %e.jobId, client = %e.client, module = %e.module, "job requested");
                        jobs.push((RequestedJob::from(e), log.block_number.unwrap_or(0)));
                    }
                    JobManagerEvent::JobFulfilled(e) => finals.push(SeenFinal {
                        job_id: e.jobId,
                        state: JobState::Fulfilled,
                        tx: log.transaction_hash,
                    }),
                    JobManagerEvent::JobCancelled(e) => finals.push(SeenFinal {
                        job_id: e.jobId,
                        state: JobState::Cancelled,
                        tx: log.transaction_hash,
                    }),
                    _ => {}
                }
            }
            self.store.record_scan(jobs, finals, poller.cursor()).await?;
        }
        now_tx.send_replace(self.chain.latest_timestamp().await?);
        Ok(())
    }

    /// Drives one claimed job until it is over, lost, backed off or shut down.
    async fn drive(
        self: Arc<Self>,
        rec: JobRecord,
        cancel: CancellationToken,
        mut now_rx: watch::Receiver<u64>,
    ) -> Result<(), BridgeError> {
        let _in_flight = InFlight::new(&self.metrics);
        // The lease is renewed for as long as the job is driven; `lost` fires when a
        // renewal finds another owner (or the job over): the run stops, nothing is sent.
        let lost = CancellationToken::new();
        let renewer = async {
            let mut every = tokio::time::interval(self.opts.lease / 3);
            every.tick().await;
            loop {
                every.tick().await;
                match self.store.renew(rec.job.job_id, self.owner.clone(), self.opts.lease).await {
                    Ok(()) => {}
                    Err(BridgeError::LeaseLost { .. }) => break,
                    Err(e) => warn!(error = %e, "renewing the lease failed; trying again"),
                }
            }
            lost.cancel();
            std::future::pending::<()>().await;
        };
        let steps = self.steps(rec.clone(), cancel, &mut now_rx, &lost);
        tokio::select! {
            r = steps => r,
            () = renewer => Ok(()),
        }
    }

    async fn steps(
        &self,
        mut rec: JobRecord,
        cancel: CancellationToken,
        now_rx: &mut watch::Receiver<u64>,
        lost: &CancellationToken,
    ) -> Result<(), BridgeError> {
        loop {
            if lost.is_cancelled() {
                info!("another instance holds this job now, or it is over; leaving it");
                return Ok(());
            }
            let step = match rec.state {
                JobState::Requested | JobState::Claimed | JobState::Running => {
                    self.run_step(&rec, &cancel, now_rx, lost).await
                }
                JobState::Fulfilling | JobState::Cancelling => self.post_step(&rec).await,
                JobState::Fulfilled | JobState::Cancelled => Ok(Next::Stop),
            };
            match step {
                Ok(Next::Go(state)) => match self.reload(rec.job.job_id).await {
                    Ok(r) if r.state == state => rec = r,
                    Ok(_) | Err(BridgeError::LeaseLost { .. }) => return Ok(()),
                    Err(e) => {
                        warn!(error = %e, "reading the job back failed; its lease will expire");
                        return Ok(());
                    }
                },
                Ok(Next::Stop) => return Ok(()),
                Err(e @ BridgeError::FaultInjected { .. }) => return Err(e),
                Err(BridgeError::LeaseLost { .. }) => {
                    info!("another instance holds this job now, or it is over; leaving it");
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.failed(Failure::StepError);
                    let tries = rec.tries.saturating_add(1);
                    let pause = self.opts.backoff_after(tries);
                    warn!(error = %e, retry_in = ?pause, "step failed; the job is given up until then");
                    let until =
                        now_ms().saturating_add(u64::try_from(pause.as_millis()).unwrap_or(0));
                    if let Err(e) = self
                        .store
                        .back_off(rec.job.job_id, self.owner.clone(), until, e.to_string(), false)
                        .await
                    {
                        warn!(error = %e, "recording the backoff failed; the lease will expire instead");
                    }
                    return Ok(());
                }
            }
        }
    }

    async fn reload(&self, job_id: U256) -> Result<JobRecord, BridgeError> {
        let rec = self.store.job(job_id).await?.ok_or(BridgeError::LeaseLost { job_id })?;
        if rec.owner.as_deref() != Some(self.owner.as_str()) {
            return Err(BridgeError::LeaseLost { job_id });
        }
        Ok(rec)
    }

    /// Checks the chain; if the job is open and in time, runs it and records the outcome.
    async fn run_step(
        &self,
        rec: &JobRecord,
        cancel: &CancellationToken,
        now_rx: &mut watch::Receiver<u64>,
        lost: &CancellationToken,
    ) -> Result<Next, BridgeError> {
        let id = rec.job.job_id;
        let owner = self.owner.clone();
        let job = self.chain.job(id).await?.ok_or(ChainError::NoSuchJob { job_id: id })?;
        if job.status != JobStatus::Requested {
            info!(status = ?job.status, "the job is already over on chain");
            self.store.finish(id, job.status, None, None).await?;
            return Ok(Next::Stop);
        }
        if self.chain.latest_timestamp().await? > job.deadline {
            info!(deadline = job.deadline, "the job's deadline passed before it ran; cancelling");
            self.metrics.failed(Failure::Expired);
            self.store.to_cancelling(id, owner, EXPIRED_REASON.into()).await?;
            return Ok(Next::Go(JobState::Cancelling));
        }
        let attempt = self.store.start_run(id, owner.clone()).await?;
        let job = BridgeJob { job: rec.job.clone(), attempt, resume_deal: rec.deal_id };
        info!(attempt, resume_deal = ?job.resume_deal, module = %job.job.module, "running");
        let run_cancel = cancel.child_token();
        let ctx = RunContext {
            cancel: run_cancel.clone(),
            store: self.store.clone(),
            job_id: id,
            owner: owner.clone(),
        };
        let started = Instant::now();
        let run = self.runner.run(&job, &ctx);
        tokio::pin!(run);
        // Why the run was stopped, if it was.
        let mut stopped: Option<&'static str> = None;
        let mut clock = true;
        let result = loop {
            tokio::select! {
                r = &mut run => break Some(r),
                () = lost.cancelled(), if stopped.is_none() => {
                    stopped = Some("lease lost");
                    run_cancel.cancel();
                }
                changed = now_rx.changed(), if stopped.is_none() && clock => {
                    // The sender lives as long as `run`; without it, no more clock ticks.
                    clock = changed.is_ok();
                    if clock && *now_rx.borrow_and_update() > rec.job.deadline {
                        stopped = Some("expired");
                        run_cancel.cancel();
                    }
                }
                () = cancel.cancelled(), if stopped.is_none() => stopped = Some("shutdown"),
                () = tokio::time::sleep(self.opts.cancel_grace), if stopped.is_some() => {
                    warn!("the runner did not return within the cancel grace; dropping it");
                    break None;
                }
            }
        };
        self.metrics.observe(Phase::Run, started);
        match (result, stopped) {
            (_, Some("lease lost")) => Err(BridgeError::LeaseLost { job_id: id }),
            (Some(Ok(ok)), _) => {
                let spent = if ok.spent > rec.job.payment {
                    warn!(spent = %Amount(ok.spent), payment = %Amount(rec.job.payment), "the runner spent more than the payment; claiming the payment");
                    rec.job.payment
                } else {
                    ok.spent
                };
                if ok.results_cid.is_empty() || ok.results_cid.len() > MAX_CHAIN_STRING_BYTES {
                    let reason = format!(
                        "results CID of {} bytes cannot be posted (1 to {MAX_CHAIN_STRING_BYTES})",
                        ok.results_cid.len()
                    );
                    warn!(%reason, "cancelling");
                    self.metrics.failed(Failure::ResultsRejected);
                    self.store.to_cancelling(id, owner, reason).await?;
                    return Ok(Next::Go(JobState::Cancelling));
                }
                info!(results = %ok.results_cid, %spent, deal = ?ok.deal_id, "ran; posting the results");
                self.store.to_fulfilling(id, owner, ok.results_cid, spent, ok.deal_id).await?;
                Ok(Next::Go(JobState::Fulfilling))
            }
            (_, Some("expired")) => {
                info!(
                    deadline = rec.job.deadline,
                    "the deadline passed during the run; cancelling"
                );
                self.metrics.failed(Failure::Expired);
                self.store.to_cancelling(id, owner, EXPIRED_REASON.into()).await?;
                Ok(Next::Go(JobState::Cancelling))
            }
            (_, Some(_)) | (None, None) => {
                info!(
                    "stopping; the job stays running for the next instance (its deal id is kept)"
                );
                self.store.release(id, owner).await?;
                Ok(Next::Stop)
            }
            (Some(Err(fail)), None) => {
                if fail.retryable && attempt < self.opts.max_attempts {
                    let pause = self.opts.backoff_after(attempt);
                    info!(reason = %fail.reason, attempt, retry_in = ?pause, "run failed; will retry");
                    self.metrics.failed(Failure::RunRetry);
                    let until =
                        now_ms().saturating_add(u64::try_from(pause.as_millis()).unwrap_or(0));
                    self.store.back_off(id, owner, until, fail.reason, true).await?;
                    return Ok(Next::Stop);
                }
                let reason = truncate_utf8(&fail.reason, MAX_CHAIN_STRING_BYTES).to_owned();
                info!(%reason, attempt, retryable = fail.retryable, "run failed; cancelling");
                self.metrics.failed(Failure::RunFailed);
                self.store.to_cancelling(id, owner, reason).await?;
                Ok(Next::Go(JobState::Cancelling))
            }
        }
    }

    /// Posts the recorded results or reason, unless the chain says the job is over already.
    async fn post_step(&self, rec: &JobRecord) -> Result<Next, BridgeError> {
        let id = rec.job.job_id;
        let owner = self.owner.clone();
        // Before any send, the chain: a crash between a send and its record must not lead
        // to a second send (the manager would refuse it anyway, JobAlreadyFinal).
        let job = self.chain.job(id).await?.ok_or(ChainError::NoSuchJob { job_id: id })?;
        if job.status != JobStatus::Requested {
            info!(status = ?job.status, "over on chain already; recording it");
            self.store.finish(id, job.status, None, None).await?;
            return Ok(Next::Stop);
        }
        // The fence: the send happens only while this instance still holds the job.
        self.store.renew(id, owner.clone(), self.opts.lease).await?;
        let fulfilling = rec.state == JobState::Fulfilling;
        let (phase, started) =
            (if fulfilling { Phase::Fulfill } else { Phase::Cancel }, Instant::now());
        let sent = if fulfilling {
            let cid = rec.results_cid.clone().unwrap_or_default();
            let spent = rec.spent.unwrap_or_default();
            self.chain.send_fulfill_job(id, &cid, spent).await
        } else {
            let reason = rec.reason.clone().unwrap_or_default();
            self.chain.send_cancel_job(id, truncate_utf8(&reason, MAX_CHAIN_STRING_BYTES)).await
        };
        let tx = match sent {
            Ok(tx) => tx,
            Err(ChainError::Reverted { revert: Revert::JobManager(e), .. }) => {
                return self.refused(rec, &e).await;
            }
            Err(e) => return Err(e.into()),
        };
        if self.opts.fault_crash_after_send {
            return Err(BridgeError::FaultInjected { what: "crash after sending", job_id: id });
        }
        self.store.record_tx(id, owner, tx).await?;
        // The lease is renewed meanwhile (the receipt may take up to rpc.tx_timeout_secs),
        // so no other instance re-sends.
        let outcome = self.chain.job_tx_outcome(tx).await;
        self.metrics.observe(phase, started);
        match outcome? {
            OnChainJobOutcome::Fulfilled(f) => {
                self.metrics.jobs_ended.with_label_values(&["fulfilled"]).inc();
                info!(tx = %f.tx, results = %f.results_cid, spent = %Amount(f.spent), refund = %Amount(f.refund), callback_failed = f.callback_failed, "fulfilled");
                self.store.finish(id, JobStatus::Fulfilled, Some(f.tx), None).await?;
            }
            OnChainJobOutcome::Cancelled(c) => {
                self.metrics.jobs_ended.with_label_values(&["cancelled"]).inc();
                info!(tx = %c.tx, reason = %c.reason, refund = %Amount(c.refund), callback_failed = c.callback_failed, "cancelled");
                self.store.finish(id, JobStatus::Cancelled, Some(c.tx), Some(c.reason)).await?;
            }
        }
        Ok(Next::Stop)
    }

    /// The manager refused (in simulation) a fulfill or cancel.
    async fn refused(&self, rec: &JobRecord, e: &Jm) -> Result<Next, BridgeError> {
        let id = rec.job.job_id;
        match e {
            Jm::JobAlreadyFinal(_) => {
                let status = self.chain.job(id).await?.map_or(JobStatus::Requested, |j| j.status);
                info!(?status, "the manager says the job is over already; recording it");
                self.store.finish(id, status, None, None).await?;
                Ok(Next::Stop)
            }
            Jm::JobExpired(_) if rec.state == JobState::Fulfilling => {
                info!("too late to post the results (deadline passed); cancelling");
                self.metrics.failed(Failure::Expired);
                self.store.to_cancelling(id, self.owner.clone(), EXPIRED_REASON.into()).await?;
                Ok(Next::Go(JobState::Cancelling))
            }
            Jm::EmptyResults(_) | Jm::ResultsTooLong(_) | Jm::SpentExceedsPayment(_)
                if rec.state == JobState::Fulfilling =>
            {
                let message = Revert::JobManager(e.clone()).to_string();
                let reason = format!("the bridge could not post the results: {message}");
                warn!(%reason, "cancelling");
                self.metrics.failed(Failure::ResultsRejected);
                let reason = truncate_utf8(&reason, MAX_CHAIN_STRING_BYTES).to_owned();
                self.store.to_cancelling(id, self.owner.clone(), reason).await?;
                Ok(Next::Go(JobState::Cancelling))
            }
            other => Err(ChainError::Reverted {
                call: if rec.state == JobState::Fulfilling { "fulfill" } else { "cancel" },
                revert: Revert::JobManager(other.clone()),
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        assert_eq!(truncate_utf8("short", 128), "short");
        let s = "é".repeat(100); // 200 bytes
        let cut = truncate_utf8(&s, 127);
        assert_eq!(cut.len(), 126);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = BridgeOptions::default();
        let secs: Vec<u64> = (1..=8).map(|f| o.backoff_after(f).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(o.backoff_after(u32::MAX), o.max_backoff);
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let e = BridgeOptions { max_attempts: 0, ..BridgeOptions::default() }.validate();
        assert!(matches!(e, Err(BridgeError::InvalidOption { field: "max_attempts", .. })));
        let e = BridgeOptions { lease: Duration::from_millis(10), ..BridgeOptions::default() };
        assert!(e.validate().unwrap_err().to_string().contains("lease"));
        assert!(BridgeOptions::default().validate().is_ok());
    }
}
