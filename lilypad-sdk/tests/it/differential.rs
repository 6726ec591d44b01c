//! Differential test: hundreds of random deals (amounts, prices, multiples, fees,
//! mediator sets, outcomes) run on anvil; every party's token balance afterwards
//! equals lilypad-core's settlement table.
//!
//! Each deal has its own fresh job creator, provider and mediators, minted exactly
//! what they escrow and paying through EIP-2612 permits, so each balance is that
//! deal's alone. Deals run in groups sharing network parameters; within a group the
//! transactions of a phase (create, submit, judge, mediate, claim) are sent
//! concurrently on the auto-mining anvil.

use std::collections::BTreeSet;

use futures::{StreamExt, stream};
use lilypad_core::{
    Address, B256, U256,
    deal::NetworkParams,
    offer::{CreatorBounds, JobOffer, ModulePolicy, ProviderBounds, ResourceOffer},
    settlement::{Outcome, Party, settle},
    spec::{JobRequirements, MachineSpec},
    state::JobFailure,
};
use lilypad_sdk::{
    chain::{ChainClient, CreatedDeal, Draw, FinishedDeal, Redraw},
    devnet::increase_time,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::common::{Net, addr, fresh_account, paid_by, start};

const GROUPS: usize = 8;
const DEALS_PER_GROUP: usize = 26;
const CONCURRENCY: usize = 16;
const TIMEOUT_SECS: u64 = 3600;

/// An amount: often small, sometimes zero, sometimes huge (up to 2^100).
fn amount(rng: &mut StdRng) -> U256 {
    match rng.random_range(0..10) {
        0 => U256::ZERO,
        1 => U256::from(rng.random::<u64>()) << rng.random_range(0..36),
        _ => U256::from(rng.random_range(1..10_000u64)),
    }
}

struct Plan {
    outcome: Outcome,
    jc: ChainClient,
    rp: ChainClient,
    mediators: Vec<ChainClient>,
    job: JobOffer,
    resource: ResourceOffer,
    /// What each party was minted: its escrows in this outcome.
    jc_funds: U256,
    rp_funds: U256,
}

struct Running {
    plan: Plan,
    created: CreatedDeal,
    mediator: Option<Address>,
    finished: Option<FinishedDeal>,
}

async fn plan(net: &Net, rng: &mut StdRng, params: &NetworkParams, now: u64) -> Plan {
    let outcome = Outcome::ALL[rng.random_range(0..Outcome::ALL.len())];
    let jc = fresh_account(net, rng).await;
    let rp = fresh_account(net, rng).await;
    let mut mediators = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        mediators.push(fresh_account(net, rng).await);
    }
    let set: BTreeSet<Address> = mediators.iter().map(addr).collect();
    let price = amount(rng);
    let payment = price + amount(rng);
    let timeout = amount(rng);
    let job = JobOffer {
        creator: addr(&jc),
        module_id: B256::from(rng.random::<[u8; 32]>()),
        inputs_hash: B256::from(rng.random::<[u8; 32]>()),
        requirements: JobRequirements { cpu_millicores: 100, ram_mib: 64, ..Default::default() },
        max_price: price + (payment - price) / U256::from(2u64),
        payment_collateral: payment,
        timeout_secs: TIMEOUT_SECS,
        // Exactly the group's terms: the tightest bounds createDeal still accepts.
        bounds: CreatorBounds {
            max_mediation_fee: params.mediation_fee,
            min_judge_window_secs: params.judge_window_secs as u32,
        },
        mediators: set.clone(),
        solver: addr(&net.solver),
        target: rng.random_bool(0.3).then(|| addr(&rp)),
        expiry: now + 10 * TIMEOUT_SECS,
        nonce: U256::from(rng.random::<u64>()),
    };
    let resource = ResourceOffer {
        provider: addr(&rp),
        payout: Default::default(),
        spec: MachineSpec { cpu_millicores: 1000, ram_mib: 1024, disk_mib: 0, gpus: vec![] },
        modules: if rng.random_bool(0.5) {
            ModulePolicy::Any
        } else {
            ModulePolicy::Only([job.module_id, B256::from(rng.random::<[u8; 32]>())].into())
        },
        // The price comes from the module's own entry or from the default.
        default_price: if rng.random_bool(0.5) { price } else { amount(rng) },
        module_prices: [(job.module_id, price)].into(),
        timeout_collateral: timeout,
        bounds: ProviderBounds {
            min_timeout_secs: TIMEOUT_SECS,
            max_results_multiple: params.results_collateral_multiple,
            max_judge_window_secs: params.judge_window_secs as u32,
            min_mediate_window_secs: params.mediate_window_secs as u32,
        },
        mediators: set,
        solver: addr(&net.solver),
        expiry: now + 10 * TIMEOUT_SECS,
        nonce: U256::from(rng.random::<u64>()),
    };
    let results = price * U256::from(params.results_collateral_multiple);
    let challenged = challenged(outcome);
    let jc_funds = payment + if challenged { params.mediation_fee } else { U256::ZERO };
    let rp_funds = timeout
        + if outcome.results_submitted() { results.saturating_sub(timeout) } else { U256::ZERO };
    Plan { outcome, jc, rp, mediators, job, resource, jc_funds, rp_funds }
}

/// Whether the job creator challenges (results or a failure report) on the way to `outcome`.
fn challenged(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::MediationAccepted
            | Outcome::MediationRejected
            | Outcome::NoMediationInTime
            | Outcome::FailureUpheld
            | Outcome::FailureRefuted
            | Outcome::FailureNoMediationInTime
    )
}

/// Runs `futs` with at most [`CONCURRENCY`] in flight, keeping their order.
async fn all<T>(futs: impl IntoIterator<Item = impl Future<Output = T>>) -> Vec<T> {
    stream::iter(futs).buffered(CONCURRENCY).collect().await
}

async fn run_group(net: &Net, rng: &mut StdRng, group: usize) -> Vec<Outcome> {
    let params = NetworkParams {
        results_collateral_multiple: rng.random_range(0..=5),
        mediation_fee: if group == 0 { U256::ZERO } else { amount(rng) },
        // Long enough that each phase of a group finishes inside its window in real time.
        judge_window_secs: rng.random_range(600..=TIMEOUT_SECS),
        mediate_window_secs: rng.random_range(600..=TIMEOUT_SECS),
        min_job_timeout_secs: rng.random_range(1..=TIMEOUT_SECS),
    };
    net.admin.set_network_params(&params).await.unwrap();
    let now = net.admin.latest_timestamp().await.unwrap();
    let mut plans = Vec::with_capacity(DEALS_PER_GROUP);
    for _ in 0..DEALS_PER_GROUP {
        plans.push(plan(net, rng, &params, now).await);
    }

    // Mint each party exactly what it will escrow.
    let mints = plans.iter().flat_map(|p| {
        [(addr(&p.jc), p.jc_funds), (addr(&p.rp), p.rp_funds)]
            .into_iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|(to, amount)| net.admin.mint(to, amount))
    });
    for r in all(mints).await {
        r.unwrap();
    }

    // Create every deal through permits (fresh accounts: permit nonce 0, no approvals).
    let deadline = now + 10 * TIMEOUT_SECS;
    let creations = plans.iter().map(|p| async move {
        let job = p.jc.sign_job_offer(&p.job).unwrap();
        let res = p.rp.sign_resource_offer(&p.resource).unwrap();
        let jc_permit = p.jc.sign_controller_permit(p.jc_funds, deadline).await.unwrap();
        let rp_permit = p.rp.sign_controller_permit(p.rp_funds, deadline).await.unwrap();
        net.solver.create_deal_with_permits(&job, &res, &jc_permit, &rp_permit).await
    });
    let created = all(creations).await;
    let mut deals: Vec<Running> = plans
        .into_iter()
        .zip(created)
        .map(|(plan, c)| Running { plan, created: c.unwrap(), mediator: None, finished: None })
        .collect();

    // Results from every provider that delivers.
    let submits = deals.iter().filter(|d| d.plan.outcome.results_submitted()).map(|d| {
        let cid = crate::outcomes::results_cid();
        async move { d.plan.rp.submit_results(d.created.deal.id, &cid).await }
    });
    for r in all(submits).await {
        r.unwrap();
    }
    // Failure reports from every provider that says the job creator made the job impossible.
    let reports = deals.iter().filter(|d| d.plan.outcome.failure_reported()).map(|d| async move {
        d.plan.rp.report_failure(d.created.deal.id, JobFailure::ImageUnavailable, "no image").await
    });
    for r in all(reports).await {
        r.unwrap();
    }

    // Judgements: accept, or challenge (a mediator is drawn from the challenge block's hash).
    let judged = all(deals.iter().map(|d| async move {
        let (id, meds) = (d.created.deal.id, &d.created.mediators);
        let jc = &d.plan.jc;
        match d.plan.outcome {
            Outcome::Accepted => Some(jc.accept_results(id).await.unwrap()),
            Outcome::FailureAccepted => Some(jc.accept_failure(id).await.unwrap()),
            Outcome::MediationAccepted
            | Outcome::MediationRejected
            | Outcome::NoMediationInTime => {
                jc.challenge_results(id, meds).await.unwrap();
                None
            }
            Outcome::FailureUpheld
            | Outcome::FailureRefuted
            | Outcome::FailureNoMediationInTime => {
                jc.challenge_failure(id, meds).await.unwrap();
                None
            }
            _ => None,
        }
    }))
    .await;
    for (d, j) in deals.iter_mut().zip(judged) {
        if j.is_some() {
            d.finished = j;
        }
    }

    // The draws, fixed from the next block on by anyone.
    let draws = all(deals.iter().filter(|d| challenged(d.plan.outcome)).map(|d| async move {
        match net.admin.draw_mediator(d.created.deal.id, &d.created.mediators).await.unwrap() {
            Draw::Drawn { mediator, .. } => (d.created.deal.id, mediator),
            other => panic!("a fresh draw re-armed: {other:?}"),
        }
    }))
    .await;
    for (id, m) in draws {
        let d = deals.iter_mut().find(|d| d.created.deal.id == id).unwrap();
        assert!(d.created.mediators.contains(&m), "drawn outside the deal's mediators");
        d.mediator = Some(m);
    }

    // Verdicts of the drawn mediators.
    let verdicts = all(deals.iter().map(|d| async move {
        let accept = match d.plan.outcome {
            Outcome::MediationAccepted | Outcome::FailureUpheld => true,
            Outcome::MediationRejected | Outcome::FailureRefuted => false,
            _ => return None,
        };
        let m = d.plan.mediators.iter().find(|m| Some(addr(m)) == d.mediator).unwrap();
        Some(m.mediate(d.created.deal.id, accept).await.unwrap())
    }))
    .await;
    for (d, v) in deals.iter_mut().zip(verdicts) {
        if v.is_some() {
            d.finished = v;
        }
    }

    // Silent mediators: each is replaced once its window passes, until none is left.
    let max_window = params.mediate_window_secs;
    loop {
        let open: Vec<&Running> = deals
            .iter()
            .filter(|d| {
                d.finished.is_none()
                    && matches!(
                        d.plan.outcome,
                        Outcome::NoMediationInTime | Outcome::FailureNoMediationInTime
                    )
            })
            .collect();
        if open.is_empty() {
            break;
        }
        increase_time(net.devnet.client(), max_window + 1).await.unwrap();
        let redraws = all(open.iter().map(|d| async move {
            let id = d.created.deal.id;
            match net.admin.redraw_mediator(id, &d.created.mediators).await.unwrap() {
                Redraw::Finished(f) => (id, Some(f)),
                Redraw::Next { .. } => (id, None),
            }
        }))
        .await;
        for (id, f) in redraws {
            let d = deals.iter_mut().find(|d| d.created.deal.id == id).unwrap();
            d.finished = f;
        }
    }
    for d in &mut deals {
        // Nobody decided: no mediator is paid.
        if matches!(d.plan.outcome, Outcome::NoMediationInTime | Outcome::FailureNoMediationInTime)
        {
            d.mediator = None;
        }
    }

    // Past every deadline, anyone claims the timeouts.
    increase_time(net.devnet.client(), TIMEOUT_SECS + 1).await.unwrap();
    let claims = all(deals.iter().map(|d| async move {
        match d.finished {
            Some(_) => None,
            None => Some(net.solver.claim_timeout(d.created.deal.id).await.unwrap()),
        }
    }))
    .await;
    for (d, c) in deals.iter_mut().zip(claims) {
        if c.is_some() {
            d.finished = c;
        }
    }

    // Every balance equals the core's table.
    let controller = net.devnet.config().contracts.controller;
    assert_eq!(net.admin.token_balance(controller).await.unwrap(), U256::ZERO, "group {group}");
    let mut outcomes = Vec::new();
    for d in &deals {
        let outcome = d.plan.outcome;
        let terms = &d.created.deal.terms;
        let finished = d.finished.as_ref().unwrap();
        assert_eq!(finished.outcome, outcome);
        let s = settle(terms, outcome).unwrap();
        let ctx = format!("group {group}, {outcome}, terms {terms:?}");
        let jc = net.admin.token_balance(addr(&d.plan.jc)).await.unwrap();
        let rp = net.admin.token_balance(addr(&d.plan.rp)).await.unwrap();
        assert_eq!(
            jc + paid_by(&s, Party::JobCreator),
            d.plan.jc_funds + s.total_to(Party::JobCreator),
            "JC: {ctx}"
        );
        assert_eq!(
            rp + paid_by(&s, Party::ResourceProvider),
            d.plan.rp_funds + s.total_to(Party::ResourceProvider),
            "RP: {ctx}"
        );
        for m in &d.plan.mediators {
            let expected =
                if Some(addr(m)) == d.mediator { s.total_to(Party::Mediator) } else { U256::ZERO };
            assert_eq!(
                net.admin.token_balance(addr(m)).await.unwrap(),
                expected,
                "mediator: {ctx}"
            );
        }
        let due = |p: Party| {
            s.due_at_settlement().filter(|r| r.to == p).fold(U256::ZERO, |a, r| a + r.amount)
        };
        assert_eq!(
            (finished.to_job_creator, finished.to_provider, finished.to_mediator),
            (due(Party::JobCreator), due(Party::ResourceProvider), due(Party::Mediator)),
            "event: {ctx}"
        );
        outcomes.push(outcome);
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_deals_settle_as_the_core_table() {
    let seed: u64 =
        std::env::var("LILYPAD_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_121);
    eprintln!("differential seed {seed} (set LILYPAD_DIFF_SEED to change it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let net = start().await;
    let started = std::time::Instant::now();
    let mut outcomes = Vec::new();
    for group in 0..GROUPS {
        outcomes.extend(run_group(&net, &mut rng, group).await);
    }
    assert!(outcomes.len() >= 200);
    for o in Outcome::ALL {
        let n = outcomes.iter().filter(|x| **x == o).count();
        eprintln!("{o}: {n} deals");
        assert!(n > 0, "no deal ended {o}");
    }
    eprintln!("{} deals in {:.1}s", outcomes.len(), started.elapsed().as_secs_f64());
}
