// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";
import {vm} from "./Vm.sol";

import {LilypadController} from "../../src/LilypadController.sol";
import {LilypadModuleRegistry} from "../../src/LilypadModuleRegistry.sol";
import {LilypadToken} from "../../src/LilypadToken.sol";
import {
    Gpu,
    JobOffer,
    JobRequirements,
    MachineSpec,
    ModulePrice,
    ResourceOffer
} from "../../src/LilypadTypes.sol";

/// @notice A deployed network (token, module registry, controller), funded
/// parties with test keys, and builders for signed offers.
abstract contract Fixture is Test {
    uint256 internal constant JC_KEY = 0xA11CE;
    uint256 internal constant RP_KEY = 0xB0B;
    uint256 internal constant OTHER_KEY = 0xE7E;

    address internal jc;
    address internal rp;
    address internal other;
    address internal solver = address(0x5011);
    address internal owner = address(0x0123);
    // Ascending: m1 < m2 < m3.
    address internal m1 = address(0x1001);
    address internal m2 = address(0x1002);
    address internal m3 = address(0x1003);

    bytes32 internal constant MODULE = bytes32(uint256(0x7777));
    bytes32 internal constant OTHER_MODULE = bytes32(uint256(0x6666));
    bytes32 internal constant INPUTS = keccak256("inputs");

    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant FUNDS = 1e30;

    uint32 internal constant MULTIPLE = 2;
    uint32 internal constant JUDGE = 3600;
    uint32 internal constant MEDIATE = 7200;
    uint128 internal constant FEE = 1e15;
    /// The network's job timeout floor.
    uint64 internal constant MIN_TIMEOUT = 60;

    LilypadToken internal token;
    LilypadModuleRegistry internal registry;
    LilypadController internal controller;

    function setUp() public virtual {
        vm.warp(START);
        vm.roll(100);
        jc = vm.addr(JC_KEY);
        rp = vm.addr(RP_KEY);
        other = vm.addr(OTHER_KEY);
        token = new LilypadToken(owner);
        registry = new LilypadModuleRegistry(owner);
        controller = new LilypadController(token, registry, owner, defaultParams());
        vm.startPrank(owner);
        token.mint(jc, FUNDS);
        token.mint(rp, FUNDS);
        token.mint(other, FUNDS);
        vm.stopPrank();
        approveAll(jc);
        approveAll(rp);
        approveAll(other);
    }

    function defaultParams() internal pure returns (LilypadController.NetworkParams memory) {
        return LilypadController.NetworkParams({
            resultsCollateralMultiple: MULTIPLE,
            judgeWindowSecs: JUDGE,
            mediateWindowSecs: MEDIATE,
            mediationFee: FEE,
            minJobTimeoutSecs: MIN_TIMEOUT
        });
    }

    function approveAll(address who) internal {
        vm.prank(who);
        token.approve(address(controller), type(uint256).max);
    }

    function addrs(address a) internal pure returns (address[] memory xs) {
        xs = new address[](1);
        xs[0] = a;
    }

    function addrs(address a, address b) internal pure returns (address[] memory xs) {
        xs = new address[](2);
        xs[0] = a;
        xs[1] = b;
    }

    function addrs(address a, address b, address c) internal pure returns (address[] memory xs) {
        xs = new address[](3);
        xs[0] = a;
        xs[1] = b;
        xs[2] = c;
    }

    function ids(bytes32 a) internal pure returns (bytes32[] memory xs) {
        xs = new bytes32[](1);
        xs[0] = a;
    }

    function ids(bytes32 a, bytes32 b) internal pure returns (bytes32[] memory xs) {
        xs = new bytes32[](2);
        xs[0] = a;
        xs[1] = b;
    }

    /// A job offer of `jc` for MODULE: max price 10 ether, payment 12 ether, 600 s, mediators m1 m2;
    /// accepts a fee up to 1 ether and a judge window of at least 60 s.
    function jobOffer() internal view returns (JobOffer memory o) {
        o.creator = jc;
        o.moduleId = MODULE;
        o.inputsHash = INPUTS;
        o.requirements = JobRequirements({
            cpuMillicores: 1000, ramMib: 2048, diskMib: 1024, gpuCount: 1, gpuVramMib: 8192
        });
        o.maxPrice = 10 ether;
        o.paymentCollateral = 12 ether;
        o.timeoutSecs = 600;
        o.maxMediationFee = 1 ether;
        o.minJudgeWindowSecs = 60;
        o.mediators = addrs(m1, m2);
        o.solver = solver;
        o.target = address(0);
        o.expiry = uint64(START + 1 days);
        o.nonce = 1;
    }

    /// A resource offer of `rp`: modules OTHER_MODULE and MODULE, default price 9 ether, MODULE at 8 ether,
    /// timeout collateral 5 ether, mediators m1 m2 m3; accepts jobs of 60 s or more, a results
    /// multiple up to 10, a judge window up to 1 day and a mediate window of at least 60 s.
    function resourceOffer() internal view returns (ResourceOffer memory o) {
        o.provider = rp;
        Gpu[] memory gpus = new Gpu[](1);
        gpus[0] = Gpu({vendor: "NVIDIA", model: "RTX 4090", vramMib: 24576});
        o.spec = MachineSpec({cpuMillicores: 8000, ramMib: 32768, diskMib: 512000, gpus: gpus});
        o.anyModule = false;
        o.modules = ids(OTHER_MODULE, MODULE);
        o.defaultPrice = 9 ether;
        o.modulePrices = new ModulePrice[](1);
        o.modulePrices[0] = ModulePrice({moduleId: MODULE, price: 8 ether});
        o.timeoutCollateral = 5 ether;
        o.minTimeoutSecs = 60;
        o.maxResultsMultiple = 10;
        o.maxJudgeWindowSecs = 1 days;
        o.minMediateWindowSecs = 60;
        o.mediators = addrs(m1, m2, m3);
        o.solver = solver;
        o.expiry = uint64(START + 1 days);
        o.nonce = 1;
    }

    function signature(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function signJob(JobOffer memory o, uint256 key) internal view returns (bytes memory) {
        return signature(key, controller.jobOfferHash(o));
    }

    function signResource(ResourceOffer memory o, uint256 key) internal view returns (bytes memory) {
        return signature(key, controller.resourceOfferHash(o));
    }

    function dealIdOf(JobOffer memory j, ResourceOffer memory r) internal view returns (bytes32) {
        return keccak256(abi.encode(controller.jobOfferHash(j), controller.resourceOfferHash(r)));
    }

    /// Signs both offers with the test keys and creates the deal as the solver.
    function create(JobOffer memory j, ResourceOffer memory r) internal returns (bytes32) {
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        return controller.createDeal(j, js, r, rs);
    }

    function createDefault() internal returns (bytes32) {
        return create(jobOffer(), resourceOffer());
    }

    function submit(bytes32 dealId) internal {
        vm.prank(rp);
        controller.submitResults(dealId, hex"01701220aabbccdd");
    }

    function balances() internal view returns (uint256 j, uint256 r, uint256 c) {
        return (token.balanceOf(jc), token.balanceOf(rp), token.balanceOf(address(controller)));
    }
}
