//! Network configuration: which chain, which RPC nodes, which contracts.
//!
//! A network is a TOML file:
//!
//! ```toml
//! name = "local"
//! chain_id = 31337
//! rpc_urls = ["http://127.0.0.1:8545"]   # tried in order, failing over to the next;
//!                                        # http(s):// or ws(s):// (WebSocket)
//! solver_url = "http://127.0.0.1:8080"
//! storage_url = "http://127.0.0.1:5001"
//! deployed_at_block = 0                  # where event scans start
//!
//! [contracts]                            # absent: not deployed yet (loads, cannot connect)
//! token = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
//! modules = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
//! users = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
//! controller = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"
//! pow = "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9"
//! job_manager = "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707"   # optional (on-chain jobs)
//!
//! [rpc]                                  # optional, these are the defaults
//! timeout_secs = 30
//! retries = 5
//! initial_backoff_ms = 250
//! tx_timeout_secs = 120
//! max_receipt_poll_ms = 1000
//! log_chunk_blocks = 5000
//! ```

use std::{fmt, path::Path, time::Duration};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// Chain id of anvil and of the built-in `local` network.
pub const LOCAL_CHAIN_ID: u64 = 31337;

/// The account that deploys the devnet contracts: anvil's first well-known account.
pub const LOCAL_DEPLOYER: Address = Address::new([
    0xf3, 0x9f, 0xd6, 0xe5, 0x1a, 0xad, 0x88, 0xf6, 0xf4, 0xce, 0x6a, 0xb8, 0x82, 0x72, 0x79, 0xcf,
    0xff, 0xb9, 0x22, 0x66,
]);

/// The contracts of a network. All zero ([`Default`]): not deployed yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractAddresses {
    /// `LilypadToken`: the ERC-20 deals are paid in.
    pub token: Address,
    /// `LilypadModuleRegistry`: module allow and block lists.
    pub modules: Address,
    /// `LilypadUsers`: roles and URLs.
    pub users: Address,
    /// `LilypadController`: deals and escrow.
    pub controller: Address,
    /// `LilypadPow`: proof-of-work rounds.
    pub pow: Address,
    /// `LilypadJobManager`: on-chain jobs. Optional so that network files written before
    /// the job manager existed still load; a network without one simply has no on-chain
    /// jobs (the job calls say so). The built-in `local` network and every devnet have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager: Option<Address>,
}

impl ContractAddresses {
    /// Where a fresh devnet deploys the contracts: `deployer`'s nonces 0 to 5 in this order
    /// (token, module registry, users, controller, proof of work, job manager).
    pub fn deployed_by(deployer: Address) -> Self {
        Self {
            token: deployer.create(0),
            modules: deployer.create(1),
            users: deployer.create(2),
            controller: deployer.create(3),
            pow: deployer.create(4),
            job_manager: Some(deployer.create(5)),
        }
    }

    /// Whether any contract is deployed: a network file without a `[contracts]` section
    /// (a shipped network nobody deployed yet) has none.
    pub fn is_deployed(&self) -> bool {
        *self != Self::default()
    }

    /// Every contract the network has, with its name (the TOML key), in deployment order.
    pub fn named(&self) -> Vec<(&'static str, Address)> {
        let mut all = vec![
            ("token", self.token),
            ("modules", self.modules),
            ("users", self.users),
            ("controller", self.controller),
            ("pow", self.pow),
        ];
        all.extend(self.job_manager.map(|a| ("job_manager", a)));
        all
    }
}

/// How the client talks to the RPC nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcOptions {
    /// Seconds one JSON-RPC request (and every read) may take.
    pub timeout_secs: u64,
    /// Retries of a request that failed for a transient reason (rate limit, node down).
    pub retries: u32,
    /// First backoff between retries, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Seconds a transaction may take from sending to its receipt.
    pub tx_timeout_secs: u64,
    /// Longest pause between two receipt polls, in milliseconds (polls start at 10 ms and double).
    pub max_receipt_poll_ms: u64,
    /// Blocks per `eth_getLogs` request of the polling event streams.
    pub log_chunk_blocks: u64,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            timeout_secs: 30,
            retries: 5,
            initial_backoff_ms: 250,
            tx_timeout_secs: 120,
            max_receipt_poll_ms: 1000,
            log_chunk_blocks: 5000,
        }
    }
}

impl RpcOptions {
    /// [`Self::timeout_secs`] as a duration.
    pub const fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// [`Self::tx_timeout_secs`] as a duration.
    pub const fn tx_timeout(&self) -> Duration {
        Duration::from_secs(self.tx_timeout_secs)
    }
}

/// A Lilypad network: chain, RPC nodes, contracts and services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// A short name (`local`, `testnet`, ...).
    pub name: String,
    /// The EVM chain id; the client refuses RPC nodes of another chain.
    pub chain_id: u64,
    /// JSON-RPC URLs, best first; requests fail over to the next one.
    pub rpc_urls: Vec<String>,
    /// The contracts; none (all zero, no `[contracts]` section) until the network is
    /// deployed.
    #[serde(default, skip_serializing_if = "ContractAddresses::is_undeployed")]
    pub contracts: ContractAddresses,
    /// The solver's HTTP API base URL, if the network has a default solver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_url: Option<String>,
    /// The results storage base URL (content store or Kubo RPC API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_url: Option<String>,
    /// The block the contracts were deployed in; event scans start there.
    #[serde(default)]
    pub deployed_at_block: u64,
    /// The oldest `lilypad-rp` allowed on the network: an older provider refuses to
    /// start and says how to update (a network operator raises it after a change
    /// older providers would get wrong).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_provider_version: Option<semver::Version>,
    /// RPC timeouts, retries and polling.
    #[serde(default)]
    pub rpc: RpcOptions,
}

/// A network file that cannot be read or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{}: {cause}", .path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The failure (part of the message, so not a `source()`).
        cause: std::io::Error,
    },
    /// Not valid TOML for a network.
    #[error("{origin}: not a valid network file: {cause}")]
    Parse {
        /// The file (or `<string>`).
        origin: String,
        /// What is wrong, with line and column.
        cause: Box<toml::de::Error>,
    },
    /// A field has a value that cannot work.
    #[error("network {network}: {field}: {reason} (got {value})")]
    Invalid {
        /// The network's name.
        network: String,
        /// The field.
        field: &'static str,
        /// The value, as text.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The name is not a built-in network and no file was given.
    #[error(
        "unknown network {0:?}: the built-in networks are: {builtin} (or give a network file)",
        builtin = BUILTIN_NETWORKS.join(", ")
    )]
    UnknownNetwork(String),
    /// The network has no contracts yet: it can be deployed, not used.
    #[error(
        "network {network} (chain {chain_id}) has no deployment yet: its contracts are not \
         deployed. Deploy them (docs/deploy.md) and use the network file that writes, or \
         use a network file that lists them under [contracts]"
    )]
    NotDeployed {
        /// The network's name.
        network: String,
        /// Its chain id.
        chain_id: u64,
    },
}

/// The names [`NetworkConfig::builtin`] knows.
pub const BUILTIN_NETWORKS: &[&str] = &["local", "arbitrum-sepolia"];

/// The network files shipped in `lilypad-sdk/networks/`, by name.
const SHIPPED: &[(&str, &str)] =
    &[("arbitrum-sepolia", include_str!("../../networks/arbitrum-sepolia.toml"))];

impl ContractAddresses {
    /// For serde: skip the section of a network with no deployment.
    fn is_undeployed(&self) -> bool {
        !self.is_deployed()
    }
}

impl NetworkConfig {
    /// A network not deployed yet: `name`, `chain_id` (0: whatever the node says, for
    /// deploying) and `rpc_urls`; no contracts, solver or storage, default RPC options.
    pub fn undeployed(name: &str, chain_id: u64, rpc_urls: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            chain_id,
            rpc_urls,
            contracts: ContractAddresses::default(),
            solver_url: None,
            storage_url: None,
            deployed_at_block: 0,
            min_provider_version: None,
            rpc: RpcOptions::default(),
        }
    }

    /// The built-in `local` network: anvil on 127.0.0.1:8545 with the contracts where
    /// `lilypad-cli devnet up --port 8545` deploys them (a devnet on another port writes
    /// its own file).
    pub fn local() -> Self {
        Self {
            name: "local".into(),
            chain_id: LOCAL_CHAIN_ID,
            rpc_urls: vec!["http://127.0.0.1:8545".into()],
            contracts: ContractAddresses::deployed_by(LOCAL_DEPLOYER),
            solver_url: Some("http://127.0.0.1:8080".into()),
            storage_url: Some("http://127.0.0.1:5001".into()),
            deployed_at_block: 0,
            min_provider_version: None,
            rpc: RpcOptions::default(),
        }
    }

    /// A built-in network by name ([`BUILTIN_NETWORKS`]): `local`, or a network file
    /// shipped with this crate (`arbitrum-sepolia`, not deployed yet: it loads, but
    /// [`Self::validate`] and connecting fail with [`ConfigError::NotDeployed`]).
    pub fn builtin(name: &str) -> Result<Self, ConfigError> {
        if name == "local" {
            return Ok(Self::local());
        }
        let (_, text) = SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ConfigError::UnknownNetwork(name.to_owned()))?;
        Self::from_toml_str(text, &format!("built-in network {name}"))
    }

    /// Whether `name` is a built-in network's name.
    pub fn is_builtin(name: &str) -> bool {
        BUILTIN_NETWORKS.contains(&name)
    }

    /// Parses and validates a network from TOML text; `origin` names it in errors. A
    /// network without contracts loads (to be deployed); see [`Self::require_deployed`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { origin: origin.to_owned(), cause: Box::new(e) })?;
        cfg.validate_shape()?;
        if cfg.contracts.is_deployed() {
            cfg.validate()?;
        }
        Ok(cfg)
    }

    /// [`ConfigError::NotDeployed`] unless the network lists its contracts.
    pub fn require_deployed(&self) -> Result<(), ConfigError> {
        if self.contracts.is_deployed() {
            Ok(())
        } else {
            Err(ConfigError::NotDeployed { network: self.name.clone(), chain_id: self.chain_id })
        }
    }

    /// Reads and validates a network file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|cause| ConfigError::Io { path: path.to_owned(), cause })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// The network as TOML text.
    pub fn to_toml_string(&self) -> String {
        // A struct of strings, integers and addresses always serializes.
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the network file (creating its directory).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |cause| ConfigError::Io { path: path.to_owned(), cause };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, self.to_toml_string()).map_err(io)
    }

    /// Checks every field can work: a chain id, at least one http(s) or ws(s) RPC URL,
    /// deployed contracts with no zero address.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_shape()?;
        self.require_deployed()?;
        let invalid = |field, value: &dyn fmt::Display, reason| ConfigError::Invalid {
            network: self.name.clone(),
            field,
            value: value.to_string(),
            reason,
        };
        for (name, address) in self.contracts.named() {
            if address == Address::ZERO {
                return Err(invalid(
                    match name {
                        "token" => "contracts.token",
                        "modules" => "contracts.modules",
                        "users" => "contracts.users",
                        "controller" => "contracts.controller",
                        "pow" => "contracts.pow",
                        _ => "contracts.job_manager",
                    },
                    &address,
                    "the contract is not deployed (zero address)",
                ));
            }
        }
        Ok(())
    }

    /// Checks everything but the contracts: what deploying a network needs.
    pub fn validate_shape(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: &dyn fmt::Display, reason| ConfigError::Invalid {
            network: self.name.clone(),
            field,
            value: value.to_string(),
            reason,
        };
        if self.chain_id == 0 {
            return Err(invalid("chain_id", &0, "must be the chain's id (anvil: 31337)"));
        }
        if self.rpc_urls.is_empty() {
            return Err(invalid("rpc_urls", &"[]", "at least one RPC URL is needed"));
        }
        for url in &self.rpc_urls {
            if !["http://", "https://", "ws://", "wss://"].iter().any(|s| url.starts_with(s)) {
                return Err(invalid(
                    "rpc_urls",
                    url,
                    "only http://, https://, ws:// and wss:// URLs are supported",
                ));
            }
            if alloy::transports::http::reqwest::Url::parse(url).is_err() {
                return Err(invalid("rpc_urls", url, "not a valid URL"));
            }
        }
        if self.rpc.timeout_secs == 0 || self.rpc.tx_timeout_secs == 0 {
            return Err(invalid("rpc.timeout_secs", &0, "timeouts must be positive"));
        }
        if self.rpc.log_chunk_blocks == 0 {
            return Err(invalid("rpc.log_chunk_blocks", &0, "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_are_anvils_deterministic_deployments() {
        let c = NetworkConfig::local().contracts;
        // The first CREATE of anvil's account 0, as every Foundry tutorial shows.
        assert_eq!(c.token.to_string(), "0x5FbDB2315678afecb367f032d93F642f64180aa3");
        assert_eq!(c.pow.to_string(), "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9");
        assert_eq!(
            c.job_manager.map(|a| a.to_string()).as_deref(),
            Some("0x5FC8d32690cc91D4c39d9d3abcBD16989F875707")
        );
    }

    #[test]
    fn toml_round_trip_and_defaults() {
        let local = NetworkConfig::local();
        let text = local.to_toml_string();
        assert_eq!(NetworkConfig::from_toml_str(&text, "t").unwrap(), local);
        let minimal = r#"
            name = "x"
            chain_id = 5
            rpc_urls = ["http://a:1", "https://b"]
            [contracts]
            token = "0x0000000000000000000000000000000000000001"
            modules = "0x0000000000000000000000000000000000000002"
            users = "0x0000000000000000000000000000000000000003"
            controller = "0x0000000000000000000000000000000000000004"
            pow = "0x0000000000000000000000000000000000000005"
        "#;
        let cfg = NetworkConfig::from_toml_str(minimal, "t").unwrap();
        assert_eq!(cfg.rpc, RpcOptions::default());
        assert_eq!(cfg.solver_url, None);
        // Files from before the job manager still load; a job manager round-trips.
        assert_eq!(cfg.contracts.job_manager, None);
        assert_eq!(cfg.contracts.named().len(), 5);
        let text = cfg.to_toml_string();
        assert!(!text.contains("job_manager"), "{text}");
        let with = minimal.replace(
            "pow = \"0x0000000000000000000000000000000000000005\"",
            "pow = \"0x0000000000000000000000000000000000000005\"\n            job_manager = \"0x0000000000000000000000000000000000000006\"",
        );
        let cfg = NetworkConfig::from_toml_str(&with, "t").unwrap();
        assert_eq!(cfg.contracts.job_manager, Some(Address::with_last_byte(6)));
        assert_eq!(NetworkConfig::from_toml_str(&cfg.to_toml_string(), "t").unwrap(), cfg);
    }

    #[test]
    fn errors_name_the_field() {
        let mut cfg = NetworkConfig::local();
        cfg.rpc_urls = vec!["ftp://x".into()];
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("rpc_urls") && e.contains("ftp://x"), "{e}");
        cfg.rpc_urls = vec!["ws://127.0.0.1:8545".into(), "wss://node.example".into()];
        cfg.validate().unwrap();
        cfg = NetworkConfig::local();
        cfg.contracts.controller = Address::ZERO;
        assert!(cfg.validate().unwrap_err().to_string().contains("contracts.controller"));
        cfg = NetworkConfig::local();
        cfg.contracts.job_manager = Some(Address::ZERO);
        assert!(cfg.validate().unwrap_err().to_string().contains("contracts.job_manager"));
        let e = NetworkConfig::from_toml_str("name = 1", "f.toml").unwrap_err().to_string();
        assert!(e.starts_with("f.toml: not a valid network file"), "{e}");
        assert!(NetworkConfig::builtin("nope").is_err());
    }

    #[test]
    fn arbitrum_sepolia_is_built_in_and_not_deployed_yet() {
        let net = NetworkConfig::builtin("arbitrum-sepolia").unwrap();
        assert_eq!((net.name.as_str(), net.chain_id), ("arbitrum-sepolia", 421_614));
        assert!(net.rpc_urls.iter().any(|u| u.starts_with("https://")), "{:?}", net.rpc_urls);
        assert!(net.rpc_urls.iter().any(|u| u.starts_with("wss://")), "{:?}", net.rpc_urls);
        assert!(!net.contracts.is_deployed());
        assert!(
            NetworkConfig::is_builtin("arbitrum-sepolia") && NetworkConfig::is_builtin("local")
        );
        let e = net.validate().unwrap_err();
        assert!(matches!(e, ConfigError::NotDeployed { chain_id: 421_614, .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains("arbitrum-sepolia") && e.contains("no deployment yet"), "{e}");
        // Written back, it stays without a [contracts] section and loads again.
        let text = net.to_toml_string();
        assert!(!text.contains("[contracts]"), "{text}");
        assert_eq!(NetworkConfig::from_toml_str(&text, "t").unwrap(), net);
        // Once deployed, it validates.
        let mut deployed = net;
        deployed.contracts = ContractAddresses::deployed_by(LOCAL_DEPLOYER);
        deployed.validate().unwrap();
        let e = NetworkConfig::builtin("nope").unwrap_err().to_string();
        assert!(e.contains("local, arbitrum-sepolia"), "{e}");
    }
}
