//! The explicit nonce manager of every client.

use std::{collections::HashMap, sync::Arc};

use alloy::{
    network::Network,
    primitives::Address,
    providers::{Provider, fillers::NonceManager},
    transports::TransportResult,
};
use tokio::sync::Mutex;

/// A cached nonce manager that can be told to resynchronise.
///
/// Like alloy's `CachedNonceManager` it fetches an account's pending transaction
/// count once and then hands out consecutive nonces locally, so many
/// transactions can be in flight at once. Unlike it, [`Self::resync`] drops the
/// cached value: the client calls it when a transaction fails after its nonce
/// was taken (the node refused it, or the connection dropped), so the next
/// transaction asks the node again instead of leaving a gap that would stall
/// every later transaction. The client also simulates each call before taking a
/// nonce, so a revert never consumes one.
#[derive(Debug, Clone, Default)]
pub struct ResyncNonceManager {
    next: Arc<Mutex<HashMap<Address, u64>>>,
}

impl ResyncNonceManager {
    /// Forgets `address`'s cached nonce; the next transaction fetches it from the node.
    pub async fn resync(&self, address: Address) {
        self.next.lock().await.remove(&address);
    }
}

#[async_trait::async_trait]
impl NonceManager for ResyncNonceManager {
    async fn get_next_nonce<P, N>(&self, provider: &P, address: Address) -> TransportResult<u64>
    where
        P: Provider<N>,
        N: Network,
    {
        // One lock for all accounts keeps this simple; it is held only across the
        // first fetch of an account.
        let mut next = self.next.lock().await;
        let nonce = match next.get(&address) {
            Some(n) => *n,
            None => provider.get_transaction_count(address).pending().await?,
        };
        next.insert(address, nonce + 1);
        Ok(nonce)
    }
}
