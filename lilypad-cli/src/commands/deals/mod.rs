//! `lilypad-cli deals`: your deals, as the solver recorded them and the chain holds them,
//! and the commands that finish a deal by hand (accept, challenge, claim-timeout) or
//! void a job offer before it becomes one (cancel).

mod act;
pub(crate) mod explain;

use anyhow::Context;
use clap::{Args, Subcommand};
use lilypad_sdk::{
    chain::{DealStatus, OnChainDeal},
    core::{B256, settlement::settle},
    solver::api::DealRecord,
    storage::Cid,
};
use serde_json::json;

use super::network::{Network, NetworkArgs, Role};
use crate::{amounts, summary, when};

/// Deals subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DealsCommand {
    /// Your deals (as job creator or provider), newest first.
    ///
    /// Example: lilypad-cli deals list --json
    List(ListArgs),
    /// One deal: terms, members, state on chain, results CID, what can be done next.
    ///
    /// Example: lilypad-cli deals show 0x5c0f...e1
    Show(ShowArgs),
    /// Accept a deal's results (job creator, before the judge deadline): pays the provider.
    ///
    /// Example: lilypad-cli deals accept 0x5c0f...e1
    Accept(ActArgs),
    /// Challenge a deal's results (job creator, before the judge deadline): pays the
    /// mediation fee; a mediator re-runs the job and decides.
    ///
    /// Example: lilypad-cli deals challenge 0x5c0f...e1
    Challenge(ActArgs),
    /// End a deal whose deadline has passed (anyone): no results in time refunds the job
    /// creator with the provider's timeout collateral; no judgement in time pays the
    /// provider; no verdict in time refunds everyone.
    ///
    /// Example: lilypad-cli deals claim-timeout 0x5c0f...e1
    ClaimTimeout(ActArgs),
    /// Accept a provider's failure report (job creator, before the judge deadline): the
    /// payment collateral comes back, the provider keeps its timeout collateral.
    ///
    /// Example: lilypad-cli deals accept-failure 0x5c0f...e1
    AcceptFailure(ActArgs),
    /// Challenge a provider's failure report (job creator, before the judge deadline):
    /// pays the mediation fee; a mediator tries to run the job, and a report it refutes
    /// costs the provider its timeout collateral.
    ///
    /// Example: lilypad-cli deals challenge-failure 0x5c0f...e1
    ChallengeFailure(ActArgs),
    /// Replace a drawn mediator that gave no verdict by its deadline (anyone): the next
    /// one is drawn from the rest of the deal's mediators; with none left, the deal ends
    /// and everyone is refunded.
    ///
    /// Example: lilypad-cli deals redraw-mediator 0x5c0f...e1
    RedrawMediator(ActArgs),
    /// Void a job offer that is not a deal yet: invalidates its nonce on chain, so no
    /// solver can ever make it one.
    ///
    /// Example: lilypad-cli deals cancel 0x9a3e...07 (the job offer id `run` printed)
    Cancel(CancelArgs),
}

/// Arguments of `deals list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// List the provider account's deals (the devnet's provider key on a local network).
    #[arg(long)]
    provider: bool,
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
}

/// Arguments of the commands that move a deal.
#[derive(Debug, Args)]
pub(crate) struct ActArgs {
    /// The deal id (0x + 64 hex digits).
    id: B256,
    #[command(flatten)]
    network: NetworkArgs,
    /// Act as the provider account (the devnet's provider key on a local network).
    #[arg(long)]
    provider: bool,
}

/// Arguments of `deals cancel`.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The job offer id (0x + 64 hex digits), as `run` printed it.
    offer_id: B256,
    #[command(flatten)]
    network: NetworkArgs,
}

pub(crate) fn run(cmd: DealsCommand) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(async move {
        match cmd {
            DealsCommand::List(args) => list(&args).await,
            DealsCommand::Show(args) => show(&args).await,
            DealsCommand::Accept(args) => act::act(explain::Action::Accept, &args).await,
            DealsCommand::Challenge(args) => act::act(explain::Action::Challenge, &args).await,
            DealsCommand::ClaimTimeout(args) => {
                act::act(explain::Action::ClaimTimeout, &args).await
            }
            DealsCommand::AcceptFailure(args) => {
                act::act(explain::Action::AcceptFailure, &args).await
            }
            DealsCommand::ChallengeFailure(args) => {
                act::act(explain::Action::ChallengeFailure, &args).await
            }
            DealsCommand::RedrawMediator(args) => {
                act::act(explain::Action::RedrawMediator, &args).await
            }
            DealsCommand::Cancel(args) => act::cancel(&args).await,
        }
    })
}

fn role(provider: bool) -> Role {
    if provider { Role::Provider } else { Role::JobCreator }
}

/// The time deadlines are measured against: the later of the wall clock and the latest
/// block (a test chain can be ahead of the wall clock; an idle one behind it).
pub(crate) async fn chain_now(network: &Network) -> anyhow::Result<u64> {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(wall.max(network.chain.latest_timestamp().await?))
}

fn cid_text(record: &DealRecord) -> Option<String> {
    let bytes = record.results_cid.as_ref()?;
    Some(
        Cid::try_from(bytes.as_ref())
            .map_or_else(|_| format!("{bytes} (malformed)"), |c| c.to_string()),
    )
}

fn record_json(r: &DealRecord) -> serde_json::Value {
    json!({
        "id": r.deal.id,
        "state": r.status.kind(),
        "outcome": r.status.outcome(),
        "job_creator": r.deal.members.job_creator,
        "provider": r.deal.members.resource_provider,
        "price": r.deal.terms.price.to_string(),
        "module_id": r.deal.module_id,
        "job_offer_id": r.deal.job_offer_id,
        "created_at": r.deal.created_at,
        "results_cid": cid_text(r),
        "mediator": r.mediator,
        "tx": r.tx,
    })
}

async fn list(args: &ListArgs) -> anyhow::Result<()> {
    let network = Network::open(&args.network, role(args.provider)).await?;
    let deals = network.solver()?.deals().await.context("listing deals")?;
    if lilypad_cli_common::json() {
        let all: Vec<_> = deals.iter().map(record_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if deals.is_empty() {
        println!("no deals for {}", network.chain.address().unwrap_or_default());
        return Ok(());
    }
    println!("{:<66}  {:<34}  {:>26}  results", "deal", "state", "price");
    for r in &deals {
        println!(
            "{:<66}  {:<34}  {:>26}  {}",
            r.deal.id.to_string(),
            r.status.to_string(),
            amounts::show(r.deal.terms.price),
            cid_text(r).unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

/// The on-chain part of `deals show` as JSON.
fn chain_json(
    d: &OnChainDeal,
    me: lilypad_sdk::core::Address,
    now: u64,
    net: Option<&str>,
) -> serde_json::Value {
    let steps: Vec<_> = explain::next_steps(d, me, now, net)
        .into_iter()
        .map(|(why, command)| json!({ "why": why, "command": command }))
        .collect();
    json!({
        "status": format!("{:?}", d.status),
        "deadline": d.deadline,
        "escrow_price": d.price.to_string(),
        "situation": explain::situation(d, now),
        "next_steps": steps,
    })
}

async fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let network = Network::open(&args.network, role(args.provider)).await?;
    let me = network.chain.address().unwrap_or_default();
    let net = args.network.network.as_deref();
    let record =
        network.solver()?.deal(args.id).await.context("reading the deal from the solver")?;
    let on_chain = network.chain.deal(args.id).await?;
    let now = chain_now(&network).await?;
    let settlement = match on_chain.as_ref().map(|d| d.status) {
        Some(DealStatus::Finished(outcome)) => settle(&record.deal.terms, outcome).ok(),
        _ => None,
    };
    if lilypad_cli_common::json() {
        let mut v = record_json(&record);
        v["chain"] =
            on_chain.as_ref().map_or(serde_json::Value::Null, |d| chain_json(d, me, now, net));
        if let Some(s) = &settlement {
            v["settlement"] = summary::settlement_json(s);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let d = &record.deal;
    let t = &d.terms;
    println!("deal                 {}", d.id);
    println!("state                {} (solver)", record.status);
    if let Some(c) = &on_chain {
        println!("on chain             {}", explain::situation(c, now));
    }
    println!("job creator          {}", d.members.job_creator);
    println!("provider             {}", d.members.resource_provider);
    println!("price                {}", amounts::show(t.price));
    println!("payment collateral   {}", amounts::show(t.payment_collateral));
    println!("timeout collateral   {}", amounts::show(t.timeout_collateral));
    println!("results collateral   {}", amounts::show(t.results_collateral));
    println!("mediation fee        {}", amounts::show(t.mediation_fee));
    println!("module               {}", d.module_id);
    println!("job offer            {}", d.job_offer_id);
    println!("created at           {}", when::utc(d.created_at));
    println!("results              {}", cid_text(&record).unwrap_or_else(|| "-".into()));
    if let Some(m) = record.mediator {
        println!("mediator             {m}");
    }
    println!("tx                   {}", record.tx);
    if let Some(s) = &settlement {
        println!();
        for line in summary::settlement_lines(s, amounts::style()) {
            println!("{line}");
        }
    }
    if let Some(c) = &on_chain {
        // This command is `deals show` already.
        let show = explain::command("show", c.id, net);
        let steps: Vec<_> = explain::next_steps(c, me, now, net)
            .into_iter()
            .filter(|(_, cmd)| *cmd != show)
            .collect();
        if !steps.is_empty() {
            println!();
            println!("next:");
            for (why, command) in steps {
                println!("  {why}:");
                println!("    {command}");
            }
        }
    }
    Ok(())
}
