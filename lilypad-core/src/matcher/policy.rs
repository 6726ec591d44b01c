//! The matching policy: when a job offer and a resource offer may form a deal,
//! and why not.
//!
//! This is the one place the rules live; the indexed [`Matcher`](super::Matcher),
//! the [`naive`](super::naive) baseline and [`explain`](super::Matcher::explain)
//! all call [`check`]. The indexes only prune candidates, they never decide.
//!
//! The rules are checked in this fixed order, and [`check`] reports the first
//! one that fails:
//!
//! 1. the job offer is not expired (`expiry > now`);
//! 2. the resource offer is not expired;
//! 3. both name the same solver;
//! 4. if the job names a target provider, the resource offer is that provider's;
//! 5. the network does not block the module;
//! 6. the network's allowlist, if it has one, contains the module;
//! 7. the provider's [`ModulePolicy`](crate::offer::ModulePolicy) allows the module;
//! 8. the machine fits the job's requirements (CPU, RAM, disk, then GPUs, see
//!    [`MachineSpec::fits`](crate::spec::MachineSpec::fits));
//! 9. the provider's price for the module is at most the job's max price;
//! 10. at least one mediator is trusted by both;
//! 11. the job gives the provider at least the timeout it signed as its
//!     minimum (`bounds.min_timeout_secs`): a shorter job could only end in the
//!     provider's slashing.

use std::collections::BTreeSet;

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use crate::{
    offer::{JobOffer, ModuleId, ResourceOffer},
    spec::SpecMismatch,
};

/// The network-wide module policy: a block list and an optional allowlist.
///
/// A module is allowed iff it is not blocked and, when there is an allowlist,
/// it is on it. The default allows every module.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkModules {
    /// Modules nobody may run, whatever the allowlist says.
    #[serde(default)]
    pub blocked: BTreeSet<ModuleId>,
    /// If set, only these modules may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<BTreeSet<ModuleId>>,
}

impl NetworkModules {
    /// A policy that allows every module.
    pub fn open() -> Self {
        Self::default()
    }

    /// Checks `module` against the block list, then the allowlist.
    pub fn check(&self, module: &ModuleId) -> Result<(), Mismatch> {
        if self.blocked.contains(module) {
            return Err(Mismatch::ModuleBlockedByNetwork { module: *module });
        }
        if let Some(allowed) = &self.allowed
            && !allowed.contains(module)
        {
            return Err(Mismatch::ModuleNotInNetworkAllowlist { module: *module });
        }
        Ok(())
    }

    /// Whether the network lets `module` run.
    pub fn allows(&self, module: &ModuleId) -> bool {
        self.check(module).is_ok()
    }
}

/// Why a job offer and a resource offer cannot be matched: the first failing
/// rule, in the order documented in [this module](self).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mismatch {
    /// The job offer has expired.
    #[error("job offer expired at {expiry}, it is now {now}")]
    JobExpired {
        /// The job offer's expiry.
        expiry: u64,
        /// The time of the check.
        now: u64,
    },
    /// The resource offer has expired.
    #[error("resource offer expired at {expiry}, it is now {now}")]
    ResourceExpired {
        /// The resource offer's expiry.
        expiry: u64,
        /// The time of the check.
        now: u64,
    },
    /// The offers name different solvers.
    #[error("job offer names solver {job}, resource offer names solver {resource}")]
    SolverMismatch {
        /// The job offer's solver.
        job: Address,
        /// The resource offer's solver.
        resource: Address,
    },
    /// The job is for another provider.
    #[error("job is targeted at provider {target}, offer is from {provider}")]
    TargetMismatch {
        /// The provider the job asks for.
        target: Address,
        /// The provider of the resource offer.
        provider: Address,
    },
    /// The network blocks the module.
    #[error("module {module} is blocked by the network")]
    ModuleBlockedByNetwork {
        /// The job's module.
        module: ModuleId,
    },
    /// The network has an allowlist without the module.
    #[error("module {module} is not on the network's allowlist")]
    ModuleNotInNetworkAllowlist {
        /// The job's module.
        module: ModuleId,
    },
    /// The provider does not run the module.
    #[error("module {module} is not on the provider's allowlist")]
    ModuleNotAllowedByProvider {
        /// The job's module.
        module: ModuleId,
    },
    /// The machine does not fit the job.
    #[error(transparent)]
    Spec(#[from] SpecMismatch),
    /// The provider asks more than the job pays.
    #[error("price {price} is over max price {max_price}")]
    PriceTooHigh {
        /// The provider's price for the job's module.
        price: U256,
        /// The job's max price.
        max_price: U256,
    },
    /// No mediator is trusted by both sides.
    #[error("no mediator is trusted by both (job trusts {job}, offer trusts {resource})")]
    NoCommonMediator {
        /// Number of mediators the job creator trusts.
        job: usize,
        /// Number of mediators the provider trusts.
        resource: usize,
    },
    /// The job's timeout is under the provider's signed minimum.
    #[error("job timeout {timeout_secs}s is under the provider's minimum {minimum_secs}s")]
    TimeoutTooShort {
        /// The job's timeout.
        timeout_secs: u64,
        /// The provider's minimum.
        minimum_secs: u64,
    },
    /// The provider's reputation score is under the job's minimum (checked by the
    /// [`Matcher`](super::Matcher), which holds the scores, after every rule above).
    #[error(
        "provider reputation {:.3} is under the job's minimum {:.3}",
        f64::from(*score_ppm) / 1e6,
        f64::from(*minimum_ppm) / 1e6
    )]
    ReputationTooLow {
        /// The provider's score, in millionths.
        score_ppm: u32,
        /// The job's minimum score, in millionths.
        minimum_ppm: u32,
    },
}

/// A score in `[0, 1]` in millionths (rounded down), as [`Mismatch`] carries it.
pub fn score_ppm(score: f64) -> u32 {
    // Saturating float-to-int cast; NaN becomes 0.
    (score.clamp(0.0, 1.0) * 1e6) as u32
}

impl Mismatch {
    /// The reason in words that reveal nothing of the resource offer (no
    /// address, price or machine figure): what a job creator may be told
    /// about other providers' offers.
    pub const fn for_job_creator(&self) -> &'static str {
        match self {
            Self::JobExpired { .. } => "your job offer has expired",
            Self::ResourceExpired { .. } => "the resource offer has expired",
            Self::SolverMismatch { .. } => "the resource offer names another solver",
            Self::TargetMismatch { .. } => "the resource offer is not from your target provider",
            Self::ModuleBlockedByNetwork { .. } => "the network blocks your module",
            Self::ModuleNotInNetworkAllowlist { .. } => {
                "your module is not on the network's allowlist"
            }
            Self::ModuleNotAllowedByProvider { .. } => "the provider does not run your module",
            Self::Spec(SpecMismatch::Cpu { .. }) => "not enough CPU for your job",
            Self::Spec(SpecMismatch::Ram { .. }) => "not enough RAM for your job",
            Self::Spec(SpecMismatch::Disk { .. }) => "not enough disk for your job",
            Self::Spec(SpecMismatch::Gpus { .. }) => "not enough GPUs or GPU memory for your job",
            Self::PriceTooHigh { .. } => "the provider's price is over your max price",
            Self::NoCommonMediator { .. } => "the provider trusts none of your mediators",
            Self::TimeoutTooShort { .. } => {
                "the provider needs a longer job timeout than your module's"
            }
            Self::ReputationTooLow { .. } => "the provider's reputation is under your minimum",
        }
    }
}

/// Checks every rule, in order; on success returns the price of the deal
/// (the provider's price for the job's module).
pub fn check(
    job: &JobOffer,
    resource: &ResourceOffer,
    network: &NetworkModules,
    now: u64,
) -> Result<U256, Mismatch> {
    if job.expiry <= now {
        return Err(Mismatch::JobExpired { expiry: job.expiry, now });
    }
    if resource.expiry <= now {
        return Err(Mismatch::ResourceExpired { expiry: resource.expiry, now });
    }
    if job.solver != resource.solver {
        return Err(Mismatch::SolverMismatch { job: job.solver, resource: resource.solver });
    }
    if let Some(target) = job.target
        && target != resource.provider
    {
        return Err(Mismatch::TargetMismatch { target, provider: resource.provider });
    }
    network.check(&job.module_id)?;
    if !resource.modules.allows(&job.module_id) {
        return Err(Mismatch::ModuleNotAllowedByProvider { module: job.module_id });
    }
    resource.spec.fits(&job.requirements)?;
    let price = resource.price_for(&job.module_id);
    if price > job.max_price {
        return Err(Mismatch::PriceTooHigh { price, max_price: job.max_price });
    }
    if job.mediators.is_disjoint(&resource.mediators) {
        return Err(Mismatch::NoCommonMediator {
            job: job.mediators.len(),
            resource: resource.mediators.len(),
        });
    }
    if job.timeout_secs < resource.bounds.min_timeout_secs {
        return Err(Mismatch::TimeoutTooShort {
            timeout_secs: job.timeout_secs,
            minimum_secs: resource.bounds.min_timeout_secs,
        });
    }
    Ok(price)
}

/// Whether the pair is compatible at `now`.
pub fn compatible(
    job: &JobOffer,
    resource: &ResourceOffer,
    network: &NetworkModules,
    now: u64,
) -> bool {
    check(job, resource, network, now).is_ok()
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;

    use super::*;
    use crate::matcher::tests::{addr, gpu_machine, job, module, resource};
    use crate::offer::{ModulePolicy, ProviderBounds};
    use crate::spec::JobRequirements;

    #[test]
    fn compatible_pair_costs_the_module_price() {
        assert_eq!(check(&job(), &resource(), &NetworkModules::open(), 0), Ok(U256::from(5)));
        let r = ResourceOffer { module_prices: [(module(1), U256::from(4))].into(), ..resource() };
        assert_eq!(check(&job(), &r, &NetworkModules::open(), 0), Ok(U256::from(4)));
    }

    #[test]
    fn expiry_is_exclusive() {
        let net = NetworkModules::open();
        let j = JobOffer { expiry: 100, ..job() };
        assert_eq!(check(&j, &resource(), &net, 99), Ok(U256::from(5)));
        assert_eq!(
            check(&j, &resource(), &net, 100),
            Err(Mismatch::JobExpired { expiry: 100, now: 100 })
        );
        let r = ResourceOffer { expiry: 50, ..resource() };
        assert_eq!(
            check(&job(), &r, &net, 50),
            Err(Mismatch::ResourceExpired { expiry: 50, now: 50 })
        );
    }

    #[test]
    fn solver_must_agree() {
        let r = ResourceOffer { solver: addr(0x55), ..resource() };
        assert_eq!(
            check(&job(), &r, &NetworkModules::open(), 0),
            Err(Mismatch::SolverMismatch { job: addr(3), resource: addr(0x55) })
        );
    }

    #[test]
    fn target_is_honoured() {
        let net = NetworkModules::open();
        let j = JobOffer { target: Some(addr(2)), ..job() };
        assert!(compatible(&j, &resource(), &net, 0));
        let j = JobOffer { target: Some(addr(0x66)), ..job() };
        let e = check(&j, &resource(), &net, 0).unwrap_err();
        assert_eq!(e, Mismatch::TargetMismatch { target: addr(0x66), provider: addr(2) });
        assert!(e.to_string().starts_with("job is targeted at provider 0x6666"));
    }

    #[test]
    fn network_block_list_beats_its_allowlist() {
        let m = module(1);
        let blocked = NetworkModules { blocked: [m].into(), allowed: Some([m].into()) };
        assert_eq!(
            check(&job(), &resource(), &blocked, 0),
            Err(Mismatch::ModuleBlockedByNetwork { module: m })
        );
        let listed = NetworkModules { blocked: BTreeSet::new(), allowed: Some([module(2)].into()) };
        assert_eq!(
            check(&job(), &resource(), &listed, 0),
            Err(Mismatch::ModuleNotInNetworkAllowlist { module: m })
        );
        let listed = NetworkModules { blocked: BTreeSet::new(), allowed: Some([m].into()) };
        assert!(compatible(&job(), &resource(), &listed, 0));
    }

    #[test]
    fn provider_allowlist() {
        let net = NetworkModules::open();
        let r = ResourceOffer { modules: ModulePolicy::Only([module(2)].into()), ..resource() };
        assert_eq!(
            check(&job(), &r, &net, 0),
            Err(Mismatch::ModuleNotAllowedByProvider { module: module(1) })
        );
        let r = ResourceOffer { modules: ModulePolicy::Only([module(1)].into()), ..resource() };
        assert!(compatible(&job(), &r, &net, 0));
    }

    #[test]
    fn spec_must_fit_and_says_how() {
        let net = NetworkModules::open();
        let j = JobOffer {
            requirements: JobRequirements {
                gpu_count: 2,
                gpu_vram_mib: 24576,
                ..job().requirements
            },
            ..job()
        };
        let r = ResourceOffer { spec: gpu_machine(&[24576, 8192]), ..resource() };
        let e = check(&j, &r, &net, 0).unwrap_err();
        assert_eq!(e.to_string(), "needs 2 GPU(s) with at least 24576 MiB VRAM, offer has 1");
        let r = ResourceOffer { spec: gpu_machine(&[24576, 24576]), ..resource() };
        assert!(compatible(&j, &r, &net, 0));
        let j = JobOffer {
            requirements: JobRequirements { cpu_millicores: 64_000, ..job().requirements },
            ..job()
        };
        assert!(matches!(check(&j, &r, &net, 0), Err(Mismatch::Spec(SpecMismatch::Cpu { .. }))));
    }

    #[test]
    fn price_is_capped_by_max_price() {
        let net = NetworkModules::open();
        let j = JobOffer { max_price: U256::from(10), ..job() };
        let at = |p: u64| ResourceOffer { default_price: U256::from(p), ..resource() };
        assert_eq!(check(&j, &at(10), &net, 0), Ok(U256::from(10)));
        let e = check(&j, &at(12), &net, 0).unwrap_err();
        assert_eq!(e, Mismatch::PriceTooHigh { price: U256::from(12), max_price: U256::from(10) });
        assert_eq!(e.to_string(), "price 12 is over max price 10");
        // A module price below the default makes it fit, one above breaks it.
        let r = ResourceOffer { module_prices: [(module(1), U256::from(9))].into(), ..at(12) };
        assert_eq!(check(&j, &r, &net, 0), Ok(U256::from(9)));
        let r = ResourceOffer { module_prices: [(module(1), U256::from(11))].into(), ..at(1) };
        assert!(matches!(check(&j, &r, &net, 0), Err(Mismatch::PriceTooHigh { .. })));
    }

    #[test]
    fn a_mediator_must_be_trusted_by_both() {
        let net = NetworkModules::open();
        let r = ResourceOffer { mediators: [addr(0x77), addr(0x78)].into(), ..resource() };
        let e = check(&job(), &r, &net, 0).unwrap_err();
        assert_eq!(e, Mismatch::NoCommonMediator { job: 1, resource: 2 });
        assert_eq!(e.to_string(), "no mediator is trusted by both (job trusts 1, offer trusts 2)");
        let r = ResourceOffer { mediators: [addr(0x77), addr(9)].into(), ..resource() };
        assert!(compatible(&job(), &r, &net, 0));
    }

    #[test]
    fn job_timeout_must_reach_the_providers_minimum() {
        let net = NetworkModules::open();
        let bounds = ProviderBounds { min_timeout_secs: 601, ..ProviderBounds::default() };
        let r = ResourceOffer { bounds, ..resource() };
        let e = check(&job(), &r, &net, 0).unwrap_err();
        assert_eq!(e, Mismatch::TimeoutTooShort { timeout_secs: 600, minimum_secs: 601 });
        assert_eq!(e.to_string(), "job timeout 600s is under the provider's minimum 601s");
        assert!(!e.for_job_creator().contains("601"));
        let j = JobOffer { timeout_secs: 601, ..job() };
        assert!(compatible(&j, &r, &net, 0));
    }

    #[test]
    fn first_failing_rule_in_documented_order_wins() {
        // Everything is wrong; peel one rule off at a time.
        let net = NetworkModules { blocked: [module(1)].into(), allowed: None };
        let mut j = JobOffer {
            expiry: 10,
            target: Some(addr(0x66)),
            max_price: U256::ZERO,
            requirements: JobRequirements { gpu_count: 1, ..job().requirements },
            ..job()
        };
        let mut r = ResourceOffer {
            expiry: 10,
            solver: addr(0x55),
            modules: ModulePolicy::Only([module(2)].into()),
            mediators: [addr(0x77)].into(),
            bounds: ProviderBounds { min_timeout_secs: 601, ..ProviderBounds::default() },
            ..resource()
        };
        let mut net = net;
        let mut seen = Vec::new();
        let mut now = 10;
        while let Err(e) = check(&j, &r, &net, now) {
            seen.push(std::mem::discriminant(&e));
            match e {
                Mismatch::JobExpired { .. } => j.expiry = 20,
                Mismatch::ResourceExpired { .. } => now = 5,
                Mismatch::SolverMismatch { .. } => r.solver = j.solver,
                Mismatch::TargetMismatch { .. } => j.target = None,
                Mismatch::ModuleBlockedByNetwork { .. } => {
                    net =
                        NetworkModules { blocked: BTreeSet::new(), allowed: Some(BTreeSet::new()) }
                }
                Mismatch::ModuleNotInNetworkAllowlist { .. } => net = NetworkModules::open(),
                Mismatch::ModuleNotAllowedByProvider { .. } => r.modules = ModulePolicy::Any,
                Mismatch::Spec(_) => r.spec = gpu_machine(&[1]),
                Mismatch::TimeoutTooShort { .. } => j.timeout_secs = 601,
                Mismatch::PriceTooHigh { .. } => j.max_price = U256::MAX,
                Mismatch::NoCommonMediator { .. } => r.mediators = j.mediators.clone(),
                Mismatch::ReputationTooLow { .. } => unreachable!("check reads no score"),
            }
        }
        assert_eq!(seen.len(), 11, "each rule fails once, in order");
        let expected = [
            Mismatch::JobExpired { expiry: 0, now: 0 },
            Mismatch::ResourceExpired { expiry: 0, now: 0 },
            Mismatch::SolverMismatch { job: Address::ZERO, resource: Address::ZERO },
            Mismatch::TargetMismatch { target: Address::ZERO, provider: Address::ZERO },
            Mismatch::ModuleBlockedByNetwork { module: B256::ZERO },
            Mismatch::ModuleNotInNetworkAllowlist { module: B256::ZERO },
            Mismatch::ModuleNotAllowedByProvider { module: B256::ZERO },
            Mismatch::Spec(SpecMismatch::Cpu { need: 0, have: 0 }),
            Mismatch::PriceTooHigh { price: U256::ZERO, max_price: U256::ZERO },
            Mismatch::NoCommonMediator { job: 0, resource: 0 },
            Mismatch::TimeoutTooShort { timeout_secs: 0, minimum_secs: 0 },
        ];
        let expected: Vec<_> = expected.iter().map(std::mem::discriminant).collect();
        assert_eq!(seen, expected);
    }
}
