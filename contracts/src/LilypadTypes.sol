// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// The EIP-712 structs signed off chain and checked on chain. They mirror
// `lilypad-core/src/eip712.rs` field for field and in order: change both or
// neither (the hashes in test/LilypadTypes.t.sol were computed by the Rust core).
//
// `modules`, `modulePrices` (by moduleId) and `mediators` are strictly
// ascending; `anyModule` set means every module the network allows.

/// @notice A GPU as signed in a resource offer.
struct Gpu {
    string vendor;
    string model;
    uint64 vramMib;
}

/// @notice A machine spec as signed in a resource offer.
struct MachineSpec {
    uint32 cpuMillicores;
    uint64 ramMib;
    uint64 diskMib;
    Gpu[] gpus;
}

/// @notice Job requirements as signed in a job offer.
struct JobRequirements {
    uint32 cpuMillicores;
    uint64 ramMib;
    uint64 diskMib;
    uint32 gpuCount;
    uint64 gpuVramMib;
}

/// @notice A per-module price of a resource offer.
struct ModulePrice {
    bytes32 moduleId;
    uint256 price;
}

/// @notice A resource provider's signed offer.
struct ResourceOffer {
    address provider;
    /// Where the provider's payments and collateral refunds go; zero for the provider itself.
    address payout;
    MachineSpec spec;
    bool anyModule;
    bytes32[] modules;
    uint256 defaultPrice;
    ModulePrice[] modulePrices;
    uint256 timeoutCollateral;
    /// The shortest job timeout (seconds to submit results) the provider accepts.
    uint64 minTimeoutSecs;
    /// The largest results collateral multiple the provider accepts.
    uint32 maxResultsMultiple;
    /// The longest judge window the provider accepts (its pay waits on it).
    uint32 maxJudgeWindowSecs;
    /// The shortest mediate window the provider accepts.
    uint32 minMediateWindowSecs;
    address[] mediators;
    address solver;
    uint64 expiry;
    uint256 nonce;
}

/// @notice A job creator's signed offer. `target` is the zero address when any provider will do.
struct JobOffer {
    address creator;
    bytes32 moduleId;
    bytes32 inputsHash;
    JobRequirements requirements;
    uint256 maxPrice;
    uint256 paymentCollateral;
    uint64 timeoutSecs;
    /// The most the job creator pays for a challenge.
    uint256 maxMediationFee;
    /// The least time the job creator needs to verify results.
    uint32 minJudgeWindowSecs;
    address[] mediators;
    address solver;
    address target;
    uint64 expiry;
    uint256 nonce;
}

/// @notice Where a deal is in its life (`None`: no such deal).
enum DealState {
    None,
    Agreed,
    ResultsSubmitted,
    ResultsChallenged,
    Finished,
    FailureReported,
    FailureChallenged
}

/// @notice How a deal ended; same order as `lilypad_core::settlement::Outcome`.
enum Outcome {
    Accepted,
    NoResultsInTime,
    NoJudgementInTime,
    MediationAccepted,
    MediationRejected,
    NoMediationInTime,
    FailureAccepted,
    FailureUpheld,
    FailureRefuted,
    FailureNoMediationInTime
}

/// @notice Something a party does to a deal; same order as `lilypad_core::state::EventKind`.
enum DealAction {
    SubmitResults,
    AcceptResults,
    ChallengeResults,
    Mediate,
    ClaimTimeout,
    ReportFailure,
    AcceptFailure,
    ChallengeFailure,
    DrawMediator,
    RedrawMediator
}

/// @notice Why a job could not run, caused by the job creator (reported by the provider with reportFailure).
enum JobFailure {
    ImageUnavailable,
    ModuleUnresolvable,
    InputsRejected
}

/// @notice Who may act on a deal; same order as `lilypad_core::state::Role`.
enum DealRole {
    JobCreator,
    ResourceProvider,
    ChosenMediator
}

/// @notice EIP-712 struct hashes (`hashStruct`) of the signed offers.
library LilypadHashing {
    bytes internal constant GPU_TYPE = "Gpu(string vendor,string model,uint64 vramMib)";
    bytes internal constant MACHINE_SPEC_TYPE =
        "MachineSpec(uint32 cpuMillicores,uint64 ramMib,uint64 diskMib,Gpu[] gpus)";
    bytes internal constant JOB_REQUIREMENTS_TYPE =
        "JobRequirements(uint32 cpuMillicores,uint64 ramMib,uint64 diskMib,uint32 gpuCount,uint64 gpuVramMib)";
    bytes internal constant MODULE_PRICE_TYPE = "ModulePrice(bytes32 moduleId,uint256 price)";
    bytes internal constant RESOURCE_OFFER_TYPE = "ResourceOffer(address provider,address payout,MachineSpec spec,bool anyModule,"
        "bytes32[] modules,uint256 defaultPrice,ModulePrice[] modulePrices,uint256 timeoutCollateral,"
        "uint64 minTimeoutSecs,uint32 maxResultsMultiple,uint32 maxJudgeWindowSecs,uint32 minMediateWindowSecs,"
        "address[] mediators,address solver,uint64 expiry,uint256 nonce)";
    bytes internal constant JOB_OFFER_TYPE = "JobOffer(address creator,bytes32 moduleId,bytes32 inputsHash,"
        "JobRequirements requirements,uint256 maxPrice,uint256 paymentCollateral,uint64 timeoutSecs,"
        "uint256 maxMediationFee,uint32 minJudgeWindowSecs,address[] mediators,address solver,address target,"
        "uint64 expiry,uint256 nonce)";

    // encodeType appends the referenced struct types sorted by name.
    bytes32 internal constant GPU_TYPEHASH = keccak256(GPU_TYPE);
    bytes32 internal constant MACHINE_SPEC_TYPEHASH =
        keccak256(abi.encodePacked(MACHINE_SPEC_TYPE, GPU_TYPE));
    bytes32 internal constant JOB_REQUIREMENTS_TYPEHASH = keccak256(JOB_REQUIREMENTS_TYPE);
    bytes32 internal constant MODULE_PRICE_TYPEHASH = keccak256(MODULE_PRICE_TYPE);
    bytes32 internal constant RESOURCE_OFFER_TYPEHASH =
        keccak256(abi.encodePacked(RESOURCE_OFFER_TYPE, GPU_TYPE, MACHINE_SPEC_TYPE, MODULE_PRICE_TYPE));
    bytes32 internal constant JOB_OFFER_TYPEHASH =
        keccak256(abi.encodePacked(JOB_OFFER_TYPE, JOB_REQUIREMENTS_TYPE));

    function hashGpu(Gpu calldata g) internal pure returns (bytes32) {
        return
            keccak256(
                abi.encode(GPU_TYPEHASH, keccak256(bytes(g.vendor)), keccak256(bytes(g.model)), g.vramMib)
            );
    }

    function hashMachineSpec(MachineSpec calldata s) internal pure returns (bytes32) {
        uint256 n = s.gpus.length;
        bytes32[] memory gpus = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            gpus[i] = hashGpu(s.gpus[i]);
        }
        return keccak256(
            abi.encode(
                MACHINE_SPEC_TYPEHASH, s.cpuMillicores, s.ramMib, s.diskMib, keccak256(abi.encodePacked(gpus))
            )
        );
    }

    function hashJobRequirements(JobRequirements calldata r) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                JOB_REQUIREMENTS_TYPEHASH, r.cpuMillicores, r.ramMib, r.diskMib, r.gpuCount, r.gpuVramMib
            )
        );
    }

    function hashModulePrices(ModulePrice[] calldata prices) internal pure returns (bytes32) {
        uint256 n = prices.length;
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            hashes[i] = keccak256(abi.encode(MODULE_PRICE_TYPEHASH, prices[i].moduleId, prices[i].price));
        }
        return keccak256(abi.encodePacked(hashes));
    }

    function hashResourceOffer(ResourceOffer calldata o) internal pure returns (bytes32) {
        // Encodes of static words concatenate to the one encode, without a too deep stack.
        return keccak256(
            bytes.concat(
                abi.encode(
                    RESOURCE_OFFER_TYPEHASH,
                    o.provider,
                    o.payout,
                    hashMachineSpec(o.spec),
                    o.anyModule,
                    keccak256(abi.encodePacked(o.modules)),
                    o.defaultPrice
                ),
                abi.encode(
                    hashModulePrices(o.modulePrices),
                    o.timeoutCollateral,
                    o.minTimeoutSecs,
                    o.maxResultsMultiple,
                    o.maxJudgeWindowSecs,
                    o.minMediateWindowSecs
                ),
                abi.encode(keccak256(abi.encodePacked(o.mediators)), o.solver, o.expiry, o.nonce)
            )
        );
    }

    function hashJobOffer(JobOffer calldata o) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                abi.encode(
                    JOB_OFFER_TYPEHASH,
                    o.creator,
                    o.moduleId,
                    o.inputsHash,
                    hashJobRequirements(o.requirements),
                    o.maxPrice,
                    o.paymentCollateral
                ),
                abi.encode(
                    o.timeoutSecs,
                    o.maxMediationFee,
                    o.minJudgeWindowSecs,
                    keccak256(abi.encodePacked(o.mediators)),
                    o.solver,
                    o.target
                ),
                abi.encode(o.expiry, o.nonce)
            )
        );
    }
}
