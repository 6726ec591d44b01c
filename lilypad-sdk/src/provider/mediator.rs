//! The mediator: re-runs a challenged job and says whether the provider's results are right.
//!
//! The mediator runs the job the way a provider does (same module version, inputs,
//! sandbox, and the same `lilypad: <reason>` line on a failure) and computes the
//! kubo-compatible CID of its results directory. It accepts if its keccak256 is the
//! `results` hash on chain. Otherwise the module's declared verification decides
//! (`lilypad_core::verify`): under `exact` (the default) the results are rejected;
//! under a tolerance mode (embeddings by cosine similarity, numbers within a relative
//! tolerance, generated tokens), the mediator fetches the submitted results from
//! storage, requires the same exit code, and accepts if the declared file is within
//! the tolerance of its own. A module whose output varies beyond its tolerance
//! cannot be mediated and its challenged results are rejected.
//!
//! A challenged *failure report* (the provider says the job creator made the job
//! impossible) is judged by trying what the provider says failed: resolving and
//! rendering the module with the inputs, fetching the input files, pulling the image.
//! If all of that works, the provider could have run the job and the report is
//! refuted; if it fails the same way, the report is upheld.
//!
//! Nobody picks the mediator: a challenge records its block, and the mediator is drawn
//! from that block's hash once it exists. This mediator watches every challenge, asks
//! the controller whom the draw gives (`pendingMediator`), and when it is itself, fixes
//! the draw (`drawMediator`) and gives its verdict.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::primitives::{Address, B256, keccak256};
use lilypad_core::verify::Verification;
use tokio_util::sync::CancellationToken;

use super::{EngineError, engine::finish_results, unix_now};
use crate::{
    chain::{ControllerEvent, DealStatus, Draw, FinishedDeal},
    executor::{Executor, RunOptions},
    job::ProviderClient,
    storage::{Cid, unixfs::cid_of_path},
};

/// How the mediator runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MediatorConfig {
    /// Where re-runs keep their inputs and results (`mediations/<id>/`).
    pub data_dir: PathBuf,
    /// How often the chain is polled for challenges.
    pub poll_interval: Duration,
    /// Time kept between the end of a re-run and the mediation deadline.
    pub submit_margin: Duration,
    /// Bytes a job's outputs may hold (as providers use by default).
    pub max_output_bytes: u64,
    /// Memory for modules that ask for none, in MiB.
    pub default_memory_mib: u64,
    /// First block scanned for challenges [default: the network's deployment block].
    pub from_block: Option<u64>,
}

impl MediatorConfig {
    /// Defaults: poll every 2 s, 10 s margin, 1 GiB outputs, 512 MiB memory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            poll_interval: Duration::from_secs(2),
            submit_margin: Duration::from_secs(10),
            max_output_bytes: 1024 * 1024 * 1024,
            default_memory_mib: 512,
            from_block: None,
        }
    }
}

/// The mediator's judgement of one deal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// The deal.
    pub deal_id: B256,
    /// The provider's results are right.
    pub accept: bool,
    /// The CID of the re-run's results (none when a failure report was judged).
    pub rerun_cid: Option<Cid>,
    /// Why, in words.
    pub reason: String,
}

/// A mediator: one account re-running the jobs it is drawn for.
#[derive(Debug)]
pub struct Mediator {
    client: ProviderClient,
    executor: Executor,
    config: MediatorConfig,
    me: Address,
}

impl Mediator {
    /// A mediator for `client`'s account (solver and chain sign as the mediator).
    pub fn new(
        client: ProviderClient,
        executor: Executor,
        config: MediatorConfig,
    ) -> Result<Self, EngineError> {
        let me = client.chain().address().ok_or_else(|| {
            EngineError::Config("the mediator's chain client has no signing key".into())
        })?;
        Ok(Self { client, executor, config, me })
    }

    /// Re-runs the job of a deal challenged with this mediator drawn and compares
    /// the results; posts nothing.
    pub async fn judge(&self, deal_id: B256) -> Result<Verdict, EngineError> {
        let chain = self.client.chain();
        let on_chain = chain
            .deal(deal_id)
            .await?
            .ok_or_else(|| EngineError::Config(format!("deal {deal_id} is not on chain")))?;
        let submitted = on_chain.results.ok_or_else(|| {
            EngineError::Config(format!("deal {deal_id} has no results on chain to judge"))
        })?;
        // The deal's terms from the solver, checked against the chain's parties.
        let record = self.client.solver().deal(deal_id).await?;
        let deal = record.deal;
        if deal.id != deal_id
            || deal.members.job_creator != on_chain.job_creator
            || deal.members.resource_provider != on_chain.provider
        {
            return Err(EngineError::Config(format!(
                "the solver's deal {deal_id} does not match the chain's"
            )));
        }
        let job = self.client.prepare(&deal).await?;
        let dir = self.config.data_dir.join("mediations").join(format!("{deal_id:#x}"));
        let (inputs_dir, results_dir) = (dir.join("inputs"), dir.join("results"));
        for d in [&inputs_dir, &results_dir] {
            match std::fs::remove_dir_all(d) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(EngineError::io(d, e));
                }
                _ => {}
            }
        }
        std::fs::create_dir_all(&inputs_dir).map_err(|e| EngineError::io(&inputs_dir, e))?;
        let files = self.client.fetch_input_files(&job, &inputs_dir).await?;
        self.executor.ensure_image(&job.spec.image, |_| {}).await?;
        let now = chain.latest_timestamp().await?.max(unix_now());
        let left = Duration::from_secs(on_chain.deadline.saturating_sub(now))
            .saturating_sub(self.config.submit_margin)
            .max(Duration::from_secs(1));
        // A distinct container label, so a provider and a mediator sharing a dockerd
        // (tests, small setups) never clean up each other's containers.
        let mut opts = RunOptions::new(format!("mediate-{deal_id:#x}"), &results_dir);
        opts.input_files = files;
        // The job's own timeout still applies; the mediation deadline caps it.
        opts.max_timeout = Some(left);
        opts.max_output_bytes = self.config.max_output_bytes;
        opts.default_memory_mib = self.config.default_memory_mib;
        let outcome = self.executor.run(&job.spec, &opts).await?;
        finish_results(&outcome, None)?;
        let path = results_dir.clone();
        let rerun_cid = tokio::task::spawn_blocking(move || cid_of_path(&path))
            .await
            .map_err(|e| EngineError::Config(format!("hashing the results: {e}")))??;
        // From the chain's event (the solver's record may lag behind it).
        let theirs = match record.results_cid.clone() {
            Some(b) => Some(b),
            None => chain.submitted_results_cid(deal_id).await?,
        };
        let theirs = theirs.and_then(|b| Cid::try_from(b.to_vec()).ok());
        let (accept, reason) = if keccak256(rerun_cid.to_bytes()) == submitted {
            (true, format!("the re-run gives the submitted results ({rerun_cid})"))
        } else if job.spec.verification == Verification::Exact {
            let theirs = theirs.map_or_else(|| format!("hash {submitted}"), |c| c.to_string());
            (false, format!("the re-run gives {rerun_cid}, the provider submitted {theirs}"))
        } else {
            self.within_tolerance(&job.spec.verification, &results_dir, &dir, theirs, submitted)
                .await?
        };
        Ok(Verdict { deal_id, accept, rerun_cid: Some(rerun_cid), reason })
    }

    /// Compares the provider's results with the re-run's under a tolerance mode: the
    /// declared file by the mode's comparator, the exit code exactly. Results that
    /// cannot be had from storage are not the provider's to claim.
    async fn within_tolerance(
        &self,
        mode: &Verification,
        ours_dir: &Path,
        dir: &Path,
        theirs: Option<Cid>,
        submitted: B256,
    ) -> Result<(bool, String), EngineError> {
        let file = mode.file().unwrap_or_default();
        let Some(cid) = theirs.filter(|c| keccak256(c.to_bytes()) == submitted) else {
            return Ok((
                false,
                format!("no readable results CID on chain hashes to the submitted {submitted}"),
            ));
        };
        let theirs_dir = dir.join("submitted");
        match std::fs::remove_dir_all(&theirs_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(EngineError::io(&theirs_dir, e));
            }
            _ => {}
        }
        if let Err(e) = self.client.storage().fetch(&cid, &theirs_dir).await {
            // Verified block by block: a store that is up and answers without them, or
            // with other bytes, means the provider's results cannot be had.
            use crate::storage::StorageError as S;
            if matches!(
                e,
                S::Http { .. } | S::Io { .. } | S::Protocol { .. } | S::DestinationExists { .. }
            ) || matches!(e, S::Status { status, .. } if status >= 500)
            {
                return Err(e.into());
            }
            return Ok((false, format!("the submitted results {cid} cannot be fetched: {e}")));
        }
        let read = |root: &Path, name: &str| std::fs::read(root.join(name)).ok();
        if read(ours_dir, "exitCode") != read(&theirs_dir, "exitCode") {
            return Ok((false, format!("the submitted results {cid} have another exit code")));
        }
        let Some(ours) = read(ours_dir, file) else {
            return Ok((
                false,
                format!("the re-run wrote no {file}: the results cannot be judged"),
            ));
        };
        let Some(submitted_file) = read(&theirs_dir, file) else {
            return Ok((false, format!("the submitted results {cid} have no {file}")));
        };
        let c = lilypad_core::verify::compare(mode, &ours, &submitted_file);
        let verdict = if c.pass { "within" } else { "beyond" };
        Ok((c.pass, format!("{file} of {cid} is {verdict} the module's tolerance: {}", c.detail)))
    }

    /// Judges a challenged failure report: `accept` (the report stands) when the job
    /// cannot be prepared, its input files fetched or its image pulled, as the provider
    /// said; otherwise the provider could have run it. Transient errors (this mediator's
    /// own Docker, the solver, the chain) are errors, retried by [`Self::run`].
    pub async fn judge_failure(&self, deal_id: B256) -> Result<Verdict, EngineError> {
        use crate::{executor::ExecError, job::ProviderError};
        let record = self.client.solver().deal(deal_id).await?;
        let deal = record.deal;
        let verdict =
            |accept: bool, reason: String| Verdict { deal_id, accept, rerun_cid: None, reason };
        let job = match self.client.prepare(&deal).await {
            Ok(job) => job,
            Err(
                e
                @ (ProviderError::Solver(_) | ProviderError::Chain(_) | ProviderError::Storage(_)),
            ) => {
                return Err(e.into());
            }
            Err(e) => return Ok(verdict(true, format!("the job cannot be prepared: {e}"))),
        };
        let dir = self.config.data_dir.join("mediations").join(format!("{deal_id:#x}"));
        let inputs_dir = dir.join("inputs");
        match std::fs::remove_dir_all(&inputs_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(EngineError::io(&inputs_dir, e));
            }
            _ => {}
        }
        std::fs::create_dir_all(&inputs_dir).map_err(|e| EngineError::io(&inputs_dir, e))?;
        if let Err(e) = self.client.fetch_input_files(&job, &inputs_dir).await {
            return Ok(verdict(true, format!("the input files cannot be had: {e}")));
        }
        match self.executor.ensure_image(&job.spec.image, |_| {}).await {
            Ok(_) => Ok(verdict(
                false,
                "the module renders, its input files and its image can be had: the job could run"
                    .into(),
            )),
            Err(e @ ExecError::DockerUnreachable { .. }) => Err(e.into()),
            Err(e) => Ok(verdict(true, format!("the image cannot be had: {e}"))),
        }
    }

    /// The deal's mutually trusted mediators, from its `DealCreated` event.
    async fn deal_mediators(&self, deal_id: B256) -> Result<Vec<Address>, EngineError> {
        Ok(self.client.chain().deal_mediators(deal_id).await?)
    }

    /// Judges and posts the verdict if the deal is challenged and its draw gives this
    /// mediator (fixing the draw first when nobody has); `None` when it is not (or not
    /// yet) this mediator's to judge.
    pub async fn mediate(
        &self,
        deal_id: B256,
    ) -> Result<Option<(Verdict, FinishedDeal)>, EngineError> {
        let chain = self.client.chain();
        let Some(d) = chain.deal(deal_id).await? else { return Ok(None) };
        let failure = match d.status {
            DealStatus::ResultsChallenged => false,
            DealStatus::FailureChallenged => true,
            _ => return Ok(None),
        };
        if d.mediator.is_none() {
            let mediators = self.deal_mediators(deal_id).await?;
            let mut pending = chain.pending_mediator(deal_id, &mediators).await?;
            if pending.is_none() {
                // The draw block's hash does not exist yet (the head is the challenge's
                // block): wait for the next block (a local anvil mines it on request).
                let head = chain.block_number().await?;
                chain.next_block_after(head).await?;
                pending = chain.pending_mediator(deal_id, &mediators).await?;
            }
            match pending {
                Some(m) if m == self.me => match chain.draw_mediator(deal_id, &mediators).await? {
                    Draw::Drawn { mediator, round } if mediator == self.me => {
                        tracing::info!(deal = %deal_id, round, "drawn as mediator");
                    }
                    _ => return Ok(None),
                },
                Some(_) => return Ok(None),
                None => {
                    // Still none a block later: the draw block's hash expired (older
                    // than 256 blocks). Anyone may re-arm the draw on a fresh block.
                    let draw = chain.draw_mediator(deal_id, &mediators).await?;
                    tracing::info!(deal = %deal_id, ?draw, "re-armed an expired mediator draw");
                    return Ok(None);
                }
            }
        } else if d.mediator != Some(self.me) {
            return Ok(None);
        }
        let verdict =
            if failure { self.judge_failure(deal_id).await? } else { self.judge(deal_id).await? };
        tracing::info!(deal = %deal_id, accept = verdict.accept, "{}", verdict.reason);
        let finished = chain.mediate(deal_id, verdict.accept).await?;
        Ok(Some((verdict, finished)))
    }

    /// Watches the chain for challenges drawing this mediator and mediates each, until
    /// `cancel` fires. A deal whose judgement fails is retried on the next poll.
    pub async fn run(&self, cancel: &CancellationToken) -> Result<(), EngineError> {
        let chain = self.client.chain();
        let from = self.config.from_block.unwrap_or(chain.config().deployed_at_block);
        let mut poller = chain.poll_controller_events(from);
        let mut pending = BTreeSet::new();
        loop {
            match poller.next_batch().await {
                Ok(batch) => {
                    for (event, _) in batch {
                        // Every challenge may draw this mediator, now or after a redraw.
                        let id = match event {
                            ControllerEvent::ResultsChallenged(e) => e.dealId,
                            ControllerEvent::FailureChallenged(e) => e.dealId,
                            ControllerEvent::MediatorRedraw(e) => e.dealId,
                            ControllerEvent::MediatorDrawPending(e) => e.dealId,
                            _ => continue,
                        };
                        pending.insert(id);
                    }
                }
                Err(e) => tracing::warn!("reading the chain: {e}"),
            }
            for id in pending.clone() {
                let r = tokio::select! {
                    r = self.mediate(id) => r,
                    () = cancel.cancelled() => return Ok(()),
                };
                match r {
                    Ok(Some((v, f))) => {
                        tracing::info!(deal = %id, accept = v.accept, outcome = ?f.outcome, tx = %f.tx, "verdict posted");
                        pending.remove(&id);
                    }
                    Ok(None) => {
                        // Keep watching a challenge another mediator holds: a redraw may
                        // give it to this one.
                        let open = matches!(
                            self.client.chain().deal(id).await.map(|d| d.map(|d| d.status)),
                            Ok(Some(DealStatus::ResultsChallenged | DealStatus::FailureChallenged))
                        );
                        if !open {
                            pending.remove(&id);
                        }
                    }
                    Err(e) => tracing::warn!(deal = %id, "mediation will be retried: {e}"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }
}
