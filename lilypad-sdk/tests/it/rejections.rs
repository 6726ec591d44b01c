//! Deals and transitions the contracts refuse, each with a readable decoded error.

use std::collections::BTreeSet;

use lilypad_core::{Address, U256, offer::ModulePolicy};
use lilypad_sdk::chain::{ChainError, ModuleStatus, Revert};

use crate::common::{Net, addr, job_offer, module, resource_offer, start};

fn meds(net: &Net) -> BTreeSet<Address> {
    net.mediators.iter().map(addr).collect()
}

async fn approved() -> Net {
    let net = start().await;
    net.jc.approve_controller(U256::MAX).await.unwrap();
    net.rp.approve_controller(U256::MAX).await.unwrap();
    net
}

fn reverted(e: ChainError) -> (String, Revert) {
    let text = e.to_string();
    match e {
        ChainError::Reverted { revert, .. } => (text, revert),
        other => panic!("expected a revert, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_offer_is_rejected() {
    let net = approved().await;
    let now = net.admin.latest_timestamp().await.unwrap();
    let (jc, rp, solver) = (addr(&net.jc), addr(&net.rp), addr(&net.solver));
    let job = net.jc.sign_job_offer(&job_offer(jc, solver, &meds(&net), now, 5)).unwrap();
    let res = net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 9)).unwrap();
    let created = net.solver.create_deal(&job, &res).await.unwrap();

    // The same pair again: the deal exists.
    let (text, _) = reverted(net.solver.create_deal(&job, &res).await.unwrap_err());
    assert_eq!(
        text,
        format!(
            "createDeal reverted: DealExists(deal {}): these two offers already made a deal",
            created.deal.id
        )
    );
    // The job offer with a fresh resource offer: its nonce is spent.
    let res2 =
        net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 10)).unwrap();
    let (text, revert) = reverted(net.solver.create_deal(&job, &res2).await.unwrap_err());
    assert_eq!(revert.name(), "NonceUsed");
    assert_eq!(
        text,
        format!(
            "createDeal reverted: NonceUsed(signer {jc}, nonce 5): this offer was already used \
             (or its nonce invalidated); sign a new offer with a fresh nonce"
        )
    );
    assert!(net.admin.is_nonce_used(jc, U256::from(5u64)).await.unwrap());
    assert!(!net.admin.is_nonce_used(jc, U256::from(6u64)).await.unwrap());
    // Rejected simulations took no nonce from the solver: its next deal goes through.
    let job2 = net.jc.sign_job_offer(&job_offer(jc, solver, &meds(&net), now, 6)).unwrap();
    net.solver.create_deal(&job2, &res2).await.unwrap();
    // A signer can void its own outstanding offers.
    net.jc.invalidate_nonces(U256::ZERO, U256::from(1u64 << 7)).await.unwrap();
    let job3 = net.jc.sign_job_offer(&job_offer(jc, solver, &meds(&net), now, 7)).unwrap();
    let res3 =
        net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 11)).unwrap();
    let (_, revert) = reverted(net.solver.create_deal(&job3, &res3).await.unwrap_err());
    assert_eq!(revert.name(), "NonceUsed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_solver_is_rejected() {
    let net = approved().await;
    let now = net.admin.latest_timestamp().await.unwrap();
    let (jc, rp, solver) = (addr(&net.jc), addr(&net.rp), addr(&net.solver));
    let job = net.jc.sign_job_offer(&job_offer(jc, solver, &meds(&net), now, 1)).unwrap();
    let res = net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 1)).unwrap();
    // The job creator tries to create the deal itself.
    let (text, revert) = reverted(net.jc.create_deal(&job, &res).await.unwrap_err());
    assert_eq!(revert.name(), "NotSolver");
    assert_eq!(
        text,
        format!(
            "createDeal reverted: NotSolver(job solver {solver}, resource solver {solver}, caller {jc}): \
             only the solver both offers name may create the deal"
        )
    );
    // Nothing happened: the named solver still can.
    net.solver.create_deal(&job, &res).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_offer_is_rejected() {
    let net = approved().await;
    let now = net.admin.latest_timestamp().await.unwrap();
    let (jc, rp, solver) = (addr(&net.jc), addr(&net.rp), addr(&net.solver));
    let mut job = job_offer(jc, solver, &meds(&net), now, 1);
    job.expiry = now; // valid while now < expiry: the next block is at or after `now`
    let job = net.jc.sign_job_offer(&job).unwrap();
    let res = net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 1)).unwrap();
    let (text, revert) = reverted(net.solver.create_deal(&job, &res).await.unwrap_err());
    assert_eq!(revert.name(), "OfferExpired");
    let prefix = format!("createDeal reverted: OfferExpired(signer {jc}, expiry {now}, now ");
    assert!(text.starts_with(&prefix), "{text}");
    assert!(
        text.ends_with("): the offer has expired; sign a new one with a later expiry"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_module_is_rejected() {
    let net = approved().await;
    let now = net.admin.latest_timestamp().await.unwrap();
    let (jc, rp, solver) = (addr(&net.jc), addr(&net.rp), addr(&net.solver));
    net.admin.set_module_status(&[module(7)], ModuleStatus::Blocked).await.unwrap();
    assert_eq!(net.admin.module_status(module(7)).await.unwrap(), ModuleStatus::Blocked);
    assert!(!net.admin.is_module_allowed(module(7)).await.unwrap());
    let job = net.jc.sign_job_offer(&job_offer(jc, solver, &meds(&net), now, 1)).unwrap();
    let res = net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 1)).unwrap();
    let (text, _) = reverted(net.solver.create_deal(&job, &res).await.unwrap_err());
    assert_eq!(
        text,
        format!(
            "createDeal reverted: ModuleNotAllowed(module {}): the network's module registry does not \
             allow this module (blocked, or not on the allowlist)",
            module(7)
        )
    );
    // Only the registry owner may change the lists.
    let (text, _) =
        reverted(net.jc.set_module_status(&[module(7)], ModuleStatus::Allowed).await.unwrap_err());
    assert!(text.starts_with("setStatus reverted: OwnableUnauthorizedAccount("), "{text}");
    // A resource offer limited to other modules refuses it too.
    net.admin.set_module_status(&[module(7)], ModuleStatus::Unlisted).await.unwrap();
    let mut only = resource_offer(rp, solver, &meds(&net), now, 2);
    only.modules = ModulePolicy::Only([module(6)].into());
    let only = net.rp.sign_resource_offer(&only).unwrap();
    let (_, revert) = reverted(net.solver.create_deal(&job, &only).await.unwrap_err());
    assert_eq!(revert.name(), "ModuleNotOffered");
    net.solver
        .create_deal(
            &job,
            &net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 3)).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_and_allowances_are_explained() {
    let net = start().await;
    let now = net.admin.latest_timestamp().await.unwrap();
    let (jc, rp, solver) = (addr(&net.jc), addr(&net.rp), addr(&net.solver));
    let job = net.jc.sign_job_offer(&job_offer(jc, solver, &meds(&net), now, 1)).unwrap();
    let res = net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds(&net), now, 1)).unwrap();
    // No approval yet: the token's error comes through the controller.
    let (text, revert) = reverted(net.solver.create_deal(&job, &res).await.unwrap_err());
    assert!(matches!(revert, Revert::Token(_)), "{revert:?}");
    assert!(text.contains("ERC20InsufficientAllowance(spender "), "{text}");
    assert!(text.ends_with("approve the controller first or pass an EIP-2612 permit"), "{text}");
    net.jc.approve_controller(U256::MAX).await.unwrap();
    net.rp.approve_controller(U256::MAX).await.unwrap();
    let id = net.solver.create_deal(&job, &res).await.unwrap().deal.id;
    // The job creator cannot submit results.
    let cid = crate::outcomes::results_cid();
    let (text, _) = reverted(net.jc.submit_results(id, &cid).await.unwrap_err());
    assert_eq!(
        text,
        format!(
            "submitResults reverted: WrongSender(role the resource provider, expected {rp}, got {jc}): \
             only the resource provider may do this"
        )
    );
    // Accepting before results makes no sense.
    let (text, _) = reverted(net.jc.accept_results(id).await.unwrap_err());
    assert!(
        text.starts_with(&format!(
            "acceptResults reverted: NotAllowed(deal {id}, state Agreed, action acceptResults)"
        )),
        "{text}"
    );
    // A timeout only after the deadline.
    let (text, _) = reverted(net.solver.claim_timeout(id).await.unwrap_err());
    assert!(text.starts_with("claimTimeout reverted: TooEarly(deadline "), "{text}");
    // Unknown deal.
    let (text, _) = reverted(net.solver.claim_timeout(lilypad_core::B256::ZERO).await.unwrap_err());
    assert!(text.contains("DealNotFound"), "{text}");
    // A read-only client cannot send.
    let e = net.devnet.client().accept_results(id).await.unwrap_err();
    assert!(matches!(e, ChainError::NoSigner { call: "acceptResults" }), "{e}");
}
