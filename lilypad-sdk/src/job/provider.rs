//! The resource provider's side of a deal: post offers, fetch and check a deal's
//! job, publish results and submit them on chain.
//!
//! The provider never trusts what it is handed: the inputs must hash to the
//! deal's `inputs_hash`, the module source must give the deal's module id, and
//! the template is fetched and rendered by the provider itself.

use std::{collections::BTreeMap, path::Path};

use alloy::primitives::{B256, U256};
use lilypad_core::{
    deal::Deal,
    inputs::{InputsError, JobInputs},
    module::ModuleSpec,
    offer::ResourceOffer,
};

use crate::{
    chain::{ChainClient, ChainError, SubmittedResults},
    module::{LoadError, ModuleCache, ResolveError, ResolvedModule},
    solver::{SolverClient, SolverError, api::OfferReceipt},
    storage::{Cid, StorageClient, StorageError, parse_cid},
};

/// A deal's job, checked and rendered, ready to run.
#[derive(Debug, Clone)]
pub struct ProviderJob {
    /// The deal.
    pub deal: Deal,
    /// The inputs, verified against the deal.
    pub inputs: JobInputs,
    /// The module at the deal's version.
    pub module: ResolvedModule,
    /// The rendered module.
    pub spec: ModuleSpec,
}

/// Why a deal's job cannot be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The solver did not hand over the inputs.
    #[error(transparent)]
    Solver(#[from] SolverError),
    /// The inputs do not match the deal.
    #[error(transparent)]
    Inputs(#[from] InputsError),
    /// The module could not be fetched.
    #[error(transparent)]
    Module(#[from] ResolveError),
    /// The module does not render with the inputs.
    #[error(transparent)]
    Render(#[from] LoadError),
    /// Storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Chain failure.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// An input file key names no file the module declares.
    #[error("input file {0:?} is not declared by the module")]
    UndeclaredFile(String),
}

/// The provider API: one account talking to the solver, storage and chain.
#[derive(Debug, Clone)]
pub struct ProviderClient {
    chain: ChainClient,
    solver: SolverClient,
    storage: StorageClient,
    modules: ModuleCache,
}

impl ProviderClient {
    /// A provider signing with `chain`'s signer (the same key as `solver`'s).
    pub fn new(
        chain: ChainClient,
        solver: SolverClient,
        storage: StorageClient,
        modules: ModuleCache,
    ) -> Self {
        Self { chain, solver, storage, modules }
    }

    /// The chain client.
    pub fn chain(&self) -> &ChainClient {
        &self.chain
    }

    /// The solver client.
    pub fn solver(&self) -> &SolverClient {
        &self.solver
    }

    /// The storage client.
    pub fn storage(&self) -> &StorageClient {
        &self.storage
    }

    /// Signs and posts a resource offer, first approving the controller for the
    /// offer's timeout collateral plus the results collateral of its dearest price
    /// when the allowance is short (both are taken by `transferFrom`).
    pub async fn post_offer(&self, offer: &ResourceOffer) -> Result<OfferReceipt, ProviderError> {
        self.post_offer_covering(offer, 1).await
    }

    /// [`Self::post_offer`] for a provider with `open` offers that may all become
    /// deals at once (one per free slot): the allowance covers that many deals' worth
    /// of collateral, so the solver's `createDeal` for one never fails for want of
    /// the allowance another took.
    pub async fn post_offer_covering(
        &self,
        offer: &ResourceOffer,
        open: usize,
    ) -> Result<OfferReceipt, ProviderError> {
        self.post_offer_taking(offer, open, &[]).await
    }

    /// [`Self::post_offer_covering`] for an offer that takes `slots` of this machine
    /// (a slot alone, or several as one offer): the solver withdraws the other offers
    /// sharing a slot with it when it is matched, and refuses an offer of several slots
    /// unless each is held by one of this provider's waiting offers.
    pub async fn post_offer_taking(
        &self,
        offer: &ResourceOffer,
        open: usize,
        slots: &[String],
    ) -> Result<OfferReceipt, ProviderError> {
        let params = self.chain.network_params().await?;
        let dearest = offer.module_prices.values().copied().fold(offer.default_price, U256::max);
        let need = offer
            .timeout_collateral
            .saturating_add(dearest.saturating_mul(U256::from(params.results_collateral_multiple)))
            .saturating_mul(U256::from(open.max(1)));
        let controller = self.chain.config().contracts.controller;
        if self.chain.allowance(offer.provider, controller).await? < need {
            self.chain.approve_controller(need).await?;
        }
        let signed = self.chain.sign_resource_offer(offer)?;
        Ok(self.solver.post_resource_offer_taking(&signed, slots).await?)
    }

    /// Fetches a deal's inputs from the solver, checks them against the deal,
    /// fetches the module at the deal's version and renders it.
    pub async fn prepare(&self, deal: &Deal) -> Result<ProviderJob, ProviderError> {
        let bytes = self.solver.job_inputs(deal.id).await?;
        let inputs = JobInputs::verify(&bytes, deal.inputs_hash, deal.module_id)?;
        let modules = self.modules.clone();
        let source = inputs.module.clone();
        let module = tokio::task::spawn_blocking(move || modules.fetch(&source))
            .await
            .map_err(|e| ResolveError::Local { path: String::new(), reason: e.to_string() })??;
        let (_, spec) = module.template.render(&inputs.values)?;
        for key in inputs.files.keys() {
            if !spec.input_files.iter().any(|f| &f.name == key) {
                return Err(ProviderError::UndeclaredFile(key.clone()));
            }
        }
        Ok(ProviderJob { deal: deal.clone(), inputs, module, spec })
    }

    /// Downloads the job's input files (verified against their CIDs) into
    /// `dir/<key>`; returns the paths by key.
    pub async fn fetch_input_files(
        &self,
        job: &ProviderJob,
        dir: &Path,
    ) -> Result<BTreeMap<String, std::path::PathBuf>, ProviderError> {
        let mut out = BTreeMap::new();
        for (key, cid) in &job.inputs.files {
            let cid = parse_cid(cid)?;
            let dest = dir.join(key);
            self.storage.fetch(&cid, &dest).await?;
            out.insert(key.clone(), dest);
        }
        Ok(out)
    }

    /// Publishes a results directory and submits its CID on chain.
    pub async fn publish_results(
        &self,
        deal_id: B256,
        results_dir: &Path,
    ) -> Result<(Cid, SubmittedResults), ProviderError> {
        let cid = self.storage.publish_dir(results_dir).await?;
        let submitted = self.chain.submit_results(deal_id, &cid).await?;
        Ok((cid, submitted))
    }
}
