//! Shared setup: a devnet per test, parties, offers, balance snapshots.

use std::{collections::BTreeSet, time::Duration};

use lilypad_core::{
    Address, B256, U256,
    deal::NetworkParams,
    offer::{JobOffer, ModulePolicy, ResourceOffer},
    settlement::{Party, Settlement},
    spec::{Gpu, JobRequirements, MachineSpec},
};
use lilypad_sdk::{
    chain::{ChainClient, PrivateKeySigner},
    devnet::{self, Devnet, DevnetOptions},
};

/// Network parameters of the test devnets: short windows keep time jumps small.
pub(crate) fn test_params() -> NetworkParams {
    NetworkParams {
        results_collateral_multiple: 2,
        mediation_fee: U256::from(10u64),
        judge_window_secs: 600,
        mediate_window_secs: 900,
        min_job_timeout_secs: 60,
    }
}

/// A devnet with its own anvil in a temporary directory, and the parties.
pub(crate) struct Net {
    pub(crate) devnet: Devnet,
    pub(crate) admin: ChainClient,
    pub(crate) solver: ChainClient,
    pub(crate) jc: ChainClient,
    pub(crate) rp: ChainClient,
    /// Mediators in ascending address order.
    pub(crate) mediators: Vec<ChainClient>,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start_with(params: NetworkParams) -> Net {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = DevnetOptions::new(dir.path());
    opts.params = params;
    opts.startup_timeout = Duration::from_secs(60);
    let devnet = match Devnet::start(&opts, &|_| {}).await {
        Ok(d) => d,
        // A missing anvil fails the test with the message saying how to install it.
        Err(e) => panic!("cannot start a devnet: {e}"),
    };
    let mut mediators: Vec<ChainClient> =
        devnet::MEDIATORS.iter().map(|i| devnet.account(*i)).collect();
    mediators.sort_by_key(|m| m.address());
    Net {
        admin: devnet.account(0),
        solver: devnet.account(devnet::SOLVER),
        jc: devnet.account(devnet::JOB_CREATOR),
        rp: devnet.account(devnet::PROVIDER),
        mediators,
        devnet,
        _dir: dir,
    }
}

pub(crate) async fn start() -> Net {
    start_with(test_params()).await
}

pub(crate) fn addr(c: &ChainClient) -> Address {
    c.address().expect("a client with a key")
}

pub(crate) fn module(n: u8) -> B256 {
    B256::repeat_byte(n)
}

/// A job offer of `jc` for `solver` trusting `mediators`, valid for an hour from `now`.
pub(crate) fn job_offer(
    jc: Address,
    solver: Address,
    mediators: &BTreeSet<Address>,
    now: u64,
    nonce: u64,
) -> JobOffer {
    JobOffer {
        creator: jc,
        module_id: module(7),
        inputs_hash: B256::repeat_byte(8),
        requirements: JobRequirements { cpu_millicores: 1000, ram_mib: 512, ..Default::default() },
        max_price: U256::from(50u64),
        payment_collateral: U256::from(100u64),
        timeout_secs: 300,
        bounds: Default::default(),
        mediators: mediators.clone(),
        solver,
        target: None,
        expiry: now + 3600,
        nonce: U256::from(nonce),
    }
}

/// A resource offer of `rp` matching [`job_offer`] at price 30 (module 7) or 40.
pub(crate) fn resource_offer(
    rp: Address,
    solver: Address,
    mediators: &BTreeSet<Address>,
    now: u64,
    nonce: u64,
) -> ResourceOffer {
    ResourceOffer {
        provider: rp,
        payout: Default::default(),
        spec: MachineSpec {
            cpu_millicores: 4000,
            ram_mib: 8192,
            disk_mib: 10_000,
            gpus: vec![Gpu { vendor: "NVIDIA".into(), model: "RTX 4090".into(), vram_mib: 24_576 }],
        },
        modules: ModulePolicy::Any,
        default_price: U256::from(40u64),
        module_prices: [(module(7), U256::from(30u64))].into(),
        timeout_collateral: U256::from(7u64),
        bounds: Default::default(),
        mediators: mediators.clone(),
        solver,
        expiry: now + 3600,
        nonce: U256::from(nonce),
    }
}

/// Token balances of some accounts at one moment.
pub(crate) async fn balances(client: &ChainClient, who: &[Address]) -> Vec<U256> {
    let mut out = Vec::with_capacity(who.len());
    for a in who {
        out.push(client.token_balance(*a).await.expect("balanceOf"));
    }
    out
}

/// What each party paid into the deal's escrows in `s`'s outcome.
pub(crate) fn paid_by(s: &Settlement, party: Party) -> U256 {
    s.escrows()
        .iter()
        .filter(|(e, _)| e.payer() == party)
        .fold(U256::ZERO, |acc, (_, amount)| acc + *amount)
}

/// A random key for a fresh account, with ETH for gas.
pub(crate) async fn fresh_account(net: &Net, rng: &mut impl rand::Rng) -> ChainClient {
    let mut key = [0u8; 32];
    rng.fill(&mut key);
    key[0] = 1; // never zero, always below the curve order
    let signer = PrivateKeySigner::from_bytes(&B256::from(key)).expect("valid key");
    let client = net.devnet.client().with_signer(signer);
    devnet::set_eth_balance(
        net.devnet.client(),
        addr(&client),
        U256::from(10u64).pow(U256::from(20u64)),
    )
    .await
    .expect("anvil_setBalance");
    client
}
