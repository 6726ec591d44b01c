//! [`ChainClient`]: one typed client for every contract of a network.

use std::{future::IntoFuture, sync::Arc, time::Duration};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{client::RpcClient, types::TransactionReceipt},
    signers::local::PrivateKeySigner,
    sol_types::{Eip712Domain, SolEvent},
};
use lilypad_core::offer::{JobOffer, ResourceOffer};

use super::{
    bindings::{
        controller::LilypadController::{self, LilypadControllerInstance},
        modules::LilypadModuleRegistry::{self, LilypadModuleRegistryInstance},
        pow::LilypadPow::{self, LilypadPowInstance},
        token::LilypadToken::{self, LilypadTokenInstance},
        users::LilypadUsers::{self, LilypadUsersInstance},
    },
    config::NetworkConfig,
    error::{ChainError, Result, Target, from_contract, from_transport},
    nonce::ResyncNonceManager,
    sign::{self, Permit, SignedJobOffer, SignedResourceOffer},
    transport::rpc_client,
};

/// One of the network's contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contract {
    /// `LilypadToken`.
    Token,
    /// `LilypadModuleRegistry`.
    Modules,
    /// `LilypadUsers`.
    Users,
    /// `LilypadController`.
    Controller,
    /// `LilypadPow`.
    Pow,
    /// `LilypadJobManager` (optional: [`crate::chain::ContractAddresses::job_manager`]).
    JobManager,
}

/// A client of one network's contracts, optionally with a signing key.
///
/// Cheap to clone. Every read has the network's RPC timeout; every write is
/// simulated first (a revert comes back as [`ChainError::Reverted`] with the
/// contract's custom error decoded, and takes no nonce), then sent with a nonce
/// from the explicit [`ResyncNonceManager`] and awaited until its receipt, within
/// the network's transaction timeout. Clients made with [`Self::with_signer`]
/// share the RPC connection and the nonce manager.
#[derive(Debug, Clone)]
pub struct ChainClient {
    config: Arc<NetworkConfig>,
    rpc: RpcClient,
    provider: DynProvider,
    signer: Option<PrivateKeySigner>,
    nonces: ResyncNonceManager,
}

impl ChainClient {
    /// Connects to `config`'s RPC nodes (read-only) and checks they serve its chain.
    /// A network without contracts fails with [`super::ConfigError::NotDeployed`].
    pub async fn connect(config: NetworkConfig) -> Result<Self> {
        config.validate()?;
        let client = Self::open(config).await?;
        client.check_chain_id().await?;
        Ok(client)
    }

    /// Connects to `config`'s RPC nodes to deploy the network: its contracts are not
    /// looked at (give them with [`Self::with_contracts`] once deployed). A `chain_id` of
    /// 0 takes the node's; any other must be the node's.
    pub async fn connect_to_deploy(mut config: NetworkConfig) -> Result<Self> {
        let ask = config.chain_id == 0;
        if ask {
            // Any id passes the shape check; the node's replaces it below.
            config.chain_id = 1;
        }
        config.validate_shape()?;
        let mut client = Self::open(config).await?;
        if ask {
            let got = client.rpc_call("eth_chainId", client.provider.get_chain_id()).await?;
            Arc::make_mut(&mut client.config).chain_id = got;
        } else {
            client.check_chain_id().await?;
        }
        Ok(client)
    }

    /// The same connection (and signer, and nonces) for the network with `contracts`.
    pub fn with_contracts(&self, contracts: super::ContractAddresses) -> Self {
        let mut client = self.clone();
        Arc::make_mut(&mut client.config).contracts = contracts;
        client
    }

    async fn open(config: NetworkConfig) -> Result<Self> {
        let rpc = rpc_client(&config).await?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_client(rpc.clone())
            .erased();
        Ok(Self {
            config: Arc::new(config),
            rpc,
            provider,
            signer: None,
            nonces: ResyncNonceManager::default(),
        })
    }

    async fn check_chain_id(&self) -> Result<()> {
        let client = self;
        let got = client.rpc_call("eth_chainId", client.provider.get_chain_id()).await?;
        if got != client.config.chain_id {
            return Err(ChainError::WrongChain {
                network: client.config.name.clone(),
                url: client.config.rpc_urls.join(", "),
                expected: client.config.chain_id,
                got,
            });
        }
        Ok(())
    }

    /// The same client sending transactions as `signer`.
    pub fn with_signer(&self, signer: PrivateKeySigner) -> Self {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_nonce_management(self.nonces.clone())
            .with_chain_id(self.config.chain_id)
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_client(self.rpc.clone())
            .erased();
        Self { provider, signer: Some(signer), ..self.clone() }
    }

    /// The network.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The signer's address, if the client has a key.
    pub fn address(&self) -> Option<Address> {
        self.signer.as_ref().map(|s| s.address())
    }

    /// The signing key, if any.
    pub fn signer(&self) -> Option<&PrivateKeySigner> {
        self.signer.as_ref()
    }

    /// The underlying alloy provider (with the wallet, if any), for calls this client lacks.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The nonce manager this client (and its [`Self::with_signer`] siblings) use.
    pub fn nonce_manager(&self) -> &ResyncNonceManager {
        &self.nonces
    }

    /// The address of `contract`. A network without a job manager gives the zero address
    /// for [`Contract::JobManager`] (no events, every call fails); the job methods check
    /// instead and say the network has none.
    pub fn address_of(&self, contract: Contract) -> Address {
        let c = &self.config.contracts;
        match contract {
            Contract::Token => c.token,
            Contract::Modules => c.modules,
            Contract::Users => c.users,
            Contract::Controller => c.controller,
            Contract::Pow => c.pow,
            Contract::JobManager => c.job_manager.unwrap_or(Address::ZERO),
        }
    }

    /// The EIP-712 domain offers are signed under (this chain, this controller).
    pub fn domain(&self) -> Eip712Domain {
        lilypad_core::eip712::domain(self.config.chain_id, self.config.contracts.controller)
    }

    // ------------------------------------------------------------ bindings

    pub(crate) fn controller(&self) -> LilypadControllerInstance<DynProvider> {
        LilypadController::new(self.config.contracts.controller, self.provider.clone())
    }

    pub(crate) fn token(&self) -> LilypadTokenInstance<DynProvider> {
        LilypadToken::new(self.config.contracts.token, self.provider.clone())
    }

    pub(crate) fn modules(&self) -> LilypadModuleRegistryInstance<DynProvider> {
        LilypadModuleRegistry::new(self.config.contracts.modules, self.provider.clone())
    }

    pub(crate) fn users(&self) -> LilypadUsersInstance<DynProvider> {
        LilypadUsers::new(self.config.contracts.users, self.provider.clone())
    }

    pub(crate) fn pow(&self) -> LilypadPowInstance<DynProvider> {
        LilypadPow::new(self.config.contracts.pow, self.provider.clone())
    }

    // ------------------------------------------------------------ plumbing

    pub(crate) fn timeout(&self) -> Duration {
        self.config.rpc.timeout()
    }

    /// A plain RPC request with the timeout.
    pub(crate) async fn rpc_call<T, F>(&self, call: &'static str, fut: F) -> Result<T>
    where
        F: IntoFuture<Output = alloy::transports::TransportResult<T>>,
    {
        match tokio::time::timeout(self.timeout(), fut).await {
            Err(_) => Err(ChainError::Timeout { call, after: self.timeout() }),
            Ok(r) => r.map_err(|e| from_transport(call, Target::Controller, e)),
        }
    }

    /// A contract read (or simulation) with the timeout.
    pub(crate) async fn read<T, F>(&self, call: &'static str, target: Target, fut: F) -> Result<T>
    where
        F: IntoFuture<Output = alloy::contract::Result<T>>,
    {
        match tokio::time::timeout(self.timeout(), fut).await {
            Err(_) => Err(ChainError::Timeout { call, after: self.timeout() }),
            Ok(r) => r.map_err(|e| from_contract(call, target, e)),
        }
    }

    pub(crate) fn require_signer(&self, call: &'static str) -> Result<&PrivateKeySigner> {
        self.signer.as_ref().ok_or(ChainError::NoSigner { call })
    }

    /// Simulates, sends and awaits one transaction; see the type's docs.
    pub(crate) async fn send<D: CallDecoder>(
        &self,
        call: &'static str,
        target: Target,
        builder: CallBuilder<&DynProvider, D>,
    ) -> Result<TransactionReceipt> {
        let tx = self.send_only(call, target, builder).await?;
        self.wait_success(call, tx).await
    }

    /// Awaits transaction `tx`'s receipt; a mined but reverted transaction is [`ChainError::TxFailed`].
    pub(crate) async fn wait_success(
        &self,
        call: &'static str,
        tx: B256,
    ) -> Result<TransactionReceipt> {
        let receipt = self.wait_receipt(call, tx).await?;
        if !receipt.status() {
            return Err(ChainError::TxFailed { call, tx });
        }
        Ok(receipt)
    }

    /// Simulates and sends one transaction without awaiting it; returns its hash.
    pub(crate) async fn send_only<D: CallDecoder>(
        &self,
        call: &'static str,
        target: Target,
        builder: CallBuilder<&DynProvider, D>,
    ) -> Result<B256> {
        let from = self.require_signer(call)?.address();
        let builder = builder.from(from);
        // Simulation by gas estimation: a revert is decoded here and takes no nonce.
        let gas = self.read(call, target, builder.estimate_gas()).await?;
        // Headroom: state may change between the estimate and inclusion.
        let builder = builder.gas(gas.saturating_add(gas / 5));
        let nonce = self
            .nonces
            .take(&self.provider, from)
            .await
            .map_err(|e| from_transport(call, target, e))?;
        let sent = tokio::time::timeout(self.timeout(), builder.nonce(nonce.get()).send()).await;
        // A failed send took its nonce but the node may not have the transaction:
        // the next one is asked of the node rather than leave a gap.
        nonce.settle(matches!(sent, Ok(Ok(_))));
        let pending = match sent {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(from_contract(call, target, e)),
            Err(_) => return Err(ChainError::Timeout { call, after: self.timeout() }),
        };
        Ok(*pending.tx_hash())
    }

    /// Polls for a receipt: 10 ms first, doubling up to `rpc.max_receipt_poll_ms`, until
    /// `rpc.tx_timeout_secs`. (alloy's watcher polls at a fixed interval, too slow on a devnet.)
    pub(crate) async fn wait_receipt(
        &self,
        call: &'static str,
        tx: B256,
    ) -> Result<TransactionReceipt> {
        let limit = self.config.rpc.tx_timeout();
        let max_pause = Duration::from_millis(self.config.rpc.max_receipt_poll_ms.max(10));
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            match tokio::time::timeout(self.timeout(), self.provider.get_transaction_receipt(tx))
                .await
            {
                Ok(Ok(Some(receipt))) => return Ok(receipt),
                Ok(Ok(None)) | Err(_) => {}
                Ok(Err(e)) => return Err(from_transport(call, Target::Controller, e)),
            }
            if started.elapsed() >= limit {
                return Err(ChainError::Timeout { call, after: limit });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(max_pause);
        }
    }

    /// The first `E` event `address` emitted in `receipt`.
    pub(crate) fn event<E: SolEvent>(
        call: &'static str,
        receipt: &TransactionReceipt,
        address: Address,
    ) -> Result<E> {
        receipt
            .logs()
            .iter()
            .filter(|l| l.address() == address)
            .find_map(|l| E::decode_log(&l.inner).ok())
            .map(|l| l.data)
            .ok_or(ChainError::MissingEvent {
                call,
                event: E::SIGNATURE,
                tx: receipt.transaction_hash,
            })
    }

    // ------------------------------------------------------------ chain

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64> {
        self.rpc_call("eth_blockNumber", self.provider.get_block_number()).await
    }

    /// The latest block's timestamp (the contracts' `now`).
    pub async fn latest_timestamp(&self) -> Result<u64> {
        let block = self
            .rpc_call(
                "eth_getBlockByNumber",
                self.provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest),
            )
            .await?;
        block.map(|b| b.header.timestamp).ok_or(ChainError::Decode {
            call: "eth_getBlockByNumber",
            message: "no latest block".into(),
        })
    }

    /// The contract code at `address` (empty: nothing deployed there).
    pub async fn code_at(&self, address: Address) -> Result<Bytes> {
        self.rpc_call("eth_getCode", self.provider.get_code_at(address)).await
    }

    /// `who`'s ETH balance (for gas), in wei.
    pub async fn eth_balance(&self, who: Address) -> Result<U256> {
        self.rpc_call("eth_getBalance", self.provider.get_balance(who)).await
    }

    // ------------------------------------------------------------ token

    /// `who`'s token balance, in base units.
    pub async fn token_balance(&self, who: Address) -> Result<U256> {
        self.read("balanceOf", Target::Token, self.token().balanceOf(who).call()).await
    }

    /// The token's total supply.
    pub async fn token_supply(&self) -> Result<U256> {
        self.read("totalSupply", Target::Token, self.token().totalSupply().call()).await
    }

    /// What `spender` may still pull from `owner`.
    pub async fn allowance(&self, owner: Address, spender: Address) -> Result<U256> {
        self.read("allowance", Target::Token, self.token().allowance(owner, spender).call()).await
    }

    /// Lets `spender` pull up to `amount` of the signer's tokens.
    pub async fn approve(&self, spender: Address, amount: U256) -> Result<TransactionReceipt> {
        let token = self.token();
        self.send("approve", Target::Token, token.approve(spender, amount)).await
    }

    /// Lets the controller pull up to `amount` of the signer's tokens (for deals).
    pub async fn approve_controller(&self, amount: U256) -> Result<TransactionReceipt> {
        self.approve(self.config.contracts.controller, amount).await
    }

    /// Sends `amount` tokens to `to`.
    pub async fn transfer(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        let token = self.token();
        self.send("transfer", Target::Token, token.transfer(to, amount)).await
    }

    /// Mints `amount` tokens to `to` (needs the token's `MINTER_ROLE`: the devnet faucet).
    pub async fn mint(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        let token = self.token();
        self.send("mint", Target::Token, token.mint(to, amount)).await
    }

    /// Mints to several accounts at once: each transaction reaches the node after
    /// the one before it (in nonce order, never a later nonce ahead of an earlier
    /// one), then every receipt is awaited together.
    #[cfg(feature = "devnet")]
    pub(crate) async fn mint_many(
        &self,
        mints: impl IntoIterator<Item = (Address, U256)>,
    ) -> Result<Vec<TransactionReceipt>> {
        let mut sent = Vec::new();
        for (to, amount) in mints {
            let token = self.token();
            sent.push(self.send_only("mint", Target::Token, token.mint(to, amount)).await?);
        }
        futures::future::try_join_all(sent.into_iter().map(|tx| self.wait_success("mint", tx)))
            .await
    }

    /// Gives `account` the token's `MINTER_ROLE` (token admin only).
    pub async fn grant_minter(&self, account: Address) -> Result<TransactionReceipt> {
        let role =
            self.read("MINTER_ROLE", Target::Token, self.token().MINTER_ROLE().call()).await?;
        let token = self.token();
        self.send("grantRole", Target::Token, token.grantRole(role, account)).await
    }

    /// The token's EIP-712 domain (for permits), as the token reports it.
    pub async fn token_domain(&self) -> Result<Eip712Domain> {
        let d =
            self.read("eip712Domain", Target::Token, self.token().eip712Domain().call()).await?;
        Ok(Eip712Domain::new(
            Some(d.name.into()),
            Some(d.version.into()),
            Some(d.chainId),
            Some(d.verifyingContract),
            None,
        ))
    }

    /// `owner`'s next EIP-2612 permit nonce.
    pub async fn permit_nonce(&self, owner: Address) -> Result<U256> {
        self.read("nonces", Target::Token, self.token().nonces(owner).call()).await
    }

    /// Signs an EIP-2612 permit letting the controller pull `value` of the signer's tokens
    /// until `deadline` (for [`Self::create_deal_with_permits`]). Uses the signer's
    /// current permit nonce: sign the next one only after this one is used.
    pub async fn sign_controller_permit(&self, value: U256, deadline: u64) -> Result<Permit> {
        let signer = self.require_signer("permit")?;
        let domain = self.token_domain().await?;
        let nonce = self.permit_nonce(signer.address()).await?;
        sign::sign_permit(
            signer,
            &domain,
            self.config.contracts.controller,
            value,
            nonce,
            U256::from(deadline),
        )
    }

    // ------------------------------------------------------------ offers

    /// Signs a job offer (the key must be its creator) under this network's domain.
    pub fn sign_job_offer(&self, offer: &JobOffer) -> Result<SignedJobOffer> {
        sign::sign_job_offer(self.require_signer("job offer")?, offer, &self.domain())
    }

    /// Signs a resource offer (the key must be its provider) under this network's domain.
    pub fn sign_resource_offer(&self, offer: &ResourceOffer) -> Result<SignedResourceOffer> {
        sign::sign_resource_offer(self.require_signer("resource offer")?, offer, &self.domain())
    }

    /// The controller's EIP-712 signing digest (id) of a job offer.
    pub async fn job_offer_hash(&self, offer: &JobOffer) -> Result<B256> {
        let abi = sign::job_offer_abi(offer);
        self.read("jobOfferHash", Target::Controller, self.controller().jobOfferHash(abi).call())
            .await
    }

    /// The controller's EIP-712 signing digest (id) of a resource offer.
    pub async fn resource_offer_hash(&self, offer: &ResourceOffer) -> Result<B256> {
        let abi = sign::resource_offer_abi(offer);
        let c = self.controller();
        self.read("resourceOfferHash", Target::Controller, c.resourceOfferHash(abi).call()).await
    }

    /// The controller's EIP-712 domain separator.
    pub async fn domain_separator(&self) -> Result<B256> {
        self.read("domainSeparator", Target::Controller, self.controller().domainSeparator().call())
            .await
    }
}
