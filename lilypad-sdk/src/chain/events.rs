//! Event streams: alloy's filter watchers, and a polling fallback over `eth_getLogs`.
//!
//! [`ChainClient::watch`] uses `eth_newFilter` + `eth_getFilterChanges` (alloy's
//! `Event::watch`): light, but the filter lives on one node and dies with it (or
//! after a failover, or a node's filter timeout). [`LogPoller`] keeps its own block
//! cursor and asks `eth_getLogs` for block ranges, so it survives restarts (persist
//! [`LogPoller::cursor`]) and node changes. Neither waits for confirmations: on a
//! chain that reorganises, consumers should re-check state before acting.

use std::{collections::VecDeque, time::Duration};

use alloy::{
    contract::Event,
    primitives::Log as PrimitiveLog,
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::{SolEvent, SolEventInterface},
};
use futures::{Stream, StreamExt, stream::BoxStream};

use super::{
    bindings::controller::LilypadController::LilypadControllerEvents,
    client::{ChainClient, Contract},
    error::{ChainError, Result},
};

/// Any event of the controller (`DealCreated`, `ResultsSubmitted`, ...).
pub type ControllerEvent = LilypadControllerEvents;

/// Polls a contract's logs from a block cursor with `eth_getLogs`, in chunks of
/// `rpc.log_chunk_blocks`.
#[derive(Debug)]
pub struct LogPoller<T> {
    client: ChainClient,
    filter: Filter,
    next_block: u64,
    decode: fn(&PrimitiveLog) -> Option<T>,
}

impl<T> LogPoller<T> {
    pub(crate) fn new(
        client: ChainClient,
        filter: Filter,
        next_block: u64,
        decode: fn(&PrimitiveLog) -> Option<T>,
    ) -> Self {
        Self { client, filter, next_block, decode }
    }

    /// The next block this poller will scan; persist it to resume after a restart.
    pub fn cursor(&self) -> u64 {
        self.next_block
    }

    /// Scans the next chunk of blocks up to the chain head and returns its decoded logs
    /// in chain order (empty when there is nothing new).
    pub async fn next_batch(&mut self) -> Result<Vec<(T, Log)>> {
        let head = self.client.block_number().await?;
        self.next_batch_until(head).await
    }

    /// Like [`Self::next_batch`], but scans no block after `last_block` (for instance the
    /// head minus some confirmations); empty when the cursor is past it.
    pub async fn next_batch_until(&mut self, last_block: u64) -> Result<Vec<(T, Log)>> {
        if self.next_block > last_block {
            return Ok(Vec::new());
        }
        let chunk = self.client.config().rpc.log_chunk_blocks.max(1);
        let to = last_block.min(self.next_block.saturating_add(chunk - 1));
        let filter = self.filter.clone().from_block(self.next_block).to_block(to);
        let logs =
            self.client.rpc_call("eth_getLogs", self.client.provider().get_logs(&filter)).await?;
        self.next_block = to + 1;
        Ok(logs.into_iter().filter_map(|l| (self.decode)(&l.inner).map(|t| (t, l))).collect())
    }

    /// Whether the cursor has passed the chain head as of the last batch.
    async fn caught_up(&self) -> bool {
        self.client.block_number().await.is_ok_and(|head| self.next_block > head)
    }

    /// An endless stream of decoded logs; between scans that find nothing it waits
    /// `rpc.max_receipt_poll_ms`. Errors are yielded and polling goes on.
    pub fn into_stream(self) -> BoxStream<'static, Result<(T, Log)>>
    where
        T: Send + 'static,
    {
        let pause = Duration::from_millis(self.client.config().rpc.max_receipt_poll_ms.max(10));
        let state = (self, VecDeque::new(), false);
        futures::stream::unfold(state, move |(mut poller, mut buffer, mut idle)| async move {
            loop {
                if let Some(item) = buffer.pop_front() {
                    return Some((Ok(item), (poller, buffer, idle)));
                }
                if idle {
                    tokio::time::sleep(pause).await;
                }
                match poller.next_batch().await {
                    Ok(batch) => {
                        idle = batch.is_empty() && poller.caught_up().await;
                        buffer.extend(batch);
                    }
                    Err(e) => return Some((Err(e), (poller, buffer, true))),
                }
            }
        })
        .boxed()
    }
}

fn decode_event<E: SolEvent>(log: &PrimitiveLog) -> Option<E> {
    E::decode_log(log).ok().map(|l| l.data)
}

fn decode_controller(log: &PrimitiveLog) -> Option<ControllerEvent> {
    ControllerEvent::decode_raw_log(log.topics(), &log.data.data).ok()
}

impl ChainClient {
    /// A [`LogPoller`] of event `E` of `contract`, from block `from_block`.
    pub fn poll_events<E: SolEvent>(&self, contract: Contract, from_block: u64) -> LogPoller<E> {
        LogPoller {
            client: self.clone(),
            filter: Filter::new()
                .address(self.address_of(contract))
                .event_signature(E::SIGNATURE_HASH),
            next_block: from_block,
            decode: decode_event::<E>,
        }
    }

    /// A [`LogPoller`] of every controller event from block `from_block`.
    pub fn poll_controller_events(&self, from_block: u64) -> LogPoller<ControllerEvent> {
        LogPoller {
            client: self.clone(),
            filter: Filter::new().address(self.config().contracts.controller),
            next_block: from_block,
            decode: decode_controller,
        }
    }

    /// A stream of new `E` events of `contract` through an `eth_newFilter` watcher
    /// (alloy's `Event::watch`); see the module docs for when to prefer [`LogPoller`].
    pub async fn watch<E: SolEvent + Send + 'static>(
        &self,
        contract: Contract,
    ) -> Result<impl Stream<Item = Result<(E, Log)>> + Send + 'static> {
        let address = self.address_of(contract);
        let event = Event::<_, E>::new_sol(self.provider(), &address);
        let poller = self.rpc_call("eth_newFilter", event.watch()).await?;
        Ok(poller
            .into_stream()
            .map(|r| r.map_err(|e| ChainError::Decode { call: "watch", message: e.to_string() })))
    }
}
