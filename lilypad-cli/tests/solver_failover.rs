//! Solver replicas on one PostgreSQL database (issue #16): two `lilypad-cli solver`
//! processes with the same key on a fresh database of the server at
//! `LILYPAD_TEST_POSTGRES_URL` (scripts/setup-postgres.sh starts one; a missing
//! variable fails the test), against a real devnet (anvil from node_modules,
//! installed by scripts/setup-contracts.sh). One replica holds the lease and
//! matches; offers posted to the other wait in the database for it. A `kill -9`
//! of the leader must hand matching to the other replica: every offer is then
//! matched exactly once or still open, and no deal is created twice.

mod common;
#[path = "common/solver.rs"]
mod solver;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::{Duration, Instant},
};

use alloy::primitives::{B256, U256};
use common::{Proc, eventually};
use futures::StreamExt;
use lilypad_sdk::{
    chain::{SignedJobOffer, SignedResourceOffer},
    devnet::{self, Devnet},
    solver::api::{EventKind, Health, OfferState, SolverEvent},
};
use solver::{
    Backend, DealOnChain, INPUTS, PROVIDER2, SolverDb, SolverProc, approved_devnet, client,
    deals_created, job_of, resource, signed_job_of, signed_resource,
};

/// The job creators, taken in turn: the devnet's and a funded spare account.
const CREATORS: [usize; 2] = [devnet::JOB_CREATOR, 9];
/// The providers, taken in turn.
const PROVIDERS: [usize; 2] = [devnet::PROVIDER, PROVIDER2];
/// The bound on a handover: from the leader's `kill -9` until a deal of an
/// offer posted after it exists on chain.
const HANDOVER_BOUND: Duration = Duration::from_secs(10);
/// The test polls statuses of every offer: the default per-signer limit would
/// throttle it.
const LIMITS: &[&str] = &["--signer-rate", "1000", "--signer-burst", "1000"];

/// The replica at `url`'s health (with the lease as it sees it); `None` when it
/// does not answer.
async fn health(url: &str) -> Option<Health> {
    client(url, devnet::JOB_CREATOR).health().await.ok()
}

/// A job offer and a resource offer that match each other (and any other pair's):
/// pair `i` is creator `CREATORS[i % 2]`'s job and provider `PROVIDERS[i % 2]`'s
/// one-GPU machine.
struct Pair {
    job: SignedJobOffer,
    job_signer: usize,
    resource: SignedResourceOffer,
    provider: usize,
}

impl Pair {
    fn new(net: &Devnet, i: u64) -> Self {
        let (creator, provider) = (CREATORS[i as usize % 2], PROVIDERS[i as usize % 2]);
        Self {
            job: signed_job_of(net, creator, &job_of(creator, i, 1)),
            job_signer: creator,
            resource: signed_resource(net, provider, &resource(provider, i)),
            provider,
        }
    }

    /// Posts the job to `job_url` and the resource offer to `resource_url`; each is
    /// taken in (`open`, or `matching` at a leader), never refused.
    async fn post(&self, job_url: &str, resource_url: &str) {
        let r = client(job_url, self.job_signer)
            .post_job_offer(&self.job, INPUTS)
            .await
            .unwrap_or_else(|e| panic!("post job {} to {job_url}: {e}", self.job.id));
        assert!(matches!(r.state, OfferState::Open | OfferState::Matching), "job {r:?}");
        let r = client(resource_url, self.provider)
            .post_resource_offer(&self.resource)
            .await
            .unwrap_or_else(|e| {
                panic!("post resource {} to {resource_url}: {e}", self.resource.id)
            });
        assert!(matches!(r.state, OfferState::Open | OfferState::Matching), "resource {r:?}");
    }

    /// The job's and the resource offer's state and deal as the replica at `url`
    /// tells them.
    async fn states(&self, url: &str) -> [(OfferState, Option<B256>); 2] {
        let j = client(url, self.job_signer).job_offer(self.job.id).await;
        let j = j.unwrap_or_else(|e| panic!("status of job {}: {e}", self.job.id));
        let r = client(url, self.provider).resource_offer(self.resource.id).await;
        let r = r.unwrap_or_else(|e| panic!("status of resource {}: {e}", self.resource.id));
        [(j.state, j.deal_id), (r.state, r.deal_id)]
    }
}

/// Waits (up to 30 s) until every replica at `urls` answers and they agree on one
/// leader among them; returns its index in `urls` and every replica's health.
async fn one_leader(urls: &[&str]) -> (usize, Vec<Health>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        seen.clear();
        for url in urls {
            seen.push(health(url).await);
        }
        let leaders: Vec<usize> =
            (0..seen.len()).filter(|i| seen[*i].as_ref().is_some_and(|h| h.is_leader)).collect();
        if let &[i] = leaders.as_slice()
            && let Some(id) = seen[i].as_ref().and_then(|h| h.replica.clone())
            && seen.iter().all(|h| h.as_ref().is_some_and(|h| h.leader.as_ref() == Some(&id)))
        {
            return (i, seen.into_iter().flatten().collect());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leases: Vec<_> = seen
        .iter()
        .map(|h| h.as_ref().map(|h| (&h.backend, &h.replica, &h.leader, h.is_leader)))
        .collect();
    panic!(
        "after 30 s the replicas at {urls:?} do not agree on one leader; (backend, replica, \
         leader, is_leader) of each: {leases:?}"
    )
}

/// Starts a replica named `name` on `db`.
fn replica(net: &Devnet, db: &SolverDb, dir: &Path, name: &str) -> Proc {
    let log = dir.join(format!("solver-{name}.log"));
    SolverProc::start_replica(&net.network_file(), db, &log, LIMITS)
}

/// A devnet whose spare creator and provider approved the controller, and two
/// replicas on one fresh Postgres database.
fn two_replicas_and_spare_accounts()
-> (tempfile::TempDir, tokio::runtime::Runtime, Devnet, SolverDb, Proc, Proc) {
    let (dir, rt, net) = approved_devnet();
    rt.block_on(async {
        for spare in [CREATORS[1], PROVIDERS[1]] {
            net.account(spare).approve_controller(U256::from(1_000_000u64)).await.expect("approve");
        }
    });
    let db = SolverDb::new(Backend::Postgres, dir.path());
    let a = replica(&net, &db, dir.path(), "a");
    let b = replica(&net, &db, dir.path(), "b");
    (dir, rt, net, db, a, b)
}

#[test]
fn kill_9_of_the_leader_replica_hands_matching_over_within_10_s_and_matches_no_offer_twice() {
    let (dir, rt, net, db, a, b) = two_replicas_and_spare_accounts();
    let logs = |procs: &[&Proc]| {
        procs.iter().map(|p| format!("--- {}:\n{}", p.log.display(), p.log())).collect::<String>()
    };
    let pairs: Vec<Pair> = (0..24).map(|i| Pair::new(&net, i)).collect();

    // 1. One leader; every pair's job goes to one replica and its resource offer to
    // the other, so the leader matches offers the follower took in.
    let (leader_at, healths) = rt.block_on(one_leader(&[&a.url, &b.url]));
    assert!(healths.iter().all(|h| h.backend == "postgres"), "{healths:?}");
    let (leader, survivor) = if leader_at == 0 { (a, b) } else { (b, a) };
    let urls = [leader.url.clone(), survivor.url.clone()];
    rt.block_on(async {
        for (i, p) in pairs[..6].iter().enumerate() {
            p.post(&urls[i % 2], &urls[(i + 1) % 2]).await;
        }
        eventually("the first six pairs' deals", 30, || async {
            let on_chain = deals_created(net.client()).await;
            let jobs: BTreeSet<B256> = on_chain.iter().map(|d| d.job_offer_id).collect();
            pairs[..6].iter().all(|p| jobs.contains(&p.job.id)).then_some(())
        })
        .await;

        // 2. Six more pairs in quick succession, and the leader dies with them in
        // flight (taken in, matching, or with a createDeal sent).
        for (i, p) in pairs[6..12].iter().enumerate() {
            p.post(&urls[i % 2], &urls[(i + 1) % 2]).await;
        }
    });
    let dealt = rt.block_on(deals_created(net.client())).len();
    println!("at the kill: {dealt} deals on chain of the 12 pairs posted");
    let killed_log = leader.log.clone();
    leader.kill9();
    let killed = Instant::now();

    // 3. A pair posted to the survivor right after the kill: its deal must exist on
    // chain within the bound.
    let (took_lease, first_deal) = rt.block_on(async {
        let probe = &pairs[12];
        probe.post(&survivor.url, &survivor.url).await;
        let (mut took_lease, mut first_deal) = (None, None);
        while took_lease.is_none() || first_deal.is_none() {
            if took_lease.is_none() && health(&survivor.url).await.is_some_and(|h| h.is_leader) {
                took_lease = Some(killed.elapsed());
            }
            if first_deal.is_none()
                && deals_created(net.client()).await.iter().any(|d| {
                    d.job_offer_id == probe.job.id || d.resource_offer_id == probe.resource.id
                })
            {
                first_deal = Some(killed.elapsed());
            }
            assert!(
                killed.elapsed() < 3 * HANDOVER_BOUND,
                "{:.1} s after the kill: the survivor holds the lease: {took_lease:?}, a deal of \
                 the pair posted after the kill: {first_deal:?}\n{}",
                killed.elapsed().as_secs_f64(),
                logs(&[&survivor])
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (took_lease.unwrap_or_default(), first_deal.unwrap_or_default())
    });
    println!(
        "handover after kill -9 of the leader: the survivor took the lease after {:.2} s, the \
         first deal of an offer posted after the kill was on chain after {:.2} s (bound {} s)",
        took_lease.as_secs_f64(),
        first_deal.as_secs_f64(),
        HANDOVER_BOUND.as_secs()
    );
    assert!(
        first_deal < HANDOVER_BOUND,
        "matching resumed {:.2} s after the kill, over the {} s bound\n{}",
        first_deal.as_secs_f64(),
        HANDOVER_BOUND.as_secs(),
        logs(&[&survivor])
    );

    // 4. The stream goes on at the survivor; then the killed replica comes back and
    // joins as a follower whose offers the survivor matches.
    rt.block_on(async {
        for p in &pairs[13..20] {
            p.post(&survivor.url, &survivor.url).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let back = replica(&net, &db, dir.path(), "restarted");
    let (leader_at, _) = rt.block_on(one_leader(&[&survivor.url, &back.url]));
    assert_eq!(leader_at, 0, "the survivor keeps the lease when the other replica comes back");
    rt.block_on(async {
        for (i, p) in pairs[20..].iter().enumerate() {
            let resource_at = if i % 2 == 0 { &back.url } else { &survivor.url };
            p.post(&back.url, resource_at).await;
        }
    });

    // 5. Settled: nothing is being matched, and no job and resource offer (any two of
    // which match) rest together.
    let states = rt.block_on(eventually("every offer to settle", 30, || async {
        let mut states = Vec::new();
        for p in &pairs {
            states.push(p.states(&survivor.url).await);
        }
        let open = |k: usize| states.iter().any(|s| s[k].0 == OfferState::Open);
        let matching = states.iter().flatten().any(|s| s.0 == OfferState::Matching);
        let unmatched_pair = open(0) && open(1);
        (!matching && !unmatched_pair).then_some(states)
    }));

    // 6. Every offer is in exactly one deal on chain and says so, or still open;
    // no deal twice, no offer in two deals.
    let on_chain: Vec<DealOnChain> = rt.block_on(deals_created(net.client()));
    let ids: BTreeSet<B256> = on_chain.iter().map(|d| d.deal_id).collect();
    assert_eq!(ids.len(), on_chain.len(), "a deal was created twice: {on_chain:#?}");
    let mut deals_of: BTreeMap<B256, Vec<B256>> = BTreeMap::new();
    for d in &on_chain {
        deals_of.entry(d.job_offer_id).or_default().push(d.deal_id);
        deals_of.entry(d.resource_offer_id).or_default().push(d.deal_id);
    }
    let posted: BTreeSet<B256> = pairs.iter().flat_map(|p| [p.job.id, p.resource.id]).collect();
    let mut problems = Vec::new();
    for (offer, deals) in &deals_of {
        if deals.len() > 1 {
            problems.push(format!("offer {offer} is in {} deals: {deals:?}", deals.len()));
        }
        if !posted.contains(offer) {
            problems.push(format!("deal {deals:?} took offer {offer}, which nobody posted"));
        }
    }
    let mut resting = 0;
    for (i, (p, s)) in pairs.iter().zip(&states).enumerate() {
        for ((kind, id), (state, deal)) in
            [("job", p.job.id), ("resource", p.resource.id)].iter().zip(s)
        {
            match (deals_of.get(id).map(Vec::as_slice), state) {
                (Some([on_chain]), OfferState::Matched) if *deal == Some(*on_chain) => {}
                (None, OfferState::Open) => resting += 1,
                (chain, _) => problems.push(format!(
                    "pair {i}'s {kind} offer {id}: the survivor says {state:?} with deal \
                     {deal:?}, the chain has deals {chain:?}"
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "after the handover:\n{}\n{}--- the killed leader's log:\n{}",
        problems.join("\n"),
        logs(&[&survivor, &back]),
        std::fs::read_to_string(&killed_log).unwrap_or_default()
    );
    println!(
        "{} offers posted: {} deals on chain, each offer in at most one; {resting} offers open",
        posted.len(),
        on_chain.len()
    );
    drop((survivor, back, db));
}

/// The events of `stream` until one satisfies `last` (up to 20 s).
async fn events_until(
    stream: impl futures::Stream<Item = Result<SolverEvent, lilypad_sdk::solver::SolverError>>,
    last: impl Fn(&SolverEvent) -> bool,
) -> Vec<SolverEvent> {
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(e))) => {
                let done = last(&e);
                out.push(e);
                if done {
                    return out;
                }
            }
            Ok(Some(Err(e))) => panic!("event stream: {e} (after {out:?})"),
            Ok(None) => panic!("the event stream ended after {out:?}"),
            Err(_) => panic!("no awaited event within 20 s; got {out:?}"),
        }
    }
}

#[test]
fn a_follower_replica_streams_the_leaders_events_resumes_them_on_the_leader_and_counts_offers_alike()
 {
    let (dir, rt, net) = approved_devnet();
    let db = SolverDb::new(Backend::Postgres, dir.path());
    let a = replica(&net, &db, dir.path(), "a");
    let b = replica(&net, &db, dir.path(), "b");
    let (leader_at, _) = rt.block_on(one_leader(&[&a.url, &b.url]));
    let (leader, follower) = if leader_at == 0 { (&a, &b) } else { (&b, &a) };
    let pair = Pair::new(&net, 0);
    let creator = pair.job_signer;
    rt.block_on(async {
        // Subscribed at the follower before anything happens; the deal is recorded
        // by the leader, whose writes reach this stream only through the database.
        let stream = client(&follower.url, creator).events(None);
        let collect = tokio::spawn(events_until(stream, |e| {
            matches!(e.kind, EventKind::DealCreated { .. })
        }));
        pair.post(&follower.url, &leader.url).await;
        let seen = collect.await.expect("collect task");
        let accepted = seen
            .iter()
            .find(|e| {
                matches!(&e.kind, EventKind::OfferAccepted { offer_id, .. } if *offer_id == pair.job.id)
            })
            .unwrap_or_else(|| panic!("no offer_accepted of the job at the follower: {seen:?}"));
        let created = seen.last().expect("the deal_created event");
        let EventKind::DealCreated { deal, .. } = &created.kind else { unreachable!() };
        assert_eq!(deal.job_offer_id, pair.job.id, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq), "seqs grow: {seen:?}");

        // Resumed on the other replica from the first event: the same events, with
        // the same seqs, from there on.
        let resumed = events_until(client(&leader.url, creator).events(Some(accepted.seq)), |e| {
            e.seq == created.seq
        })
        .await;
        let tail: Vec<_> = seen.iter().filter(|e| e.seq > accepted.seq).cloned().collect();
        assert_eq!(resumed, tail, "resumed on the leader after seq {}", accepted.seq);

        // A resource offer left waiting: both replicas' health counts it alike (the
        // follower from the database).
        let lone = Pair::new(&net, 1);
        client(&follower.url, lone.provider)
            .post_resource_offer(&lone.resource)
            .await
            .expect("post a lone resource offer");
        let counts = |h: &Health| (h.open_jobs, h.open_resources, h.offered);
        let (l, f) = eventually("both replicas to count the waiting offer", 10, || async {
            let l = health(&leader.url).await?;
            let f = health(&follower.url).await?;
            (l.open_resources == 1 && f.open_resources == 1).then_some((l, f))
        })
        .await;
        assert_eq!(counts(&l), counts(&f), "leader {l:?} follower {f:?}");
        assert_eq!((l.offered.providers, l.offered.gpus), (1, 1), "{l:?}");
        assert!(l.is_leader && !f.is_leader);
    });
    drop((a, b, db));
}

/// Sends `signal` (`STOP`, `CONT`) to `p` with kill(1).
fn signal(p: &Proc, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &p.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{signal}");
}

#[test]
fn a_leader_frozen_past_its_lease_steps_aside_when_it_wakes_and_no_offer_is_matched_twice() {
    let (_dir, rt, net, db, a, b) = two_replicas_and_spare_accounts();
    let (leader_at, _) = rt.block_on(one_leader(&[&a.url, &b.url]));
    let (frozen, other) = if leader_at == 0 { (&a, &b) } else { (&b, &a) };
    let pairs: Vec<Pair> = (0..8).map(|i| Pair::new(&net, i)).collect();

    // The leader stops dead (a long GC pause, a VM migration) with offers taken in at
    // both replicas but not matched yet as far as the other can tell.
    rt.block_on(async {
        pairs[0].post(&frozen.url, &other.url).await;
        pairs[1].post(&other.url, &frozen.url).await;
    });
    signal(frozen, "STOP");
    let (other_leads, _) = rt.block_on(one_leader(&[&other.url]));
    assert_eq!(other_leads, 0);
    rt.block_on(async {
        for p in &pairs[2..5] {
            p.post(&other.url, &other.url).await;
        }
    });

    // It wakes up believing it leads: its renewal finds the lease taken, and any
    // write it still makes under the old epoch is refused. It must step aside, and
    // the offers posted to it afterwards are matched by the new leader.
    signal(frozen, "CONT");
    let (leader_at, _) = rt.block_on(one_leader(&[&other.url, &frozen.url]));
    assert_eq!(leader_at, 0, "the woken replica must follow the new leader");
    rt.block_on(async {
        for p in &pairs[5..] {
            p.post(&frozen.url, &frozen.url).await;
        }
    });
    let states = rt.block_on(eventually("every pair's deal", 30, || async {
        let mut states = Vec::new();
        for p in &pairs {
            states.push(p.states(&other.url).await);
        }
        states.iter().flatten().all(|s| s.0 == OfferState::Matched).then_some(states)
    }));
    let on_chain = rt.block_on(deals_created(net.client()));
    let ids: BTreeSet<B256> = on_chain.iter().map(|d| d.deal_id).collect();
    assert_eq!(ids.len(), on_chain.len(), "a deal was created twice: {on_chain:#?}");
    let mut offers = BTreeSet::new();
    for d in &on_chain {
        assert!(offers.insert(d.job_offer_id), "job offer {} in two deals", d.job_offer_id);
        assert!(offers.insert(d.resource_offer_id), "offer {} in two deals", d.resource_offer_id);
    }
    assert_eq!(on_chain.len(), pairs.len(), "one deal per pair: {on_chain:#?} {states:?}");
    drop((a, b, db));
}

/// A PostgreSQL cluster of this test's own (scripts/setup-postgres.sh with
/// `LILYPAD_PG_DIR`), so that it can be restarted without touching the server the
/// other tests share; stopped and removed at the end.
struct OwnCluster {
    dir: std::path::PathBuf,
    url: String,
}

impl OwnCluster {
    fn start() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        // Under /tmp and world-readable: as root the server runs as another user.
        let dir = std::env::temp_dir().join(format!("lilypad-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut c = Self { dir, url: String::new() };
        c.url = c.script(None);
        c
    }

    /// Runs scripts/setup-postgres.sh (with `arg`) on this cluster; its stdout.
    fn script(&self, arg: Option<&str>) -> String {
        let out = std::process::Command::new("bash")
            .arg(common::repo_root().join("scripts/setup-postgres.sh"))
            .args(arg)
            .env("LILYPAD_PG_DIR", &self.dir)
            .env("LILYPAD_PG_PORT", "56300")
            .output()
            .expect("run scripts/setup-postgres.sh");
        assert!(
            out.status.success(),
            "scripts/setup-postgres.sh {arg:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(common::repo_root().join("scripts/setup-postgres.sh"))
            .arg("--stop")
            .env("LILYPAD_PG_DIR", &self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_solver_rides_out_a_restart_of_its_postgres_server_and_loses_no_offer() {
    let (dir, rt, net) = approved_devnet();
    let cluster = OwnCluster::start();
    let db = SolverDb::fresh_on(&cluster.url);
    let solver = SolverProc::start(&net.network_file(), &db, &dir.path().join("s.log"), LIMITS);
    let pair = Pair::new(&net, 0);
    rt.block_on(async {
        let r = client(&solver.url, pair.job_signer).post_job_offer(&pair.job, INPUTS).await;
        assert_eq!(r.expect("post job").state, OfferState::Open);
    });

    // The server goes down and comes back (a failover of the database, an upgrade):
    // every connection the solver had is gone.
    cluster.script(Some("--stop"));
    let again = cluster.script(None);
    assert_eq!(again, cluster.url, "the cluster came back on another port");
    let back = Instant::now();

    // The solver takes offers again (a request may fail while it reconnects: the
    // poster tries again; an offer stored by an answer that was lost is a 409), and
    // the job stored before the restart meets the new resource offer.
    rt.block_on(async {
        let rp = client(&solver.url, pair.provider);
        eventually("the solver to take offers again", 30, || async {
            match rp.post_resource_offer(&pair.resource).await {
                Ok(_) => Some(()),
                Err(e) if e.to_string().contains("posted already") => Some(()),
                Err(_) => None,
            }
        })
        .await;
        let jc = client(&solver.url, pair.job_signer);
        let deal = eventually("the deal of the job stored before the restart", 30, || async {
            let s = jc.job_offer(pair.job.id).await.ok()?;
            (s.state == OfferState::Matched).then_some(s.deal_id).flatten()
        })
        .await;
        let on_chain = deals_created(net.client()).await;
        assert_eq!(on_chain.len(), 1, "{on_chain:#?}");
        assert_eq!(on_chain[0].deal_id, deal);
    });
    println!(
        "after the database restart: deal of the old job {:.1} s after the server was back",
        back.elapsed().as_secs_f64()
    );
    drop((solver, db, cluster));
}
