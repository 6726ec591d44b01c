//! Job offers and resource offers: the signed intents the solver matches.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::Eip712Domain;
use serde::{Deserialize, Serialize};

use crate::{
    deal::NetworkParams,
    eip712,
    spec::{JobRequirements, MachineSpec},
};

/// A module id: keccak256 of the canonical repository URL and the resolved commit.
pub type ModuleId = B256;
/// The id of an offer: its EIP-712 signing hash.
pub type OfferId = B256;

/// Which modules a resource provider accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModulePolicy {
    /// Any module the network allows.
    #[default]
    Any,
    /// Only these modules.
    Only(BTreeSet<ModuleId>),
}

impl ModulePolicy {
    /// Whether `module` is accepted.
    pub fn allows(&self, module: &ModuleId) -> bool {
        match self {
            Self::Any => true,
            Self::Only(set) => set.contains(module),
        }
    }
}

fn is_zero_address(a: &Address) -> bool {
    a.is_zero()
}

/// A resource provider's offer of one machine (or a slice of one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceOffer {
    /// The provider's address; it signs the offer.
    pub provider: Address,
    /// Where the deal pays the provider (payments and collateral refunds); the zero
    /// address (the default) for the provider itself.
    #[serde(default, skip_serializing_if = "is_zero_address")]
    pub payout: Address,
    /// What is offered.
    pub spec: MachineSpec,
    /// Which modules the provider runs.
    #[serde(default)]
    pub modules: ModulePolicy,
    /// Price per job, in token base units, for modules without their own price.
    pub default_price: U256,
    /// Price per job of particular modules.
    #[serde(default)]
    pub module_prices: BTreeMap<ModuleId, U256>,
    /// Collateral the provider escrows at deal time, slashed if no results come in time.
    pub timeout_collateral: U256,
    /// The deal terms the provider accepts: the shortest job timeout and its
    /// limits on the network's parameters.
    #[serde(default)]
    pub bounds: ProviderBounds,
    /// Mediators the provider trusts.
    pub mediators: BTreeSet<Address>,
    /// The only solver allowed to turn this offer into a deal.
    pub solver: Address,
    /// Unix second after which the offer is void.
    pub expiry: u64,
    /// Makes the offer unique; the chain records used nonces.
    pub nonce: U256,
}

/// A job creator's offer to pay for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOffer {
    /// The job creator's address; it signs the offer.
    pub creator: Address,
    /// The module to run.
    pub module_id: ModuleId,
    /// keccak256 of the canonical JSON of the inputs.
    pub inputs_hash: B256,
    /// What the job needs.
    pub requirements: JobRequirements,
    /// The most the creator pays, in token base units.
    pub max_price: U256,
    /// Escrowed by the creator at deal time; covers the price.
    pub payment_collateral: U256,
    /// Seconds the provider has, from the deal, to submit results.
    pub timeout_secs: u64,
    /// The creator's limits on the network's parameters.
    #[serde(default)]
    pub bounds: CreatorBounds,
    /// Mediators the creator trusts.
    pub mediators: BTreeSet<Address>,
    /// The only solver allowed to turn this offer into a deal.
    pub solver: Address,
    /// A provider the job must go to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Address>,
    /// Unix second after which the offer is void.
    pub expiry: u64,
    /// Makes the offer unique; the chain records used nonces.
    pub nonce: U256,
}

/// What a provider signs about the terms a deal may have.
///
/// The controller reads the network's parameters (results collateral
/// multiple, windows, mediation fee) when it creates a deal; nobody signs
/// those, so each offer bounds them and `createDeal` refuses a deal outside
/// either offer's bounds. The owner can then never change terms under a
/// signed offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderBounds {
    /// The shortest job timeout (seconds to submit results) the provider
    /// accepts: a job with less time could only end in its slashing.
    pub min_timeout_secs: u64,
    /// The largest results collateral multiple the provider posts.
    pub max_results_multiple: u32,
    /// The longest judge window the provider's pay may wait on.
    pub max_judge_window_secs: u32,
    /// The shortest mediate window: a mediator needs time to re-run the job.
    pub min_mediate_window_secs: u32,
}

impl Default for ProviderBounds {
    /// One minute at least to run a job, a multiple of at most 4, a day at
    /// most to be judged, ten minutes at least for a mediator.
    fn default() -> Self {
        Self {
            min_timeout_secs: 60,
            max_results_multiple: 4,
            max_judge_window_secs: 86_400,
            min_mediate_window_secs: 600,
        }
    }
}

/// What a job creator signs about the terms a deal may have (see [`ProviderBounds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatorBounds {
    /// The most the creator pays, in token base units, to challenge results.
    pub max_mediation_fee: U256,
    /// The shortest judge window: the time the creator needs to fetch and verify results.
    pub min_judge_window_secs: u32,
}

impl Default for CreatorBounds {
    /// A mediation fee of at most 1 token (10^18 base units), ten minutes at least to judge.
    fn default() -> Self {
        Self { max_mediation_fee: U256::from(10u64.pow(18)), min_judge_window_secs: 600 }
    }
}

/// A network parameter outside an offer's bounds; the numbering is the
/// controller's `TermsNotAccepted(term, ..)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TermsRefused {
    /// The results collateral multiple is over the provider's maximum (term 0).
    #[error(
        "the network's results collateral multiple {value} is over the provider's maximum {bound}"
    )]
    ResultsMultiple {
        /// The network's multiple.
        value: u32,
        /// The provider's maximum.
        bound: u32,
    },
    /// The mediation fee is over the job creator's maximum (term 1).
    #[error("the network's mediation fee {value} is over the job creator's maximum {bound}")]
    MediationFee {
        /// The network's fee.
        value: U256,
        /// The creator's maximum.
        bound: U256,
    },
    /// The judge window is longer than the provider accepts (term 2).
    #[error("the network's judge window {value}s is over the provider's maximum {bound}s")]
    JudgeWindowTooLong {
        /// The network's window.
        value: u64,
        /// The provider's maximum.
        bound: u32,
    },
    /// The judge window is shorter than the job creator needs (term 3).
    #[error("the network's judge window {value}s is under the job creator's minimum {bound}s")]
    JudgeWindowTooShort {
        /// The network's window.
        value: u64,
        /// The creator's minimum.
        bound: u32,
    },
    /// The mediate window is shorter than the provider accepts (term 4).
    #[error("the network's mediate window {value}s is under the provider's minimum {bound}s")]
    MediateWindowTooShort {
        /// The network's window.
        value: u64,
        /// The provider's minimum.
        bound: u32,
    },
}

impl ProviderBounds {
    /// Checks the network's parameters are within these bounds.
    pub fn accepts(&self, p: &NetworkParams) -> Result<(), TermsRefused> {
        if p.results_collateral_multiple > self.max_results_multiple {
            return Err(TermsRefused::ResultsMultiple {
                value: p.results_collateral_multiple,
                bound: self.max_results_multiple,
            });
        }
        if p.judge_window_secs > u64::from(self.max_judge_window_secs) {
            return Err(TermsRefused::JudgeWindowTooLong {
                value: p.judge_window_secs,
                bound: self.max_judge_window_secs,
            });
        }
        if p.mediate_window_secs < u64::from(self.min_mediate_window_secs) {
            return Err(TermsRefused::MediateWindowTooShort {
                value: p.mediate_window_secs,
                bound: self.min_mediate_window_secs,
            });
        }
        Ok(())
    }
}

impl CreatorBounds {
    /// Checks the network's parameters are within these bounds.
    pub fn accepts(&self, p: &NetworkParams) -> Result<(), TermsRefused> {
        if p.mediation_fee > self.max_mediation_fee {
            return Err(TermsRefused::MediationFee {
                value: p.mediation_fee,
                bound: self.max_mediation_fee,
            });
        }
        if p.judge_window_secs < u64::from(self.min_judge_window_secs) {
            return Err(TermsRefused::JudgeWindowTooShort {
                value: p.judge_window_secs,
                bound: self.min_judge_window_secs,
            });
        }
        Ok(())
    }
}

/// An offer that is not well formed; names the field and the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// A field has a value that can never be valid.
    #[error("{field}: {reason} (got {value})")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// The offending value, as text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The offer's expiry has passed.
    #[error("expiry: offer expired at {expiry}, it is now {now}")]
    Expired {
        /// The offer's expiry.
        expiry: u64,
        /// The time of the check.
        now: u64,
    },
}

fn invalid(field: &'static str, value: impl std::fmt::Display, reason: &'static str) -> OfferError {
    OfferError::Invalid { field, value: value.to_string(), reason }
}

/// The most mediators an offer may trust (the controller tracks tried mediators in a 64-bit mask).
pub const MAX_MEDIATORS: usize = 64;

/// The largest amount an escrow or price may hold: the controller packs amounts into 128 bits.
pub const MAX_AMOUNT: U256 = U256::from_limbs([u64::MAX, u64::MAX, 0, 0]);

fn check_amount(field: &'static str, value: U256) -> Result<(), OfferError> {
    if value > MAX_AMOUNT {
        return Err(invalid(field, value, "amounts are limited to 2^128 - 1 base units"));
    }
    Ok(())
}

fn check_common(
    signer: (&'static str, Address),
    solver: Address,
    mediators: &BTreeSet<Address>,
    expiry: u64,
    now: u64,
) -> Result<(), OfferError> {
    if signer.1 == Address::ZERO {
        return Err(invalid(signer.0, signer.1, "must not be the zero address"));
    }
    if solver == Address::ZERO {
        return Err(invalid("solver", solver, "must not be the zero address"));
    }
    if mediators.is_empty() {
        return Err(invalid("mediators", "[]", "at least one trusted mediator is required"));
    }
    if mediators.contains(&Address::ZERO) {
        return Err(invalid("mediators", Address::ZERO, "must not contain the zero address"));
    }
    if expiry <= now {
        return Err(OfferError::Expired { expiry, now });
    }
    Ok(())
}

impl ResourceOffer {
    /// The provider's price for `module`.
    pub fn price_for(&self, module: &ModuleId) -> U256 {
        self.module_prices.get(module).copied().unwrap_or(self.default_price)
    }

    /// Checks the offer is well formed and not expired at `now`.
    pub fn validate(&self, now: u64) -> Result<(), OfferError> {
        check_common(("provider", self.provider), self.solver, &self.mediators, self.expiry, now)?;
        if self.spec.cpu_millicores == 0 {
            return Err(invalid("spec.cpu_millicores", 0, "must be positive"));
        }
        if self.spec.ram_mib == 0 {
            return Err(invalid("spec.ram_mib", 0, "must be positive"));
        }
        if let Some(g) = self.spec.gpus.iter().find(|g| g.vram_mib == 0) {
            return Err(invalid(
                "spec.gpus.vram_mib",
                format!("{} {}", g.vendor, g.model),
                "a GPU needs VRAM",
            ));
        }
        check_amount("default_price", self.default_price)?;
        check_amount("timeout_collateral", self.timeout_collateral)?;
        if self.bounds.min_timeout_secs == 0 {
            return Err(invalid("bounds.min_timeout_secs", 0, "must be positive"));
        }
        if self.bounds.min_mediate_window_secs == 0 {
            return Err(invalid("bounds.min_mediate_window_secs", 0, "must be positive"));
        }
        if self.mediators.len() > MAX_MEDIATORS {
            return Err(invalid("mediators", self.mediators.len(), "at most 64 mediators"));
        }
        if let Some(p) = self.module_prices.values().find(|p| **p > MAX_AMOUNT) {
            return Err(invalid("module_prices", p, "amounts are limited to 2^128 - 1 base units"));
        }
        if let ModulePolicy::Only(set) = &self.modules
            && set.is_empty()
        {
            return Err(invalid(
                "modules",
                "[]",
                "an allowlist must name at least one module (or use \"any\")",
            ));
        }
        Ok(())
    }

    /// The EIP-712 struct that the provider signs.
    pub fn to_eip712(&self) -> eip712::ResourceOffer {
        let (any_module, modules) = match &self.modules {
            ModulePolicy::Any => (true, Vec::new()),
            ModulePolicy::Only(set) => (false, set.iter().copied().collect()),
        };
        eip712::ResourceOffer {
            provider: self.provider,
            payout: self.payout,
            spec: eip712::MachineSpec {
                cpuMillicores: self.spec.cpu_millicores,
                ramMib: self.spec.ram_mib,
                diskMib: self.spec.disk_mib,
                gpus: self
                    .spec
                    .gpus
                    .iter()
                    .map(|g| eip712::Gpu {
                        vendor: g.vendor.clone(),
                        model: g.model.clone(),
                        vramMib: g.vram_mib,
                    })
                    .collect(),
            },
            anyModule: any_module,
            modules,
            defaultPrice: self.default_price,
            modulePrices: self
                .module_prices
                .iter()
                .map(|(m, p)| eip712::ModulePrice { moduleId: *m, price: *p })
                .collect(),
            timeoutCollateral: self.timeout_collateral,
            minTimeoutSecs: self.bounds.min_timeout_secs,
            maxResultsMultiple: self.bounds.max_results_multiple,
            maxJudgeWindowSecs: self.bounds.max_judge_window_secs,
            minMediateWindowSecs: self.bounds.min_mediate_window_secs,
            mediators: self.mediators.iter().copied().collect(),
            solver: self.solver,
            expiry: self.expiry,
            nonce: self.nonce,
        }
    }

    /// The offer's id: its EIP-712 signing hash under `domain`.
    pub fn id(&self, domain: &Eip712Domain) -> OfferId {
        eip712::signing_hash(&self.to_eip712(), domain)
    }
}

impl JobOffer {
    /// Checks the offer is well formed and not expired at `now`.
    pub fn validate(&self, now: u64) -> Result<(), OfferError> {
        check_common(("creator", self.creator), self.solver, &self.mediators, self.expiry, now)?;
        check_amount("payment_collateral", self.payment_collateral)?;
        if self.payment_collateral < self.max_price {
            return Err(invalid(
                "payment_collateral",
                self.payment_collateral,
                "must cover max_price",
            ));
        }
        if self.timeout_secs == 0 {
            return Err(invalid("timeout_secs", 0, "must be positive"));
        }
        if self.mediators.len() > MAX_MEDIATORS {
            return Err(invalid("mediators", self.mediators.len(), "at most 64 mediators"));
        }
        if self.target == Some(Address::ZERO) {
            return Err(invalid(
                "target",
                Address::ZERO,
                "use no target instead of the zero address",
            ));
        }
        if self.requirements.gpu_count == 0 && self.requirements.gpu_vram_mib > 0 {
            return Err(invalid(
                "requirements.gpu_vram_mib",
                self.requirements.gpu_vram_mib,
                "VRAM asked for without a GPU count",
            ));
        }
        Ok(())
    }

    /// The EIP-712 struct that the creator signs.
    pub fn to_eip712(&self) -> eip712::JobOffer {
        let r = &self.requirements;
        eip712::JobOffer {
            creator: self.creator,
            moduleId: self.module_id,
            inputsHash: self.inputs_hash,
            requirements: eip712::JobRequirements {
                cpuMillicores: r.cpu_millicores,
                ramMib: r.ram_mib,
                diskMib: r.disk_mib,
                gpuCount: r.gpu_count,
                gpuVramMib: r.gpu_vram_mib,
            },
            maxPrice: self.max_price,
            paymentCollateral: self.payment_collateral,
            timeoutSecs: self.timeout_secs,
            maxMediationFee: self.bounds.max_mediation_fee,
            minJudgeWindowSecs: self.bounds.min_judge_window_secs,
            mediators: self.mediators.iter().copied().collect(),
            solver: self.solver,
            target: self.target.unwrap_or(Address::ZERO),
            expiry: self.expiry,
            nonce: self.nonce,
        }
    }

    /// The offer's id: its EIP-712 signing hash under `domain`.
    pub fn id(&self, domain: &Eip712Domain) -> OfferId {
        eip712::signing_hash(&self.to_eip712(), domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Gpu;

    fn addr(n: u8) -> Address {
        Address::repeat_byte(n)
    }

    pub(crate) fn job() -> JobOffer {
        JobOffer {
            creator: addr(1),
            module_id: B256::repeat_byte(7),
            inputs_hash: B256::repeat_byte(8),
            requirements: JobRequirements {
                cpu_millicores: 1000,
                ram_mib: 512,
                ..Default::default()
            },
            max_price: U256::from(10),
            payment_collateral: U256::from(20),
            timeout_secs: 600,
            bounds: CreatorBounds::default(),
            mediators: [addr(9)].into(),
            solver: addr(3),
            target: None,
            expiry: 1000,
            nonce: U256::from(1),
        }
    }

    fn resource() -> ResourceOffer {
        ResourceOffer {
            provider: addr(2),
            payout: Default::default(),
            spec: MachineSpec {
                cpu_millicores: 2000,
                ram_mib: 1024,
                disk_mib: 0,
                gpus: vec![Gpu { vendor: "AMD".into(), model: "MI300".into(), vram_mib: 196_608 }],
            },
            modules: ModulePolicy::Any,
            default_price: U256::from(5),
            module_prices: [(B256::repeat_byte(7), U256::from(4))].into(),
            timeout_collateral: U256::from(3),
            bounds: ProviderBounds::default(),
            mediators: [addr(9)].into(),
            solver: addr(3),
            expiry: 1000,
            nonce: U256::from(1),
        }
    }

    #[test]
    fn valid_offers_pass_and_expire() {
        assert_eq!(job().validate(999), Ok(()));
        assert_eq!(resource().validate(0), Ok(()));
        assert_eq!(job().validate(1000), Err(OfferError::Expired { expiry: 1000, now: 1000 }));
    }

    #[test]
    fn errors_name_field_and_value() {
        let j = JobOffer { payment_collateral: U256::from(9), ..job() };
        let e = j.validate(0).unwrap_err().to_string();
        assert_eq!(e, "payment_collateral: must cover max_price (got 9)");
        let r = ResourceOffer { modules: ModulePolicy::Only(BTreeSet::new()), ..resource() };
        assert!(r.validate(0).unwrap_err().to_string().starts_with("modules:"));
        let j = JobOffer {
            payment_collateral: MAX_AMOUNT + U256::from(1),
            max_price: U256::ZERO,
            ..job()
        };
        assert!(j.validate(0).unwrap_err().to_string().starts_with("payment_collateral:"));
        let r = ResourceOffer { timeout_collateral: U256::MAX, ..resource() };
        assert!(r.validate(0).unwrap_err().to_string().starts_with("timeout_collateral:"));
        assert_eq!(MAX_AMOUNT, U256::from(u128::MAX));
        let j = JobOffer { mediators: BTreeSet::new(), ..job() };
        assert!(j.validate(0).unwrap_err().to_string().starts_with("mediators:"));
        let j = JobOffer { creator: Address::ZERO, ..job() };
        assert!(j.validate(0).unwrap_err().to_string().starts_with("creator:"));
    }

    #[test]
    fn bounds_refuse_terms_outside_them() {
        let p = NetworkParams::default();
        assert_eq!(ProviderBounds::default().accepts(&p), Ok(()));
        assert_eq!(CreatorBounds::default().accepts(&p), Ok(()));
        let p2 = NetworkParams { results_collateral_multiple: 5, ..NetworkParams::default() };
        assert_eq!(
            ProviderBounds::default().accepts(&p2),
            Err(TermsRefused::ResultsMultiple { value: 5, bound: 4 })
        );
        let p2 = NetworkParams { mediate_window_secs: 599, ..NetworkParams::default() };
        assert!(matches!(
            ProviderBounds::default().accepts(&p2),
            Err(TermsRefused::MediateWindowTooShort { value: 599, bound: 600 })
        ));
        let p2 = NetworkParams { judge_window_secs: 86_401, ..NetworkParams::default() };
        assert!(matches!(
            ProviderBounds::default().accepts(&p2),
            Err(TermsRefused::JudgeWindowTooLong { .. })
        ));
        let p2 = NetworkParams { judge_window_secs: 599, ..NetworkParams::default() };
        assert!(matches!(
            CreatorBounds::default().accepts(&p2),
            Err(TermsRefused::JudgeWindowTooShort { .. })
        ));
        let p2 = NetworkParams { mediation_fee: U256::from(10u64.pow(18)) + U256::from(1), ..p };
        let e = CreatorBounds::default().accepts(&p2).unwrap_err().to_string();
        assert!(e.contains("mediation fee") && e.contains("maximum"), "{e}");
    }

    #[test]
    fn module_price_overrides_default() {
        let r = resource();
        assert_eq!(r.price_for(&B256::repeat_byte(7)), U256::from(4));
        assert_eq!(r.price_for(&B256::repeat_byte(6)), U256::from(5));
    }

    #[test]
    fn ids_cover_every_field_and_the_domain() {
        let d = crate::eip712::domain(1337, addr(0xcc));
        let base = job().id(&d);
        assert_ne!(base, JobOffer { nonce: U256::from(2), ..job() }.id(&d));
        assert_ne!(base, JobOffer { target: Some(addr(2)), ..job() }.id(&d));
        let fee = CreatorBounds { max_mediation_fee: U256::from(1), ..CreatorBounds::default() };
        assert_ne!(base, JobOffer { bounds: fee, ..job() }.id(&d));
        let min = ProviderBounds { min_timeout_secs: 61, ..ProviderBounds::default() };
        assert_ne!(resource().id(&d), ResourceOffer { bounds: min, ..resource() }.id(&d));
        assert_ne!(base, job().id(&crate::eip712::domain(1, addr(0xcc))));
        assert_ne!(
            resource().id(&d),
            ResourceOffer { default_price: U256::from(6), ..resource() }.id(&d)
        );
    }

    #[test]
    fn json_round_trip() {
        let j = job();
        let s = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<JobOffer>(&s).unwrap(), j);
        let r = resource();
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<ResourceOffer>(&s).unwrap(), r);
    }
}
