//! Each outcome of a deal driven through the SDK: token balances of the job creator,
//! the provider, every mediator and the controller equal lilypad-core's settlement.

use std::collections::BTreeSet;

use lilypad_core::{
    Address, U256,
    settlement::{Outcome, Party, settle},
    state::JobFailure,
};
use lilypad_sdk::{
    chain::{DealStatus, Draw, FinishedDeal, Redraw},
    devnet::increase_time,
};

use crate::common::{Net, addr, balances, job_offer, paid_by, resource_offer, start};

pub(crate) fn results_cid() -> cid::Cid {
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".parse().expect("a CID")
}

async fn drive(net: &Net, outcome: Outcome, nonce: u64) {
    let now = net.admin.latest_timestamp().await.unwrap();
    let meds: BTreeSet<Address> = net.mediators.iter().map(addr).collect();
    let job = job_offer(addr(&net.jc), addr(&net.solver), &meds, now, nonce);
    let res = resource_offer(addr(&net.rp), addr(&net.solver), &meds, now, nonce);
    let job = net.jc.sign_job_offer(&job).unwrap();
    let res = net.rp.sign_resource_offer(&res).unwrap();
    let controller = net.devnet.config().contracts.controller;
    let mut who = vec![addr(&net.jc), addr(&net.rp), controller];
    who.extend(meds.iter().copied());
    let before = balances(&net.admin, &who).await;

    let created = net.solver.create_deal(&job, &res).await.unwrap();
    let id = created.deal.id;
    assert_eq!(created.deal.job_offer_id, job.id);
    assert_eq!(created.mediators, meds.iter().copied().collect::<Vec<_>>());
    let terms = created.deal.terms.clone();
    assert_eq!(terms.price, U256::from(30u64), "the module price of the resource offer");
    assert_eq!(
        net.admin.escrow_of(id).await.unwrap(),
        terms.payment_collateral + terms.timeout_collateral
    );

    let mut drawn = None;
    let finished: FinishedDeal = if outcome == Outcome::NoResultsInTime {
        increase_time(net.devnet.client(), job.offer.timeout_secs + 1).await.unwrap();
        net.solver.claim_timeout(id).await.unwrap()
    } else if outcome.failure_reported() {
        net.rp.report_failure(id, JobFailure::InputsRejected, "undeclared file x").await.unwrap();
        let deal = net.admin.deal(id).await.unwrap().unwrap();
        assert_eq!(deal.status, DealStatus::FailureReported);
        if outcome == Outcome::FailureAccepted {
            net.jc.accept_failure(id).await.unwrap()
        } else {
            let ch = net.jc.challenge_failure(id, &created.mediators).await.unwrap();
            assert_eq!(ch.mediation_fee, terms.mediation_fee);
            mediate_or_redraw(net, id, &created.mediators, outcome, &terms, &mut drawn).await
        }
    } else {
        let submitted = net.rp.submit_results(id, &results_cid()).await.unwrap();
        assert_eq!(submitted.results, lilypad_core::state::results_digest(&results_cid()));
        assert_eq!(submitted.results_collateral, terms.results_collateral);
        match outcome {
            Outcome::Accepted => net.jc.accept_results(id).await.unwrap(),
            Outcome::NoJudgementInTime => {
                increase_time(net.devnet.client(), terms.judge_window_secs + 1).await.unwrap();
                net.admin.claim_timeout(id).await.unwrap()
            }
            _ => {
                let ch = net.jc.challenge_results(id, &created.mediators).await.unwrap();
                assert_eq!(ch.mediation_fee, terms.mediation_fee);
                let deal = net.admin.deal(id).await.unwrap().unwrap();
                assert_eq!(deal.status, DealStatus::ResultsChallenged);
                assert_eq!(deal.mediator, None, "nobody knows the mediator in the challenge block");
                mediate_or_redraw(net, id, &created.mediators, outcome, &terms, &mut drawn).await
            }
        }
    };
    assert_eq!(finished.outcome, outcome);
    assert_eq!(finished.deal_id, id);

    let s = settle(&terms, outcome).unwrap();
    let after = balances(&net.admin, &who).await;
    // Each party: what it holds now plus what it paid in equals what it had plus what it got.
    assert_eq!(
        after[0] + paid_by(&s, Party::JobCreator),
        before[0] + s.total_to(Party::JobCreator),
        "job creator, {outcome}"
    );
    assert_eq!(
        after[1] + paid_by(&s, Party::ResourceProvider),
        before[1] + s.total_to(Party::ResourceProvider),
        "provider, {outcome}"
    );
    assert_eq!(after[2], before[2], "the controller holds nothing after {outcome}");
    for (i, m) in meds.iter().enumerate() {
        let expected = if Some(*m) == drawn { s.total_to(Party::Mediator) } else { U256::ZERO };
        assert_eq!(after[3 + i], before[3 + i] + expected, "mediator {m}, {outcome}");
    }
    // The event pays the rows due at settlement (the timeout collateral went back at submission).
    let due = |p: Party| {
        s.due_at_settlement().filter(|r| r.to == p).fold(U256::ZERO, |a, r| a + r.amount)
    };
    assert_eq!(finished.to_job_creator, due(Party::JobCreator));
    assert_eq!(finished.to_provider, due(Party::ResourceProvider));
    assert_eq!(finished.to_mediator, due(Party::Mediator));
    // The contract's whole-deal table agrees too.
    let table = net.admin.settlement_table(outcome, &terms).await.unwrap();
    assert_eq!(table.to_job_creator, s.total_to(Party::JobCreator));
    assert_eq!(table.to_provider, s.total_to(Party::ResourceProvider));
    assert_eq!(table.to_mediator, s.total_to(Party::Mediator));
    let deal = net.admin.deal(id).await.unwrap().unwrap();
    assert_eq!(deal.status, DealStatus::Finished(outcome));
    assert_eq!(net.admin.escrow_of(id).await.unwrap(), U256::ZERO);
}

/// Fixes the draw, then lets the drawn mediator decide, or (no mediation) lets every
/// drawn mediator stay silent until the redraws run out.
async fn mediate_or_redraw(
    net: &Net,
    id: lilypad_core::B256,
    mediators: &[Address],
    outcome: Outcome,
    terms: &lilypad_core::deal::DealTerms,
    drawn: &mut Option<Address>,
) -> FinishedDeal {
    let pending = net.admin.pending_mediator(id, mediators).await.unwrap();
    let Draw::Drawn { mediator: m, round: 0 } =
        net.admin.draw_mediator(id, mediators).await.unwrap()
    else {
        panic!("the first draw is round 0")
    };
    assert_eq!(pending, Some(m), "pendingMediator foretells the draw");
    assert!(mediators.contains(&m));
    assert_eq!(net.admin.deal(id).await.unwrap().unwrap().mediator, Some(m));
    let mediator = net.mediators.iter().find(|c| addr(c) == m).unwrap();
    match outcome {
        Outcome::MediationAccepted | Outcome::FailureUpheld => {
            *drawn = Some(m);
            mediator.mediate(id, true).await.unwrap()
        }
        Outcome::MediationRejected | Outcome::FailureRefuted => {
            *drawn = Some(m);
            mediator.mediate(id, false).await.unwrap()
        }
        _ => {
            let mut tried = BTreeSet::from([m]);
            loop {
                increase_time(net.devnet.client(), terms.mediate_window_secs + 1).await.unwrap();
                // Too early for a plain timeout while untried mediators are left.
                if tried.len() < mediators.len() {
                    assert!(net.rp.claim_timeout(id).await.is_err());
                }
                match net.rp.redraw_mediator(id, mediators).await.unwrap() {
                    Redraw::Finished(f) => {
                        assert_eq!(tried.len(), mediators.len(), "every mediator was tried");
                        return f;
                    }
                    Redraw::Next { .. } => {
                        let Draw::Drawn { mediator: next, .. } =
                            net.admin.draw_mediator(id, mediators).await.unwrap()
                        else {
                            panic!("the redraw's draw re-armed")
                        };
                        assert!(tried.insert(next), "mediator {next} drawn twice");
                    }
                }
            }
        }
    }
}

async fn approved_net() -> Net {
    let net = start().await;
    net.jc.approve_controller(U256::MAX).await.unwrap();
    net.rp.approve_controller(U256::MAX).await.unwrap();
    net
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted() {
    drive(&approved_net().await, Outcome::Accepted, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_results_in_time() {
    drive(&approved_net().await, Outcome::NoResultsInTime, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_judgement_in_time() {
    drive(&approved_net().await, Outcome::NoJudgementInTime, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediation_accepts() {
    drive(&approved_net().await, Outcome::MediationAccepted, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediation_rejects() {
    drive(&approved_net().await, Outcome::MediationRejected, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mediation_in_time() {
    drive(&approved_net().await, Outcome::NoMediationInTime, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_accepted() {
    drive(&approved_net().await, Outcome::FailureAccepted, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_upheld() {
    drive(&approved_net().await, Outcome::FailureUpheld, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_refuted() {
    drive(&approved_net().await, Outcome::FailureRefuted, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_not_mediated_in_time() {
    drive(&approved_net().await, Outcome::FailureNoMediationInTime, 1).await;
}

/// Every outcome one after another on one devnet (nonces differ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_on_one_network() {
    let net = approved_net().await;
    for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
        drive(&net, outcome, 100 + i as u64).await;
    }
}
