//! On-chain jobs through `LilypadJobManager`: request (as an account), fulfill and cancel
//! (as the bridge), read jobs, poll their events; and the `ExampleClient` contract.
//!
//! An *on-chain job* is a request a contract (or an account) escrows with the job
//! manager; the bridge runs it as an ordinary deal and posts the results back. Its types
//! ([`OnChainJob`], [`RequestedJob`], [`OnChainJobOutcome`], ...) are not the off-chain
//! job runner's ([`crate::job`], whose `JobOutcome` is a deal's verified results).
//!
//! Job ids are the manager's `uint256` ids (1, 2, ... in request order).

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, U256},
    providers::DynProvider,
    rpc::types::{Filter, TransactionReceipt},
    sol_types::{SolEvent, SolEventInterface},
};

use super::{
    bindings::{
        example_client::ExampleClient::{self as Ex, ExampleClientInstance},
        job_manager::LilypadJobManager::{self as Jm, LilypadJobManagerInstance},
    },
    client::ChainClient,
    config::ConfigError,
    error::{ChainError, Result, Target},
    events::LogPoller,
};

/// Any event of the job manager (`JobRequested`, `JobFulfilled`, `JobCancelled`,
/// `CallbackFailed`, and AccessControl's role events).
pub type JobManagerEvent = Jm::LilypadJobManagerEvents;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Escrowed, waiting for the bridge.
    Requested,
    /// The bridge posted results.
    Fulfilled,
    /// Cancelled by the bridge or, after the deadline, by anyone; the payment went back.
    Cancelled,
}

/// A job as the manager stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChainJob {
    /// The job id.
    pub id: U256,
    /// The contract (or account) that asked; it gets the refunds and the callback.
    pub client: Address,
    /// The last second the bridge may fulfill (request time + the manager's job timeout).
    pub deadline: u64,
    /// Where it stands.
    pub status: JobStatus,
    /// What the client escrowed (kept as a record once the job is final).
    pub payment: U256,
}

/// A `JobRequested` event: a job to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedJob {
    /// The job id.
    pub job_id: U256,
    /// The client.
    pub client: Address,
    /// The module reference, e.g. `cowsay:v0.0.4`.
    pub module: String,
    /// The inputs, split at each one's first `=`.
    pub inputs: Vec<(String, String)>,
    /// The escrowed payment.
    pub payment: U256,
    /// The last second the bridge may fulfill.
    pub deadline: u64,
}

impl From<Jm::JobRequested> for RequestedJob {
    fn from(e: Jm::JobRequested) -> Self {
        Self {
            job_id: e.jobId,
            client: e.client,
            module: e.module,
            inputs: parse_inputs(&e.inputs),
            payment: e.payment,
            deadline: e.deadline,
        }
    }
}

/// A fulfilled job (`JobFulfilled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfilledJob {
    /// The job id.
    pub job_id: U256,
    /// The client.
    pub client: Address,
    /// The bridge account that posted the results (and got `spent`).
    pub bridge: Address,
    /// The results CID as text.
    pub results_cid: String,
    /// What the bridge was reimbursed.
    pub spent: U256,
    /// What the client got back.
    pub refund: U256,
    /// Whether the client's callback failed (reverted, ran out of gas, or the client is an
    /// account); the job is final regardless.
    pub callback_failed: bool,
    /// The transaction.
    pub tx: B256,
}

/// A cancelled job (`JobCancelled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelledJob {
    /// The job id.
    pub job_id: U256,
    /// The client.
    pub client: Address,
    /// Who cancelled: the bridge, or anyone after the deadline.
    pub by: Address,
    /// The reason given to the client (`expired` for [`ChainClient::cancel_expired_job`]).
    pub reason: String,
    /// The whole payment, returned to the client.
    pub refund: U256,
    /// Whether the client's callback failed (see [`FulfilledJob::callback_failed`]).
    pub callback_failed: bool,
    /// The transaction.
    pub tx: B256,
}

/// How a job ended: [`ChainClient::wait_for_job`], [`ChainClient::job_tx_outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnChainJobOutcome {
    /// The bridge posted the results; the client got `lilypadFulfilled(jobId, resultsCid)`.
    Fulfilled(FulfilledJob),
    /// The job was cancelled and refunded; the client got `lilypadCancelled(jobId, reason)`.
    Cancelled(CancelledJob),
}

impl OnChainJobOutcome {
    /// The job id.
    pub fn job_id(&self) -> U256 {
        match self {
            Self::Fulfilled(f) => f.job_id,
            Self::Cancelled(c) => c.job_id,
        }
    }

    /// The transaction that ended the job.
    pub fn tx(&self) -> B256 {
        match self {
            Self::Fulfilled(f) => f.tx,
            Self::Cancelled(c) => c.tx,
        }
    }

    /// The final status ([`JobStatus::Fulfilled`] or [`JobStatus::Cancelled`]).
    pub fn status(&self) -> JobStatus {
        match self {
            Self::Fulfilled(_) => JobStatus::Fulfilled,
            Self::Cancelled(_) => JobStatus::Cancelled,
        }
    }
}

/// Inputs as the manager takes them: `KEY=VALUE` strings.
pub fn input_strings(inputs: &[(String, String)]) -> Vec<String> {
    inputs.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `KEY=VALUE` strings split at each one's first `=` (one without `=` gives an empty value).
pub fn parse_inputs(inputs: &[String]) -> Vec<(String, String)> {
    inputs
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (i.clone(), String::new()),
        })
        .collect()
}

fn callback_failed(receipt: &TransactionReceipt, manager: Address) -> bool {
    receipt.logs().iter().filter(|l| l.address() == manager).any(|l| {
        matches!(
            JobManagerEvent::decode_raw_log(l.topics(), &l.data().data),
            Ok(JobManagerEvent::CallbackFailed(_))
        )
    })
}

fn decode_job_event(log: &alloy::primitives::Log) -> Option<JobManagerEvent> {
    JobManagerEvent::decode_raw_log(log.topics(), &log.data.data).ok()
}

impl ChainClient {
    /// The job manager's address, or an error naming the missing `contracts.job_manager`.
    pub fn job_manager_address(&self) -> Result<Address> {
        self.config().contracts.job_manager.ok_or_else(|| {
            ChainError::Config(ConfigError::Invalid {
                network: self.config().name.clone(),
                field: "contracts.job_manager",
                value: "none".into(),
                reason: "this network has no job manager (on-chain jobs); add its address to the network file",
            })
        })
    }

    pub(crate) fn job_manager(&self) -> Result<LilypadJobManagerInstance<DynProvider>> {
        Ok(Jm::new(self.job_manager_address()?, self.provider().clone()))
    }

    /// Requests a job as the signer (an account; contracts call `runJob` themselves):
    /// approves the manager for `payment`, then calls `runJob(module, inputs, payment)`.
    /// The signer is the job's client and gets the refunds (no callback: it has no code).
    pub async fn run_job(
        &self,
        module: &str,
        inputs: &[(String, String)],
        payment: U256,
    ) -> Result<RequestedJob> {
        let manager = self.job_manager()?;
        self.approve(*manager.address(), payment).await?;
        let call = manager.runJob(module.to_owned(), input_strings(inputs), payment);
        let receipt = self.send("runJob", Target::JobManager, call).await?;
        let e: Jm::JobRequested = Self::event("runJob", &receipt, *manager.address())?;
        Ok(e.into())
    }

    /// Posts job `job_id`'s results (bridge role only, up to the job's deadline): the bridge
    /// gets `spent`, the client the rest of the payment and then its `lilypadFulfilled` callback.
    pub async fn fulfill_job(
        &self,
        job_id: U256,
        results_cid: &str,
        spent: U256,
    ) -> Result<FulfilledJob> {
        let manager = self.job_manager()?;
        let call = manager.fulfill(job_id, results_cid.to_owned(), spent);
        let receipt = self.send("fulfill", Target::JobManager, call).await?;
        self.fulfilled("fulfill", &receipt, *manager.address())
    }

    /// Like [`Self::fulfill_job`], but returns as soon as the node took the transaction
    /// (after a successful simulation), with its hash; [`Self::job_tx_outcome`] awaits it.
    /// The bridge records the hash before awaiting, so a restart can look for it.
    pub async fn send_fulfill_job(
        &self,
        job_id: U256,
        results_cid: &str,
        spent: U256,
    ) -> Result<B256> {
        let manager = self.job_manager()?;
        let call = manager.fulfill(job_id, results_cid.to_owned(), spent);
        self.send_only("fulfill", Target::JobManager, call).await
    }

    /// Cancels job `job_id` (bridge role only, while it is open): the client gets its whole
    /// payment back and then its `lilypadCancelled(job_id, reason)` callback.
    pub async fn cancel_job(&self, job_id: U256, reason: &str) -> Result<CancelledJob> {
        let manager = self.job_manager()?;
        let call = manager.cancel(job_id, reason.to_owned());
        let receipt = self.send("cancel", Target::JobManager, call).await?;
        self.cancelled("cancel", &receipt, *manager.address())
    }

    /// Like [`Self::cancel_job`], but returns the transaction hash as soon as the node took it.
    pub async fn send_cancel_job(&self, job_id: U256, reason: &str) -> Result<B256> {
        let manager = self.job_manager()?;
        let call = manager.cancel(job_id, reason.to_owned());
        self.send_only("cancel", Target::JobManager, call).await
    }

    /// Awaits transaction `tx` (a `fulfill`, `cancel` or `cancelExpired`) and reads how it
    /// ended its job. A transaction that was mined but reverted is [`ChainError::TxFailed`].
    pub async fn job_tx_outcome(&self, tx: B256) -> Result<OnChainJobOutcome> {
        let manager = self.job_manager_address()?;
        let receipt = self.wait_success("job transaction", tx).await?;
        if let Ok(f) = self.fulfilled("job transaction", &receipt, manager) {
            return Ok(OnChainJobOutcome::Fulfilled(f));
        }
        self.cancelled("job transaction", &receipt, manager).map(OnChainJobOutcome::Cancelled)
    }

    /// Waits until job `job_id` is fulfilled or cancelled, for at most `timeout`, and returns
    /// how it ended (also when it ended before this call: its event is then looked up from the
    /// network's `deployed_at_block`). Polls `eth_getLogs` every `rpc.max_receipt_poll_ms`.
    ///
    /// Errors: [`ChainError::NoSuchJob`] for an id never requested, [`ChainError::Timeout`]
    /// when the job is still open after `timeout`, and the RPC errors of the reads.
    pub async fn wait_for_job(&self, job_id: U256, timeout: Duration) -> Result<OnChainJobOutcome> {
        let started = tokio::time::Instant::now();
        let manager = self.job_manager_address()?;
        let from = self.block_number().await?;
        let job = self.job(job_id).await?.ok_or(ChainError::NoSuchJob { job_id })?;
        // Read at a block >= `from`: an open job ends in a later block, so scanning from
        // `from` cannot miss it; a final one may have ended long ago.
        let start =
            if job.status == JobStatus::Requested { from } else { self.config().deployed_at_block };
        let filter = Filter::new()
            .address(manager)
            .event_signature(vec![
                Jm::JobFulfilled::SIGNATURE_HASH,
                Jm::JobCancelled::SIGNATURE_HASH,
            ])
            .topic1(B256::from(job_id));
        let mut poller = LogPoller::new(self.clone(), filter, start, decode_job_event);
        let pause = Duration::from_millis(self.config().rpc.max_receipt_poll_ms.max(10));
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(ChainError::Timeout { call: "wait_for_job", after: timeout });
            }
            let batch = match tokio::time::timeout(left, poller.next_batch()).await {
                Ok(batch) => batch?,
                Err(_) => return Err(ChainError::Timeout { call: "wait_for_job", after: timeout }),
            };
            for (event, log) in batch {
                let ended = match &event {
                    JobManagerEvent::JobFulfilled(e) => e.jobId == job_id,
                    JobManagerEvent::JobCancelled(e) => e.jobId == job_id,
                    _ => false,
                };
                if let (true, Some(tx)) = (ended, log.transaction_hash) {
                    return self.job_tx_outcome(tx).await;
                }
            }
            if poller.cursor() > self.block_number().await? {
                tokio::time::sleep(pause.min(left)).await;
            }
        }
    }

    fn fulfilled(
        &self,
        call: &'static str,
        receipt: &TransactionReceipt,
        manager: Address,
    ) -> Result<FulfilledJob> {
        let e: Jm::JobFulfilled = Self::event(call, receipt, manager)?;
        Ok(FulfilledJob {
            job_id: e.jobId,
            client: e.client,
            bridge: e.bridge,
            results_cid: e.resultsCid,
            spent: e.spent,
            refund: e.refund,
            callback_failed: callback_failed(receipt, manager),
            tx: receipt.transaction_hash,
        })
    }

    /// Cancels a job the bridge left open past its deadline (anyone, from deadline + 1),
    /// with reason `expired`.
    pub async fn cancel_expired_job(&self, job_id: U256) -> Result<CancelledJob> {
        let manager = self.job_manager()?;
        let receipt =
            self.send("cancelExpired", Target::JobManager, manager.cancelExpired(job_id)).await?;
        self.cancelled("cancelExpired", &receipt, *manager.address())
    }

    fn cancelled(
        &self,
        call: &'static str,
        receipt: &TransactionReceipt,
        manager: Address,
    ) -> Result<CancelledJob> {
        let e: Jm::JobCancelled = Self::event(call, receipt, manager)?;
        Ok(CancelledJob {
            job_id: e.jobId,
            client: e.client,
            by: e.by,
            reason: e.reason,
            refund: e.refund,
            callback_failed: callback_failed(receipt, manager),
            tx: receipt.transaction_hash,
        })
    }

    /// Job `job_id`, or `None` if there is no such job.
    pub async fn job(&self, job_id: U256) -> Result<Option<OnChainJob>> {
        let manager = self.job_manager()?;
        let j = self.read("getJob", Target::JobManager, manager.getJob(job_id).call()).await?;
        let status = match j.state {
            0 => return Ok(None),
            1 => JobStatus::Requested,
            2 => JobStatus::Fulfilled,
            3 => JobStatus::Cancelled,
            s => {
                return Err(ChainError::Decode {
                    call: "getJob",
                    message: format!("unknown job state {s}"),
                });
            }
        };
        Ok(Some(OnChainJob {
            id: job_id,
            client: j.client,
            deadline: j.deadline,
            status,
            payment: j.payment,
        }))
    }

    /// How many jobs were requested (ids are 1 to this).
    pub async fn job_count(&self) -> Result<U256> {
        let manager = self.job_manager()?;
        self.read("jobCount", Target::JobManager, manager.jobCount().call()).await
    }

    /// What the manager holds for job `job_id` now (its payment while open, else 0).
    pub async fn job_escrow(&self, job_id: U256) -> Result<U256> {
        let manager = self.job_manager()?;
        self.read("escrowOf", Target::JobManager, manager.escrowOf(job_id).call()).await
    }

    /// Seconds from a request to its deadline.
    pub async fn job_timeout(&self) -> Result<u64> {
        let manager = self.job_manager()?;
        let t = self.read("jobTimeout", Target::JobManager, manager.jobTimeout().call()).await?;
        Ok(t.saturating_to())
    }

    /// The least payment `runJob` accepts (base units; 0 means none): what the bridge
    /// needs to cover its own gas for the deal and the callback.
    pub async fn min_payment(&self) -> Result<U256> {
        let manager = self.job_manager()?;
        self.read("minPayment", Target::JobManager, manager.minPayment().call()).await
    }

    /// Sets the least payment `runJob` accepts (the manager's admin only).
    pub async fn set_min_payment(&self, minimum: U256) -> Result<()> {
        let manager = self.job_manager()?;
        self.send("setMinPayment", Target::JobManager, manager.setMinPayment(minimum)).await?;
        Ok(())
    }

    /// Whether `account` has the manager's `BRIDGE_ROLE`.
    pub async fn is_bridge(&self, account: Address) -> Result<bool> {
        let manager = self.job_manager()?;
        let role =
            self.read("BRIDGE_ROLE", Target::JobManager, manager.BRIDGE_ROLE().call()).await?;
        self.read("hasRole", Target::JobManager, manager.hasRole(role, account).call()).await
    }

    /// Gives `account` the manager's `BRIDGE_ROLE` (the manager's admin only).
    pub async fn grant_bridge(&self, account: Address) -> Result<()> {
        let manager = self.job_manager()?;
        let role =
            self.read("BRIDGE_ROLE", Target::JobManager, manager.BRIDGE_ROLE().call()).await?;
        self.send("grantRole", Target::JobManager, manager.grantRole(role, account)).await?;
        Ok(())
    }

    /// A [`LogPoller`] of every job manager event from block `from_block` (for one event
    /// type, [`Self::poll_events`] with [`super::Contract::JobManager`]).
    pub fn poll_job_events(&self, from_block: u64) -> Result<LogPoller<JobManagerEvent>> {
        let filter = Filter::new().address(self.job_manager_address()?);
        Ok(LogPoller::new(self.clone(), filter, from_block, decode_job_event))
    }

    // ------------------------------------------------------------ ExampleClient

    /// Deploys an `ExampleClient` of `manager` owned by the signer, escrowing `payment`
    /// per request; returns its address. Fund it with tokens ([`Self::transfer`]) before
    /// requesting.
    pub async fn deploy_example_client(&self, manager: Address, payment: U256) -> Result<Address> {
        let owner = self.require_signer("deploy ExampleClient")?.address();
        let builder = Ex::deploy_builder(self.provider(), manager, owner, payment);
        let receipt = self.send("deploy ExampleClient", Target::ExampleClient, builder).await?;
        receipt.contract_address.ok_or(ChainError::MissingEvent {
            call: "deploy ExampleClient",
            event: "contract creation",
            tx: receipt.transaction_hash,
        })
    }

    /// The `ExampleClient` at `address`, through this client (and its key, if any).
    pub fn example_client(&self, address: Address) -> ExampleJobClient {
        ExampleJobClient { chain: self.clone(), address }
    }
}

/// An `ExampleClient` contract: requests cowsay runs and keeps their results.
#[derive(Debug, Clone)]
pub struct ExampleJobClient {
    chain: ChainClient,
    address: Address,
}

impl ExampleJobClient {
    fn contract(&self) -> ExampleClientInstance<DynProvider> {
        Ex::new(self.address, self.chain.provider().clone())
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Asks for cowsay with `Message=<message>` (owner only), paid from the contract's tokens.
    pub async fn request_cowsay(&self, message: &str) -> Result<RequestedJob> {
        let manager = self.chain.job_manager_address()?;
        let c = self.contract();
        let receipt = self
            .chain
            .send("requestCowsay", Target::ExampleClient, c.requestCowsay(message.to_owned()))
            .await?;
        let e: Jm::JobRequested = ChainClient::event("requestCowsay", &receipt, manager)?;
        Ok(e.into())
    }

    /// What became of job `job_id`, or `None` if this client did not request it.
    pub async fn status_of(&self, job_id: U256) -> Result<Option<JobStatus>> {
        let c = self.contract();
        let s =
            self.chain.read("statusOf", Target::ExampleClient, c.statusOf(job_id).call()).await?;
        Ok(match s {
            1 => Some(JobStatus::Requested),
            2 => Some(JobStatus::Fulfilled),
            3 => Some(JobStatus::Cancelled),
            _ => None,
        })
    }

    /// Job `job_id`'s results CID (empty until fulfilled).
    pub async fn results_of(&self, job_id: U256) -> Result<String> {
        let c = self.contract();
        self.chain.read("resultsOf", Target::ExampleClient, c.resultsOf(job_id).call()).await
    }

    /// Why job `job_id` was cancelled (empty unless cancelled).
    pub async fn cancel_reason_of(&self, job_id: U256) -> Result<String> {
        let c = self.contract();
        self.chain
            .read("cancelReasonOf", Target::ExampleClient, c.cancelReasonOf(job_id).call())
            .await
    }

    /// The payment escrowed with each request.
    pub async fn payment(&self) -> Result<U256> {
        let c = self.contract();
        self.chain.read("payment", Target::ExampleClient, c.payment().call()).await
    }

    /// Calls the `lilypadFulfilled` callback directly. Only the manager may: from anyone
    /// else this reverts with `NotManager` (what the tests and the tutorial show).
    pub async fn lilypad_fulfilled(&self, job_id: U256, results_cid: &str) -> Result<()> {
        let c = self.contract();
        let call = c.lilypadFulfilled(job_id, results_cid.to_owned());
        self.chain.send("lilypadFulfilled", Target::ExampleClient, call).await?;
        Ok(())
    }
}
