//! Which network, which account: the options and the connection every command that
//! talks to a network shares.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    chain::{
        ChainClient, NetworkConfig, PrivateKeySigner, Registration,
        config::LOCAL_CHAIN_ID,
        dev::{self, files},
        roles,
    },
    core::Address,
    solver::SolverClient,
    storage::StorageClient,
};

/// `--network`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkArgs {
    /// The network: a network file, `local` for the devnet started by `lilypad-cli devnet
    /// up`, or a built-in network's name (`arbitrum-sepolia`) [default: $LILYPAD_NETWORK,
    /// else `local`].
    #[arg(long, env = "LILYPAD_NETWORK", value_name = "FILE|NAME")]
    pub network: Option<String>,
}

/// An account's part in the network: on the local chain it picks the devnet's
/// well-known account for the role when no key is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Posts job offers and pays for deals.
    JobCreator,
    /// Runs jobs.
    Provider,
    /// Matches offers and creates deals.
    Solver,
    /// Re-runs challenged jobs.
    Mediator,
    /// Fulfills on-chain jobs.
    Bridge,
}

impl Role {
    /// The users-registry role bit the account registers with ([`roles`]): the bridge
    /// creates deals, so it registers as a job creator.
    pub const fn registry_role(self) -> u8 {
        match self {
            Self::JobCreator | Self::Bridge => roles::JOB_CREATOR,
            Self::Provider => roles::RESOURCE_PROVIDER,
            Self::Solver => roles::SOLVER,
            Self::Mediator => roles::MEDIATOR,
        }
    }

    /// The role in words.
    pub const fn name(self) -> &'static str {
        match self {
            Self::JobCreator => "job creator",
            Self::Provider => "resource provider",
            Self::Solver => "solver",
            Self::Mediator => "mediator",
            Self::Bridge => "job creator (the bridge)",
        }
    }

    /// The devnet's well-known account for this role.
    pub const fn dev_account(self) -> usize {
        match self {
            Self::JobCreator => dev::JOB_CREATOR,
            Self::Provider => dev::PROVIDER,
            Self::Solver => dev::SOLVER,
            Self::Mediator => dev::MEDIATORS[0],
            Self::Bridge => dev::BRIDGE,
        }
    }
}

/// `$LILYPAD_HOME`, else `~/.lilypad`: caches and databases.
pub fn home() -> anyhow::Result<PathBuf> {
    lilypad_sdk::lilypad_home().context("neither LILYPAD_HOME nor HOME is set")
}

/// The network file `--network` names.
pub fn network_file(args: &NetworkArgs) -> anyhow::Result<PathBuf> {
    match args.network.as_deref() {
        None | Some("local") => {
            let dir = dev::local_dir(&home()?);
            let file = dir.join(files::NETWORK);
            if !file.exists() {
                anyhow::bail!(
                    "no network: no local devnet runs in {} and --network is not given; \
                     start one with `lilypad-cli devnet up`, or pass --network FILE",
                    dir.display()
                );
            }
            Ok(file)
        }
        Some(path) => Ok(PathBuf::from(path)),
    }
}

/// The built-in network `--network` names (other than `local`), unless a file of that
/// name exists.
pub fn builtin(args: &NetworkArgs) -> Option<anyhow::Result<NetworkConfig>> {
    let name = args.network.as_deref().filter(|n| *n != "local")?;
    if !NetworkConfig::is_builtin(name) || std::path::Path::new(name).exists() {
        return None;
    }
    Some(NetworkConfig::builtin(name).map_err(anyhow::Error::from))
}

/// The network `--network` names, loaded; one with no contracts deployed yet fails
/// with how to deploy it.
pub fn load(args: &NetworkArgs) -> anyhow::Result<NetworkConfig> {
    let config = match builtin(args) {
        Some(config) => config?,
        None => {
            let file = network_file(args)?;
            NetworkConfig::load(&file)
                .with_context(|| format!("loading the network file {}", file.display()))?
        }
    };
    config.require_deployed().map_err(|e| {
        anyhow::anyhow!(
            "{e}\nhint: deploy it with `lilypad-cli deploy --network {} --keystore KEY.json \
             --out FILE` and pass --network FILE",
            args.network.as_deref().unwrap_or(&config.name)
        )
    })?;
    Ok(config)
}

/// The account key: the keystore of `--keystore` / `--account`, else
/// `WEB3_PRIVATE_KEY`, else, on a local chain only, the devnet's well-known account for
/// `role`. The raw key is read here rather than by clap so that no error can echo it.
pub fn key(config: &NetworkConfig, role: Role) -> anyhow::Result<PrivateKeySigner> {
    match crate::wallet::explicit_key()? {
        Some(key) => Ok(key),
        None if config.chain_id == LOCAL_CHAIN_ID => Ok(dev::anvil_signer(role.dev_account())),
        None => anyhow::bail!(
            "no key to sign with: pass --keystore FILE or --account NAME (see `lilypad-cli \
             wallet`), or export the account's private key (hex) as WEB3_PRIVATE_KEY"
        ),
    }
}

/// Registers `chain`'s account in `role` on the network's users registry unless it is
/// already (with `url`, when not empty): every service calls it at start, so that a
/// freshly deployed network needs no separate registration step. Returns a line to log
/// when it registered, `None` when nothing was sent.
pub async fn ensure_registered(
    chain: &ChainClient,
    role: Role,
    url: &str,
) -> anyhow::Result<Option<String>> {
    let me = chain.address().unwrap_or_default();
    let done = chain.ensure_registered(role.registry_role(), url).await.with_context(|| {
        format!("registering {me} as a {} on network {}", role.name(), chain.config().name)
    })?;
    Ok((done == Registration::Registered).then(|| {
        let at = if url.is_empty() { String::new() } else { format!(" at {url}") };
        format!("registered {me} on chain as a {}{at}", role.name())
    }))
}

/// A network, an account on it, and where local state goes.
#[derive(Debug)]
pub struct Network {
    /// The loaded network file.
    pub config: NetworkConfig,
    /// The chain client, signing as the account.
    pub chain: ChainClient,
    /// The solver's own address (it creates the deals).
    pub solver_address: Address,
    /// `$LILYPAD_HOME`, else `~/.lilypad`: caches and databases.
    pub home: PathBuf,
}

impl Network {
    /// Loads the network, connects as the account for `role` and asks the solver who
    /// it is.
    pub async fn open(args: &NetworkArgs, role: Role) -> anyhow::Result<Self> {
        Self::open_as(args, |config| key(config, role)).await
    }

    /// As [`Self::open`], signing with the key `signer` picks for the loaded network.
    pub async fn open_as(
        args: &NetworkArgs,
        signer: impl FnOnce(&NetworkConfig) -> anyhow::Result<PrivateKeySigner>,
    ) -> anyhow::Result<Self> {
        let config = load(args)?;
        let signer = signer(&config)?;
        let chain = ChainClient::connect(config.clone()).await?.with_signer(signer.clone());
        let solver_url = config
            .solver_url
            .clone()
            .context("the network file has no solver_url: add `solver_url = \"http://...\"`")?;
        let probe = SolverClient::new(&solver_url, signer, config.chain_id, Address::ZERO)?;
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
        Ok(Self { config, chain, solver_address: health.solver, home: home()? })
    }

    /// The account's address.
    pub fn me(&self) -> Address {
        self.chain.address().unwrap_or_default()
    }

    /// A solver client signing as this account.
    pub fn solver(&self) -> anyhow::Result<SolverClient> {
        let url = self.config.solver_url.as_deref().unwrap_or_default();
        let signer = self.chain.signer().context("no signer")?.clone();
        Ok(SolverClient::new(url, signer, self.config.chain_id, self.solver_address)?)
    }

    /// A storage client.
    pub fn storage(&self) -> anyhow::Result<StorageClient> {
        let url =
            self.config.storage_url.as_deref().context(
                "the network file has no storage_url: add `storage_url = \"http://...\"`",
            )?;
        Ok(StorageClient::new(url)?)
    }
}
