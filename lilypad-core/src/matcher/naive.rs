//! The reference matching pass, ported as is: the oracle of the tests and the
//! baseline of the benchmarks.
//!
//! Like the Go solver's `getMatchingDeals`, it takes every job offer, oldest
//! first, scans every resource offer, checks each unused one against the job,
//! collects the compatible ones, sorts them by price and takes the first. It
//! differs from the reference only where the reference was wrong: the
//! per-pair database query ("match decision") is gone (this crate does no
//! I/O), each resource offer is booked at most once, and ties on price go to
//! the oldest offer instead of depending on the database's row order.
//!
//! Cost: O(J x R) policy checks plus a sort of the compatible offers per job.

use super::{
    Match,
    policy::{self, NetworkModules},
};
use crate::offer::{JobOffer, OfferId, ResourceOffer};

/// Matches `jobs` against `resources`, both given oldest first, at `now`.
///
/// Each job, in order, takes the cheapest compatible resource offer not
/// taken yet (the oldest among equally cheap ones). Returns the matches in
/// the order they were made.
pub fn match_all(
    jobs: &[(OfferId, JobOffer)],
    resources: &[(OfferId, ResourceOffer)],
    network: &NetworkModules,
    now: u64,
) -> Vec<Match> {
    let mut used = vec![false; resources.len()];
    let mut matches = Vec::new();
    for (job_id, job) in jobs {
        let mut candidates = Vec::new();
        for (i, (_, resource)) in resources.iter().enumerate() {
            if used[i] {
                continue;
            }
            if let Ok(price) = policy::check(job, resource, network, now) {
                candidates.push((price, i));
            }
        }
        // Stable: equal prices keep insertion (age) order.
        candidates.sort_by_key(|&(price, _)| price);
        if let Some(&(price, i)) = candidates.first() {
            used[i] = true;
            matches.push(Match { job: *job_id, resource: resources[i].0, price });
        }
    }
    matches
}
