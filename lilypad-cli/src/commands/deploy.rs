//! `lilypad-cli deploy`: deploys a network's contracts on a real chain (or any EVM node),
//! wires them, checks their code is on chain and writes the network file.
//!
//! The key comes from an encrypted JSON keystore (`--keystore`, the password from a
//! file, `LILYPAD_KEYSTORE_PASSWORD` or a prompt) or, for scripts, `WEB3_PRIVATE_KEY`;
//! never from a flag (it would show in `ps`), and no error ever shows it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use lilypad_sdk::{
    chain::{
        ChainClient, ContractAddresses, DeployOptions, NetworkConfig, PrivateKeySigner,
        deploy_network, verify_deployed,
    },
    core::{Address, U256, deal::NetworkParams},
};
use serde_json::json;

use lilypad_cli_common::wallet;

use crate::amounts;

/// Arguments of `deploy`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Start from this network: a network file or a built-in name (`arbitrum-sepolia`):
    /// its name, chain id, RPC URLs and RPC options (its contracts, if any, are ignored).
    #[arg(long, value_name = "FILE|NAME")]
    network: Option<String>,
    /// The chain's JSON-RPC URL, http(s):// or ws(s):// (repeatable: failover order);
    /// replaces the network's RPC URLs.
    #[arg(long = "rpc-url", value_name = "URL")]
    rpc_urls: Vec<String>,
    /// The network's name in the file [default: the --network's name, else `custom`].
    #[arg(long)]
    name: Option<String>,
    /// The network file to write [default: NAME.toml].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite the network file if it exists.
    #[arg(long)]
    force: bool,
    /// The solver's API URL, written to the network file.
    #[arg(long, value_name = "URL")]
    solver_url: Option<String>,
    /// The results storage URL, written to the network file.
    #[arg(long, value_name = "URL")]
    storage_url: Option<String>,
    /// The account given the job manager's bridge role (it fulfills on-chain jobs)
    /// [default: the deployer].
    #[arg(long, value_name = "ADDR")]
    bridge: Option<Address>,
    /// Mint tokens to an account after deploying (repeatable): ADDR=AMOUNT, the amount in
    /// tokens (`100`, `1.5 LP`) or base units (`100wei`).
    #[arg(long, value_name = "ADDR=AMOUNT")]
    mint: Vec<String>,
    /// The job manager's job timeout in seconds (300 to 2592000).
    #[arg(long, value_name = "SECS", default_value_t = lilypad_sdk::chain::deploy::JOB_TIMEOUT_SECS)]
    job_timeout: u64,
    /// Results collateral as a multiple of the price.
    #[arg(long, value_name = "N", default_value_t = NetworkParams::default().results_collateral_multiple)]
    results_collateral_multiple: u32,
    /// Seconds a job creator has to accept or challenge results.
    #[arg(long, value_name = "SECS", default_value_t = NetworkParams::default().judge_window_secs)]
    judge_window: u64,
    /// Seconds a mediator has to give a verdict.
    #[arg(long, value_name = "SECS", default_value_t = NetworkParams::default().mediate_window_secs)]
    mediate_window: u64,
    /// The fee a challenge pays the mediator, in tokens or base units [default: 0.001].
    #[arg(long, value_name = "AMOUNT", value_parser = amounts::parse)]
    mediation_fee: Option<U256>,
    /// The network's floor on a job's timeout, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = NetworkParams::default().min_job_timeout_secs)]
    min_job_timeout: u64,
    /// Expected hashes per proof in the first proof-of-work round (sets its target).
    #[arg(long, value_name = "N", default_value_t = 65_536.0)]
    pow_expected_hashes: f64,
}

/// Runs `lilypad-cli deploy`.
pub(crate) fn run(args: &DeployArgs) -> anyhow::Result<()> {
    lilypad_cli_common::block_on(deploy(args))
}

fn progress(msg: &str) {
    eprintln!("• {msg}");
}

/// The network to start from: `--network`, `--name`, `--rpc-url`.
fn base_network(args: &DeployArgs) -> anyhow::Result<NetworkConfig> {
    let mut config = match args.network.as_deref() {
        Some(name) if NetworkConfig::is_builtin(name) && !Path::new(name).exists() => {
            NetworkConfig::builtin(name)?
        }
        Some(path) => NetworkConfig::load(Path::new(path))
            .with_context(|| format!("loading the network file {path}"))?,
        // Chain id 0: the node's.
        None => NetworkConfig::undeployed("custom", 0, Vec::new()),
    };
    config.contracts = ContractAddresses::default();
    if !args.rpc_urls.is_empty() {
        config.rpc_urls.clone_from(&args.rpc_urls);
    }
    if config.rpc_urls.is_empty() {
        anyhow::bail!("no RPC URL: pass --rpc-url URL (or --network with a network that has some)");
    }
    if let Some(name) = &args.name {
        config.name.clone_from(name);
    }
    if let Some(url) = &args.solver_url {
        config.solver_url = Some(url.clone());
    }
    if let Some(url) = &args.storage_url {
        config.storage_url = Some(url.clone());
    }
    Ok(config)
}

/// `--mint ADDR=AMOUNT`s, parsed.
fn mints(args: &DeployArgs) -> anyhow::Result<Vec<(Address, U256)>> {
    args.mint
        .iter()
        .map(|m| {
            let (addr, amount) =
                m.split_once('=').with_context(|| format!("--mint {m:?}: expected ADDR=AMOUNT"))?;
            let addr: Address = addr
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("--mint {m:?}: {addr:?} is not an address: {e}"))?;
            let amount =
                amounts::parse(amount.trim()).with_context(|| format!("--mint {m:?}: amount"))?;
            Ok((addr, amount))
        })
        .collect()
}

/// The deployer's key (it owns every contract): `--keystore` / `--account`, else
/// `WEB3_PRIVATE_KEY`; never the devnet's keys, even on a local chain.
fn deployer_key() -> anyhow::Result<PrivateKeySigner> {
    wallet::explicit_key()?.ok_or_else(|| {
        anyhow::anyhow!(
            "no deployer key: pass --keystore FILE or --account NAME (an encrypted JSON \
             keystore), or set WEB3_PRIVATE_KEY"
        )
    })
}

fn options(args: &DeployArgs) -> DeployOptions {
    let defaults = NetworkParams::default();
    DeployOptions {
        params: NetworkParams {
            results_collateral_multiple: args.results_collateral_multiple,
            mediation_fee: args.mediation_fee.unwrap_or(defaults.mediation_fee),
            judge_window_secs: args.judge_window,
            mediate_window_secs: args.mediate_window,
            min_job_timeout_secs: args.min_job_timeout,
        },
        job_timeout_secs: args.job_timeout,
        bridge: args.bridge,
        pow_target: lilypad_sdk::chain::deploy::pow_target_for(args.pow_expected_hashes),
    }
}

async fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    let mut config = base_network(args)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("{}.toml", config.name)));
    // Before any transaction: nothing is worse than paying for a deployment and then
    // refusing to write where it went.
    if out.exists() && !args.force {
        anyhow::bail!(
            "{} exists: pass --force to overwrite it, or --out another file",
            out.display()
        );
    }
    let mints = mints(args)?;
    let opts = options(args);
    lilypad_sdk::chain::deploy::check_options(&config.name, &opts)?;
    let key = deployer_key()?;
    let deployer = key.address();

    progress(&format!("connecting to {}", config.rpc_urls.join(", ")));
    let chain = ChainClient::connect_to_deploy(config.clone()).await?;
    config.chain_id = chain.config().chain_id;
    let gas = chain.eth_balance(deployer).await?;
    if gas.is_zero() {
        anyhow::bail!(
            "the deployer {deployer} has no ETH on chain {} to pay for gas: fund it first",
            config.chain_id
        );
    }
    progress(&format!(
        "chain {} at block {}; deployer {deployer} ({} wei for gas)",
        config.chain_id,
        chain.block_number().await?,
        gas
    ));
    let admin = chain.with_signer(key);
    let deployment = deploy_network(&admin, &opts, &progress).await?;
    let deployed = admin.with_contracts(deployment.contracts);
    for (account, amount) in &mints {
        progress(&format!("minting {} to {account}", amounts::show(*amount)));
        deployed.mint(*account, *amount).await.with_context(|| format!("minting to {account}"))?;
    }
    progress("verifying the contracts' code on chain");
    verify_deployed(&chain, &deployment.contracts).await?;

    config.contracts = deployment.contracts;
    config.deployed_at_block = deployment.deployed_at_block;
    config.validate()?;
    config.save(&out)?;
    progress(&format!("network file written to {}", out.display()));

    if lilypad_cli_common::json() {
        let contracts: serde_json::Map<String, serde_json::Value> = deployment
            .contracts
            .named()
            .into_iter()
            .map(|(k, a)| (k.to_owned(), json!(a.to_string())))
            .collect();
        let minted: Vec<_> = mints
            .iter()
            .map(|(a, v)| json!({ "account": a.to_string(), "amount": v.to_string() }))
            .collect();
        lilypad_cli_common::print_json(&json!({
            "network_file": out.display().to_string(),
            "name": config.name,
            "chain_id": config.chain_id,
            "deployed_at_block": config.deployed_at_block,
            "deployer": deployer.to_string(),
            "bridge": deployment.bridge.to_string(),
            "contracts": contracts,
            "minted": minted,
        }))?;
    } else {
        println!("{}", out.display());
        println!(
            "network {} (chain {}), deployed at block {} by {deployer}",
            config.name, config.chain_id, config.deployed_at_block
        );
        for (name, address) in deployment.contracts.named() {
            println!("  {name:<12} {address}");
        }
        println!("  {:<12} {} (bridge role)", "bridge", deployment.bridge);
    }
    Ok(())
}
