//! Pure logic of the Lilypad compute network.
//!
//! No I/O, no async, no clock: time is always a parameter. Everything the
//! solver, the provider, the contracts and the SDK agree on lives here.
//!
//! - [`amount`]: token amounts as text (`1.5 LP`) and back; the one parser and formatter.
//! - [`spec`]: machine specs and job requirements (millicores, MiB).
//! - [`offer`]: signed job and resource offers, their validation and ids.
//! - [`eip712`]: the structs that are signed and checked on chain.
//! - [`deal`]: the terms of a matched pair.
//! - [`module`]: module references, templates and the typed `ModuleSpec`.
//! - [`matcher`]: the matching policy and the indexed incremental matcher.
//! - [`result`]: what a provider returns.
//! - [`settlement`]: the payout table of every final outcome of a deal.
//! - [`state`]: the deal state machine the contracts enforce, and the mediator choice.
//! - [`pow`]: proof-of-work challenges, proofs, targets and hashrate estimates.
//! - [`rewards`]: reward points from hashrate, rounds present and days offline.
//! - [`reputation`]: a provider's deal record and score from the controller's events.

pub mod amount;
pub mod deal;
pub mod eip712;
pub mod inputs;
pub mod matcher;
pub mod module;
pub mod offer;
pub mod pow;
pub mod reputation;
pub mod result;
pub mod rewards;
pub mod settlement;
pub mod slots;
pub mod spec;
pub mod state;
pub mod verify;

pub use alloy_primitives::{Address, B256, U256};
