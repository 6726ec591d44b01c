//! The module registry (network allow and block lists) and the users registry (roles, URLs).

use alloy::primitives::{Address, B256, U256};
use lilypad_core::offer::ModuleId;

use super::{
    client::ChainClient,
    error::{ChainError, Result, Target},
};

/// Role bits of the users registry.
pub mod roles {
    /// Creates jobs.
    pub const JOB_CREATOR: u8 = 1;
    /// Provides resources.
    pub const RESOURCE_PROVIDER: u8 = 2;
    /// Matches offers and creates deals; its URL is its API.
    pub const SOLVER: u8 = 4;
    /// Re-runs challenged jobs.
    pub const MEDIATOR: u8 = 8;
}

/// A module's standing in the network's registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleStatus {
    /// On neither list: allowed unless the registry is in allowlist-only mode.
    Unlisted,
    /// On the allowlist.
    Allowed,
    /// Blocked: never allowed.
    Blocked,
}

impl ModuleStatus {
    const fn index(self) -> u8 {
        match self {
            Self::Unlisted => 0,
            Self::Allowed => 1,
            Self::Blocked => 2,
        }
    }
}

/// What [`ChainClient::ensure_registered`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The account already had the role (and the URL): nothing was sent.
    Already,
    /// A `register` transaction added the role (keeping the account's other roles) or
    /// updated the URL.
    Registered,
}

/// An account's entry in the users registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// Role bits ([`roles`]).
    pub roles: u8,
    /// Where the account serves its role (a solver's API); may be empty.
    pub url: String,
    /// Optional metadata pointer (zero if none).
    pub metadata: B256,
}

impl ChainClient {
    /// A module's standing.
    pub async fn module_status(&self, module: ModuleId) -> Result<ModuleStatus> {
        let s =
            self.read("statusOf", Target::Modules, self.modules().statusOf(module).call()).await?;
        match s {
            0 => Ok(ModuleStatus::Unlisted),
            1 => Ok(ModuleStatus::Allowed),
            2 => Ok(ModuleStatus::Blocked),
            other => Err(ChainError::Decode {
                call: "statusOf",
                message: format!("unknown status {other}"),
            }),
        }
    }

    /// Whether the network allows deals for `module`.
    pub async fn is_module_allowed(&self, module: ModuleId) -> Result<bool> {
        self.read("isAllowed", Target::Modules, self.modules().isAllowed(module).call()).await
    }

    /// Whether only allowlisted modules are allowed.
    pub async fn allowlist_only(&self) -> Result<bool> {
        self.read("allowlistOnly", Target::Modules, self.modules().allowlistOnly().call()).await
    }

    /// Sets the standing of `modules` (registry owner only).
    pub async fn set_module_status(
        &self,
        modules: &[ModuleId],
        status: ModuleStatus,
    ) -> Result<()> {
        let m = self.modules();
        self.send("setStatus", Target::Modules, m.setStatus(modules.to_vec(), status.index()))
            .await?;
        Ok(())
    }

    /// Turns allowlist-only mode on or off (registry owner only).
    pub async fn set_allowlist_only(&self, on: bool) -> Result<()> {
        let m = self.modules();
        self.send("setAllowlistOnly", Target::Modules, m.setAllowlistOnly(on)).await?;
        Ok(())
    }

    /// Registers the signer with `roles` ([`roles`] bits), a URL and metadata (replaces its entry).
    pub async fn register(&self, roles: u8, url: &str, metadata: B256) -> Result<()> {
        let u = self.users();
        self.send("register", Target::Users, u.register(roles, url.to_owned(), metadata)).await?;
        Ok(())
    }

    /// Makes sure the signer has `role` in the users registry, with `url` when it is not
    /// empty: reads its entry first and sends `register` only when something is missing,
    /// keeping its other roles, its URL (when `url` is empty) and its metadata. Safe to
    /// call at every start.
    pub async fn ensure_registered(&self, role: u8, url: &str) -> Result<Registration> {
        let me = self.require_signer("register")?.address();
        let entry = self.user(me).await?;
        let (roles, old_url, metadata) = match &entry {
            Some(e) => (e.roles, e.url.as_str(), e.metadata),
            None => (0, "", B256::ZERO),
        };
        if roles & role == role && (url.is_empty() || url == old_url) {
            return Ok(Registration::Already);
        }
        let url = if url.is_empty() { old_url } else { url };
        self.register(roles | role, url, metadata).await?;
        Ok(Registration::Registered)
    }

    /// Removes the signer's entry.
    pub async fn unregister(&self) -> Result<()> {
        let u = self.users();
        self.send("unregister", Target::Users, u.unregister()).await?;
        Ok(())
    }

    /// `account`'s entry, or `None` if it is not registered.
    pub async fn user(&self, account: Address) -> Result<Option<UserEntry>> {
        let u = self.read("userOf", Target::Users, self.users().userOf(account).call()).await?;
        Ok((u.roles != 0).then_some(UserEntry { roles: u.roles, url: u.url, metadata: u.metadata }))
    }

    /// Whether `account` has every bit of `roles`.
    pub async fn has_roles(&self, account: Address, roles: u8) -> Result<bool> {
        self.read("hasRoles", Target::Users, self.users().hasRoles(account, roles).call()).await
    }

    /// How many accounts have `role` (one bit).
    pub async fn member_count(&self, role: u8) -> Result<u64> {
        let n = self.read("count", Target::Users, self.users().count(role).call()).await?;
        Ok(n.saturating_to())
    }

    /// Up to `limit` accounts with `role` from `offset`.
    pub async fn members(&self, role: u8, offset: u64, limit: u64) -> Result<Vec<Address>> {
        let users = self.users();
        let call = users.members(role, U256::from(offset), U256::from(limit));
        self.read("members", Target::Users, call.call()).await
    }

    /// The API URL a solver registered, if it is registered as a solver with a URL.
    pub async fn solver_url(&self, solver: Address) -> Result<Option<String>> {
        Ok(self
            .user(solver)
            .await?
            .filter(|u| u.roles & roles::SOLVER != 0 && !u.url.is_empty())
            .map(|u| u.url))
    }
}
