//! Integration tests of the chain client on a real anvil (one per test, started by
//! the devnet module). They fail, never skip, when anvil is missing: run
//! `scripts/setup-contracts.sh`.

mod common;
mod devnet;
mod differential;
mod eip712;
mod outcomes;
mod rejections;
