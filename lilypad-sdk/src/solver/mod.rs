//! The solver service and its client.
//!
//! - [`api`]: request and answer types, shared by the server and the client.
//! - [`auth`]: EIP-712 request signatures (every request but `/healthz` and `/metrics`).
//! - [`store`]: durable state in SQLite, one writer thread with group commit.
//! - [`server`]: the service: HTTP, matching, deal creation, chain following.
//! - [`client`]: [`client::SolverClient`], for job creators and providers.
//!
//! See `docs/solver.md`.

pub mod api;
pub mod auth;
pub mod client;
pub mod server;
pub mod store;

pub use client::{SolverClient, SolverError};
pub use server::{Limits, Rate, RunningSolver, ServeError, SolverOptions, start};
