//! The command-line layer `lilypad-cli` and `lilypad-rp` share, so that both read the
//! same options the same way and answer the same way:
//!
//! - [`GlobalArgs`]: `--json` and `--wei`, accepted anywhere on the command line;
//! - [`network::NetworkArgs`] and [`network::Network::open`]: which network (a file, a
//!   built-in name, or `local`), which account, the solver and the store it names;
//! - [`wallet`]: `--keystore`, `--account` and `--password-file`, for every command
//!   that signs;
//! - [`block_on`]: the one Tokio runtime a command runs on;
//! - [`finish`]: how a command ends: its error on stderr (as JSON with `--json`) and
//!   an exit code that tells a script whether to retry ([`exit`]).

pub mod amounts;
pub mod network;
mod output;
pub mod wallet;

/// The end of both binaries' `--help`: what every command shares.
pub const AFTER_HELP: &str = "\
Keys: --keystore FILE or --account NAME (an encrypted keystore; password from \
--password-file, LILYPAD_KEYSTORE_PASSWORD or a prompt), else WEB3_PRIVATE_KEY (hex); on \
the local chain each command defaults to the devnet's account for its role.
Environment: LILYPAD_NETWORK (--network), LILYPAD_HOME (state and keystores, default \
~/.lilypad), RUST_LOG (log filter).
Exit codes: 0 success, 1 failure, 2 bad command line, 75 a failure a retry may fix \
(a node, solver or store down, a rate limit, no provider free yet).";

pub use output::{GlobalArgs, block_on, exit, finish, init_tracing, json, print_json};
