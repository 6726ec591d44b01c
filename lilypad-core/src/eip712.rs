//! The EIP-712 structs that are signed off chain and checked on chain.
//!
//! These mirror `contracts/src/LilypadTypes.sol` field for field; the id of a
//! signed thing is its EIP-712 signing hash under [`domain`].

use alloy_primitives::{Address, B256};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain};

alloy_sol_types::sol! {
    /// A GPU as signed in a resource offer.
    #[derive(Debug, PartialEq, Eq)]
    struct Gpu {
        string vendor;
        string model;
        uint64 vramMib;
    }

    /// A machine spec as signed in a resource offer.
    #[derive(Debug, PartialEq, Eq)]
    struct MachineSpec {
        uint32 cpuMillicores;
        uint64 ramMib;
        uint64 diskMib;
        Gpu[] gpus;
    }

    /// Job requirements as signed in a job offer.
    #[derive(Debug, PartialEq, Eq)]
    struct JobRequirements {
        uint32 cpuMillicores;
        uint64 ramMib;
        uint64 diskMib;
        uint32 gpuCount;
        uint64 gpuVramMib;
    }

    /// A per-module price of a resource offer.
    #[derive(Debug, PartialEq, Eq)]
    struct ModulePrice {
        bytes32 moduleId;
        uint256 price;
    }

    /// A resource provider's signed offer.
    ///
    /// `modules` and `mediators` are strictly ascending; `anyModule` set means
    /// `modules` is empty and every module the network allows is accepted.
    #[derive(Debug, PartialEq, Eq)]
    struct ResourceOffer {
        address provider;
        address payout;
        MachineSpec spec;
        bool anyModule;
        bytes32[] modules;
        uint256 defaultPrice;
        ModulePrice[] modulePrices;
        uint256 timeoutCollateral;
        uint64 minTimeoutSecs;
        uint32 maxResultsMultiple;
        uint32 maxJudgeWindowSecs;
        uint32 minMediateWindowSecs;
        address[] mediators;
        address solver;
        uint64 expiry;
        uint256 nonce;
    }

    /// A job creator's signed offer. `target` is the zero address when any provider will do.
    #[derive(Debug, PartialEq, Eq)]
    struct JobOffer {
        address creator;
        bytes32 moduleId;
        bytes32 inputsHash;
        JobRequirements requirements;
        uint256 maxPrice;
        uint256 paymentCollateral;
        uint64 timeoutSecs;
        uint256 maxMediationFee;
        uint32 minJudgeWindowSecs;
        address[] mediators;
        address solver;
        address target;
        uint64 expiry;
        uint256 nonce;
    }
}

/// Name of the EIP-712 domain of the deal controller.
pub const DOMAIN_NAME: &str = "Lilypad";
/// Version of the EIP-712 domain of the deal controller.
pub const DOMAIN_VERSION: &str = "1";

/// The EIP-712 domain of the controller at `controller` on chain `chain_id`.
pub fn domain(chain_id: u64, controller: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: controller,
    }
}

/// The EIP-712 signing hash of `value` under `domain`: the id of a signed offer.
pub fn signing_hash<T: SolStruct>(value: &T, domain: &Eip712Domain) -> B256 {
    value.eip712_signing_hash(domain)
}
