//! Token buckets keyed by signer or peer address.
//!
//! Written here rather than taken from a crate (`governor`) because it is 40
//! lines and the keys (a signer known only after its signature was recovered,
//! a peer IP from the socket) need nothing more; it keeps the solver's
//! dependency tree small.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// A rate: `per_sec` requests per second on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_sec: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets, one per key.
#[derive(Debug)]
pub(crate) struct Buckets<K> {
    rate: Rate,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    pub(crate) fn new(rate: Rate) -> Self {
        Self { rate, map: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key`, or says how long until one is available.
    pub(crate) fn take(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut map) = self.map.lock() else { return Ok(()) };
        let b = map.entry(key.clone()).or_insert(Bucket { tokens: self.rate.burst, at: now });
        let refill = now.duration_since(b.at).as_secs_f64() * self.rate.per_sec;
        b.tokens = (b.tokens + refill).min(self.rate.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / self.rate.per_sec.max(1e-9);
            Err(Duration::from_secs_f64(wait.min(3600.0)))
        }
    }

    /// Forgets keys whose bucket is full again (idle), so memory stays bounded by the
    /// keys active in the last `burst / per_sec` seconds.
    pub(crate) fn prune(&self) {
        let now = Instant::now();
        if let Ok(mut map) = self.map.lock() {
            let rate = self.rate;
            map.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_sec < rate.burst
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_then_refills() {
        let b = Buckets::new(Rate { per_sec: 1000.0, burst: 3.0 });
        for _ in 0..3 {
            b.take(&1).unwrap();
        }
        let wait = b.take(&1).unwrap_err();
        assert!(wait <= Duration::from_millis(1), "{wait:?}");
        b.take(&2).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        b.take(&1).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        b.prune();
        assert!(b.map.lock().unwrap().is_empty());
    }
}
