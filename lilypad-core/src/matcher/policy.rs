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
//! 10. at least one mediator is trusted by both.

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
