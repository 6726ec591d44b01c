//! The resource provider of the Lilypad compute network, as a library for its binary and tests.

pub mod gpus;
pub mod mining;
pub mod pow;
