// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {
    Gpu,
    JobOffer,
    JobRequirements,
    LilypadHashing,
    MachineSpec,
    ModulePrice,
    ResourceOffer
} from "../src/LilypadTypes.sol";

contract HashingHarness {
    function jobOffer(JobOffer calldata o) external pure returns (bytes32) {
        return LilypadHashing.hashJobOffer(o);
    }

    function resourceOffer(ResourceOffer calldata o) external pure returns (bytes32) {
        return LilypadHashing.hashResourceOffer(o);
    }
}

/// @notice The Solidity EIP-712 hashing equals the Rust core's (alloy). The
/// expected values are those `lilypad-core/tests/eip712_vectors.rs` asserts
/// for the same offers (it prints them all when one differs); the type hashes
/// are also those `forge eip712 src/LilypadTypes.sol` derives from the structs.
contract LilypadTypesTest is Test {
    HashingHarness internal h = new HashingHarness();

    function a(uint8 b) internal pure returns (address) {
        return address(uint160(b) * (type(uint160).max / 255));
    }

    function b32(uint8 b) internal pure returns (bytes32) {
        return bytes32(uint256(b) * (type(uint256).max / 255));
    }

    function job() internal pure returns (JobOffer memory o) {
        o.creator = a(0x11);
        o.moduleId = b32(0x07);
        o.inputsHash = b32(0x08);
        o.requirements =
            JobRequirements({cpuMillicores: 1000, ramMib: 512, diskMib: 2048, gpuCount: 1, gpuVramMib: 8192});
        o.maxPrice = 10;
        o.paymentCollateral = 20;
        o.timeoutSecs = 600;
        o.maxMediationFee = 7;
        o.minJudgeWindowSecs = 120;
        o.mediators = new address[](2);
        o.mediators[0] = a(0x91);
        o.mediators[1] = a(0x92);
        o.solver = a(0x33);
        o.target = a(0x22);
        o.expiry = 1_000_000;
        o.nonce = 42;
    }

    function resource() internal pure returns (ResourceOffer memory o) {
        o.provider = a(0x22);
        o.payout = a(0x44);
        Gpu[] memory gpus = new Gpu[](2);
        gpus[0] = Gpu({vendor: "AMD", model: "MI300", vramMib: 196_608});
        gpus[1] = Gpu({vendor: "NVIDIA", model: "RTX 4090", vramMib: 24_576});
        o.spec = MachineSpec({cpuMillicores: 2000, ramMib: 1024, diskMib: 4096, gpus: gpus});
        o.anyModule = false;
        o.modules = new bytes32[](2);
        o.modules[0] = b32(0x06);
        o.modules[1] = b32(0x07);
        o.defaultPrice = 5;
        o.modulePrices = new ModulePrice[](1);
        o.modulePrices[0] = ModulePrice({moduleId: b32(0x07), price: 4});
        o.timeoutCollateral = 3;
        o.minTimeoutSecs = 300;
        o.maxResultsMultiple = 4;
        o.maxJudgeWindowSecs = 86_400;
        o.minMediateWindowSecs = 600;
        o.mediators = new address[](3);
        o.mediators[0] = a(0x90);
        o.mediators[1] = a(0x91);
        o.mediators[2] = a(0x92);
        o.solver = a(0x33);
        o.expiry = 2_000_000;
        o.nonce = type(uint256).max;
    }

    function domainSeparator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Lilypad"),
                keccak256("1"),
                chainId,
                verifyingContract
            )
        );
    }

    function digest(bytes32 domain, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domain, structHash));
    }

    function test_typeHashesMatchForgeEip712() public pure {
        assertEq(
            LilypadHashing.GPU_TYPEHASH,
            0xef3ca523864afacb90fe838a6b1773d220e1ae341f1a049176b51aed7c885622,
            "Gpu"
        );
        assertEq(
            LilypadHashing.MACHINE_SPEC_TYPEHASH,
            0x918462791b7a5111f8486109d67738c49e2543d56876e3245b726b94f8185621,
            "MachineSpec"
        );
        assertEq(
            LilypadHashing.JOB_REQUIREMENTS_TYPEHASH,
            0x6b62dc7cc4c0d557d8c666a0b8e4f959dfc82e442773ebd3d3e15158209bc1ec,
            "JobRequirements"
        );
        assertEq(
            LilypadHashing.MODULE_PRICE_TYPEHASH,
            0x136870fa4c650447edd46951f4d8b2254f0b9972bfaf61cfc443044d4df2a18a,
            "ModulePrice"
        );
        assertEq(
            LilypadHashing.RESOURCE_OFFER_TYPEHASH,
            0xbcbb0ea1f5dc7f62ad2497e8a54d5eb3810648406feba554737f415378b0da5a,
            "ResourceOffer"
        );
        assertEq(
            LilypadHashing.JOB_OFFER_TYPEHASH,
            0x1f007e5c579d19c7fb233e6d09040477398c4700e36bc3a28ec453ad9d41fb0f,
            "JobOffer"
        );
    }

    function test_structHashesMatchRustCore() public view {
        assertEq(h.jobOffer(job()), 0xfdacfad1c48414c694fcafe2ad152b31a5b0e1d2ccf62bfefadf5f690a7c1e14, "job");
        assertEq(
            h.resourceOffer(resource()),
            0x3d3c3a670dafa42a739bf279272a615766f6e8d3a021b16a5d22e3db7e48e292,
            "resource"
        );
    }

    function test_signingHashesAndDealIdMatchRustCore() public view {
        bytes32 domain = domainSeparator(31337, a(0xcc));
        assertEq(domain, 0x62d6a92c7cadf9b1e1a29186a979192873988ea921dab047bf80a5727f5dd983, "domain");
        bytes32 j = digest(domain, h.jobOffer(job()));
        bytes32 r = digest(domain, h.resourceOffer(resource()));
        assertEq(j, 0x93a5b14d34d7ffd108a1bed8b63a57220e2d2aa2e178b3614f59fdf3d4b791ff, "job digest");
        assertEq(r, 0xfdfda473a32ab952d92e5c1573103121997d5b454aa2ef4204bcabfac0f58217, "resource digest");
        assertEq(
            keccak256(abi.encode(j, r)),
            0x04808ce8d35c87d62a198b825c62e4f76c6a2c133d63928951845fd79c260bd1,
            "deal id"
        );
    }

    function test_everyFieldChangesTheHash() public view {
        bytes32 base = h.jobOffer(job());
        JobOffer memory o = job();
        o.requirements.gpuVramMib += 1;
        assertTrue(h.jobOffer(o) != base, "requirements");
        o = job();
        o.mediators[1] = a(0x93);
        assertTrue(h.jobOffer(o) != base, "mediators");
        o = job();
        o.target = address(0);
        assertTrue(h.jobOffer(o) != base, "target");
        o = job();
        o.maxMediationFee += 1;
        assertTrue(h.jobOffer(o) != base, "maxMediationFee");
        o = job();
        o.minJudgeWindowSecs += 1;
        assertTrue(h.jobOffer(o) != base, "minJudgeWindowSecs");

        bytes32 rbase = h.resourceOffer(resource());
        ResourceOffer memory r = resource();
        r.spec.gpus[1].model = "RTX 4080";
        assertTrue(h.resourceOffer(r) != rbase, "gpu model");
        r = resource();
        r.modulePrices[0].price = 5;
        assertTrue(h.resourceOffer(r) != rbase, "module price");
        r = resource();
        r.anyModule = true;
        assertTrue(h.resourceOffer(r) != rbase, "anyModule");
        r = resource();
        r.minTimeoutSecs += 1;
        assertTrue(h.resourceOffer(r) != rbase, "minTimeoutSecs");
        r = resource();
        r.maxResultsMultiple += 1;
        assertTrue(h.resourceOffer(r) != rbase, "maxResultsMultiple");
        r = resource();
        r.maxJudgeWindowSecs += 1;
        assertTrue(h.resourceOffer(r) != rbase, "maxJudgeWindowSecs");
        r = resource();
        r.minMediateWindowSecs += 1;
        assertTrue(h.resourceOffer(r) != rbase, "minMediateWindowSecs");
    }
}
