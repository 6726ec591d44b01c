//! One module per subcommand.

pub(crate) mod devnet;
pub(crate) mod leaderboard;
pub(crate) mod module;
pub(crate) mod solver;
