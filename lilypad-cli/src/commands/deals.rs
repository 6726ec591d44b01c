//! `lilypad-cli deals list|show`: your deals, as the solver recorded them and the chain holds them.

use anyhow::Context;
use clap::{Args, Subcommand};
use lilypad_sdk::{
    chain::roles,
    core::B256,
    solver::api::{DealRecord, DealState},
    storage::Cid,
};
use serde_json::json;

use super::network::{Network, NetworkArgs};

/// Deals subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DealsCommand {
    /// Your deals (as job creator or provider), newest first.
    ///
    /// Example: lilypad-cli deals list --json
    List(ListArgs),
    /// One deal: terms, members, state on chain, results CID.
    ///
    /// Example: lilypad-cli deals show 0x5c0f...e1
    Show(ShowArgs),
}

/// Arguments of `deals list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// List the provider account's deals (the devnet's provider key on a local network).
    #[arg(long)]
    provider: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `deals show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The deal id (0x + 64 hex digits).
    id: B256,
    #[command(flatten)]
    network: NetworkArgs,
    /// Look as the provider account.
    #[arg(long)]
    provider: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: DealsCommand) -> anyhow::Result<()> {
    super::devnet::runtime()?.block_on(async move {
        match cmd {
            DealsCommand::List(args) => list(&args).await,
            DealsCommand::Show(args) => show(&args).await,
        }
    })
}

fn role(provider: bool) -> u8 {
    if provider { roles::RESOURCE_PROVIDER } else { roles::JOB_CREATOR }
}

fn cid_text(record: &DealRecord) -> Option<String> {
    let bytes = record.results_cid.as_ref()?;
    Some(
        Cid::try_from(bytes.as_ref())
            .map_or_else(|_| format!("{bytes} (malformed)"), |c| c.to_string()),
    )
}

fn state_text(record: &DealRecord) -> String {
    match (record.state, record.outcome) {
        (DealState::Finished, Some(o)) => format!("finished ({o:?})"),
        (s, _) => s.as_str().replace('_', " "),
    }
}

fn record_json(r: &DealRecord) -> serde_json::Value {
    json!({
        "id": r.deal.id,
        "state": r.state,
        "outcome": r.outcome,
        "job_creator": r.deal.members.job_creator,
        "provider": r.deal.members.resource_provider,
        "price": r.deal.terms.price.to_string(),
        "module_id": r.deal.module_id,
        "created_at": r.deal.created_at,
        "results_cid": cid_text(r),
        "mediator": r.mediator,
        "tx": r.tx,
    })
}

async fn list(args: &ListArgs) -> anyhow::Result<()> {
    let network = Network::open(&args.network, role(args.provider)).await?;
    let deals = network.solver()?.deals().await.context("listing deals")?;
    if args.json {
        let all: Vec<_> = deals.iter().map(record_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if deals.is_empty() {
        println!("no deals for {}", network.chain.address().unwrap_or_default());
        return Ok(());
    }
    println!("{:<66}  {:<26}  {:>24}  results", "deal", "state", "price (base units)");
    for r in &deals {
        println!(
            "{:<66}  {:<26}  {:>24}  {}",
            r.deal.id.to_string(),
            state_text(r),
            r.deal.terms.price.to_string(),
            cid_text(r).unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

async fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let network = Network::open(&args.network, role(args.provider)).await?;
    let record =
        network.solver()?.deal(args.id).await.context("reading the deal from the solver")?;
    let on_chain = network.chain.deal(args.id).await?;
    if args.json {
        let mut v = record_json(&record);
        v["chain"] = on_chain.as_ref().map_or(serde_json::Value::Null, |d| {
            json!({ "status": format!("{:?}", d.status), "deadline": d.deadline,
                    "escrow_price": d.price.to_string() })
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let d = &record.deal;
    println!("deal        {}", d.id);
    println!("state       {} (solver)", state_text(&record));
    if let Some(c) = &on_chain {
        println!("on chain    {:?}, deadline {}", c.status, c.deadline);
    }
    println!("job creator {}", d.members.job_creator);
    println!("provider    {}", d.members.resource_provider);
    println!("price       {} base units", d.terms.price);
    println!("module      {}", d.module_id);
    println!("job offer   {}", d.job_offer_id);
    println!("created at  {} (unix)", d.created_at);
    println!("results     {}", cid_text(&record).unwrap_or_else(|| "-".into()));
    if let Some(m) = record.mediator {
        println!("mediator    {m}");
    }
    println!("tx          {}", record.tx);
    Ok(())
}
