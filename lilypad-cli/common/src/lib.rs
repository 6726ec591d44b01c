//! The command-line layer `lilypad-cli` and `lilypad-rp` share, so that both read the
//! same options the same way and answer the same way:
//!
//! - [`GlobalArgs`]: `--json` and `--wei`, accepted anywhere on the command line;
//! - [`network::NetworkArgs`] and [`network::Network::open`]: which network (a file, a
//!   built-in name, or `local`), which account, the solver and the store it names;
//! - [`block_on`]: the one Tokio runtime a command runs on;
//! - [`finish`]: how a command ends: its error on stderr (as JSON with `--json`) and
//!   an exit code that tells a script whether to retry ([`exit`]).

pub mod amounts;
pub mod network;
mod output;

pub use output::{GlobalArgs, block_on, exit, finish, init_tracing, json, print_json};
