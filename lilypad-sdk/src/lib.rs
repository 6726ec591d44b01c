//! Everything that talks to the world, for other Rust programs.
//!
//! The pure logic lives in [`lilypad_core`], re-exported here as [`core`].

pub use lilypad_core as core;
