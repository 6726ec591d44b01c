//! Pure logic of the Lilypad compute network.
//!
//! No I/O, no async, no clock: time is always a parameter. Everything the
//! solver, the provider, the contracts and the SDK agree on lives here.

pub mod module;
