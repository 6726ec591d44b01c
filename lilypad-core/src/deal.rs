//! Deals: the agreed terms between one job offer and one resource offer.

use std::collections::BTreeSet;

use alloy_primitives::{Address, B256, U256, keccak256};
use serde::{Deserialize, Serialize};

use crate::offer::{JobOffer, ModuleId, OfferId, ResourceOffer};

/// A deal id: keccak256(abi.encode(jobOfferId, resourceOfferId)).
///
/// It is derived from both signed offers only, so nobody can squat it or
/// change the terms behind it.
pub type DealId = B256;

/// Network-wide parameters that enter every deal; set by the controller's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkParams {
    /// Results collateral = this many times the price, posted by the provider with its results.
    pub results_collateral_multiple: u32,
    /// Paid by the job creator when it challenges results; goes to the mediator.
    pub mediation_fee: U256,
    /// Seconds the job creator has, after results are submitted, to accept or challenge.
    pub judge_window_secs: u64,
    /// Seconds the chosen mediator has, after a challenge, to give a verdict.
    pub mediate_window_secs: u64,
    /// The network's floor on a job's timeout (seconds to submit results), whatever the offers say.
    #[serde(default = "default_min_job_timeout")]
    pub min_job_timeout_secs: u64,
}

const fn default_min_job_timeout() -> u64 {
    60
}

impl Default for NetworkParams {
    fn default() -> Self {
        Self {
            results_collateral_multiple: 2,
            mediation_fee: U256::from(1_000_000_000_000_000u64),
            judge_window_secs: 3600,
            mediate_window_secs: 3600,
            min_job_timeout_secs: default_min_job_timeout(),
        }
    }
}

/// Who takes part in a deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealMembers {
    /// The job creator.
    pub job_creator: Address,
    /// The resource provider.
    pub resource_provider: Address,
    /// The solver that created the deal.
    pub solver: Address,
    /// Mediators both parties trust (never empty).
    pub mediators: BTreeSet<Address>,
}

/// The money and time terms of a deal, all in token base units and seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealTerms {
    /// What the job creator pays the provider for the job.
    pub price: U256,
    /// Escrowed by the job creator when the deal is created (>= price).
    pub payment_collateral: U256,
    /// Escrowed by the provider when the deal is created; returned with its results.
    pub timeout_collateral: U256,
    /// Escrowed by the provider with its results (multiple x price).
    pub results_collateral: U256,
    /// Escrowed by the job creator when it challenges; pays the mediator.
    pub mediation_fee: U256,
    /// Seconds from the deal to the results deadline.
    pub submit_window_secs: u64,
    /// Seconds from results to the judgement deadline.
    pub judge_window_secs: u64,
    /// Seconds from a challenge to the mediation deadline.
    pub mediate_window_secs: u64,
}

/// An agreed deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// The deal id.
    pub id: DealId,
    /// Id of the job offer.
    pub job_offer_id: OfferId,
    /// Id of the resource offer.
    pub resource_offer_id: OfferId,
    /// The module to run.
    pub module_id: ModuleId,
    /// Hash of the job's inputs.
    pub inputs_hash: B256,
    /// Who takes part.
    pub members: DealMembers,
    /// What was agreed.
    pub terms: DealTerms,
    /// Unix second the deal was created.
    pub created_at: u64,
}

/// Why two offers cannot form a deal (a pair the matcher should never produce).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DealError {
    /// The provider's price for the module is over the job's max price.
    #[error("price {price} is over the job's max price {max_price}")]
    PriceTooHigh {
        /// The provider's price for the module.
        price: U256,
        /// The job's max price.
        max_price: U256,
    },
    /// No mediator is trusted by both.
    #[error("no mediator is trusted by both the job creator and the provider")]
    NoCommonMediator,
    /// The offers name different solvers.
    #[error("the offers name different solvers ({job} and {resource})")]
    SolverMismatch {
        /// The job offer's solver.
        job: Address,
        /// The resource offer's solver.
        resource: Address,
    },
    /// The results collateral is over the 128-bit amount limit.
    #[error("results collateral price {price} x multiple {multiple} is over the 2^128 - 1 limit")]
    Overflow {
        /// The price.
        price: U256,
        /// The multiple.
        multiple: u32,
    },
}

/// The deal id of a pair of offer ids.
pub fn deal_id(job_offer_id: OfferId, resource_offer_id: OfferId) -> DealId {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(job_offer_id.as_slice());
    buf[32..].copy_from_slice(resource_offer_id.as_slice());
    keccak256(buf)
}

impl Deal {
    /// Builds the deal of a matched pair; `now` is the creation time.
    pub fn new(
        job: &JobOffer,
        job_offer_id: OfferId,
        resource: &ResourceOffer,
        resource_offer_id: OfferId,
        params: &NetworkParams,
        now: u64,
    ) -> Result<Self, DealError> {
        if job.solver != resource.solver {
            return Err(DealError::SolverMismatch { job: job.solver, resource: resource.solver });
        }
        let price = resource.price_for(&job.module_id);
        if price > job.max_price {
            return Err(DealError::PriceTooHigh { price, max_price: job.max_price });
        }
        let mediators: BTreeSet<Address> =
            job.mediators.intersection(&resource.mediators).copied().collect();
        if mediators.is_empty() {
            return Err(DealError::NoCommonMediator);
        }
        let multiple = params.results_collateral_multiple;
        let results_collateral = price
            .checked_mul(U256::from(multiple))
            .filter(|c| *c <= crate::offer::MAX_AMOUNT)
            .ok_or(DealError::Overflow { price, multiple })?;
        Ok(Self {
            id: deal_id(job_offer_id, resource_offer_id),
            job_offer_id,
            resource_offer_id,
            module_id: job.module_id,
            inputs_hash: job.inputs_hash,
            members: DealMembers {
                job_creator: job.creator,
                resource_provider: resource.provider,
                solver: job.solver,
                mediators,
            },
            terms: DealTerms {
                price,
                payment_collateral: job.payment_collateral,
                timeout_collateral: resource.timeout_collateral,
                results_collateral,
                mediation_fee: params.mediation_fee,
                submit_window_secs: job.timeout_secs,
                judge_window_secs: params.judge_window_secs,
                mediate_window_secs: params.mediate_window_secs,
            },
            created_at: now,
        })
    }
}
