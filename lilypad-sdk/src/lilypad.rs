//! The front door: one value that knows a network and an account, and runs jobs on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lilypad_sdk::Error> {
//! use lilypad_sdk::{Lilypad, chain::PrivateKeySigner};
//!
//! let signer: PrivateKeySigner = std::env::var("WEB3_PRIVATE_KEY").unwrap().parse().unwrap();
//! // A network file (what `lilypad-cli devnet up` or `lilypad-cli deploy` writes), or a
//! // built-in network's name.
//! let lilypad = Lilypad::connect("network.toml", signer).await?;
//! let outcome = lilypad.run("cowsay:v0.0.4", [("Message", "moo")]).await?;
//! println!("{}", std::fs::read_to_string(outcome.results_dir.join("stdout")).unwrap());
//! # Ok(()) }
//! ```
//!
//! [`Lilypad::run`] walks the whole job protocol (see [`crate::job`]); [`Lilypad::deals`]
//! lists this account's deals; [`Lilypad::watch`] follows one deal on chain until it
//! ends. The parts ([`ChainClient`], [`SolverClient`], [`StorageClient`],
//! [`JobCreator`]) stay reachable for everything else.
//!
//! Every method fails with [`Error`], whose [`Error::is_retryable`] says whether
//! trying the same thing again later can help.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::primitives::{Address, B256};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use crate::{
    chain::{
        ChainClient, ChainError, DealStatus, NetworkConfig, OnChainDeal, PrivateKeySigner,
        config::ConfigError,
    },
    job::{JobCreator, JobError, JobEvent, JobOptions, JobOutcome, JobRequest},
    module::ModuleCache,
    solver::{SolverClient, SolverError, api::DealRecord},
    storage::{StorageClient, StorageError},
};

/// Where a network's description comes from.
#[derive(Debug, Clone)]
pub enum Network {
    /// A built-in network by name (`local`, ...).
    Named(String),
    /// A network file (TOML, as `lilypad-cli devnet up` and `lilypad-cli deploy` write).
    File(PathBuf),
    /// A network already loaded.
    Config(Box<NetworkConfig>),
}

impl From<&str> for Network {
    /// A built-in network's name when it is one, else a path to a network file.
    fn from(s: &str) -> Self {
        if NetworkConfig::builtin(s).is_ok() || !s.contains(['/', '.']) {
            Self::Named(s.to_owned())
        } else {
            Self::File(PathBuf::from(s))
        }
    }
}

impl From<String> for Network {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<&Path> for Network {
    fn from(p: &Path) -> Self {
        Self::File(p.to_owned())
    }
}

impl From<PathBuf> for Network {
    fn from(p: PathBuf) -> Self {
        Self::File(p)
    }
}

impl From<NetworkConfig> for Network {
    fn from(c: NetworkConfig) -> Self {
        Self::Config(Box::new(c))
    }
}

impl Network {
    /// Loads and validates the network's description.
    pub fn load(&self) -> Result<NetworkConfig, ConfigError> {
        match self {
            Self::Named(name) => NetworkConfig::builtin(name),
            Self::File(path) => NetworkConfig::load(path),
            Self::Config(config) => {
                config.validate()?;
                Ok((**config).clone())
            }
        }
    }
}

/// Why a [`Lilypad`] call failed. Sources are kept: walk [`std::error::Error::source`]
/// for the underlying transport or contract error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network's description cannot be loaded or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The network names no URL for a service this call needs.
    #[error("network {network} has no {service} URL (`{service}_url` in its network file)")]
    MissingService {
        /// The network's name.
        network: String,
        /// `solver` or `storage`.
        service: &'static str,
    },
    /// The solver serves another chain than the network.
    #[error("the solver at {url} serves chain {solver_chain}, network {network} is chain {chain}")]
    SolverOnOtherChain {
        /// The network's name.
        network: String,
        /// The solver's URL.
        url: String,
        /// The network's chain id.
        chain: u64,
        /// The solver's chain id.
        solver_chain: u64,
    },
    /// No deal has this id on chain.
    #[error("no deal {0} on chain")]
    NoSuchDeal(B256),
    /// No mediator is registered on chain, so no provider offer can name one.
    #[error("no mediator is registered on network {0}: a provider offer needs at least one")]
    NoMediators(String),
    /// Docker cannot run jobs here.
    #[cfg(feature = "provider")]
    #[error(transparent)]
    Docker(#[from] crate::executor::ExecError),
    /// The provider engine failed.
    #[cfg(feature = "provider")]
    #[error(transparent)]
    Provider(#[from] crate::provider::EngineError),
    /// The job did not end in accepted results.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A chain call failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A solver call failed.
    #[error(transparent)]
    Solver(#[from] SolverError),
    /// A storage call failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Error {
    /// Whether the same call may succeed later unchanged: a node, solver or store that
    /// did not answer, a rate limit, no provider free yet, a provider that timed out
    /// (the job creator was refunded). Invalid input, refusals and missing funds are
    /// not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Config(_) | Self::MissingService { .. } | Self::SolverOnOtherChain { .. } => {
                false
            }
            Self::NoSuchDeal(_) | Self::NoMediators(_) => false,
            #[cfg(feature = "provider")]
            Self::Docker(_) | Self::Provider(_) => false,
            Self::Job(e) => e.is_retryable(),
            Self::Chain(e) => e.is_retryable(),
            Self::Solver(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
        }
    }
}

/// Knobs of [`Lilypad::connect_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The job flow's options (prices, timeouts, approvals, mediators).
    pub jobs: JobOptions,
    /// Where git modules are cloned and cached.
    pub module_cache: PathBuf,
    /// Where [`Lilypad::run`] puts results (`<results_dir>/<deal id>/`).
    pub results_dir: PathBuf,
    /// How often [`Lilypad::watch`] reads the deal.
    pub watch_interval: Duration,
}

impl Default for Options {
    /// Caches and results under [`lilypad_home`].
    fn default() -> Self {
        let home = lilypad_home().unwrap_or_else(|| std::env::temp_dir().join("lilypad"));
        Self {
            jobs: JobOptions::default(),
            module_cache: home.join("modules"),
            results_dir: home.join("results"),
            watch_interval: Duration::from_secs(1),
        }
    }
}

/// `$LILYPAD_HOME`, else `$HOME/.lilypad`: where Lilypad's programs keep caches and
/// databases. `None` when neither variable is set.
pub fn lilypad_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("LILYPAD_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".lilypad"))
}

/// A network and an account on it: runs jobs, lists and follows deals.
#[derive(Debug, Clone)]
pub struct Lilypad {
    creator: JobCreator,
    solver: SolverClient,
    storage: StorageClient,
    options: Options,
}

impl Lilypad {
    /// Connects to `network` (a built-in name, a network file, or a loaded
    /// [`NetworkConfig`]) as `signer`, with default [`Options`]: checks the RPC nodes
    /// serve the network's chain and the solver answers for it.
    pub async fn connect(
        network: impl Into<Network>,
        signer: PrivateKeySigner,
    ) -> Result<Self, Error> {
        Self::connect_with(network, signer, Options::default()).await
    }

    /// As [`Self::connect`], with `options`.
    pub async fn connect_with(
        network: impl Into<Network>,
        signer: PrivateKeySigner,
        options: Options,
    ) -> Result<Self, Error> {
        let config = network.into().load()?;
        let missing = |service| Error::MissingService { network: config.name.clone(), service };
        let solver_url = config.solver_url.clone().ok_or_else(|| missing("solver"))?;
        let storage_url = config.storage_url.clone().ok_or_else(|| missing("storage"))?;
        let chain = ChainClient::connect(config.clone()).await?.with_signer(signer.clone());
        // The solver's address is part of every request's signature domain: ask it first.
        let health =
            SolverClient::new(&solver_url, signer.clone(), config.chain_id, Address::ZERO)?
                .health()
                .await?;
        if health.chain_id != config.chain_id {
            return Err(Error::SolverOnOtherChain {
                network: config.name.clone(),
                url: solver_url,
                chain: config.chain_id,
                solver_chain: health.chain_id,
            });
        }
        let solver = SolverClient::new(&solver_url, signer, config.chain_id, health.solver)?;
        let storage = StorageClient::new(&storage_url)?;
        let creator = JobCreator::new(
            chain,
            solver.clone(),
            storage.clone(),
            ModuleCache::new(&options.module_cache),
            options.jobs.clone(),
            health.solver,
        );
        Ok(Self { creator, solver, storage, options })
    }

    /// This account's address.
    pub fn address(&self) -> Address {
        self.solver.address()
    }

    /// The solver's chain address (it signs deals and request domains).
    pub fn solver_address(&self) -> Address {
        self.creator.solver_address()
    }

    /// The network.
    pub fn network(&self) -> &NetworkConfig {
        self.creator.chain().config()
    }

    /// The chain client, signing as this account.
    pub fn chain(&self) -> &ChainClient {
        self.creator.chain()
    }

    /// The solver client, signing as this account.
    pub fn solver(&self) -> &SolverClient {
        &self.solver
    }

    /// The storage client.
    pub fn storage(&self) -> &StorageClient {
        &self.storage
    }

    /// The job creator, for [`JobCreator::run`] with events and cancellation.
    pub fn job_creator(&self) -> &JobCreator {
        &self.creator
    }

    /// Runs `module` (`cowsay:v0.0.4`, `github.com/owner/repo:ref`, or a local
    /// directory) with template `inputs` to accepted, verified results in
    /// `<results_dir>/<deal id>/`.
    pub async fn run<K, V>(
        &self,
        module: &str,
        inputs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<JobOutcome, Error>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let request = self.request(module, inputs);
        self.run_request(&request, &CancellationToken::new(), |_| {}).await
    }

    /// A [`JobRequest`] for `module` and `inputs` with this client's results
    /// directory, to adjust (input files, a target provider, a price) before
    /// [`Self::run_request`].
    pub fn request<K, V>(
        &self,
        module: &str,
        inputs: impl IntoIterator<Item = (K, V)>,
    ) -> JobRequest
    where
        K: Into<String>,
        V: Into<String>,
    {
        JobRequest {
            module: module.to_owned(),
            values: inputs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect::<BTreeMap<_, _>>(),
            output_dir: self.options.results_dir.clone(),
            ..JobRequest::default()
        }
    }

    /// Runs `request`, reporting each step to `on_event`; `cancel` withdraws the offer
    /// while no deal exists (see [`JobCreator::run`]).
    pub async fn run_request(
        &self,
        request: &JobRequest,
        cancel: &CancellationToken,
        on_event: impl FnMut(JobEvent) + Send,
    ) -> Result<JobOutcome, Error> {
        Ok(self.creator.run(request, cancel, on_event).await?)
    }

    /// This account's deals (as job creator or provider), newest first, from the solver.
    pub async fn deals(&self) -> Result<Vec<DealRecord>, Error> {
        Ok(self.solver.deals().await?)
    }

    /// A deal as the chain has it now.
    pub async fn deal(&self, deal_id: B256) -> Result<OnChainDeal, Error> {
        self.chain().deal(deal_id).await?.ok_or(Error::NoSuchDeal(deal_id))
    }

    /// Follows a deal on chain: yields the deal now, then each time its state changes,
    /// and ends after it is finished. A read that fails is yielded as an error and
    /// the stream goes on (a stream of [`Error::is_retryable`] errors may mean the RPC
    /// node is gone: stop reading when you like).
    pub fn watch(
        &self,
        deal_id: B256,
    ) -> impl Stream<Item = Result<OnChainDeal, Error>> + Send + 'static {
        struct State {
            chain: ChainClient,
            interval: Duration,
            last: Option<DealStatus>,
            done: bool,
            first: bool,
        }
        let state = State {
            chain: self.chain().clone(),
            interval: self.options.watch_interval,
            last: None,
            done: false,
            first: true,
        };
        futures::stream::unfold(state, move |mut s| async move {
            if s.done {
                return None;
            }
            loop {
                if !std::mem::take(&mut s.first) {
                    tokio::time::sleep(s.interval).await;
                }
                match s.chain.deal(deal_id).await {
                    Err(e) => return Some((Err(Error::Chain(e)), s)),
                    Ok(None) => {
                        s.done = true;
                        return Some((Err(Error::NoSuchDeal(deal_id)), s));
                    }
                    Ok(Some(deal)) if s.last.as_ref() != Some(&deal.status) => {
                        s.last = Some(deal.status);
                        s.done = matches!(deal.status, DealStatus::Finished(_));
                        return Some((Ok(deal), s));
                    }
                    Ok(Some(_)) => {}
                }
            }
        })
    }
}

#[cfg(feature = "provider")]
impl Lilypad {
    /// A provider engine for this account, ready to [`run`](crate::provider::ProviderEngine::run):
    /// it offers this machine's cores and available memory (no GPU) to the network at
    /// the engine's default price, trusts every mediator registered on chain, runs
    /// jobs in Docker, and keeps its deals in `data_dir/provider.db`. Change anything
    /// with [`Self::provider_with`].
    pub async fn provider(
        &self,
        data_dir: &Path,
    ) -> Result<crate::provider::ProviderEngine, Error> {
        let mut config = crate::provider::EngineConfig::new(
            data_dir,
            crate::provider::machine_spec(),
            self.solver_address(),
        );
        let chain = self.chain();
        let n = chain.member_count(crate::chain::roles::MEDIATOR).await?;
        config.mediators =
            chain.members(crate::chain::roles::MEDIATOR, 0, n).await?.into_iter().collect();
        if config.mediators.is_empty() {
            return Err(Error::NoMediators(self.network().name.clone()));
        }
        self.provider_with(config).await
    }

    /// A provider engine with `config` (see [`crate::provider::EngineConfig`]); fails
    /// at once when dockerd does not answer.
    pub async fn provider_with(
        &self,
        config: crate::provider::EngineConfig,
    ) -> Result<crate::provider::ProviderEngine, Error> {
        use crate::provider::EngineError;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| EngineError::Store(format!("{}: {e}", config.data_dir.display())))?;
        let client = crate::job::ProviderClient::new(
            self.chain().clone(),
            self.solver.clone(),
            self.storage.clone(),
            ModuleCache::new(config.data_dir.join("modules")),
        );
        let store = crate::provider::ProviderStore::open(&config.data_dir.join("provider.db"))?;
        let executor = crate::executor::Executor::connect()?;
        executor.preflight().await?;
        Ok(crate::provider::ProviderEngine::new(client, executor, store, config)?)
    }
}

impl JobError {
    /// Whether running the same job again later may succeed: see [`Error::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NoMatch { .. } | Self::ProviderTimedOut { .. } => true,
            Self::Chain(e) => e.is_retryable(),
            Self::Solver(e) => e.is_retryable(),
            Self::Storage(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl ChainError {
    /// Whether the call may succeed later unchanged: no node answered, a timeout, or a
    /// transaction the chain's changing state made fail after simulation.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Rpc { .. } | Self::Timeout { .. } | Self::TxFailed { .. })
    }
}

impl SolverError {
    /// Whether the call may succeed later unchanged: the solver was unreachable,
    /// failed on its side (5xx) or asked to slow down.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Http { .. } => true,
            Self::Server { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl StorageError {
    /// Whether the call may succeed later unchanged: the store was unreachable or
    /// failed on its side (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_pick_the_source() {
        assert!(matches!(Network::from("local"), Network::Named(n) if n == "local"));
        assert!(matches!(Network::from("net.toml"), Network::File(_)));
        assert!(matches!(Network::from("./x/net"), Network::File(_)));
        // A bare word that is no built-in is a name, so the error says "unknown network".
        let e = Network::from("nope").load().unwrap_err();
        assert!(matches!(e, ConfigError::UnknownNetwork(_)), "{e}");
    }

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        let http = SolverError::Http { url: "u".into(), message: "refused".into() };
        assert!(Error::from(http).is_retryable());
        assert!(
            Error::from(SolverError::Server { status: 503, reason: String::new() }).is_retryable()
        );
        assert!(!Error::from(SolverError::BadRequest("x".into())).is_retryable());
        assert!(
            !Error::from(SolverError::Server { status: 422, reason: String::new() }).is_retryable()
        );
        let no_match = JobError::NoMatch { offer_id: B256::ZERO, reasons: vec![] };
        assert!(Error::from(no_match).is_retryable());
        assert!(!Error::from(JobError::Cancelled("x".into())).is_retryable());
        let timeout = ChainError::Timeout { call: "getDeal", after: Duration::from_secs(1) };
        assert!(Error::from(JobError::Chain(timeout)).is_retryable());
        assert!(!Error::NoSuchDeal(B256::ZERO).is_retryable());
    }

    #[test]
    fn errors_name_no_command_line_flags() {
        // The SDK's messages must read right in any program, not only lilypad-cli.
        let e = JobError::InsufficientAllowance {
            account: Address::ZERO,
            need: alloy::primitives::U256::from(2),
            have: alloy::primitives::U256::from(1),
        };
        let text = e.to_string();
        assert!(!text.contains("--") && !text.contains("lilypad-cli"), "{text}");
    }
}
