//! Runnable examples of the Lilypad SDK; see `examples/*.rs` and `examples/modules/`.
