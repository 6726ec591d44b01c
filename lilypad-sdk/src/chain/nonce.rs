//! The explicit nonce manager of every client.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use alloy::{
    network::Network,
    primitives::Address,
    providers::{Provider, fillers::NonceManager},
    transports::TransportResult,
};
use tokio::sync::{Mutex, Notify};

/// A cached nonce manager that resynchronises safely after a failed send.
///
/// Like alloy's `CachedNonceManager` it fetches an account's pending transaction
/// count once and then hands out consecutive nonces locally, so many
/// transactions can be in flight at once. Unlike it, a send that fails after its
/// nonce was taken (the node refused it, or the connection dropped) marks the
/// account stale, and the next nonce is asked of the node again instead of
/// leaving a gap that would stall every later transaction.
///
/// The client takes each nonce with [`Self::take`] and reports the send with
/// [`TakenNonce::settle`]. While an account is stale, the next [`Self::take`] waits
/// until every nonce taken before has been settled: a nonce handed out but not
/// yet sent is invisible to the node's pending count, and asking the node while
/// one is in that window would hand the same nonce out twice.
#[derive(Debug, Clone, Default)]
pub struct ResyncNonceManager {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Held briefly, never across an await, so a dropped send can settle its nonce.
    accounts: std::sync::Mutex<HashMap<Address, Account>>,
    /// Serialises the fetches from the node.
    fetch: Mutex<()>,
    /// Woken whenever a taken nonce is settled.
    settled: Notify,
}

#[derive(Debug, Default)]
struct Account {
    /// The next nonce to hand out; `None`: ask the node.
    next: Option<u64>,
    /// Nonces handed out by [`ResyncNonceManager::take`] and not settled yet.
    taken: BTreeSet<u64>,
    /// A send failed: ask the node once `taken` is empty.
    stale: bool,
    /// Nonces sent at or above the node's last pending count. After a gap (a
    /// failed send below nonces that were sent), the node's count stops at the
    /// gap: the gap is handed out, and these are skipped.
    sent: BTreeSet<u64>,
}

impl Account {
    /// The next nonce from the cache, skipping those known sent.
    fn hand_out(&mut self, track: bool) -> Option<u64> {
        let mut nonce = self.next?;
        while self.sent.remove(&nonce) {
            nonce += 1;
        }
        // Nonces are handed out in increasing order: those below are of no more use.
        self.sent = self.sent.split_off(&nonce);
        self.next = Some(nonce + 1);
        if track {
            self.taken.insert(nonce);
        }
        Some(nonce)
    }
}

/// A nonce from [`ResyncNonceManager::take`]. Report its send with [`Self::settle`];
/// dropped unsettled (the send was cancelled), it counts as not sent.
#[derive(Debug)]
#[must_use = "settle the nonce once its transaction was sent, or not"]
pub struct TakenNonce {
    inner: Arc<Inner>,
    address: Address,
    nonce: u64,
    done: bool,
}

impl TakenNonce {
    /// The nonce.
    pub const fn get(&self) -> u64 {
        self.nonce
    }

    /// Reports the send: `sent` when the node accepted the transaction; otherwise
    /// the account is resynchronised once every other taken nonce is settled.
    pub fn settle(mut self, sent: bool) {
        self.done = true;
        self.inner.settle(self.address, self.nonce, sent);
    }
}

impl Drop for TakenNonce {
    fn drop(&mut self) {
        if !self.done {
            self.inner.settle(self.address, self.nonce, false);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Address, Account>> {
        // The map stays consistent whatever panicked while holding it.
        self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn settle(&self, address: Address, nonce: u64, sent: bool) {
        {
            let mut accounts = self.lock();
            let account = accounts.entry(address).or_default();
            account.taken.remove(&nonce);
            if sent {
                account.sent.insert(nonce);
            } else {
                account.stale = true;
            }
        }
        self.settled.notify_waiters();
    }
}

impl ResyncNonceManager {
    /// Takes `address`'s next nonce for a transaction the caller sends itself.
    pub async fn take<P, N>(&self, provider: &P, address: Address) -> TransportResult<TakenNonce>
    where
        P: Provider<N>,
        N: Network,
    {
        let nonce = self.next(provider, address, true).await?;
        Ok(TakenNonce { inner: self.inner.clone(), address, nonce, done: false })
    }

    /// Forgets `address`'s cached nonce: the next one is asked of the node (once
    /// every taken nonce is settled).
    pub fn resync(&self, address: Address) {
        self.inner.lock().entry(address).or_default().stale = true;
        self.inner.settled.notify_waiters();
    }

    /// Nonces of `address` taken and not settled (for tests and diagnostics).
    pub fn unsettled(&self, address: Address) -> usize {
        self.inner.lock().get(&address).map_or(0, |a| a.taken.len())
    }

    async fn next<P, N>(&self, provider: &P, address: Address, track: bool) -> TransportResult<u64>
    where
        P: Provider<N>,
        N: Network,
    {
        loop {
            // Registered before the state is read, so a settle in between is not missed.
            let settled = self.inner.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let wait = {
                let mut accounts = self.inner.lock();
                let account = accounts.entry(address).or_default();
                if account.stale && account.taken.is_empty() {
                    account.next = None;
                    account.stale = false;
                }
                if !account.stale
                    && let Some(nonce) = account.hand_out(track)
                {
                    return Ok(nonce);
                }
                account.stale
            };
            if wait {
                settled.await;
                continue;
            }
            // Ask the node, one fetch at a time; whoever fetched first fills the
            // cache and the others find it on their next turn.
            let _fetch = self.inner.fetch.lock().await;
            if self.inner.lock().get(&address).is_some_and(|a| a.next.is_some() || a.stale) {
                continue;
            }
            let pending = provider.get_transaction_count(address).pending().await?;
            let mut accounts = self.inner.lock();
            let account = accounts.entry(address).or_default();
            if account.next.is_none() && !account.stale {
                account.next = Some(pending);
                account.sent.retain(|n| *n >= pending);
            }
        }
    }
}

/// For sends that fill their nonce through the provider (not [`ResyncNonceManager::take`]):
/// such a nonce is not tracked, as if it were sent at once.
#[async_trait::async_trait]
impl NonceManager for ResyncNonceManager {
    async fn get_next_nonce<P, N>(&self, provider: &P, address: Address) -> TransportResult<u64>
    where
        P: Provider<N>,
        N: Network,
    {
        self.next(provider, address, false).await
    }
}
