//! Everything that talks to the world, for other Rust programs.
//!
//! The pure logic lives in [`lilypad_core`], re-exported here as [`core`].
//!
//! Start at `Lilypad` (feature `jobs`): `Lilypad::connect(network, signer)` then
//! `.run(module, inputs)`, `.deals()`, `.watch(deal)`.
//!
//! - [`module`]: load module templates from disk and render them.
//! - `storage` (feature `storage`): kubo-compatible UnixFS CIDs, a content store served over HTTP, a verifying client.
//! - [`executor`] (feature `docker`): run modules in sandboxed Docker containers.
//! - `chain` (feature `chain`, default): the contracts' typed client.
//! - `provider` (feature `provider`): the resource provider engine and the mediator.
//! - `bridge` (feature `bridge`): the service that runs the jobs smart contracts request.
//! - `metrics` (features `provider`, `bridge`, `solver`): their Prometheus endpoint (`GET /metrics`).

#[cfg(feature = "jobs")]
pub use lilypad::{Error, Lilypad, Network, Options, lilypad_home};
pub use lilypad_core as core;

#[cfg(feature = "bridge")]
pub mod bridge;
#[cfg(feature = "chain")]
pub mod chain;
#[cfg(feature = "devnet")]
pub mod devnet;
#[cfg(feature = "docker")]
pub mod executor;
#[cfg(feature = "jobs")]
pub mod job;
#[cfg(feature = "jobs")]
mod lilypad;
#[cfg(feature = "localnet")]
pub mod localnet;
#[cfg(any(feature = "provider", feature = "bridge", feature = "solver"))]
pub mod metrics;
pub mod module;
#[cfg(feature = "provider")]
pub mod provider;
#[cfg(feature = "solver-client")]
pub mod solver;
#[cfg(feature = "storage")]
pub mod storage;
