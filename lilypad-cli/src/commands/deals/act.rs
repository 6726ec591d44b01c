//! The commands that move a deal on chain, and `cancel`, which voids a job offer.
//!
//! Each one reads the deal from the chain first and works out with the core's state
//! machine whether it can run now ([`explain::blocker`]); then it sends the
//! transaction anyway (a refused one is only simulated, so it costs nothing) because
//! the chain decides. When the chain refuses, the answer says why in words, when it
//! will be possible, and what the contract said.

use std::time::Duration;

use anyhow::Context;
use lilypad_sdk::{
    chain::{ChainError, Challenge, FinishedDeal, OnChainDeal, Redraw},
    core::{Address, settlement::settle},
    solver::api::OfferState,
};
use serde_json::json;

use super::{
    ActArgs, CancelArgs, chain_now,
    explain::{self, Action, Blocker},
    role,
};
use crate::{
    amounts,
    commands::network::{Network, Role},
    summary, when,
};

/// What an action's transaction did.
enum Sent {
    /// The deal ended.
    Finished(FinishedDeal),
    /// The results or a failure report were challenged.
    Challenged(Challenge),
    /// A silent mediator was replaced; the next one is drawn from `draw_block`'s hash.
    Redrawn {
        /// The block whose hash draws the next mediator.
        draw_block: u64,
        /// The new mediation deadline.
        deadline: u64,
    },
}

/// The transaction of `action`.
async fn send(
    action: Action,
    network: &Network,
    d: &OnChainDeal,
) -> anyhow::Result<Result<Sent, ChainError>> {
    let chain = &network.chain;
    Ok(match action {
        Action::Accept => chain.accept_results(d.id).await.map(Sent::Finished),
        Action::ClaimTimeout => chain.claim_timeout(d.id).await.map(Sent::Finished),
        Action::AcceptFailure => chain.accept_failure(d.id).await.map(Sent::Finished),
        Action::Challenge | Action::ChallengeFailure | Action::RedrawMediator => {
            // The contract checks the list against the deal's mediators hash.
            let mediators = chain
                .deal_mediators(d.id)
                .await
                .context("reading the deal's mediators from its DealCreated event")?;
            match action {
                Action::Challenge => {
                    chain.challenge_results(d.id, &mediators).await.map(Sent::Challenged)
                }
                Action::ChallengeFailure => {
                    chain.challenge_failure(d.id, &mediators).await.map(Sent::Challenged)
                }
                _ => chain.redraw_mediator(d.id, &mediators).await.map(|r| match r {
                    Redraw::Finished(f) => Sent::Finished(f),
                    Redraw::Next { draw_block, deadline } => Sent::Redrawn { draw_block, deadline },
                }),
            }
        }
    })
}

/// `deals accept|challenge|claim-timeout ID`.
pub(super) async fn act(action: Action, args: &ActArgs) -> anyhow::Result<()> {
    let network = Network::open(&args.network, role(args.provider)).await?;
    let me = network.chain.address().unwrap_or_default();
    let net = args.network.network.as_deref();
    let d = network.chain.deal(args.id).await?.with_context(|| {
        format!("there is no deal {} on chain (check the id and --network)", args.id)
    })?;
    let now = chain_now(&network).await?;
    let blocker = explain::blocker(action, &d, me, now, net);
    match send(action, &network, &d).await? {
        Ok(Sent::Finished(f)) => finished(action, &network, &f, lilypad_cli_common::json()).await,
        Ok(Sent::Challenged(c)) => challenged(action, &c, net, now, lilypad_cli_common::json()),
        Ok(Sent::Redrawn { draw_block, deadline }) => {
            if lilypad_cli_common::json() {
                let v = json!({
                    "status": "redrawn",
                    "deal_id": d.id,
                    "draw_block": draw_block,
                    "deadline": deadline,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "✔ deal {}: the silent mediator was replaced; the next one is drawn from the \
                     hash of block {draw_block} and decides by {}",
                    d.id,
                    when::utc_relative(deadline, now)
                );
            }
            Ok(())
        }
        Err(e @ ChainError::Reverted { .. }) => {
            // The chain may have moved since the first read: explain against what it
            // holds now.
            let (d, now) = match network.chain.deal(args.id).await {
                Ok(Some(fresh)) => (fresh, chain_now(&network).await.unwrap_or(now)),
                _ => (d, now),
            };
            let blocker =
                explain::blocker(action, &d, me, now, net).or(blocker).unwrap_or_else(|| Blocker {
                    kind: "refused",
                    message: format!("the chain refused to {}", action.command()),
                    retry_at: None,
                });
            refused(action, &d, &blocker, &e, lilypad_cli_common::json())
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints a refusal and fails.
fn refused(
    action: Action,
    d: &OnChainDeal,
    blocker: &Blocker,
    chain_error: &ChainError,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = json!({
            "status": "not_allowed",
            "action": action.command(),
            "deal_id": d.id,
            "reason": blocker.kind,
            "message": blocker.message,
            "deadline": d.deadline,
            "retry_at": blocker.retry_at,
            "chain_error": chain_error.to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    anyhow::bail!("{}\n  the chain says: {chain_error}", blocker.message)
}

async fn finished(
    action: Action,
    network: &Network,
    f: &FinishedDeal,
    json: bool,
) -> anyhow::Result<()> {
    // The payout table needs the deal's terms (the chain keeps only some of them).
    let settlement = match network.solver()?.deal(f.deal_id).await {
        Ok(record) => settle(&record.deal.terms, f.outcome).ok(),
        Err(_) => None,
    };
    if json {
        let mut v = json!({
            "status": "finished",
            "action": action.command(),
            "deal_id": f.deal_id,
            "outcome": f.outcome,
            "tx": f.tx,
            "paid_by_this_tx": {
                "job_creator": f.to_job_creator.to_string(),
                "provider": f.to_provider.to_string(),
                "mediator": f.to_mediator.to_string(),
            },
        });
        if let Some(s) = &settlement {
            v["settlement"] = summary::settlement_json(s);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("✔ deal {} finished: {} (tx {})", f.deal_id, f.outcome, f.tx);
    match &settlement {
        Some(s) => {
            for line in summary::settlement_lines(s, amounts::style()) {
                println!("{line}");
            }
        }
        None => println!(
            "paid by this transaction: job creator {}, provider {}, mediator {}",
            amounts::show(f.to_job_creator),
            amounts::show(f.to_provider),
            amounts::show(f.to_mediator)
        ),
    }
    Ok(())
}

fn challenged(
    action: Action,
    c: &Challenge,
    net: Option<&str>,
    now: u64,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = json!({
            "status": "challenged",
            "action": action.command(),
            "deal_id": c.deal_id,
            "draw_block": c.draw_block,
            "mediation_fee": c.mediation_fee.to_string(),
            "deadline": c.deadline,
            "tx": c.tx,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "✔ deal {} challenged: mediation fee {} escrowed; the mediator drawn from the hash of \
         block {} decides by {} (tx {})",
        c.deal_id,
        amounts::show(c.mediation_fee),
        c.draw_block,
        when::utc_relative(c.deadline, now),
        c.tx
    );
    println!("follow it:");
    println!("  {}", explain::command("show", c.deal_id, net));
    println!("if no verdict comes by then, draw the next mediator after the deadline:");
    println!("  {}", explain::command("redraw-mediator", c.deal_id, net));
    Ok(())
}

/// `deals cancel OFFER_ID`.
pub(super) async fn cancel(args: &CancelArgs) -> anyhow::Result<()> {
    let network = Network::open(&args.network, Role::JobCreator).await?;
    let me = network.chain.address().unwrap_or_default();
    let net = args.network.network.as_deref();
    let solver = network.solver()?;
    let id = args.offer_id;
    let status = solver.job_offer(id).await.context("reading the job offer from the solver")?;
    let offer = &status.offer;
    if offer.creator != me {
        anyhow::bail!(
            "cannot cancel job offer {id}: it is {}'s and this account is {me} (set \
             WEB3_PRIVATE_KEY to the offer creator's key)",
            offer.creator
        );
    }
    if let Some(deal) = status.deal_id {
        return became_deal(&network, id, deal, me, net, lilypad_cli_common::json()).await;
    }
    if network.chain.is_nonce_used(me, offer.nonce).await? {
        return report_void(id, offer.nonce, "already_void", lilypad_cli_common::json(), || {
            format!(
                "job offer {id} is void already: its nonce {} is used or invalidated on chain; \
                 it can never become a deal",
                offer.nonce
            )
        });
    }
    network.chain.invalidate_nonce(offer.nonce).await?;
    // A deal created before the invalidation was mined still stands: ask the solver,
    // which settles an offer it is matching within a transaction's time.
    for _ in 0..60 {
        let s = solver.job_offer(id).await?;
        if let Some(deal) = s.deal_id {
            return became_deal(&network, id, deal, me, net, lilypad_cli_common::json()).await;
        }
        if s.state != OfferState::Matching {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report_void(id, offer.nonce, "cancelled", lilypad_cli_common::json(), || {
        format!(
            "✔ job offer {id} cancelled: its nonce {} is invalidated on chain, so no solver can \
             make it a deal (an offer escrows nothing; nothing was paid)",
            offer.nonce
        )
    })
}

fn report_void(
    id: lilypad_sdk::core::B256,
    nonce: lilypad_sdk::core::U256,
    status: &str,
    json: bool,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        let v = json!({ "status": status, "offer_id": id, "nonce": nonce.to_string() });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

/// The offer is a deal: cancelling is over; say how to finish the deal instead.
async fn became_deal(
    network: &Network,
    offer_id: lilypad_sdk::core::B256,
    deal_id: lilypad_sdk::core::B256,
    me: Address,
    net: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let d = network.chain.deal(deal_id).await?;
    let now = chain_now(network).await?;
    let steps = d.as_ref().map(|d| explain::next_steps(d, me, now, net)).unwrap_or_default();
    let situation = d.as_ref().map(|d| explain::situation(d, now)).unwrap_or_default();
    if json {
        let steps: Vec<_> =
            steps.iter().map(|(why, cmd)| json!({ "why": why, "command": cmd })).collect();
        let v = json!({
            "status": "not_allowed",
            "reason": "became_deal",
            "offer_id": offer_id,
            "deal_id": deal_id,
            "situation": situation,
            "next_steps": steps,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    let mut msg = format!(
        "too late to cancel job offer {offer_id}: it became deal {deal_id}, which only ends \
         on chain; {situation}"
    );
    for (why, cmd) in steps {
        msg.push_str(&format!("\n  {why}: {cmd}"));
    }
    anyhow::bail!(msg)
}
