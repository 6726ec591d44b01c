//! One module per subcommand.

pub(crate) mod bridge;
pub(crate) mod dashboard;
pub(crate) mod deals;
pub(crate) mod deploy;
#[cfg(feature = "devnet")]
pub(crate) mod devnet;
pub(crate) mod gateway;
pub(crate) mod jobs;
pub(crate) mod leaderboard;
pub(crate) mod module;
pub(crate) mod network;
pub(crate) mod run;
#[cfg(feature = "devnet")]
pub(crate) mod services;
pub(crate) mod solver;
pub(crate) mod storage;
pub(crate) mod throwaway;
pub(crate) mod verify;
pub(crate) mod wallet;
