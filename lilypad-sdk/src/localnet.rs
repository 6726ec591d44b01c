//! A whole network in one process: anvil with every contract, the content
//! store, the solver and a Docker provider (feature `localnet`).
//!
//! This is what `lilypad-cli run` starts when no network is configured: it
//! comes up in a few seconds, runs the job, and is gone afterwards. For a
//! network that outlives one command, use `lilypad-cli devnet up`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    chain::NetworkConfig,
    devnet::{self, Devnet, DevnetOptions},
    executor::Executor,
    job::ProviderClient,
    module::ModuleCache,
    provider::{EngineConfig, ProviderEngine, ProviderStore},
    solver::{self, RunningSolver, SolverClient, SolverOptions},
    storage::{self, ContentStore, ServerHandle, StorageClient},
};

/// Why the local network could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalNetError {
    /// One part failed; the message says which and why.
    #[error("local network: {part}: {message}")]
    Part {
        /// anvil, storage, solver or provider.
        part: &'static str,
        /// What went wrong.
        message: String,
    },
}

fn part(part: &'static str) -> impl FnOnce(String) -> LocalNetError {
    move |message| LocalNetError::Part { part, message }
}

/// A running in-process network; [`Self::shutdown`] stops every part.
#[derive(Debug)]
pub struct LocalNetwork {
    devnet: Devnet,
    storage: ServerHandle,
    solver: RunningSolver,
    provider: Option<JoinHandle<()>>,
    stop: CancellationToken,
    config: NetworkConfig,
    dir: PathBuf,
}

/// What [`LocalNetwork::start_with`] starts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalOptions {
    /// Run the Docker provider (account [`devnet::PROVIDER`]) in this process. Off,
    /// the network has no provider until one connects (e.g. `lilypad-rp run` or an
    /// SDK program with that account's key), and Docker is not needed here.
    pub provider: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self { provider: true }
    }
}

impl LocalOptions {
    /// No provider in this process (see [`Self::provider`]).
    pub fn without_provider(mut self) -> Self {
        self.provider = false;
        self
    }
}

impl LocalNetwork {
    /// Starts everything under `dir` (which must be empty or missing), reporting
    /// each step to `progress`.
    pub async fn start(
        dir: &Path,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Self, LocalNetError> {
        Self::start_with(dir, progress, LocalOptions::default()).await
    }

    /// As [`Self::start`], starting what `options` asks for.
    pub async fn start_with(
        dir: &Path,
        progress: &(dyn Fn(&str) + Sync),
        options: LocalOptions,
    ) -> Result<Self, LocalNetError> {
        std::fs::create_dir_all(dir).map_err(|e| part("state directory")(e.to_string()))?;

        // Docker first: without it there is no provider, so fail before anything starts.
        let executor = if options.provider {
            progress("checking Docker");
            let executor = Executor::connect()
                .map_err(|e| part("provider")(e.to_string()))?
                .with_name(format!("lilypad-localnet-{}", std::process::id()));
            executor.preflight().await.map_err(|e| part("provider")(e.to_string()))?;
            Some(executor)
        } else {
            None
        };

        let mut opts = DevnetOptions::new(dir.join("devnet"));
        opts.startup_timeout = Duration::from_secs(60);
        let storage_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| part("storage")(e.to_string()))?;
        let storage_addr =
            storage_listener.local_addr().map_err(|e| part("storage")(e.to_string()))?;
        opts.storage_url = format!("http://{storage_addr}");
        let devnet =
            Devnet::start(&opts, progress).await.map_err(|e| part("anvil")(e.to_string()))?;

        progress("starting the content store");
        let store =
            ContentStore::open(dir.join("store")).map_err(|e| part("storage")(e.to_string()))?;
        let storage = storage::serve(store, storage_listener)
            .await
            .map_err(|e| part("storage")(e.to_string()))?;

        progress("starting the solver");
        let mut solver_opts = SolverOptions::new(
            dir.join("solver.db"),
            "127.0.0.1:0".parse().map_err(|_| part("solver")("address".into()))?,
        );
        solver_opts.chain_poll_interval = Duration::from_millis(100);
        let solver = solver::start(devnet.account(devnet::SOLVER), solver_opts)
            .await
            .map_err(|e| part("solver")(e.to_string()))?;

        let mut config = devnet.config().clone();
        config.solver_url = Some(solver.url());
        config.storage_url = Some(storage.url());
        config.save(&dir.join("network.toml")).map_err(|e| part("network file")(e.to_string()))?;

        let stop = CancellationToken::new();
        let Some(executor) = executor else {
            return Ok(Self {
                devnet,
                storage,
                solver,
                provider: None,
                stop,
                config,
                dir: dir.to_owned(),
            });
        };
        progress("starting the provider");
        let chain = devnet.account(devnet::PROVIDER);
        let solver_client = SolverClient::new(
            &solver.url(),
            devnet::anvil_signer(devnet::PROVIDER),
            config.chain_id,
            solver.solver(),
        )
        .map_err(|e| part("provider")(e.to_string()))?;
        let storage_client =
            StorageClient::new(&storage.url()).map_err(|e| part("provider")(e.to_string()))?;
        let client = ProviderClient::new(
            chain,
            solver_client,
            storage_client,
            ModuleCache::new(dir.join("provider/modules")),
        );
        let store = ProviderStore::open(&dir.join("provider.db"))
            .map_err(|e| part("provider")(e.to_string()))?;
        let mut engine_config = EngineConfig::new(
            dir.join("provider"),
            crate::provider::machine_spec(),
            solver.solver(),
        );
        engine_config.mediators =
            devnet::MEDIATORS.iter().map(|m| devnet::anvil_address(*m)).collect::<BTreeSet<_>>();
        engine_config.poll_interval = Duration::from_millis(200);
        let engine = ProviderEngine::new(client, executor, store, engine_config)
            .map_err(|e| part("provider")(e.to_string()))?;
        let stop_engine = stop.clone();
        let provider = tokio::spawn(async move {
            if let Err(e) = engine.run(&stop_engine).await {
                tracing::error!("local provider stopped: {e}");
            }
        });
        Ok(Self {
            devnet,
            storage,
            solver,
            provider: Some(provider),
            stop,
            config,
            dir: dir.to_owned(),
        })
    }

    /// The network, with the solver's and the store's URLs.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The network file.
    pub fn network_file(&self) -> PathBuf {
        self.dir.join("network.toml")
    }

    /// The solver's chain address.
    pub fn solver_address(&self) -> alloy::primitives::Address {
        self.solver.solver()
    }

    /// Stops the provider, the solver, the store and anvil.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Some(provider) = self.provider {
            let _ = tokio::time::timeout(Duration::from_secs(10), provider).await;
        }
        let _ = self.solver.shutdown().await;
        let _ = self.storage.shutdown().await;
        self.devnet.stop();
    }
}
