//! The solver service and its client.
//!
//! - [`api`]: request and answer types, shared by the server and the client.
//! - [`auth`]: EIP-712 request signatures (every request but `/healthz` and `/metrics`).
//! - [`client`]: [`client::SolverClient`], for job creators and providers.
//! - `store` (feature `solver`): durable state in SQLite (or PostgreSQL with feature
//!   `solver-postgres`), one writer thread with group commit.
//! - `server` (feature `solver`): the service: HTTP, matching, deal creation, chain following.
//!
//! Feature `solver-client` brings the first three only (no HTTP server, no SQLite);
//! feature `solver` adds the service.
//!
//! See `docs/solver.md`.

pub mod api;
pub mod auth;
pub mod client;
#[cfg(feature = "solver")]
pub mod server;
#[cfg(feature = "solver")]
pub mod store;

pub use client::{SolverClient, SolverError};
#[cfg(feature = "solver")]
pub use server::{Limits, Rate, RunningSolver, ServeError, SolverOptions, start};
#[cfg(feature = "solver")]
pub use store::Database;
