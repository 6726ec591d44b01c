// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {LilypadModuleRegistry} from "../src/LilypadModuleRegistry.sol";
import {LilypadToken} from "../src/LilypadToken.sol";
import {
    DealState,
    Gpu,
    JobOffer,
    JobRequirements,
    MachineSpec,
    ModulePrice,
    ResourceOffer
} from "../src/LilypadTypes.sol";

/// @notice Drives the controller with random sequences of legitimate and
/// illegitimate calls and keeps ghost books of every token that moves in or out.
contract Handler {
    LilypadController public immutable controller;
    LilypadToken public immutable token;
    address public immutable solver;

    uint256 internal constant PARTIES = 3;
    uint256 internal constant MAX_DEALS = 40;
    bytes32 internal constant MODULE = bytes32(uint256(0x7777));

    address[] internal mediators; // m1 < m2 < m3
    bytes32[] public dealIds;
    mapping(bytes32 => address[]) internal dealMediators;
    mapping(bytes32 => uint256) public paidIn;
    mapping(bytes32 => uint256) public paidOut;
    uint256 public totalIn;
    uint256 public totalOut;
    uint256 public nonce;
    /// Set when a call that must fail succeeded.
    bool public breach;
    mapping(bytes4 => uint256) public calls;

    constructor(
        LilypadController controller_,
        LilypadToken token_,
        address solver_,
        address[] memory mediators_
    ) {
        controller = controller_;
        token = token_;
        solver = solver_;
        mediators = mediators_;
    }

    function jcKey(uint256 i) internal pure returns (uint256) {
        return 0xA11CE + (i % PARTIES);
    }

    function rpKey(uint256 i) internal pure returns (uint256) {
        return 0xB0B00 + (i % PARTIES);
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + (x % (max - min + 1));
    }

    function deal(uint256 seed) internal view returns (bytes32 id, bool ok) {
        if (dealIds.length == 0) return (bytes32(0), false);
        return (dealIds[seed % dealIds.length], true);
    }

    /// Books the controller's balance change of `id` around a call.
    modifier books(bytes32 id) {
        uint256 before = token.balanceOf(address(controller));
        _;
        uint256 afterwards = token.balanceOf(address(controller));
        if (afterwards > before) {
            paidIn[id] += afterwards - before;
            totalIn += afterwards - before;
        } else {
            paidOut[id] += before - afterwards;
            totalOut += before - afterwards;
        }
    }

    // ------------------------------------------------------------------ actions

    function createDeal(
        uint256 who,
        uint256 price,
        uint256 extra,
        uint256 timeout,
        uint64 timeoutSecs,
        uint8 medMask
    ) external {
        if (dealIds.length >= MAX_DEALS) return;
        JobOffer memory j;
        ResourceOffer memory r;
        j.creator = vm.addr(jcKey(who));
        r.provider = vm.addr(rpKey(who >> 8));
        price = bound(price, 0, 1e24);
        j.moduleId = MODULE;
        j.inputsHash = keccak256(abi.encode(nonce));
        j.requirements = JobRequirements(1000, 512, 0, 0, 0);
        j.maxPrice = price;
        j.paymentCollateral = price + bound(extra, 0, 1e24);
        j.timeoutSecs = uint64(bound(timeoutSecs, 1, 2 hours));
        j.maxMediationFee = type(uint256).max;
        j.solver = solver;
        j.expiry = uint64(block.timestamp + 1);
        j.nonce = nonce;
        // Job mediators: a non-empty subset of the three; provider trusts all three.
        uint256 mask = bound(medMask, 1, 7);
        uint256 n;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) != 0) ++n;
        }
        j.mediators = new address[](n);
        n = 0;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) != 0) j.mediators[n++] = mediators[i];
        }
        r.spec = MachineSpec(2000, 1024, 0, new Gpu[](0));
        r.anyModule = true;
        r.defaultPrice = price;
        r.modulePrices = new ModulePrice[](0);
        r.timeoutCollateral = bound(timeout, 0, 1e24);
        r.maxResultsMultiple = type(uint32).max;
        r.maxJudgeWindowSecs = type(uint32).max;
        r.mediators = mediators;
        r.solver = solver;
        r.expiry = uint64(block.timestamp + 1);
        r.nonce = nonce;
        ++nonce;

        bytes memory js = sign(jcKey(who), controller.jobOfferHash(j));
        bytes memory rs = sign(rpKey(who >> 8), controller.resourceOfferHash(r));
        bytes32 id = controller.dealIdOf(controller.jobOfferHash(j), controller.resourceOfferHash(r));
        _create(id, j, js, r, rs);
        dealIds.push(id);
        dealMediators[id] = j.mediators; // the intersection, since the provider trusts all
        calls[this.createDeal.selector]++;
    }

    function _create(bytes32 id, JobOffer memory j, bytes memory js, ResourceOffer memory r, bytes memory rs)
        internal
        books(id)
    {
        vm.prank(solver);
        controller.createDeal(j, js, r, rs);
    }

    function sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function submitResults(uint256 seed, bytes32 cid) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state != DealState.Agreed || block.timestamp > d.deadline) return;
        _submit(id, d.provider, cid);
        calls[this.submitResults.selector]++;
    }

    function _submit(bytes32 id, address provider, bytes32 cid) internal books(id) {
        vm.prank(provider);
        controller.submitResults(id, abi.encodePacked(cid));
    }

    function acceptResults(uint256 seed) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state != DealState.ResultsSubmitted || block.timestamp > d.deadline) return;
        _accept(id, d.jobCreator);
        calls[this.acceptResults.selector]++;
    }

    function _accept(bytes32 id, address jc) internal books(id) {
        vm.prank(jc);
        controller.acceptResults(id);
    }

    function challengeResults(uint256 seed) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state != DealState.ResultsSubmitted || block.timestamp > d.deadline) return;
        _challenge(id, d.jobCreator);
        calls[this.challengeResults.selector]++;
    }

    function _challenge(bytes32 id, address jc) internal books(id) {
        vm.prank(jc);
        controller.challengeResults(id, dealMediators[id]);
    }

    function mediate(uint256 seed, bool accept) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state != DealState.ResultsChallenged || block.timestamp > d.deadline) return;
        _mediate(id, d.mediator, accept);
        calls[this.mediate.selector]++;
    }

    function _mediate(bytes32 id, address mediator, bool accept) internal books(id) {
        vm.prank(mediator);
        controller.mediate(id, accept);
    }

    function claimTimeout(uint256 seed) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state == DealState.Finished || block.timestamp <= d.deadline) return;
        _claim(id);
        calls[this.claimTimeout.selector]++;
    }

    function _claim(bytes32 id) internal books(id) {
        controller.claimTimeout(id);
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 3 hours));
        vm.roll(block.number + 1);
    }

    /// Someone who is not a party tries every action on a deal: all must fail.
    function intrude(uint256 seed, uint256 who) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        address intruder = address(uint160(bound(who, 0xdead0000, 0xdead00ff)));
        LilypadController.DealView memory d = controller.getDeal(id);
        uint256 before = token.balanceOf(address(controller));
        vm.prank(intruder);
        try controller.submitResults(id, hex"01") {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try controller.acceptResults(id) {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try controller.challengeResults(id, dealMediators[id]) {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try controller.mediate(id, false) {
            breach = true;
        } catch {}
        if (d.state != DealState.Finished && block.timestamp <= d.deadline) {
            vm.prank(intruder);
            try controller.claimTimeout(id) {
                breach = true;
            } catch {}
        }
        if (token.balanceOf(address(controller)) != before) breach = true;
        calls[this.intrude.selector]++;
    }

    function dealCount() external view returns (uint256) {
        return dealIds.length;
    }
}

/// @notice Invariants: the controller's token balance always equals the sum
/// of open escrows, and no sequence of calls pays out more than was paid in
/// (per deal and in total); finished deals paid out exactly what came in.
contract InvariantTest is Test {
    Handler internal handler;
    LilypadController internal controller;
    LilypadToken internal token;

    function setUp() public {
        vm.warp(1_700_000_000);
        address owner = address(0x0123);
        token = new LilypadToken(owner);
        LilypadModuleRegistry registry = new LilypadModuleRegistry(owner);
        controller = new LilypadController(
            token,
            registry,
            owner,
            LilypadController.NetworkParams({
                resultsCollateralMultiple: 3,
                judgeWindowSecs: 1 hours,
                mediateWindowSecs: 2 hours,
                mediationFee: 5e23,
                minJobTimeoutSecs: 1
            })
        );
        address[] memory mediators = new address[](3);
        mediators[0] = address(0x1001);
        mediators[1] = address(0x1002);
        mediators[2] = address(0x1003);
        handler = new Handler(controller, token, address(0x5011), mediators);
        for (uint256 i; i < 3; ++i) {
            fund(vm.addr(0xA11CE + i), owner);
            fund(vm.addr(0xB0B00 + i), owner);
        }
        targetContract(address(handler));
    }

    function fund(address who, address owner) internal {
        vm.prank(owner);
        token.mint(who, 1e30);
        vm.prank(who);
        token.approve(address(controller), type(uint256).max);
    }

    function invariant_balanceEqualsOpenEscrows() public view {
        uint256 n = handler.dealCount();
        uint256 open;
        for (uint256 i; i < n; ++i) {
            open += controller.escrowOf(handler.dealIds(i));
        }
        assertEq(token.balanceOf(address(controller)), open, "balance == sum of open escrows");
    }

    function invariant_neverPaysOutMoreThanPaidIn() public view {
        assertLe(handler.totalOut(), handler.totalIn(), "total out <= total in");
        assertEq(
            handler.totalIn() - handler.totalOut(),
            token.balanceOf(address(controller)),
            "in - out == balance"
        );
        uint256 n = handler.dealCount();
        for (uint256 i; i < n; ++i) {
            bytes32 id = handler.dealIds(i);
            uint256 inn = handler.paidIn(id);
            uint256 out = handler.paidOut(id);
            assertLe(out, inn, "a deal never pays out more than was paid into it");
            if (controller.getDeal(id).state == DealState.Finished) {
                assertEq(out, inn, "a finished deal paid out exactly what came in");
            } else {
                assertEq(
                    inn - out, controller.escrowOf(id), "an open deal holds what came in less what went out"
                );
            }
        }
    }

    function invariant_outsidersCannotMoveADeal() public view {
        assertTrue(!handler.breach(), "a non-party call succeeded");
    }
}
