//! Anvil's public test accounts and what a local network (`lilypad_sdk::devnet`,
//! `lilypad-cli devnet up`) does with them.
//!
//! Plain constants, apart from the devnet module that starts anvil: programs that only
//! *use* a local network (the provider daemon falls back to its well-known account on
//! chain 31337) need them without linking the code that runs one.

use std::path::{Path, PathBuf};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};

/// The private keys of anvil's ten default accounts (from the public test mnemonic
/// `test test ... junk`). Never use them on a real network.
pub const ANVIL_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// What each well-known account does on a devnet.
pub const ACCOUNT_ROLES: [&str; 10] = [
    "deployer, owner of every contract, token admin and minter, job manager admin",
    "solver",
    "resource provider",
    "job creator",
    "mediator",
    "mediator",
    "mediator",
    "bridge (BRIDGE_ROLE of the job manager: fulfills and cancels on-chain jobs)",
    "spare",
    "spare",
];

/// Index of the solver among [`ANVIL_KEYS`].
pub const SOLVER: usize = 1;
/// Index of the resource provider among [`ANVIL_KEYS`].
pub const PROVIDER: usize = 2;
/// Index of the job creator among [`ANVIL_KEYS`].
pub const JOB_CREATOR: usize = 3;
/// Indexes of the mediators among [`ANVIL_KEYS`].
pub const MEDIATORS: [usize; 3] = [4, 5, 6];
/// Index of the bridge among [`ANVIL_KEYS`]: it holds the job manager's `BRIDGE_ROLE`
/// (granted at deployment), so it may fulfill and cancel on-chain jobs.
pub const BRIDGE: usize = 7;

/// The signer of well-known account `index`.
///
/// # Panics
///
/// If `index` is 10 or more.
pub fn anvil_signer(index: usize) -> PrivateKeySigner {
    ANVIL_KEYS[index].parse().expect("the well-known anvil keys are valid")
}

/// The address of well-known account `index`.
pub fn anvil_address(index: usize) -> Address {
    anvil_signer(index).address()
}

/// File names inside a devnet's state directory.
pub mod files {
    /// The network file.
    pub const NETWORK: &str = "network.toml";
    /// anvil's pid (detached devnets).
    pub const PID: &str = "anvil.pid";
    /// anvil's output.
    pub const LOG: &str = "anvil.log";
}

/// Where `lilypad-cli devnet up` keeps a detached local network under `home`
/// (`$LILYPAD_HOME`, else `~/.lilypad`).
pub fn local_dir(home: &Path) -> PathBuf {
    home.join("devnet")
}
