//! Unit tests of the matcher and the fixtures shared with the policy tests.

use std::collections::BTreeSet;

use alloy_primitives::{Address, B256, U256};

use super::*;
use crate::{
    offer::{ModuleId, ModulePolicy},
    spec::{Gpu, JobRequirements, MachineSpec},
};

pub(crate) fn addr(n: u8) -> Address {
    Address::repeat_byte(n)
}

pub(crate) fn module(n: u8) -> ModuleId {
    B256::repeat_byte(n)
}

fn id(n: u64) -> OfferId {
    B256::from(U256::from(n))
}

pub(crate) fn gpu_machine(vrams: &[u64]) -> MachineSpec {
    MachineSpec {
        cpu_millicores: 8000,
        ram_mib: 32768,
        disk_mib: 100_000,
        gpus: vrams
            .iter()
            .map(|&v| Gpu { vendor: "NVIDIA".into(), model: "X".into(), vram_mib: v })
            .collect(),
    }
}

/// A job for module 1, solver 3, mediator 9, max price 10, expiring at 1000.
pub(crate) fn job() -> JobOffer {
    JobOffer {
        creator: addr(1),
        module_id: module(1),
        inputs_hash: B256::repeat_byte(8),
        requirements: JobRequirements { cpu_millicores: 1000, ram_mib: 512, ..Default::default() },
        max_price: U256::from(10),
        payment_collateral: U256::from(20),
        timeout_secs: 600,
        bounds: Default::default(),
        mediators: [addr(9)].into(),
        solver: addr(3),
        target: None,
        expiry: 1000,
        nonce: U256::from(1),
    }
}

/// A CPU-only offer from provider 2 for any module at 5, solver 3, mediator 9.
pub(crate) fn resource() -> ResourceOffer {
    ResourceOffer {
        provider: addr(2),
        payout: Default::default(),
        spec: MachineSpec { cpu_millicores: 2000, ram_mib: 1024, disk_mib: 0, gpus: vec![] },
        modules: ModulePolicy::Any,
        default_price: U256::from(5),
        module_prices: Default::default(),
        timeout_collateral: U256::from(3),
        bounds: Default::default(),
        mediators: [addr(9)].into(),
        solver: addr(3),
        expiry: 1000,
        nonce: U256::from(1),
    }
}

fn priced(p: u64) -> ResourceOffer {
    ResourceOffer { default_price: U256::from(p), ..resource() }
}

/// Drops the offers handed back, keeping ids and price.
trait Deal {
    fn deal(self) -> Result<Option<Match>, AddError>;
}

impl Deal for Result<Option<Matched>, AddError> {
    fn deal(self) -> Result<Option<Match>, AddError> {
        self.map(|m| m.map(|m| m.deal))
    }
}

fn matched(job: u64, resource: u64, price: u64) -> Result<Option<Match>, AddError> {
    Ok(Some(Match { job: id(job), resource: id(resource), price: U256::from(price) }))
}

#[test]
fn job_takes_cheapest_then_oldest() {
    let mut m = Matcher::default();
    for (n, p) in [(1, 7), (2, 4), (3, 9), (4, 4), (5, 4)] {
        assert_eq!(m.add_resource(id(n), priced(p), 0).deal(), Ok(None));
    }
    assert_eq!(m.add_job(id(10), job(), 0).deal(), matched(10, 2, 4));
    assert_eq!(m.add_job(id(11), job(), 0).deal(), matched(11, 4, 4));
    assert_eq!(m.add_job(id(12), job(), 0).deal(), matched(12, 5, 4));
    assert_eq!(m.add_job(id(13), job(), 0).deal(), matched(13, 1, 7));
    assert_eq!(m.add_job(id(14), job(), 0).deal(), matched(14, 3, 9));
    assert_eq!(m.add_job(id(15), job(), 0).deal(), Ok(None));
    assert_eq!((m.job_count(), m.resource_count()), (1, 0));
}

#[test]
fn resource_goes_to_oldest_compatible_job() {
    let mut m = Matcher::default();
    let cheap = JobOffer { max_price: U256::from(2), ..job() };
    assert_eq!(m.add_job(id(1), cheap, 0).deal(), Ok(None));
    assert_eq!(m.add_job(id(2), job(), 0).deal(), Ok(None));
    assert_eq!(m.add_job(id(3), job(), 0).deal(), Ok(None));
    assert_eq!(m.add_resource(id(10), priced(5), 0).deal(), matched(2, 10, 5));
    assert_eq!(m.add_resource(id(11), priced(2), 0).deal(), matched(1, 11, 2));
    assert_eq!(m.add_resource(id(12), priced(5), 0).deal(), matched(3, 12, 5));
    assert_eq!(m.job_count(), 0);
}

#[test]
fn module_prices_override_the_default_both_ways() {
    let mut m = Matcher::default();
    // Cheap by default, dear for module 1: must not win, nor match at 1.
    let dear = ResourceOffer { module_prices: [(module(1), U256::from(50))].into(), ..priced(1) };
    // Dear by default, cheap for module 1: wins at 2.
    let special =
        ResourceOffer { module_prices: [(module(1), U256::from(2))].into(), ..priced(20) };
    let only = ResourceOffer { modules: ModulePolicy::Only([module(1)].into()), ..priced(3) };
    m.add_resource(id(1), dear, 0).unwrap();
    m.add_resource(id(2), only, 0).unwrap();
    m.add_resource(id(3), special, 0).unwrap();
    assert_eq!(m.add_job(id(10), job(), 0).deal(), matched(10, 3, 2));
    assert_eq!(m.add_job(id(11), job(), 0).deal(), matched(11, 2, 3));
    assert_eq!(m.add_job(id(12), job(), 0).deal(), Ok(None));
    // Another module gets the default price.
    let other = JobOffer { module_id: module(4), ..job() };
    assert_eq!(m.add_job(id(13), other, 0).deal(), matched(13, 1, 1));
}

#[test]
fn provider_allowlist_filters_modules() {
    let mut m = Matcher::default();
    let only = ResourceOffer { modules: ModulePolicy::Only([module(2)].into()), ..priced(1) };
    m.add_resource(id(1), only.clone(), 0).unwrap();
    assert_eq!(m.add_job(id(10), job(), 0).deal(), Ok(None));
    let j2 = JobOffer { module_id: module(2), ..job() };
    assert_eq!(m.add_job(id(11), j2.clone(), 0).deal(), matched(11, 1, 1));
    // And from the resource side.
    assert_eq!(m.add_job(id(12), j2, 0).deal(), Ok(None));
    assert_eq!(m.add_resource(id(2), only, 0).deal(), matched(12, 2, 1));
    assert_eq!(m.job_count(), 1);
}

#[test]
fn targeted_job_only_goes_to_its_provider() {
    let mut m = Matcher::default();
    let other = ResourceOffer { provider: addr(0x44), ..priced(1) };
    m.add_resource(id(1), other.clone(), 0).unwrap();
    m.add_resource(id(2), priced(8), 0).unwrap();
    let targeted = JobOffer { target: Some(addr(2)), ..job() };
    assert_eq!(m.add_job(id(10), targeted.clone(), 0).deal(), matched(10, 2, 8));
    // From the resource side: the cheap offer of another provider is ignored.
    assert_eq!(m.add_job(id(11), targeted, 0).deal(), Ok(None));
    assert_eq!(m.add_resource(id(3), other, 0).deal(), Ok(None));
    assert_eq!(m.add_resource(id(4), priced(9), 0).deal(), matched(11, 4, 9));
    // An untargeted job may use any provider.
    assert_eq!(m.add_job(id(12), job(), 0).deal(), matched(12, 1, 1));
}

#[test]
fn gpu_jobs_skip_small_machines_and_cpu_jobs_take_the_cheapest() {
    let mut m = Matcher::default();
    let cpu = priced(1);
    let small = ResourceOffer { spec: gpu_machine(&[8192]), ..priced(2) };
    let big = ResourceOffer { spec: gpu_machine(&[81920]), ..priced(3) };
    m.add_resource(id(1), cpu, 0).unwrap();
    m.add_resource(id(2), small, 0).unwrap();
    m.add_resource(id(3), big, 0).unwrap();
    let needs = |gpu_count, gpu_vram_mib| JobOffer {
        requirements: JobRequirements { gpu_count, gpu_vram_mib, ..job().requirements },
        ..job()
    };
    assert_eq!(m.add_job(id(10), needs(1, 40960), 0).deal(), matched(10, 3, 3));
    assert_eq!(m.add_job(id(11), needs(2, 1), 0).deal(), Ok(None));
    assert_eq!(m.add_job(id(12), needs(1, 1), 0).deal(), matched(12, 2, 2));
    assert_eq!(m.add_job(id(13), needs(0, 0), 0).deal(), matched(13, 1, 1));
    // The 2-GPU job waits for a 2-GPU machine.
    let two = ResourceOffer { spec: gpu_machine(&[8192, 8192]), ..priced(4) };
    assert_eq!(m.add_resource(id(4), two, 0).deal(), matched(11, 4, 4));
}

#[test]
fn network_policy_applies_to_both_sides() {
    let mut m = Matcher::new(NetworkModules { blocked: [module(1)].into(), allowed: None });
    m.add_resource(id(1), priced(1), 0).unwrap();
    assert_eq!(m.add_job(id(10), job(), 0).deal(), Ok(None));
    assert_eq!(m.add_resource(id(2), priced(1), 0).deal(), Ok(None));
    assert_eq!((m.job_count(), m.resource_count()), (1, 2));
    let why = m.explain_job(&id(10), 0).unwrap();
    assert_eq!(why.len(), 2);
    assert!(why.iter().all(|(_, e)| *e == Mismatch::ModuleBlockedByNetwork { module: module(1) }));
}

#[test]
fn duplicates_and_expired_offers_are_refused() {
    let mut m = Matcher::default();
    m.add_job(id(1), job(), 0).unwrap();
    assert_eq!(m.add_job(id(1), job(), 0).deal(), Err(AddError::Duplicate { id: id(1) }));
    assert_eq!(
        m.add_resource(id(2), priced(50), 1000).deal(),
        Err(AddError::Expired { id: id(2), expiry: 1000, now: 1000 })
    );
    let e = m.add_job(id(3), job(), 2000).unwrap_err();
    assert!(e.to_string().ends_with("expired at 1000, it is now 2000"), "{e}");
    assert_eq!((m.job_count(), m.resource_count()), (1, 0));
}

#[test]
fn expired_resting_offers_never_match_and_expire_drops_them() {
    let mut m = Matcher::default();
    m.add_resource(id(1), ResourceOffer { expiry: 100, ..priced(1) }, 0).unwrap();
    m.add_resource(id(2), priced(6), 0).unwrap();
    // Not yet dropped, but expired at 100: the job gets the dearer offer.
    assert_eq!(m.add_job(id(10), job(), 100).deal(), matched(10, 2, 6));
    m.add_job(id(11), JobOffer { expiry: 150, max_price: U256::ZERO, ..job() }, 100).unwrap();
    m.add_job(id(12), JobOffer { max_price: U256::ZERO, ..job() }, 100).unwrap();
    assert_eq!(m.expire(99), Expired::default());
    assert_eq!(m.expire(150), Expired { jobs: vec![id(11)], resources: vec![id(1)] });
    assert_eq!((m.job_count(), m.resource_count()), (1, 0));
    assert!(m.job(&id(12)).is_some());
}

#[test]
fn removed_offers_are_gone() {
    let mut m = Matcher::default();
    m.add_resource(id(1), priced(1), 0).unwrap();
    m.add_resource(id(2), priced(2), 0).unwrap();
    assert_eq!(m.remove_resource(&id(1)), Some(priced(1)));
    assert_eq!(m.remove_resource(&id(1)), None);
    assert_eq!(m.add_job(id(10), job(), 0).deal(), matched(10, 2, 2));
    m.add_job(id(11), job(), 0).unwrap();
    assert_eq!(m.remove_job(&id(11)), Some(job()));
    assert_eq!(m.add_resource(id(3), priced(1), 0).deal(), Ok(None));
    // An id can come back once its offer has left.
    assert_eq!(m.add_resource(id(1), priced(1), 0).deal(), Ok(None));
    assert_eq!(m.resources().iter().map(|(i, _)| *i).collect::<Vec<_>>(), [id(3), id(1)]);
}

#[test]
fn explain_names_every_incompatible_offer_oldest_first() {
    let mut m = Matcher::default();
    m.add_resource(id(1), priced(50), 0).unwrap();
    m.add_resource(id(2), ResourceOffer { solver: addr(0x55), ..priced(1) }, 0).unwrap();
    m.add_resource(id(3), ResourceOffer { mediators: [addr(0x77)].into(), ..priced(1) }, 0)
        .unwrap();
    m.add_job(id(10), job(), 0).unwrap();
    let why: Vec<String> =
        m.explain_job(&id(10), 0).unwrap().iter().map(|(i, e)| format!("{i}: {e}")).collect();
    assert_eq!(why.len(), 3);
    assert!(why[0].ends_with("01: price 50 is over max price 10"), "{}", why[0]);
    assert!(why[1].contains("names solver"), "{}", why[1]);
    assert!(why[2].contains("no mediator"), "{}", why[2]);
    // A hypothetical offer: the compatible ones are left out.
    let rich = JobOffer { max_price: U256::from(100), ..job() };
    assert_eq!(m.explain(&rich, 0).len(), 2);
    assert_eq!(m.explain_job(&id(99), 0), None);
}

#[test]
fn a_match_hands_back_both_offers_and_makes_the_deal() {
    let mut m = Matcher::default();
    let r = ResourceOffer { module_prices: [(module(1), U256::from(4))].into(), ..priced(5) };
    m.add_resource(id(1), r.clone(), 0).unwrap();
    let got = m.add_job(id(2), job(), 7).unwrap().unwrap();
    assert_eq!((&got.job, &got.resource), (&job(), &r));
    let deal = got.to_deal(&crate::deal::NetworkParams::default(), 7).unwrap();
    assert_eq!(deal.id, crate::deal::deal_id(id(2), id(1)));
    assert_eq!((deal.terms.price, deal.created_at), (U256::from(4), 7));
}

#[test]
fn expiry_heap_forgets_matched_offers_and_stays_exact() {
    let mut m = Matcher::default();
    for n in 0..3000 {
        m.add_resource(id(2 * n), priced(1), 0).unwrap();
        assert!(m.add_job(id(2 * n + 1), job(), 0).unwrap().is_some());
    }
    // Stale entries are rebuilt away once they outnumber resting offers.
    assert!(m.resources.expiries.len() <= 1025, "{}", m.resources.expiries.len());
    m.add_resource(id(10_001), ResourceOffer { expiry: 10, ..priced(50) }, 0).unwrap();
    m.add_resource(id(10_002), ResourceOffer { expiry: 20, ..priced(50) }, 0).unwrap();
    assert_eq!(m.expire(10).resources, [id(10_001)]);
    assert_eq!(m.expire(2000).resources, [id(10_002)]);
    assert_eq!(m.resource_count(), 0);
}

#[test]
fn prices_over_max_amount_still_order_exactly() {
    // Invalid offers (prices over MAX_AMOUNT) share one ladder key; the
    // search must still take the cheapest, then oldest, of them.
    let huge = |shift: usize| U256::from(1) << shift;
    let mut m = Matcher::default();
    let prices = [huge(200), huge(129), U256::from(u128::MAX), huge(129), huge(128)];
    for (n, p) in (1..).zip(prices) {
        let offer = ResourceOffer { default_price: p, ..resource() };
        assert_eq!(m.add_resource(id(n), offer, 0).deal(), Ok(None));
    }
    let rich = |n: u64| (id(n), JobOffer { max_price: U256::MAX, ..job() });
    let mut order = Vec::new();
    for n in 10..15 {
        let (jid, j) = rich(n);
        let deal = m.add_job(jid, j, 0).deal().ok().flatten().map(|d| (d.resource, d.price));
        order.extend(deal);
    }
    let expected = [(3, prices[2]), (5, prices[4]), (2, prices[1]), (4, prices[3]), (1, prices[0])]
        .map(|(n, p)| (id(n), p));
    assert_eq!(order, expected);
    // A job that pays just u128::MAX takes only offers priced at most that.
    let mut m = Matcher::default();
    for (n, p) in (1..).zip(prices) {
        let offer = ResourceOffer { default_price: p, ..resource() };
        assert_eq!(m.add_resource(id(n), offer, 0).deal(), Ok(None));
    }
    let capped = JobOffer { max_price: U256::from(u128::MAX), ..job() };
    assert_eq!(
        m.add_job(id(20), capped.clone(), 0).deal(),
        Ok(Some(Match { job: id(20), resource: id(3), price: prices[2] }))
    );
    assert_eq!(m.add_job(id(21), capped, 0).deal(), Ok(None));
}

fn slots(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_string()).collect()
}

/// A one-GPU offer of provider 2 (2 CPUs, 24 GiB of VRAM), nonce `n`.
fn gpu_slot_offer(n: u64, gpus: usize) -> ResourceOffer {
    let mut spec = gpu_machine(&vec![24_000; gpus]);
    spec.cpu_millicores = 2000 * u32::try_from(gpus).unwrap();
    ResourceOffer { spec, nonce: U256::from(n), ..resource() }
}

fn gpu_job(gpus: u32) -> JobOffer {
    let mut j = job();
    j.requirements.gpu_count = gpus;
    j
}

#[test]
fn a_two_gpu_job_takes_the_group_offer_and_withdraws_its_slots_offers() {
    let mut m = Matcher::default();
    assert_eq!(m.add_resource_claiming(id(1), gpu_slot_offer(1, 1), slots(&["gpu0"]), 0), Ok(None));
    assert_eq!(m.add_resource_claiming(id(2), gpu_slot_offer(2, 1), slots(&["gpu1"]), 0), Ok(None));
    let group = slots(&["gpu0", "gpu1"]);
    assert_eq!(m.add_resource_claiming(id(3), gpu_slot_offer(3, 2), group.clone(), 0), Ok(None));
    assert_eq!(m.slots_of(addr(2), &id(3)), group);
    let got = m.add_job(id(10), gpu_job(2), 0).unwrap().unwrap();
    assert_eq!(got.deal.resource, id(3));
    assert_eq!(got.withdrawn.iter().copied().collect::<BTreeSet<_>>(), [id(1), id(2)].into());
    assert_eq!(m.resource_count(), 0);
    // Nothing is left to take the slots a second time.
    assert_eq!(m.add_job(id(11), gpu_job(1), 0).deal(), Ok(None));
}

#[test]
fn a_one_gpu_job_takes_a_slot_and_withdraws_the_group_but_not_the_other_slot() {
    let mut m = Matcher::default();
    m.add_resource_claiming(id(1), gpu_slot_offer(1, 1), slots(&["gpu0"]), 0).unwrap();
    m.add_resource_claiming(id(2), gpu_slot_offer(2, 1), slots(&["gpu1"]), 0).unwrap();
    m.add_resource_claiming(id(3), gpu_slot_offer(3, 2), slots(&["gpu0", "gpu1"]), 0).unwrap();
    let got = m.add_job(id(10), gpu_job(1), 0).unwrap().unwrap();
    assert_eq!(got.deal.resource, id(1), "the oldest offer at the price");
    assert_eq!(got.withdrawn, vec![id(3)]);
    assert!(m.resource(&id(2)).is_some());
    // The other slot is still offered, the group is gone: a two-GPU job waits.
    assert_eq!(m.add_job(id(11), gpu_job(2), 0).deal(), Ok(None));
    assert_eq!(m.add_job(id(12), gpu_job(1), 0).deal(), matched(12, 2, 5));
}

#[test]
fn a_group_offer_over_a_slot_no_waiting_offer_holds_is_refused() {
    let mut m = Matcher::default();
    m.add_resource_claiming(id(1), gpu_slot_offer(1, 1), slots(&["gpu0"]), 0).unwrap();
    // gpu1 was never offered (or is busy): the group cannot take it.
    let err = m.add_resource_claiming(id(3), gpu_slot_offer(3, 2), slots(&["gpu0", "gpu1"]), 0);
    assert_eq!(err, Err(AddError::SlotTaken { id: id(3), slot: "gpu1".into() }));
    // Another provider's offer of a slot with the same name holds nothing for provider 2.
    let other = ResourceOffer { provider: addr(7), ..gpu_slot_offer(4, 1) };
    m.add_resource_claiming(id(4), other, slots(&["gpu1"]), 0).unwrap();
    let err = m.add_resource_claiming(id(5), gpu_slot_offer(5, 2), slots(&["gpu0", "gpu1"]), 0);
    assert!(matches!(err, Err(AddError::SlotTaken { .. })));
    // Once matched, a slot's offer holds it no more.
    m.add_resource_claiming(id(2), gpu_slot_offer(2, 1), slots(&["gpu1"]), 0).unwrap();
    m.add_job(id(10), gpu_job(1), 0).unwrap().unwrap();
    let err = m.add_resource_claiming(id(6), gpu_slot_offer(6, 2), slots(&["gpu0", "gpu1"]), 0);
    assert!(matches!(err, Err(AddError::SlotTaken { .. })), "{err:?}");
}

#[test]
fn a_group_offer_that_matches_on_arrival_withdraws_its_slots_offers() {
    let mut m = Matcher::default();
    assert_eq!(m.add_job(id(10), gpu_job(2), 0).deal(), Ok(None));
    m.add_resource_claiming(id(1), gpu_slot_offer(1, 1), slots(&["gpu0"]), 0).unwrap();
    m.add_resource_claiming(id(2), gpu_slot_offer(2, 1), slots(&["gpu1"]), 0).unwrap();
    let got = m.add_resource_claiming(id(3), gpu_slot_offer(3, 2), slots(&["gpu0", "gpu1"]), 0);
    let got = got.unwrap().unwrap();
    assert_eq!(got.deal.job, id(10));
    assert_eq!(got.withdrawn.len(), 2);
    assert_eq!(m.resource_count(), 0);
}

#[test]
fn removing_or_expiring_an_offer_releases_its_hold() {
    let mut m = Matcher::default();
    m.add_resource_claiming(id(1), gpu_slot_offer(1, 1), slots(&["gpu0"]), 0).unwrap();
    m.add_resource_claiming(
        id(2),
        ResourceOffer { expiry: 5, ..gpu_slot_offer(2, 1) },
        slots(&["gpu1"]),
        0,
    )
    .unwrap();
    m.expire(5);
    let err = m.add_resource_claiming(id(3), gpu_slot_offer(3, 2), slots(&["gpu0", "gpu1"]), 5);
    assert!(matches!(err, Err(AddError::SlotTaken { .. })));
    m.remove_resource(&id(1));
    assert!(m.slots_of(addr(2), &id(1)).is_empty());
}

fn from(provider: u8, price: u64) -> ResourceOffer {
    ResourceOffer { provider: addr(provider), ..priced(price) }
}

#[test]
fn new_provider_score_is_the_reputation_of_no_deal() {
    assert_eq!(NEW_PROVIDER_SCORE, crate::reputation::score(0, 0, 0));
    assert_eq!(Matcher::default().score(addr(2)), NEW_PROVIDER_SCORE);
}

#[test]
fn preference_breaks_price_ties_by_score_only_when_on() {
    for prefer in [false, true] {
        let mut m = Matcher::default();
        m.set_score(addr(20), 0.2);
        m.set_score(addr(21), 0.9);
        m.set_score(addr(22), 0.99);
        m.prefer_reputation(prefer);
        m.add_resource(id(1), from(20, 5), 0).unwrap();
        m.add_resource(id(2), from(21, 5), 0).unwrap();
        // Cheaper wins whatever its score; dearer never does.
        m.add_resource(id(3), from(22, 6), 0).unwrap();
        let got = m.add_job(id(10), job(), 0).deal().unwrap().unwrap();
        assert_eq!(got.resource, if prefer { id(2) } else { id(1) }, "prefer {prefer}");
        assert_eq!(got.price, U256::from(5));
        let got = m.add_job(id(11), job(), 0).deal().unwrap().unwrap();
        assert_eq!(got.resource, if prefer { id(1) } else { id(2) });
        assert_eq!(m.add_job(id(12), job(), 0).deal().unwrap().unwrap().resource, id(3));
    }
}

#[test]
fn equal_scores_keep_the_oldest() {
    let mut m = Matcher::default();
    m.prefer_reputation(true);
    m.add_resource(id(1), from(20, 5), 0).unwrap();
    m.add_resource(id(2), from(21, 5), 0).unwrap();
    assert_eq!(m.add_job(id(10), job(), 0).deal().unwrap().unwrap().resource, id(1));
}

#[test]
fn minimum_score_holds_both_ways_and_is_explained() {
    let mut m = Matcher::default();
    m.set_score(addr(20), 0.3);
    m.set_score(addr(21), 0.8);
    // A resting low-score offer is passed over; the job rests.
    m.add_resource(id(1), from(20, 1), 0).unwrap();
    assert_eq!(m.add_job_requiring(id(10), job(), 0.6, 0).deal().unwrap(), None);
    assert_eq!(m.minimum_of(&id(10)), 0.6);
    let why = m.explain_job(&id(10), 0).unwrap();
    assert_eq!(
        why,
        vec![(id(1), Mismatch::ReputationTooLow { score_ppm: 300_000, minimum_ppm: 600_000 })]
    );
    assert_eq!(why[0].1.to_string(), "provider reputation 0.300 is under the job's minimum 0.600");
    assert_eq!(why[0].1.for_job_creator(), "the provider's reputation is under your minimum");
    // Without the minimum, the same offer is fine.
    assert!(m.explain(&job(), 0).is_empty());
    // Another low-score offer arriving does not take it; a good one does.
    assert_eq!(m.add_resource(id(2), from(20, 1), 0).deal().unwrap(), None);
    let got = m.add_resource(id(3), from(21, 5), 0).deal().unwrap().unwrap();
    assert_eq!((got.job, got.resource), (id(10), id(3)));
    assert_eq!(m.minimum_of(&id(10)), 0.0);
    // A job without a minimum takes the low-score offer.
    assert_eq!(m.add_job(id(11), job(), 0).deal().unwrap().unwrap().resource, id(1));
}

#[test]
fn preference_walk_stops_only_at_the_true_top_score() {
    let mut m = Matcher::default();
    m.prefer_reputation(true);
    // Provider 20 once topped the table, then fell; 21 has no score (0.5).
    m.set_score(addr(20), 0.9);
    m.set_score(addr(20), 0.1);
    m.set_score(addr(22), 0.3);
    m.add_resource(id(1), from(20, 5), 0).unwrap();
    m.add_resource(id(2), from(22, 5), 0).unwrap();
    m.add_resource(id(3), from(21, 5), 0).unwrap();
    assert_eq!(m.add_job(id(10), job(), 0).deal().unwrap().unwrap().resource, id(3));
    assert_eq!(m.add_job(id(11), job(), 0).deal().unwrap().unwrap().resource, id(2));
    assert_eq!(m.add_job(id(12), job(), 0).deal().unwrap().unwrap().resource, id(1));
}

#[test]
fn capacity_counts_each_slot_once_and_every_provider() {
    let mut m = Matcher::default();
    assert_eq!(m.capacity(), super::Capacity::default());
    m.add_resource_claiming(id(1), gpu_slot_offer(1, 1), slots(&["gpu0"]), 0).unwrap();
    m.add_resource_claiming(id(2), gpu_slot_offer(2, 1), slots(&["gpu1"]), 0).unwrap();
    m.add_resource_claiming(id(3), gpu_slot_offer(3, 2), slots(&["gpu0", "gpu1"]), 0).unwrap();
    // Another provider's offer made without slots counts as one.
    let other = ResourceOffer { provider: addr(9), nonce: U256::from(4u64), ..resource() };
    m.add_resource(id(4), other.clone(), 0).unwrap();
    let one = gpu_slot_offer(1, 1);
    let c = m.capacity();
    assert_eq!(c.providers, 2);
    assert_eq!(c.offers, 3, "the group offer repeats its slots and is left out");
    assert_eq!(c.gpus, 2);
    assert_eq!(
        c.cpu_millicores,
        2 * u64::from(one.spec.cpu_millicores) + u64::from(other.spec.cpu_millicores)
    );
    assert_eq!(c.ram_mib, 2 * one.spec.ram_mib + other.spec.ram_mib);
    // A match takes the slot and withdraws the group: one GPU left.
    m.add_job(id(10), gpu_job(1), 0).unwrap().unwrap();
    assert_eq!((m.capacity().gpus, m.capacity().offers), (1, 2));
}
