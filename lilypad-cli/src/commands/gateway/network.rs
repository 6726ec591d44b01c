//! The gateway's [`Backend`] on the network: each job runs through the SDK's job
//! runner ([`JobCreator::run`]) as the gateway's account, connected with
//! [`Lilypad::connect_with`].

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use lilypad_sdk::{
    Error, Lilypad, Options,
    chain::{NetworkConfig, PrivateKeySigner},
    core::{Address, U256},
    job::{JobCreator, JobError, JobEvent, JobOptions, JobRequest},
    module::ModuleCache,
};
use serde_json::Value;
use tokio::sync::Mutex;

use super::api::{Backend, JobFailure, JobHandle, JobSpec};

/// How the gateway runs jobs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Results are downloaded under `data_dir/results/<deal>/` and removed once read.
    pub data_dir: PathBuf,
    /// Where git modules are cloned.
    pub module_cache: PathBuf,
    /// Where `name:version` modules are fetched from.
    pub module_base: Option<String>,
    /// The most one job may cost.
    pub max_price: U256,
    /// The controller allowance kept approved.
    pub allowance: U256,
    /// How long an offer waits for a provider.
    pub match_timeout: Duration,
    /// Refuse git modules whose image is not pinned by digest.
    pub require_pinned_image: bool,
}

/// Jobs on the network, paid by one account.
pub(crate) struct NetworkBackend {
    lilypad: Lilypad,
    creator: JobCreator,
    settings: Settings,
    /// Held only while the allowance is read and topped up, never across a job.
    approving: Arc<Mutex<()>>,
}

impl NetworkBackend {
    /// Connects as `signer` and registers the account as a job creator if it is not.
    pub(crate) async fn connect(
        config: NetworkConfig,
        signer: PrivateKeySigner,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let options = Options {
            jobs: JobOptions {
                offer_ttl: settings.match_timeout,
                require_pinned_image: settings.require_pinned_image,
                ..JobOptions::default()
            },
            module_cache: settings.module_cache.clone(),
            results_dir: settings.data_dir.join("results"),
            ..Options::default()
        };
        let lilypad = Lilypad::connect_with(config, signer, options.clone()).await?;
        match lilypad_cli_common::network::ensure_registered(
            lilypad.chain(),
            super::Role::JobCreator,
            "",
        )
        .await
        {
            Ok(Some(line)) => tracing::info!("{line}"),
            Ok(None) => {}
            Err(e) => tracing::warn!("{e:#}"),
        }
        let mut cache = ModuleCache::new(&options.module_cache);
        if let Some(base) = &settings.module_base {
            cache = cache.with_base(base.clone());
        }
        // The SDK's job runner, on the connection Lilypad checked.
        let creator = JobCreator::new(
            lilypad.chain().clone(),
            lilypad.solver().clone(),
            lilypad.storage().clone(),
            cache,
            options.jobs,
            lilypad.solver_address(),
        );
        let backend = Self { lilypad, creator, settings, approving: Arc::default() };
        backend.top_up().await.map_err(|e| anyhow::anyhow!("approving the controller: {e}"))?;
        Ok(backend)
    }

    /// The paying account.
    pub(crate) fn address(&self) -> Address {
        self.lilypad.address()
    }

    /// Approves the controller for the configured allowance when less than half of it
    /// is left, so that concurrent jobs find enough allowance for each one's collateral.
    async fn top_up(&self) -> Result<(), Error> {
        top_up(&self.lilypad, self.settings.allowance, &self.approving).await
    }
}

async fn top_up(lilypad: &Lilypad, allowance: U256, lock: &Mutex<()>) -> Result<(), Error> {
    let _guard = lock.lock().await;
    let chain = lilypad.chain();
    let controller = chain.config().contracts.controller;
    let have = chain.allowance(lilypad.address(), controller).await?;
    if have < allowance / U256::from(2u8) {
        chain.approve_controller(allowance).await?;
        tracing::info!(%allowance, "approved the controller");
    }
    Ok(())
}

fn failure(e: &JobError) -> JobFailure {
    let text = e.to_string();
    match e {
        JobError::NoMatch { .. } => {
            JobFailure::NoProvider(format!("no provider took the job: {text}"))
        }
        JobError::InputsTooLarge { .. } => JobFailure::BadRequest(text),
        _ => JobFailure::Failed(text),
    }
}

impl Backend for NetworkBackend {
    fn run(
        &self,
        spec: JobSpec,
        status: JobHandle,
    ) -> BoxFuture<'static, Result<Value, JobFailure>> {
        let lilypad = self.lilypad.clone();
        let creator = self.creator.clone();
        let settings = self.settings.clone();
        let approving = self.approving.clone();
        Box::pin(async move {
            if let Err(e) = top_up(&lilypad, settings.allowance, &approving).await {
                return Err(JobFailure::Failed(format!("approving the controller: {e}")));
            }
            let request = JobRequest {
                module: spec.module,
                values: spec.inputs,
                max_price: Some(settings.max_price),
                output_dir: settings.data_dir.join("results"),
                ..JobRequest::default()
            };
            let on_event = |event: JobEvent| match event {
                JobEvent::OfferPosted { offer_id, .. } => {
                    status.update(|s| s.offer_id = Some(offer_id.to_string()));
                    status.step("offer_posted");
                }
                JobEvent::DealAgreed { deal_id, provider, .. } => {
                    status.update(|s| {
                        s.deal_id = Some(deal_id.to_string());
                        s.provider = Some(provider.to_string());
                    });
                    status.step("deal_agreed");
                }
                JobEvent::ResultsSubmitted { cid } => {
                    status.update(|s| s.results_cid = Some(cid));
                    status.step("results_submitted");
                }
                JobEvent::ResultsVerified { .. } => status.step("results_verified"),
                JobEvent::Accepted { .. } => status.step("accepted"),
                _ => {}
            };
            let outcome =
                creator.run(&request, &spec.cancel, on_event).await.map_err(|e| failure(&e))?;
            status.update(|s| s.results_cid = Some(outcome.results_cid.clone()));
            let path = outcome.results_dir.join("outputs").join(spec.output_file);
            let read = std::fs::read(&path);
            let stderr =
                std::fs::read_to_string(outcome.results_dir.join("stderr")).unwrap_or_default();
            // The answer is all the gateway keeps; the results stay in the store by CID.
            let _ = std::fs::remove_dir_all(&outcome.results_dir);
            let bytes = read.map_err(|e| {
                let tail: String = stderr.chars().rev().take(500).collect::<Vec<_>>().into_iter().rev().collect();
                JobFailure::Failed(format!(
                    "the job (deal {}, exit code {:?}) left no outputs/{}: {e}; its stderr ends: {tail}",
                    outcome.deal_id, outcome.exit_code, spec.output_file
                ))
            })?;
            serde_json::from_slice(&bytes).map_err(|e| {
                JobFailure::Failed(format!(
                    "outputs/{} of deal {} is not JSON: {e}",
                    spec.output_file, outcome.deal_id
                ))
            })
        })
    }
}
