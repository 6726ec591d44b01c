//! Talking to the Lilypad contracts: bindings, a typed client, signing, events,
//! network configuration.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lilypad_sdk::chain::ChainError> {
//! use lilypad_sdk::chain::{ChainClient, NetworkConfig};
//! let net = NetworkConfig::load(std::path::Path::new("network.toml"))?;
//! let client = ChainClient::connect(net).await?;
//! println!("block {}", client.block_number().await?);
//! # Ok(()) }
//! ```
//!
//! See `docs/chain.md` for the whole API.

pub mod bindings;
mod client;
pub mod config;
mod deals;
pub(crate) mod error;
mod events;
mod nonce;
mod pow;
mod registry;
mod sign;
mod transport;

pub use client::{ChainClient, Contract};
pub use config::{ConfigError, ContractAddresses, NetworkConfig, RpcOptions};
pub use deals::{
    Challenge, CreatedDeal, DealStatus, FinishedDeal, OnChainDeal, Payouts, SubmittedResults,
};
pub use error::{ChainError, Result, Revert};
pub use events::{ControllerEvent, LogPoller};
pub use nonce::ResyncNonceManager;
pub use pow::{AcceptedProof, PowRound};
pub use registry::{ModuleStatus, UserEntry, roles};
pub use sign::{
    Permit, SignedJobOffer, SignedResourceOffer, sign_job_offer, sign_permit, sign_resource_offer,
};

/// Re-exported alloy items the API uses.
pub use alloy::{
    primitives::{Address, B256, Bytes, U256},
    rpc::types::{Log, TransactionReceipt},
    signers::local::PrivateKeySigner,
};
