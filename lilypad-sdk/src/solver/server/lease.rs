//! Replicas on a shared (Postgres) database: the lease that says which one matches.
//!
//! Every replica serves the API and stores offers. Exactly one, the holder of the
//! lease row (`leader` table, renewed on the database's clock), runs a term
//! ([`super::lead`]): the matcher, the dealer (`createDeal`), the chain follower and
//! the sweeper. Its leader-only writes are fenced by the lease's epoch
//! ([`super::Term::fence`]), so a replica that lost the lease can never record a
//! pair or a deal. A dead leader's lease expires after [`TTL`]; another replica
//! takes it within [`RENEW_EVERY`] and rebuilds the matcher from the database.
//!
//! ```text
//!  renewer ──(every 1 s: take or renew, TTL 5 s)──> held: watch<Option<epoch>>
//!                                                        │
//!  manager <── step_down (a fenced write was refused) ───┤
//!     │ held = Some(e), no term of e  ─> lead(e)         │
//!     │ held = None                   ─> step aside      │
//! ```

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{State, Term, lead, step_aside, stopped};

/// How long a lease lasts from its last renewal.
pub(crate) const TTL: Duration = Duration::from_secs(5);
/// How often the holder renews, and a follower tries to take it.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often a replica looks for events other replicas wrote.
const LOG_POLL: Duration = Duration::from_millis(250);

/// The intervals a term's tasks run at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// The dealer's retries and the sweeper.
    pub(crate) tick: Duration,
    /// The chain follower's pause between empty scans.
    pub(crate) poll: Duration,
}

/// Takes or renews the lease every [`RENEW_EVERY`]; publishes the epoch held
/// (`None`: another replica holds it, or no renewal succeeded for a [`TTL`]).
async fn renew(state: Arc<State>, held: watch::Sender<Option<u64>>) {
    let mut ticks = tokio::time::interval(RENEW_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed: Option<Instant> = None;
    loop {
        ticks.tick().await;
        let asked = Instant::now();
        let taken =
            tokio::time::timeout(RENEW_EVERY, state.store.take_lease(&state.replica, TTL)).await;
        let now = match taken {
            Ok(Ok(Some(lease))) => {
                // Counted from when it was asked: the database's clock started then at the latest.
                renewed = Some(asked);
                Some(lease.epoch)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!("lease: {e}");
                lapsed(renewed, *held.borrow())
            }
            Err(_) => {
                tracing::warn!("lease: the database did not answer within {RENEW_EVERY:?}");
                lapsed(renewed, *held.borrow())
            }
        };
        held.send_if_modified(|h| {
            let changed = *h != now;
            *h = now;
            changed
        });
    }
}

/// What is still held when a renewal failed: the epoch, until a [`TTL`] (less a
/// renewal's time, for the clocks) has passed since the last renewal.
fn lapsed(renewed: Option<Instant>, held: Option<u64>) -> Option<u64> {
    renewed.filter(|at| at.elapsed() + RENEW_EVERY < TTL).and(held)
}

/// Runs this replica's terms until shutdown: leads while it holds the lease, steps
/// aside when it loses it or a fenced write is refused; at shutdown gives the lease
/// up, so that another replica takes over at once.
pub(super) async fn run(
    state: Arc<State>,
    mut refused: mpsc::UnboundedReceiver<u64>,
    timing: Timing,
) {
    let (held_tx, mut held) = watch::channel(None);
    let renewer = tokio::spawn(renew(state.clone(), held_tx));
    let mut stop = state.shutdown.clone();
    let mut term: Option<(u64, Vec<JoinHandle<()>>)> = None;
    loop {
        tokio::select! {
            r = held.changed() => if r.is_err() { break },
            Some(epoch) = refused.recv() => {
                if let Some((e, tasks)) = term.take_if(|(e, _)| *e == epoch) {
                    tracing::warn!(epoch = e, "a leader-only write was refused: stepping aside");
                    step_aside(&state, tasks).await;
                }
            }
            _ = stopped(&mut stop) => break,
        }
        let want = *held.borrow_and_update();
        match (want, &term) {
            (Some(e), Some((t, _))) if e == *t => {}
            (Some(epoch), _) => {
                if let Some((_, tasks)) = term.take() {
                    step_aside(&state, tasks).await;
                }
                let started = Instant::now();
                tracing::info!(replica = %state.replica, epoch, "took the lease: rebuilding the matcher from the database");
                let t = Term { replica: state.replica.clone(), epoch };
                let led = tokio::select! {
                    led = lead(&state, t, timing) => led,
                    _ = stopped(&mut stop) => break,
                };
                match led {
                    Ok(tasks) => {
                        tracing::info!(epoch, ms = started.elapsed().as_millis() as u64, "leading");
                        term = Some((epoch, tasks));
                    }
                    Err(e) => {
                        tracing::warn!(epoch, "cannot lead: {e}");
                        step_aside(&state, Vec::new()).await;
                        // The lease is still held: try again after a pause.
                        tokio::time::sleep(RENEW_EVERY).await;
                        held.mark_changed();
                    }
                }
            }
            (None, Some(_)) => {
                if let Some((e, tasks)) = term.take() {
                    tracing::warn!(epoch = e, "lost the lease: another replica leads");
                    step_aside(&state, tasks).await;
                }
            }
            (None, None) => {}
        }
    }
    renewer.abort();
    let _ = renewer.await;
    if let Some((_, tasks)) = term.take() {
        step_aside(&state, tasks).await;
    }
    match state.store.release_lease(&state.replica).await {
        Ok(true) => tracing::info!("gave the lease up"),
        Ok(false) => {}
        Err(e) => tracing::warn!("cannot give the lease up (it expires in {TTL:?}): {e}"),
    }
}

/// Publishes the newest event `seq` of the shared database every [`LOG_POLL`], so
/// that event streams on this replica also carry the events other replicas wrote.
pub(super) async fn watch_log(state: Arc<State>, moved: watch::Sender<u64>) {
    let mut stop = state.shutdown.clone();
    let mut ticks = tokio::time::interval(LOG_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        match state.store.heads().await {
            Ok((_, events)) => {
                moved.send_if_modified(|m| {
                    let changed = *m != events;
                    *m = events;
                    changed
                });
            }
            Err(e) => tracing::debug!("event log head: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_kept_through_failed_renewals_only_until_its_ttl_less_a_renewal() {
        assert_eq!(lapsed(Some(Instant::now()), Some(3)), Some(3));
        assert_eq!(lapsed(None, Some(3)), None);
        let long_ago = Instant::now() - (TTL - RENEW_EVERY);
        assert_eq!(lapsed(Some(long_ago), Some(3)), None);
        assert_eq!(lapsed(Some(Instant::now()), None), None);
    }
}
