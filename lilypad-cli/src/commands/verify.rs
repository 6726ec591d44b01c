//! `lilypad-cli verify`: re-runs a deal's job on this machine and checks the provider's
//! results the way a mediator would, without posting anything.
//!
//! The job creator fetches its own inputs from the solver, the module at the deal's
//! version, runs it in the local Docker sandbox, and compares: equal CIDs, or, for a
//! module that declares a tolerance (`lilypad_core::verify`), the declared file by the
//! module's comparator, with its score. A spot check before accepting results (or
//! before paying the mediation fee of a challenge).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    core::B256,
    executor::Executor,
    job::ProviderClient,
    module::ModuleCache,
    provider::{Mediator, MediatorConfig},
};
use serde_json::json;

use super::network::{Network, NetworkArgs, Role};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The deal whose results to check (0x + 64 hex digits); it must have results on chain.
    deal: B256,
    #[command(flatten)]
    network: NetworkArgs,
    /// Where the re-run keeps its module cache, inputs and results
    /// [default: $LILYPAD_HOME/verify].
    #[arg(long, env = "LILYPAD_VERIFY_DIR")]
    data_dir: Option<PathBuf>,
}

/// Runs `lilypad-cli verify`.
pub(crate) fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async {
        let network = Network::open(&args.network, Role::JobCreator).await?;
        let dir = args.data_dir.clone().unwrap_or_else(|| network.home.join("verify"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the data dir {}", dir.display()))?;
        let (solver, storage) = (network.solver()?, network.storage()?);
        let modules = ModuleCache::new(dir.join("modules"));
        let client = ProviderClient::new(network.chain, solver, storage, modules);
        let executor = Executor::connect()?.with_name("verify");
        executor.preflight().await.context("the re-run needs a local Docker engine")?;
        let mediator = Mediator::new(client, executor, MediatorConfig::new(&dir))?;
        eprintln!("re-running the job of deal {} ...", args.deal);
        let verdict = mediator
            .judge(args.deal)
            .await
            .with_context(|| format!("re-running the job of deal {}", args.deal))?;
        if lilypad_cli_common::json() {
            let v = json!({
                "deal_id": args.deal,
                "holds": verdict.accept,
                "rerun_cid": verdict.rerun_cid.map(|c| c.to_string()),
                "reason": verdict.reason,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            let word = if verdict.accept { "hold" } else { "do NOT hold" };
            println!("the provider's results {word}: {}", verdict.reason);
        }
        anyhow::ensure!(verdict.accept, "the results of deal {} do not hold", args.deal);
        Ok(())
    })
}
