//! Integration tests of the chain client on a real anvil (one per test, started by
//! the devnet module), of the Docker executor on a real dockerd, and of storage
//! (real kubo as the CID oracle). They fail, never skip, when anvil, dockerd or
//! kubo-python is missing: run `scripts/setup.sh` (`scripts/setup-contracts.sh`,
//! `scripts/setup-docker.sh`, `scripts/build-example-images.sh`).

// Helpers shared by the tests unwrap like the tests do: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod bridge;
mod common;
mod devnet;
mod differential;
mod eip712;
#[cfg(feature = "docker")]
mod executor;
#[cfg(feature = "storage")]
mod fuzz_regressions;
mod jobs;
mod module_resolve;
mod outcomes;
#[cfg(feature = "docker")]
mod registry;
mod rejections;
#[cfg(feature = "storage")]
mod storage;
#[cfg(feature = "storage")]
mod storage_rules;
#[cfg(feature = "storage")]
mod storage_sharding;
