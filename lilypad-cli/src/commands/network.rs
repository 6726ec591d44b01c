//! Choosing a network and an account, shared by the commands that talk to one.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    chain::{ChainClient, NetworkConfig, PrivateKeySigner, config::LOCAL_CHAIN_ID},
    core::Address,
    devnet::{self, files},
    solver::SolverClient,
    storage::StorageClient,
};

use super::devnet::{DirArgs, state_dir};

/// `--network`.
#[derive(Debug, Args)]
pub(crate) struct NetworkArgs {
    /// The network: a network file, or `local` for the devnet started by `lilypad-cli devnet
    /// up` [default: $LILYPAD_NETWORK, else `local`].
    #[arg(long, env = "LILYPAD_NETWORK", value_name = "N")]
    pub(crate) network: Option<String>,
}

/// A network, an account on it, and where local state goes.
pub(crate) struct Network {
    pub(crate) config: NetworkConfig,
    pub(crate) chain: ChainClient,
    pub(crate) solver_address: Address,
    /// `$LILYPAD_HOME`, else `~/.lilypad`: caches and databases.
    pub(crate) home: PathBuf,
}

pub(crate) fn lilypad_home() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("LILYPAD_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither LILYPAD_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".lilypad"))
}

/// The network file `--network` names.
pub(crate) fn network_file(args: &NetworkArgs) -> anyhow::Result<PathBuf> {
    match args.network.as_deref() {
        None | Some("local") => {
            let dir = state_dir(&DirArgs { dir: None })?;
            if devnet::running_pid(&dir).is_none() {
                anyhow::bail!(
                    "no network: no local devnet is running in {} and --network is not given; \
                     start one with `lilypad-cli devnet up`, or pass --network FILE",
                    dir.display()
                );
            }
            Ok(dir.join(files::NETWORK))
        }
        Some(path) => Ok(PathBuf::from(path)),
    }
}

/// The account key: `WEB3_PRIVATE_KEY`, else, on a local chain only, the devnet's
/// well-known account for `role_index`.
pub(crate) fn key(config: &NetworkConfig, role_index: usize) -> anyhow::Result<PrivateKeySigner> {
    match std::env::var("WEB3_PRIVATE_KEY") {
        Ok(text) => text
            .trim()
            .parse::<PrivateKeySigner>()
            .map_err(|_| anyhow::anyhow!("WEB3_PRIVATE_KEY is not a 32-byte hex private key")),
        Err(_) if config.chain_id == LOCAL_CHAIN_ID => Ok(devnet::anvil_signer(role_index)),
        Err(_) => anyhow::bail!(
            "WEB3_PRIVATE_KEY is not set: export the account's private key (hex) to sign with it"
        ),
    }
}

impl Network {
    /// Loads the network, connects with the account for `role` (a
    /// [`lilypad_sdk::chain::roles`] bit) and asks the solver who it is.
    pub(crate) async fn open(args: &NetworkArgs, role: u8) -> anyhow::Result<Self> {
        let index = match role {
            r if r == lilypad_sdk::chain::roles::RESOURCE_PROVIDER => devnet::PROVIDER,
            r if r == lilypad_sdk::chain::roles::SOLVER => devnet::SOLVER,
            _ => devnet::JOB_CREATOR,
        };
        Self::open_as(args, |config| key(config, index)).await
    }

    /// As [`Self::open`], signing with the key `signer` picks for the loaded network.
    pub(crate) async fn open_as(
        args: &NetworkArgs,
        signer: impl FnOnce(&NetworkConfig) -> anyhow::Result<PrivateKeySigner>,
    ) -> anyhow::Result<Self> {
        let file = network_file(args)?;
        let config = NetworkConfig::load(&file)
            .with_context(|| format!("loading the network file {}", file.display()))?;
        let signer = signer(&config)?;
        let chain = ChainClient::connect(config.clone()).await?.with_signer(signer);
        let solver_url = config
            .solver_url
            .clone()
            .context("the network file has no solver_url: add `solver_url = \"http://...\"`")?;
        let probe = SolverClient::new(
            &solver_url,
            devnet::anvil_signer(0),
            config.chain_id,
            Address::ZERO,
        )?;
        let health = probe.health().await.with_context(|| {
            format!("the solver at {solver_url} does not answer; is it running?")
        })?;
        if health.chain_id != config.chain_id {
            anyhow::bail!(
                "the solver at {solver_url} serves chain {}, the network is chain {}",
                health.chain_id,
                config.chain_id
            );
        }
        Ok(Self { config, chain, solver_address: health.solver, home: lilypad_home()? })
    }

    /// A solver client signing as this account.
    pub(crate) fn solver(&self) -> anyhow::Result<SolverClient> {
        let url = self.config.solver_url.as_deref().unwrap_or_default();
        let signer = self.chain.signer().context("no signer")?.clone();
        Ok(SolverClient::new(url, signer, self.config.chain_id, self.solver_address)?)
    }

    /// A storage client.
    pub(crate) fn storage(&self) -> anyhow::Result<StorageClient> {
        let url =
            self.config.storage_url.as_deref().context(
                "the network file has no storage_url: add `storage_url = \"http://...\"`",
            )?;
        Ok(StorageClient::new(url)?)
    }
}
