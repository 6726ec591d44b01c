//! EIP-712: the Rust ids of offers equal the controller's, signatures made in Rust are
//! accepted, permits work, and foreign or tampered signatures are refused.

use std::collections::BTreeSet;

use lilypad_core::{
    Address, B256, U256,
    deal::deal_id,
    offer::{JobOffer, ModulePolicy, ResourceOffer},
    spec::{Gpu, JobRequirements, MachineSpec},
};
use lilypad_sdk::chain::{ChainError, Permit, sign_job_offer};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::common::{addr, balances, job_offer, resource_offer, start};

fn rand_u256(rng: &mut StdRng) -> U256 {
    match rng.random_range(0..4) {
        0 => U256::ZERO,
        1 => U256::MAX,
        _ => U256::from_limbs(rng.random()),
    }
}

fn rand_addrs(rng: &mut StdRng, max: usize) -> BTreeSet<Address> {
    (0..rng.random_range(0..=max)).map(|_| Address::from(rng.random::<[u8; 20]>())).collect()
}

fn rand_string(rng: &mut StdRng) -> String {
    let pool = ["", "NVIDIA", "AMD", "RTX 4090", "MI300X", "Ünïcødé ✓", "a\"b\\c"];
    pool[rng.random_range(0..pool.len())].to_owned()
}

fn rand_job(rng: &mut StdRng) -> JobOffer {
    JobOffer {
        creator: Address::from(rng.random::<[u8; 20]>()),
        module_id: B256::from(rng.random::<[u8; 32]>()),
        inputs_hash: B256::from(rng.random::<[u8; 32]>()),
        requirements: JobRequirements {
            cpu_millicores: rng.random(),
            ram_mib: rng.random(),
            disk_mib: rng.random(),
            gpu_count: rng.random(),
            gpu_vram_mib: rng.random(),
        },
        max_price: rand_u256(rng),
        payment_collateral: rand_u256(rng),
        timeout_secs: rng.random(),
        bounds: lilypad_core::offer::CreatorBounds {
            max_mediation_fee: rand_u256(rng),
            min_judge_window_secs: rng.random(),
        },
        mediators: rand_addrs(rng, 4),
        solver: Address::from(rng.random::<[u8; 20]>()),
        target: rng.random_bool(0.5).then(|| Address::from(rng.random::<[u8; 20]>())),
        expiry: rng.random(),
        nonce: rand_u256(rng),
    }
}

fn rand_resource(rng: &mut StdRng) -> ResourceOffer {
    let gpus = (0..rng.random_range(0..4))
        .map(|_| Gpu { vendor: rand_string(rng), model: rand_string(rng), vram_mib: rng.random() })
        .collect();
    let modules = if rng.random_bool(0.3) {
        ModulePolicy::Any
    } else {
        ModulePolicy::Only(
            (0..rng.random_range(1..4)).map(|_| B256::from(rng.random::<[u8; 32]>())).collect(),
        )
    };
    ResourceOffer {
        provider: Address::from(rng.random::<[u8; 20]>()),
        payout: if rng.random_bool(0.5) {
            Address::from(rng.random::<[u8; 20]>())
        } else {
            Address::ZERO
        },
        spec: MachineSpec {
            cpu_millicores: rng.random(),
            ram_mib: rng.random(),
            disk_mib: rng.random(),
            gpus,
        },
        modules,
        default_price: rand_u256(rng),
        module_prices: (0..rng.random_range(0..3))
            .map(|_| (B256::from(rng.random::<[u8; 32]>()), rand_u256(rng)))
            .collect(),
        timeout_collateral: rand_u256(rng),
        bounds: lilypad_core::offer::ProviderBounds {
            min_timeout_secs: rng.random(),
            max_results_multiple: rng.random(),
            max_judge_window_secs: rng.random(),
            min_mediate_window_secs: rng.random(),
        },
        mediators: rand_addrs(rng, 4),
        solver: Address::from(rng.random::<[u8; 20]>()),
        expiry: rng.random(),
        nonce: rand_u256(rng),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_ids_equal_the_controllers_hashes() {
    let net = start().await;
    let c = net.devnet.client();
    let domain = c.domain();
    assert_eq!(c.domain_separator().await.unwrap(), domain.separator());
    let mut rng = StdRng::seed_from_u64(712);
    for _ in 0..60 {
        let job = rand_job(&mut rng);
        let res = rand_resource(&mut rng);
        let (job_id, res_id) = (job.id(&domain), res.id(&domain));
        assert_eq!(c.job_offer_hash(&job).await.unwrap(), job_id, "{job:?}");
        assert_eq!(c.resource_offer_hash(&res).await.unwrap(), res_id, "{res:?}");
        assert_eq!(c.deal_id_of(job_id, res_id).await.unwrap(), deal_id(job_id, res_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_replace_approvals_and_bad_signatures_are_refused() {
    let net = start().await;
    let now = net.admin.latest_timestamp().await.unwrap();
    let meds: BTreeSet<Address> = net.mediators.iter().map(addr).collect();
    let (jc, rp, solver) = (addr(&net.jc), addr(&net.rp), addr(&net.solver));
    let controller = net.devnet.config().contracts.controller;

    // A key that is not the offer's creator cannot sign it.
    let e = net.rp.sign_job_offer(&job_offer(jc, solver, &meds, now, 1)).unwrap_err();
    assert!(matches!(e, ChainError::WrongSigner { what: "job offer", .. }), "{e}");

    // Signed under another chain's domain: refused by the contract.
    let foreign = lilypad_core::eip712::domain(1, controller);
    let signer = net.jc.signer().unwrap();
    let job = sign_job_offer(signer, &job_offer(jc, solver, &meds, now, 1), &foreign).unwrap();
    let res = net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds, now, 1)).unwrap();
    let e = net.solver.create_deal(&job, &res).await.unwrap_err().to_string();
    assert!(e.starts_with(&format!("createDeal reverted: InvalidSignature(signer {jc})")), "{e}");

    // A tampered signature: refused.
    let mut job = net.jc.sign_job_offer(&job_offer(jc, solver, &meds, now, 2)).unwrap();
    let mut sig = job.signature.to_vec();
    sig[10] ^= 1;
    job.signature = sig.into();
    let e = net.solver.create_deal(&job, &res).await.unwrap_err().to_string();
    assert!(e.contains("InvalidSignature"), "{e}");

    // No approvals: EIP-2612 permits signed in Rust let the controller pull the collateral.
    assert_eq!(net.admin.allowance(jc, controller).await.unwrap(), U256::ZERO);
    let job = net.jc.sign_job_offer(&job_offer(jc, solver, &meds, now, 3)).unwrap();
    let before = balances(&net.admin, &[jc, rp, controller]).await;
    let jc_permit = net.jc.sign_controller_permit(U256::from(110u64), now + 600).await.unwrap();
    let rp_permit = net.rp.sign_controller_permit(U256::from(100u64), now + 600).await.unwrap();
    let created =
        net.solver.create_deal_with_permits(&job, &res, &jc_permit, &rp_permit).await.unwrap();
    let t = &created.deal.terms;
    let after = balances(&net.admin, &[jc, rp, controller]).await;
    assert_eq!(after[0] + t.payment_collateral, before[0]);
    assert_eq!(after[1] + t.timeout_collateral, before[1]);
    assert_eq!(after[2], before[2] + t.payment_collateral + t.timeout_collateral);
    assert_eq!(
        net.admin.allowance(jc, controller).await.unwrap(),
        U256::from(110u64) - t.payment_collateral
    );
    assert_eq!(net.admin.permit_nonce(jc).await.unwrap(), U256::from(1u64));
    // The provider's permit also covers its results collateral at submission.
    net.rp.submit_results(created.deal.id, &crate::outcomes::results_cid()).await.unwrap();
    // A permit already used (front-run or replayed) is ignored; without allowance the
    // transfer then fails with the token's error.
    let job = net.jc.sign_job_offer(&job_offer(jc, solver, &meds, now, 4)).unwrap();
    let res = net.rp.sign_resource_offer(&resource_offer(rp, solver, &meds, now, 4)).unwrap();
    let e = net
        .solver
        .create_deal_with_permits(&job, &res, &jc_permit, &Permit::NONE)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ERC20InsufficientAllowance"), "{e}");
}
