//! Runnable examples of the Lilypad SDK, each a small program:
//!
//! - `backend.rs`: a dApp backend (axum) that runs jobs for its users and streams
//!   their progress as server-sent events;
//! - `deal_watcher.rs`: follows deals on chain until they end;
//! - `provider.rs`: a resource provider in a few lines.
//!
//! `examples/modules/` holds example modules; `examples/onchain-job/` runs a job
//! requested by a smart contract.
