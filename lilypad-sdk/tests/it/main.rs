//! Integration tests of the chain client on a real anvil (one per test, started by
//! the devnet module). They fail, never skip, when anvil is missing: run
//! `scripts/setup-contracts.sh`.

// Helpers shared by the tests unwrap like the tests do: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod bridge;
mod common;
mod devnet;
mod differential;
mod eip712;
mod jobs;
mod module_resolve;
mod outcomes;
mod rejections;
