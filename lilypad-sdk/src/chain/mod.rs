//! Talking to the Lilypad contracts: bindings, a typed client, signing, events,
//! network configuration.
//!
//! ```no_run
//! use lilypad_core::{U256, offer::{JobOffer, ResourceOffer}};
//! use lilypad_sdk::chain::{ChainClient, ChainError, NetworkConfig, Permit, PrivateKeySigner};
//!
//! async fn one_deal(
//!     job: JobOffer, res: ResourceOffer, results: cid::Cid,
//!     jc_key: PrivateKeySigner, rp_key: PrivateKeySigner, solver_key: PrivateKeySigner,
//! ) -> Result<(), ChainError> {
//!     let net = NetworkConfig::load("network.toml".as_ref())?; // e.g. from `lilypad-cli devnet up`
//!     let chain = ChainClient::connect(net).await?;             // checks the chain id
//!     let jc = chain.with_signer(jc_key);
//!     let rp = chain.with_signer(rp_key);
//!     let solver = chain.with_signer(solver_key);
//!
//!     // Each party signs its offer (EIP-712 domain: "Lilypad", "1", chain id, controller).
//!     let job = jc.sign_job_offer(&job)?;
//!     let res = rp.sign_resource_offer(&res)?;
//!     // Collateral: approve the controller, or let the solver pass EIP-2612 permits.
//!     jc.approve_controller(job.offer.payment_collateral).await?;
//!     let rp_permit = rp.sign_controller_permit(U256::from(1_000_000u64), res.offer.expiry).await?;
//!     let deal = solver.create_deal_with_permits(&job, &res, &Permit::NONE, &rp_permit).await?;
//!
//!     rp.submit_results(deal.deal.id, &results).await?;
//!     let finished = jc.accept_results(deal.deal.id).await?;
//!     println!("{}: provider got {}", finished.outcome, finished.to_provider);
//!     Ok(())
//! }
//! ```
//!
//! See `docs/chain.md` for the whole API.

pub mod bindings;
mod client;
pub mod config;
pub(crate) mod deals;
pub mod deploy;
pub mod dev;
pub(crate) mod error;
mod events;
pub mod job_manager;
mod nonce;
mod pow;
mod registry;
mod sign;
mod transport;

pub use client::{ChainClient, Contract};
pub use config::{ConfigError, ContractAddresses, NetworkConfig, RpcOptions};
pub use deals::{
    Challenge, CreatedDeal, Draw, FinishedDeal, OnChainDeal, Redraw, SubmittedResults,
    job_failure_from,
};
pub use deploy::{DeployOptions, Deployment, deploy_network, verify_deployed};
pub use error::{ChainError, Result, Revert};
pub use events::{ControllerEvent, LogPoller};
pub use job_manager::{
    CancelledJob, ExampleJobClient, FulfilledJob, JobManagerEvent, JobStatus, OnChainJob,
    OnChainJobOutcome, RequestedJob, input_strings, parse_inputs,
};
/// Where a deal is; the same type the state machine and the solver's API use.
pub use lilypad_core::state::DealStatus;
pub use nonce::{ResyncNonceManager, TakenNonce};
pub use pow::{AcceptedProof, PowRound};
pub use registry::{ModuleStatus, Registration, UserEntry, roles};
/// Versions, as network files state them ([`NetworkConfig::min_provider_version`]).
pub use semver;
pub use sign::{
    Permit, SignedJobOffer, SignedResourceOffer, sign_job_offer, sign_permit, sign_resource_offer,
};

/// Re-exported alloy items the API uses.
pub use alloy::{
    primitives::{Address, B256, Bytes, U256},
    rpc::types::{Log, TransactionReceipt},
    signers::local::PrivateKeySigner,
};
