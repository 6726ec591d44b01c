//! `lilypad-cli jobs`: on-chain jobs from the client's side: deploy the example client
//! contract, request jobs (through it, or from an account), show how a job ended.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use lilypad_sdk::{
    chain::{ChainClient, ChainError, JobStatus, OnChainJobOutcome},
    core::{Address, U256},
};
use serde_json::json;

use super::network::{NetworkArgs, Role, key, load};
use crate::{amounts, inputs::collect_inputs};

/// `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Deploy an ExampleClient contract (owned by your account) and fund it with tokens;
    /// prints its address.
    ///
    /// Example: lilypad-cli jobs deploy-example-client --payment 1 --fund 10
    DeployExampleClient(DeployArgs),
    /// Ask an ExampleClient you own for a cowsay run (`cowsay:v0.0.4`, Message=TEXT),
    /// paid from its tokens; prints the job id.
    ///
    /// Example: lilypad-cli jobs request-cowsay --client 0x... "hello"
    RequestCowsay(RequestCowsayArgs),
    /// Request a job from your account (no callback: read the outcome with `jobs show`);
    /// prints the job id.
    ///
    /// Example: lilypad-cli jobs request cowsay:v0.0.4 -i Message=hi --payment 1
    Request(RequestArgs),
    /// Show a job: its state on chain and, once over, its results CID or cancel reason.
    ///
    /// Example: lilypad-cli jobs show 1 --wait 300 --json
    Show(ShowArgs),
}

/// Arguments of `jobs deploy-example-client`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Escrowed with each request, in tokens (`1.5`, `1.5 LP`) or base units (`1500wei`):
    /// the most the bridge may spend on one job.
    #[arg(long, value_name = "P", default_value = "1", value_parser = amounts::parse)]
    payment: U256,
    /// Sent to the new contract (it pays for its requests), in tokens or base units.
    #[arg(long, value_name = "T", default_value = "10", value_parser = amounts::parse)]
    fund: U256,
}

/// Arguments of `jobs request-cowsay`.
#[derive(Debug, Args)]
pub(crate) struct RequestCowsayArgs {
    /// The message cowsay says.
    message: String,
    /// The ExampleClient contract.
    #[arg(long, value_name = "ADDR")]
    client: Address,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Arguments of `jobs request`.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// The module reference (e.g. cowsay:v0.0.4).
    module: String,
    /// A template input, KEY=VALUE (repeatable).
    #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    /// Escrowed from your account, in tokens (`1.5`, `1.5 LP`) or base units (`1500wei`).
    #[arg(long, value_name = "P", default_value = "1", value_parser = amounts::parse)]
    payment: U256,
    #[command(flatten)]
    network: NetworkArgs,
}

/// Arguments of `jobs show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The job id (1, 2, ...).
    id: U256,
    /// Wait up to this many seconds for the job to end.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    wait: u64,
    /// Also show what this ExampleClient contract stored for the job (from its callback).
    #[arg(long, value_name = "ADDR")]
    example_client: Option<Address>,
    #[command(flatten)]
    network: NetworkArgs,
}

pub(crate) fn run(cmd: JobsCommand) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async move {
        match cmd {
            JobsCommand::DeployExampleClient(args) => deploy(&args).await,
            JobsCommand::RequestCowsay(args) => request_cowsay(&args).await,
            JobsCommand::Request(args) => request(&args).await,
            JobsCommand::Show(args) => show(&args).await,
        }
    })
}

/// The chain, signing as `WEB3_PRIVATE_KEY` or, on a local chain, the devnet's job
/// creator account. The solver and storage are not needed here.
async fn connect(args: &NetworkArgs) -> anyhow::Result<ChainClient> {
    let config = load(args)?;
    let signer = key(&config, Role::JobCreator)?;
    Ok(ChainClient::connect(config).await?.with_signer(signer))
}

async fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    let chain = connect(&args.network).await?;
    let manager = chain.job_manager_address()?;
    let client = chain.deploy_example_client(manager, args.payment).await?;
    if !args.fund.is_zero() {
        chain.transfer(client, args.fund).await.context("funding the new client")?;
    }
    eprintln!(
        "ExampleClient deployed: payment {} per request, funded with {}",
        amounts::show(args.payment),
        amounts::show(args.fund)
    );
    println!("{client}");
    Ok(())
}

async fn request_cowsay(args: &RequestCowsayArgs) -> anyhow::Result<()> {
    let chain = connect(&args.network).await?;
    let job = chain.example_client(args.client).request_cowsay(&args.message).await?;
    eprintln!(
        "job {} requested: {} with {} escrowed; deadline {}",
        job.job_id,
        job.module,
        amounts::show(job.payment),
        crate::when::utc(job.deadline)
    );
    println!("{}", job.job_id);
    Ok(())
}

async fn request(args: &RequestArgs) -> anyhow::Result<()> {
    let inputs: Vec<(String, String)> = collect_inputs(&args.inputs)?.into_iter().collect();
    let chain = connect(&args.network).await?;
    let job = chain.run_job(&args.module, &inputs, args.payment).await?;
    eprintln!(
        "job {} requested: {} with {} escrowed; deadline {}",
        job.job_id,
        job.module,
        amounts::show(job.payment),
        crate::when::utc(job.deadline)
    );
    println!("{}", job.job_id);
    Ok(())
}

async fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let chain = connect(&args.network).await?;
    let id = args.id;
    let job = chain.job(id).await?.with_context(|| format!("there is no job {id}"))?;
    let outcome = if job.status == JobStatus::Requested && args.wait == 0 {
        None
    } else {
        // Final jobs answer at once; open ones are waited for.
        match chain.wait_for_job(id, Duration::from_secs(args.wait.max(1))).await {
            Ok(o) => Some(o),
            Err(ChainError::Timeout { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    };
    let mut v = json!({
        "job_id": id.to_string(),
        "client": job.client,
        "status": match outcome.as_ref().map_or(job.status, OnChainJobOutcome::status) {
            JobStatus::Requested => "requested",
            JobStatus::Fulfilled => "fulfilled",
            JobStatus::Cancelled => "cancelled",
        },
        "payment": job.payment.to_string(),
        "deadline": job.deadline,
    });
    match &outcome {
        Some(OnChainJobOutcome::Fulfilled(f)) => {
            v["results_cid"] = json!(f.results_cid);
            v["spent"] = json!(f.spent.to_string());
            v["refund"] = json!(f.refund.to_string());
            v["bridge"] = json!(f.bridge);
            v["callback_failed"] = json!(f.callback_failed);
            v["tx"] = json!(f.tx);
        }
        Some(OnChainJobOutcome::Cancelled(c)) => {
            v["reason"] = json!(c.reason);
            v["refund"] = json!(c.refund.to_string());
            v["by"] = json!(c.by);
            v["callback_failed"] = json!(c.callback_failed);
            v["tx"] = json!(c.tx);
        }
        None => {}
    }
    if let Some(addr) = args.example_client {
        let example = chain.example_client(addr);
        let status = example.status_of(id).await?;
        v["client_status"] = json!(match status {
            None => "unknown (not requested by this client)",
            Some(JobStatus::Requested) => "requested",
            Some(JobStatus::Fulfilled) => "fulfilled",
            Some(JobStatus::Cancelled) => "cancelled",
        });
        match status {
            Some(JobStatus::Fulfilled) => {
                v["client_results_cid"] = json!(example.results_of(id).await?);
            }
            Some(JobStatus::Cancelled) => {
                v["client_cancel_reason"] = json!(example.cancel_reason_of(id).await?);
            }
            _ => {}
        }
    }
    if lilypad_cli_common::json() {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let obj = v.as_object().context("a JSON object")?;
        for (k, val) in obj {
            let text = match (k.as_str(), val) {
                ("payment" | "spent" | "refund", serde_json::Value::String(units)) => {
                    units.parse::<U256>().map_or_else(|_| units.clone(), amounts::show)
                }
                ("deadline", serde_json::Value::Number(n)) => {
                    n.as_u64().map_or_else(|| n.to_string(), crate::when::utc)
                }
                _ => val.as_str().map_or_else(|| val.to_string(), str::to_owned),
            };
            println!("{k:<22}{text}");
        }
    }
    if job.status == JobStatus::Requested && outcome.is_none() && args.wait > 0 {
        anyhow::bail!("job {id} is still open after {} s", args.wait);
    }
    Ok(())
}
