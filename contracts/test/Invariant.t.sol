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
    JobFailure,
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
    address public immutable owner;
    /// Sends the controller tokens by mistake.
    address public immutable donor;

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
    /// Tokens sent to the controller outside any deal, less those the owner recovered.
    uint256 public stray;
    uint256 public nonce;
    /// Set when a call that must fail succeeded.
    bool public breach;
    mapping(bytes4 => uint256) public calls;

    constructor(
        LilypadController controller_,
        LilypadToken token_,
        address solver_,
        address[] memory mediators_,
        address owner_,
        address donor_
    ) {
        controller = controller_;
        token = token_;
        solver = solver_;
        mediators = mediators_;
        owner = owner_;
        donor = donor_;
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

    function reportFailure(uint256 seed, uint8 reason) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state != DealState.Agreed || block.timestamp > d.deadline) return;
        _report(id, d.provider, JobFailure(reason % 3));
        calls[this.reportFailure.selector]++;
    }

    function _report(bytes32 id, address provider, JobFailure reason) internal books(id) {
        vm.prank(provider);
        controller.reportFailure(id, reason, "handler");
    }

    function acceptFailure(uint256 seed) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state != DealState.FailureReported || block.timestamp > d.deadline) return;
        _acceptFailure(id, d.jobCreator);
        calls[this.acceptFailure.selector]++;
    }

    function _acceptFailure(bytes32 id, address jc) internal books(id) {
        vm.prank(jc);
        controller.acceptFailure(id);
    }

    function challengeFailure(uint256 seed) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (d.state != DealState.FailureReported || block.timestamp > d.deadline) return;
        _challengeFailure(id, d.jobCreator);
        calls[this.challengeFailure.selector]++;
    }

    function _challengeFailure(bytes32 id, address jc) internal books(id) {
        vm.prank(jc);
        controller.challengeFailure(id, dealMediators[id]);
    }

    function challenged(DealState s) internal pure returns (bool) {
        return s == DealState.ResultsChallenged || s == DealState.FailureChallenged;
    }

    /// Anyone draws; the seed block's hash is set to `hash` (the chain's, once sealed).
    function drawMediator(uint256 seed, bytes32 hash) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (!challenged(d.state) || d.mediator != address(0) || block.timestamp > d.deadline) return;
        if (block.number <= d.drawBlock) return;
        if (block.number - d.drawBlock <= 256) vm.setBlockhash(d.drawBlock, hash);
        _draw(id);
        LilypadController.DealView memory a = controller.getDeal(id);
        // Either drawn (an untried mediator of the deal's set) or re-armed on this block.
        if (a.mediator == address(0) && a.drawBlock != block.number) breach = true;
        if (a.mediator != address(0) && !inSet(id, a.mediator)) breach = true;
        calls[this.drawMediator.selector]++;
    }

    function _draw(bytes32 id) internal books(id) {
        controller.drawMediator(id, dealMediators[id]);
    }

    function inSet(bytes32 id, address who) internal view returns (bool) {
        address[] storage set = dealMediators[id];
        for (uint256 i; i < set.length; ++i) {
            if (set[i] == who) return true;
        }
        return false;
    }

    function redrawMediator(uint256 seed) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (!challenged(d.state) || block.timestamp <= d.deadline) return;
        _redraw(id);
        LilypadController.DealView memory a = controller.getDeal(id);
        if (a.round > a.mediatorCount) breach = true;
        calls[this.redrawMediator.selector]++;
    }

    function _redraw(bytes32 id) internal books(id) {
        controller.redrawMediator(id, dealMediators[id]);
    }

    function mediate(uint256 seed, bool accept) external {
        (bytes32 id, bool ok) = deal(seed);
        if (!ok) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        if (!challenged(d.state) || d.mediator == address(0) || block.timestamp > d.deadline) return;
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
        if (challenged(d.state) && uint256(d.mediatorCount) - d.round - 1 != 0) return; // MediatorsLeft
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

    /// Blocks pass without time passing much (so seeds expire: 256 blocks).
    function roll(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 300));
    }

    /// Someone sends the controller tokens outside any deal.
    function donate(uint256 amount) external {
        amount = bound(amount, 1, 1e24);
        vm.prank(donor);
        token.transfer(address(controller), amount);
        stray += amount;
        calls[this.donate.selector]++;
    }

    /// The owner recovers stray tokens; one more than the stray must be refused.
    function recoverTokens(uint256 amount) external {
        uint256 before = token.balanceOf(address(controller));
        vm.prank(owner);
        try controller.recoverTokens(address(token), owner, stray + 1) {
            breach = true;
        } catch {}
        if (token.balanceOf(address(controller)) != before) breach = true;
        amount = bound(amount, 0, stray);
        vm.prank(owner);
        controller.recoverTokens(address(token), owner, amount);
        stray -= amount;
        calls[this.recoverTokens.selector]++;
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
        vm.prank(intruder);
        try controller.reportFailure(id, JobFailure.ImageUnavailable, "") {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try controller.acceptFailure(id) {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try controller.challengeFailure(id, dealMediators[id]) {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try controller.recoverTokens(address(token), intruder, 0) {
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
        address donor = address(0xD0D0);
        handler = new Handler(controller, token, address(0x5011), mediators, owner, donor);
        for (uint256 i; i < 3; ++i) {
            fund(vm.addr(0xA11CE + i), owner);
            fund(vm.addr(0xB0B00 + i), owner);
        }
        fund(donor, owner);
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
        assertEq(
            token.balanceOf(address(controller)) - handler.stray(),
            open,
            "balance (less tokens sent outside deals) == sum of open escrows"
        );
        assertEq(controller.totalEscrowed(), open, "totalEscrowed == sum of open escrows");
    }

    function invariant_neverPaysOutMoreThanPaidIn() public view {
        assertLe(handler.totalOut(), handler.totalIn(), "total out <= total in");
        assertEq(
            handler.totalIn() - handler.totalOut(),
            token.balanceOf(address(controller)) - handler.stray(),
            "in - out == balance less stray tokens"
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

    /// The handler's preconditions are reachable: a scripted sequence makes every action take
    /// effect once (so the invariant runs above exercise them), and the invariants hold after it.
    function test_handlerActionsTakeEffect() public {
        for (uint256 i; i < 4; ++i) {
            handler.createDeal(i, 1e18, 1e18, 1e18, 600, 7);
        }
        handler.submitResults(0, keccak256("cid"));
        handler.challengeResults(0);
        handler.reportFailure(1, 0);
        handler.challengeFailure(1);
        handler.reportFailure(2, 1);
        handler.acceptFailure(2);
        handler.roll(0); // one block
        handler.drawMediator(0, keccak256("seed"));
        handler.mediate(0, true);
        handler.warp(7300); // past deal 1's mediate window and deal 3's timeout
        handler.redrawMediator(1);
        handler.claimTimeout(3);
        handler.donate(5e18 - 1); // the handler maps x to 1 + x mod 1e24
        handler.recoverTokens(2e18);
        handler.intrude(1, 5);
        bytes4[13] memory actions = [
            handler.createDeal.selector,
            handler.submitResults.selector,
            handler.challengeResults.selector,
            handler.reportFailure.selector,
            handler.challengeFailure.selector,
            handler.acceptFailure.selector,
            handler.drawMediator.selector,
            handler.mediate.selector,
            handler.redrawMediator.selector,
            handler.claimTimeout.selector,
            handler.donate.selector,
            handler.recoverTokens.selector,
            handler.intrude.selector
        ];
        for (uint256 i; i < actions.length; ++i) {
            assertTrue(handler.calls(actions[i]) > 0, "an action never took effect");
        }
        assertEq(handler.stray(), 3e18, "stray tokens booked");
        assertEq(controller.getDeal(handler.dealIds(1)).round, 1, "deal 1 redrawn");
        invariant_balanceEqualsOpenEscrows();
        invariant_neverPaysOutMoreThanPaidIn();
        invariant_outsidersCannotMoveADeal();
    }
}
