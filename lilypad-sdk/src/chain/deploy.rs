//! Deploying a network: every Lilypad contract, wired, on any EVM chain.
//!
//! [`deploy_network`] deploys the token, the module registry, the users registry, the
//! controller, the proof-of-work contract and the job manager from the client's account
//! (which owns them all, is the token's admin and minter and the job manager's admin),
//! grants the job manager's bridge role, and starts the first proof-of-work round.
//! [`verify_deployed`] checks a network's addresses hold those contracts. A devnet
//! ([`crate::devnet`]) and `lilypad-cli deploy` both deploy through here.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    rpc::types::TransactionReceipt,
};
use lilypad_core::deal::NetworkParams;

use super::{
    ChainClient, ChainError, ContractAddresses,
    bindings::{
        controller::LilypadController, job_manager::LilypadJobManager,
        modules::LilypadModuleRegistry, pow::LilypadPow, token::LilypadToken, users::LilypadUsers,
    },
    config::ConfigError,
    error::{Result, Target},
    roles,
};

/// The job manager's default job timeout: one day from a request to the last second the
/// bridge may fulfill (the contract allows 5 minutes to 30 days).
pub const JOB_TIMEOUT_SECS: u64 = 24 * 60 * 60;

/// The job manager's bounds on its job timeout (`MIN_JOB_TIMEOUT`, `MAX_JOB_TIMEOUT`).
pub const JOB_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 300..=30 * 24 * 60 * 60;

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Network parameters of the controller (windows, collateral multiple, fees).
    pub params: NetworkParams,
    /// The job manager's job timeout in seconds ([`JOB_TIMEOUT_RANGE`]).
    pub job_timeout_secs: u64,
    /// The account granted the job manager's bridge role; `None`: the deployer.
    pub bridge: Option<Address>,
    /// The first proof-of-work round's target (a proof is a hash below it).
    pub pow_target: U256,
}

impl Default for DeployOptions {
    /// Default network parameters, a one-day job timeout, the deployer as the bridge, and
    /// a first round expecting 65,536 hashes per proof.
    fn default() -> Self {
        Self {
            params: NetworkParams::default(),
            job_timeout_secs: JOB_TIMEOUT_SECS,
            bridge: None,
            pow_target: pow_target_for(65_536.0),
        }
    }
}

/// The proof-of-work target at which a proof takes `expected_hashes` tries on average.
pub fn pow_target_for(expected_hashes: f64) -> U256 {
    lilypad_core::pow::target_for(expected_hashes.max(1.0)).unwrap_or(U256::MAX)
}

/// A deployed network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// Where the contracts are.
    pub contracts: ContractAddresses,
    /// The block of the first deployment (the network file's `deployed_at_block`).
    pub deployed_at_block: u64,
    /// The deployer: owner and admin of every contract.
    pub deployer: Address,
    /// The account with the job manager's bridge role.
    pub bridge: Address,
}

/// Checks `opts` before anything is sent; `network` names the network in errors.
pub fn check_options(network: &str, opts: &DeployOptions) -> Result<()> {
    controller_params(network, &opts.params)?;
    check_job_timeout(network, opts.job_timeout_secs)?;
    if opts.pow_target.is_zero() {
        return Err(invalid(network, "pow_target", "0".into(), "must be positive").into());
    }
    Ok(())
}

/// Deploys and wires every contract from `client`'s account (see the module docs);
/// `progress` hears each step. The client needs a signer and ETH for gas; its network's
/// contracts are ignored (connect with [`ChainClient::connect_to_deploy`]).
pub async fn deploy_network(
    client: &ChainClient,
    opts: &DeployOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Deployment> {
    let network = client.config().name.clone();
    check_options(&network, opts)?;
    let params = controller_params(&network, &opts.params)?;
    let owner = client.require_signer("deploy")?.address();
    let bridge = opts.bridge.unwrap_or(owner);
    let p = client.provider();
    let created = |what: &'static str, r: &TransactionReceipt| {
        r.contract_address.ok_or(ChainError::MissingEvent {
            call: what,
            event: "contract creation",
            tx: r.transaction_hash,
        })
    };

    progress("deploying LilypadToken");
    let what = "deploy LilypadToken";
    let receipt = client.send(what, Target::Token, LilypadToken::deploy_builder(p, owner)).await?;
    let token = created(what, &receipt)?;
    let deployed_at_block = receipt.block_number.unwrap_or_default();
    progress(&format!("LilypadToken at {token} (block {deployed_at_block})"));

    progress("deploying LilypadModuleRegistry");
    let what = "deploy LilypadModuleRegistry";
    let builder = LilypadModuleRegistry::deploy_builder(p, owner);
    let modules = created(what, &client.send(what, Target::Modules, builder).await?)?;
    progress(&format!("LilypadModuleRegistry at {modules}"));

    progress("deploying LilypadUsers");
    let what = "deploy LilypadUsers";
    let users =
        created(what, &client.send(what, Target::Users, LilypadUsers::deploy_builder(p)).await?)?;
    progress(&format!("LilypadUsers at {users}"));

    progress("deploying LilypadController");
    let what = "deploy LilypadController";
    let builder = LilypadController::deploy_builder(p, token, modules, owner, params);
    let controller = created(what, &client.send(what, Target::Controller, builder).await?)?;
    progress(&format!("LilypadController at {controller}"));

    progress("deploying LilypadPow");
    let what = "deploy LilypadPow";
    let pow = created(
        what,
        &client.send(what, Target::Pow, LilypadPow::deploy_builder(p, owner)).await?,
    )?;
    progress(&format!("LilypadPow at {pow}"));

    progress(&format!("deploying LilypadJobManager (bridge role: {bridge})"));
    let what = "deploy LilypadJobManager";
    let builder = LilypadJobManager::deploy_builder(
        p,
        token,
        owner,
        bridge,
        U256::from(opts.job_timeout_secs),
    );
    let job_manager = created(what, &client.send(what, Target::JobManager, builder).await?)?;
    progress(&format!("LilypadJobManager at {job_manager}"));

    let contracts = ContractAddresses {
        token,
        modules,
        users,
        controller,
        pow,
        job_manager: Some(job_manager),
    };
    progress("starting the first proof-of-work round");
    client.with_contracts(contracts).start_pow_round(opts.pow_target).await?;
    Ok(Deployment { contracts, deployed_at_block, deployer: owner, bridge })
}

/// Checks every address of `contracts` holds its contract: code is there; the runtime
/// code is the artifact's where the contract has no immutables (module registry, users,
/// proof of work), and as long as the artifact's elsewhere (immutables keep the length);
/// and a view call of each answers (the controller's EIP-712 domain separator is the one
/// this client computes for the network).
pub async fn verify_deployed(client: &ChainClient, contracts: &ContractAddresses) -> Result<()> {
    let mut expected: Vec<(&'static str, Address, &Bytes, bool)> = vec![
        ("token", contracts.token, &LilypadToken::DEPLOYED_BYTECODE, false),
        ("modules", contracts.modules, &LilypadModuleRegistry::DEPLOYED_BYTECODE, true),
        ("users", contracts.users, &LilypadUsers::DEPLOYED_BYTECODE, true),
        ("controller", contracts.controller, &LilypadController::DEPLOYED_BYTECODE, false),
        ("pow", contracts.pow, &LilypadPow::DEPLOYED_BYTECODE, true),
    ];
    if let Some(jm) = contracts.job_manager {
        expected.push(("job_manager", jm, &LilypadJobManager::DEPLOYED_BYTECODE, false));
    }
    for (contract, address, artifact, exact) in expected {
        let code = client.code_at(address).await?;
        let problem = if code.is_empty() {
            Some("no contract code at this address (wrong address, or wrong chain?)".to_owned())
        } else if exact && code != *artifact {
            Some("its code is not this SDK's version of the contract".to_owned())
        } else if !exact && code.len() != artifact.len() {
            Some(format!(
                "its code ({} bytes) is not this SDK's version of the contract ({} bytes)",
                code.len(),
                artifact.len()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ChainError::NotDeployed { contract, address, problem });
        }
    }
    let c = client.with_contracts(*contracts);
    let view_failed = |contract: &'static str, address: Address| {
        move |e: ChainError| ChainError::NotDeployed {
            contract,
            address,
            problem: format!("a view call fails: {e}"),
        }
    };
    c.token_supply().await.map_err(view_failed("token", contracts.token))?;
    c.allowlist_only().await.map_err(view_failed("modules", contracts.modules))?;
    c.member_count(roles::SOLVER).await.map_err(view_failed("users", contracts.users))?;
    c.pow_round().await.map_err(view_failed("pow", contracts.pow))?;
    let separator =
        c.domain_separator().await.map_err(view_failed("controller", contracts.controller))?;
    let ours: B256 = c.domain().separator();
    if separator != ours {
        return Err(ChainError::NotDeployed {
            contract: "controller",
            address: contracts.controller,
            problem: format!(
                "its EIP-712 domain separator {separator} is not this chain's and address's ({ours})"
            ),
        });
    }
    if let Some(jm) = contracts.job_manager {
        c.job_timeout().await.map_err(view_failed("job_manager", jm))?;
    }
    Ok(())
}

fn invalid(network: &str, field: &'static str, value: String, reason: &'static str) -> ConfigError {
    ConfigError::Invalid { network: network.to_owned(), field, value, reason }
}

/// The controller's constructor parameters, refusing values its fields cannot hold.
pub(crate) fn controller_params(
    network: &str,
    p: &NetworkParams,
) -> Result<LilypadController::NetworkParams, ConfigError> {
    let window = |field, v: u64| {
        u32::try_from(v)
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| invalid(network, field, v.to_string(), "must be 1 to 2^32 - 1 seconds"))
    };
    Ok(LilypadController::NetworkParams {
        resultsCollateralMultiple: p.results_collateral_multiple,
        judgeWindowSecs: window("params.judge_window_secs", p.judge_window_secs)?,
        mediateWindowSecs: window("params.mediate_window_secs", p.mediate_window_secs)?,
        mediationFee: u128::try_from(p.mediation_fee).map_err(|_| {
            invalid(
                network,
                "params.mediation_fee",
                p.mediation_fee.to_string(),
                "must be below 2^128",
            )
        })?,
        minJobTimeoutSecs: match p.min_job_timeout_secs {
            0 => {
                return Err(invalid(
                    network,
                    "params.min_job_timeout_secs",
                    "0".into(),
                    "must be positive",
                ));
            }
            n => n,
        },
    })
}

/// Refuses a job timeout outside [`JOB_TIMEOUT_RANGE`].
pub(crate) fn check_job_timeout(network: &str, secs: u64) -> Result<(), ConfigError> {
    if JOB_TIMEOUT_RANGE.contains(&secs) {
        return Ok(());
    }
    Err(invalid(
        network,
        "job_timeout_secs",
        secs.to_string(),
        "must be 300 to 2592000 seconds (5 minutes to 30 days)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_refused_by_name() {
        let mut p = NetworkParams { judge_window_secs: 0, ..NetworkParams::default() };
        let e = controller_params("n", &p).unwrap_err().to_string();
        assert!(e.contains("params.judge_window_secs") && e.contains("(got 0)"), "{e}");
        p.judge_window_secs = 1;
        p.mediation_fee = U256::MAX;
        let e = controller_params("n", &p).unwrap_err().to_string();
        assert!(e.contains("params.mediation_fee"), "{e}");
        assert!(controller_params("n", &NetworkParams::default()).is_ok());
        assert!(check_job_timeout("n", JOB_TIMEOUT_SECS).is_ok());
        let e = check_job_timeout("n", 299).unwrap_err().to_string();
        assert!(e.contains("job_timeout_secs") && e.contains("(got 299)"), "{e}");
        let opts = DeployOptions { pow_target: U256::ZERO, ..DeployOptions::default() };
        let e = check_options("n", &opts).unwrap_err().to_string();
        assert!(e.contains("pow_target"), "{e}");
        check_options("n", &DeployOptions::default()).unwrap();
    }
}
