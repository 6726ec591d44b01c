//! One module per subcommand.

pub(crate) mod bridge;
pub(crate) mod devnet;
pub(crate) mod leaderboard;
pub(crate) mod module;
