//! EIP-712 signatures: offers (for the controller) and EIP-2612 permits (for the token).

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolStruct},
};
use lilypad_core::{
    eip712,
    offer::{JobOffer, OfferId, ResourceOffer},
};

use super::{bindings::controller::LilypadController as C, error::ChainError};

mod erc2612 {
    alloy::sol! {
        /// The EIP-2612 permit struct (the type name is part of the hash).
        struct Permit {
            address owner;
            address spender;
            uint256 value;
            uint256 nonce;
            uint256 deadline;
        }
    }
}

/// A job offer with the creator's EIP-712 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedJobOffer {
    /// The offer.
    pub offer: JobOffer,
    /// 65 bytes `r ++ s ++ v` (v = 27 or 28).
    pub signature: Bytes,
    /// The offer's id: its EIP-712 signing hash.
    pub id: OfferId,
}

/// A resource offer with the provider's EIP-712 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResourceOffer {
    /// The offer.
    pub offer: ResourceOffer,
    /// 65 bytes `r ++ s ++ v` (v = 27 or 28).
    pub signature: Bytes,
    /// The offer's id: its EIP-712 signing hash.
    pub id: OfferId,
}

/// An EIP-2612 permit letting the controller pull `value` tokens from its signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// The allowance granted.
    pub value: U256,
    /// Unix second after which the permit is void.
    pub deadline: U256,
    /// Signature `v` (27 or 28).
    pub v: u8,
    /// Signature `r`.
    pub r: B256,
    /// Signature `s`.
    pub s: B256,
}

impl Permit {
    /// The "no permit" value `createDealWithPermits` skips (deadline 0).
    pub const NONE: Self =
        Self { value: U256::ZERO, deadline: U256::ZERO, v: 0, r: B256::ZERO, s: B256::ZERO };
}

fn sign_digest(
    signer: &PrivateKeySigner,
    what: &'static str,
    digest: &B256,
) -> Result<[u8; 65], ChainError> {
    signer
        .sign_hash_sync(digest)
        .map(|s| s.as_bytes())
        .map_err(|e| ChainError::Signing { what, message: e.to_string() })
}

fn check_signer(
    what: &'static str,
    expected: Address,
    signer: &PrivateKeySigner,
) -> Result<(), ChainError> {
    if signer.address() != expected {
        return Err(ChainError::WrongSigner { what, expected, got: signer.address() });
    }
    Ok(())
}

/// Signs a job offer for the controller of `domain` ([`lilypad_core::eip712::domain`]).
/// The key must be the offer's creator. The offer is not validated: sign only
/// offers that pass [`JobOffer::validate`].
pub fn sign_job_offer(
    signer: &PrivateKeySigner,
    offer: &JobOffer,
    domain: &Eip712Domain,
) -> Result<SignedJobOffer, ChainError> {
    check_signer("job offer", offer.creator, signer)?;
    let id = offer.id(domain);
    let sig = sign_digest(signer, "job offer", &id)?;
    Ok(SignedJobOffer { offer: offer.clone(), signature: Bytes::copy_from_slice(&sig), id })
}

/// Signs a resource offer for the controller of `domain`. The key must be the offer's provider.
pub fn sign_resource_offer(
    signer: &PrivateKeySigner,
    offer: &ResourceOffer,
    domain: &Eip712Domain,
) -> Result<SignedResourceOffer, ChainError> {
    check_signer("resource offer", offer.provider, signer)?;
    let id = offer.id(domain);
    let sig = sign_digest(signer, "resource offer", &id)?;
    Ok(SignedResourceOffer { offer: offer.clone(), signature: Bytes::copy_from_slice(&sig), id })
}

/// Signs an EIP-2612 permit of `owner` (the signer) for `spender` under the token's `domain`.
pub fn sign_permit(
    signer: &PrivateKeySigner,
    token_domain: &Eip712Domain,
    spender: Address,
    value: U256,
    nonce: U256,
    deadline: U256,
) -> Result<Permit, ChainError> {
    let permit = erc2612::Permit { owner: signer.address(), spender, value, nonce, deadline };
    let digest = permit.eip712_signing_hash(token_domain);
    let sig = sign_digest(signer, "permit", &digest)?;
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..64]);
    Ok(Permit { value, deadline, v: sig[64], r: B256::from(r), s: B256::from(s) })
}

// ---------------------------------------------------------------- core <-> bindings

/// The controller's ABI type of a core job offer (same fields, same order).
pub(crate) fn job_offer_abi(o: &JobOffer) -> C::JobOffer {
    let e = o.to_eip712();
    C::JobOffer {
        creator: e.creator,
        moduleId: e.moduleId,
        inputsHash: e.inputsHash,
        requirements: C::JobRequirements {
            cpuMillicores: e.requirements.cpuMillicores,
            ramMib: e.requirements.ramMib,
            diskMib: e.requirements.diskMib,
            gpuCount: e.requirements.gpuCount,
            gpuVramMib: e.requirements.gpuVramMib,
        },
        maxPrice: e.maxPrice,
        paymentCollateral: e.paymentCollateral,
        timeoutSecs: e.timeoutSecs,
        maxMediationFee: e.maxMediationFee,
        minJudgeWindowSecs: e.minJudgeWindowSecs,
        mediators: e.mediators,
        solver: e.solver,
        target: e.target,
        expiry: e.expiry,
        nonce: e.nonce,
    }
}

/// The controller's ABI type of a core resource offer.
pub(crate) fn resource_offer_abi(o: &ResourceOffer) -> C::ResourceOffer {
    let e: eip712::ResourceOffer = o.to_eip712();
    C::ResourceOffer {
        provider: e.provider,
        payout: e.payout,
        spec: C::MachineSpec {
            cpuMillicores: e.spec.cpuMillicores,
            ramMib: e.spec.ramMib,
            diskMib: e.spec.diskMib,
            gpus: e
                .spec
                .gpus
                .into_iter()
                .map(|g| C::Gpu { vendor: g.vendor, model: g.model, vramMib: g.vramMib })
                .collect(),
        },
        anyModule: e.anyModule,
        modules: e.modules,
        defaultPrice: e.defaultPrice,
        modulePrices: e
            .modulePrices
            .into_iter()
            .map(|p| C::ModulePrice { moduleId: p.moduleId, price: p.price })
            .collect(),
        timeoutCollateral: e.timeoutCollateral,
        minTimeoutSecs: e.minTimeoutSecs,
        maxResultsMultiple: e.maxResultsMultiple,
        maxJudgeWindowSecs: e.maxJudgeWindowSecs,
        minMediateWindowSecs: e.minMediateWindowSecs,
        mediators: e.mediators,
        solver: e.solver,
        expiry: e.expiry,
        nonce: e.nonce,
    }
}

pub(crate) fn permit_abi(p: &Permit) -> C::Permit {
    C::Permit { value: p.value, deadline: p.deadline, v: p.v, r: p.r, s: p.s }
}
