// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DrawMath} from "./utils/DrawMath.sol";
import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {DealState, JobFailure, JobOffer, Outcome, ResourceOffer} from "../src/LilypadTypes.sol";

/// @notice Fuzz tests of the issue 11 rules: job timeout minimums, parameters within signed
/// bounds, the mediator draw over every round, the draw's block window, failure report windows,
/// and token recovery against escrow in every state.
contract HardeningFuzzTest is Fixture {
    uint256 internal constant PRICE = 8 ether;
    uint256 internal constant PAYMENT = 12 ether;
    uint256 internal constant TIMEOUT = 5 ether;
    uint256 internal constant RESULTS = 16 ether;

    function setParams(LilypadController.NetworkParams memory p) internal {
        vm.prank(owner);
        controller.setParams(p);
    }

    function createOrExpect(JobOffer memory j, ResourceOffer memory r, bytes memory reason)
        internal
        returns (bytes32 id)
    {
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        if (reason.length != 0) vm.expectRevert(reason);
        return controller.createDeal(j, js, r, rs);
    }

    // ------------------------------------------------------------------ job timeout minimums

    function testFuzz_timeoutMustMeetBothMinimums(uint64 timeoutSecs, uint64 providerMin, uint64 floor)
        public
    {
        floor = uint64(bound(floor, 1, 1e6));
        providerMin = uint64(bound(providerMin, 0, 1e6));
        timeoutSecs = uint64(bound(timeoutSecs, 0, 2e6));
        LilypadController.NetworkParams memory p = defaultParams();
        p.minJobTimeoutSecs = floor;
        setParams(p);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.timeoutSecs = timeoutSecs;
        r.minTimeoutSecs = providerMin;
        if (timeoutSecs < providerMin || timeoutSecs < floor) {
            createOrExpect(
                j,
                r,
                abi.encodeWithSelector(
                    LilypadController.TimeoutTooShort.selector, timeoutSecs, providerMin, floor
                )
            );
            return;
        }
        bytes32 id = createOrExpect(j, r, "");
        assertEq(controller.getDeal(id).deadline, START + timeoutSecs, "deadline");
        // The provider has all of it: submitting at the last second works.
        vm.warp(START + timeoutSecs);
        submit(id);
    }

    // ------------------------------------------------------------------ parameters within signed bounds

    struct Bounds {
        uint32 multiple;
        uint32 maxMultiple;
        uint128 fee;
        uint256 maxFee;
        uint32 judge;
        uint32 maxJudge;
        uint32 minJudge;
        uint32 mediate;
        uint32 minMediate;
    }

    function testFuzz_paramsMustBeWithinTheSignedBounds(Bounds memory b) public {
        b.multiple = uint32(bound(b.multiple, 0, 20));
        b.maxMultiple = uint32(bound(b.maxMultiple, 0, 20));
        b.fee = uint128(bound(b.fee, 0, 20));
        b.maxFee = bound(b.maxFee, 0, 20);
        b.judge = uint32(bound(b.judge, 1, 20));
        b.maxJudge = uint32(bound(b.maxJudge, 0, 20));
        b.minJudge = uint32(bound(b.minJudge, 0, 20));
        b.mediate = uint32(bound(b.mediate, 1, 20));
        b.minMediate = uint32(bound(b.minMediate, 0, 20));
        setParams(
            LilypadController.NetworkParams({
                resultsCollateralMultiple: b.multiple,
                judgeWindowSecs: b.judge,
                mediateWindowSecs: b.mediate,
                mediationFee: b.fee,
                minJobTimeoutSecs: MIN_TIMEOUT
            })
        );
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        r.maxResultsMultiple = b.maxMultiple;
        j.maxMediationFee = b.maxFee;
        r.maxJudgeWindowSecs = b.maxJudge;
        j.minJudgeWindowSecs = b.minJudge;
        r.minMediateWindowSecs = b.minMediate;

        bytes memory reason;
        if (b.multiple > b.maxMultiple) {
            reason = abi.encodeWithSelector(
                LilypadController.TermsNotAccepted.selector, 0, b.multiple, b.maxMultiple
            );
        } else if (b.fee > b.maxFee) {
            reason = abi.encodeWithSelector(LilypadController.TermsNotAccepted.selector, 1, b.fee, b.maxFee);
        } else if (b.judge > b.maxJudge) {
            reason =
                abi.encodeWithSelector(LilypadController.TermsNotAccepted.selector, 2, b.judge, b.maxJudge);
        } else if (b.judge < b.minJudge) {
            reason =
                abi.encodeWithSelector(LilypadController.TermsNotAccepted.selector, 3, b.judge, b.minJudge);
        } else if (b.mediate < b.minMediate) {
            reason = abi.encodeWithSelector(
                LilypadController.TermsNotAccepted.selector, 4, b.mediate, b.minMediate
            );
        }
        bytes32 id = createOrExpect(j, r, reason);
        if (reason.length != 0) return;
        LilypadController.DealView memory d = controller.getDeal(id);
        assertEq(d.resultsCollateral, PRICE * b.multiple, "multiple");
        assertEq(d.mediationFee, b.fee, "fee");
        assertEq(d.judgeWindowSecs, b.judge, "judge");
        assertEq(d.mediateWindowSecs, b.mediate, "mediate");
    }

    // ------------------------------------------------------------------ the draw over every round

    /// An independent reference draw: the k-th untried mediator, k = seed mod untried.
    function referenceDraw(bytes32 hash, bytes32 id, address[] memory set, bool[] memory tried)
        internal
        pure
        returns (uint256)
    {
        uint256 round;
        for (uint256 i; i < set.length; ++i) {
            if (tried[i]) ++round;
        }
        uint256 k = uint256(keccak256(abi.encode(hash, id, round))) % (set.length - round);
        for (uint256 i; i < set.length; ++i) {
            if (tried[i]) continue;
            if (k == 0) return i;
            --k;
        }
        revert("unreachable");
    }

    function mediatorSet(uint256 n) internal pure returns (address[] memory set) {
        set = new address[](n);
        for (uint256 i; i < n; ++i) {
            set[i] = address(uint160(0x3000 + i));
        }
    }

    /// n mediators; the first `answerAt` drawn stay silent (each is redrawn after its window), the
    /// next one mediates (accepts); answerAt == n: nobody answers and the last redraw refunds all.
    /// Every mediator is drawn at most once and by the formula; the provider is paid whenever
    /// someone answers.
    function testFuzz_drawTriesEachMediatorOnceUntilOneAnswers(uint8 n, uint8 answerAt, bytes32 seed) public {
        n = uint8(bound(n, 1, 10));
        answerAt = uint8(bound(answerAt, 0, n));
        address[] memory set = mediatorSet(n);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.mediators = set;
        r.mediators = set;
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = create(j, r);
        submit(id);
        vm.prank(jc);
        controller.challengeResults(id, set);

        bool[] memory tried = new bool[](n);
        for (uint256 round; round < answerAt; ++round) {
            uint256 drawn = drawRound(id, set, tried, seed, round);
            tried[drawn] = true;
            vm.warp(controller.getDeal(id).deadline + 1);
            vm.roll(block.number + 1);
            controller.redrawMediator(id, set);
        }
        if (answerAt == n) {
            assertTrue(controller.getDeal(id).outcome == Outcome.NoMediationInTime, "nobody answered");
            (uint256 jcA, uint256 rpA,) = balances();
            assertEq(jcA, jc0, "job creator whole");
            assertEq(rpA, rp0, "provider whole");
        } else {
            uint256 drawn = drawRound(id, set, tried, seed, answerAt);
            vm.prank(set[drawn]);
            controller.mediate(id, true);
            (uint256 jcB, uint256 rpB,) = balances();
            assertEq(rpB - rp0, PRICE, "the provider is paid");
            assertEq(jc0 - jcB, PRICE + FEE, "the job creator pays price and fee");
            assertEq(token.balanceOf(set[drawn]), FEE, "the answering mediator gets the fee");
        }
        assertEq(token.balanceOf(address(controller)), 0, "escrow empty");
        assertEq(controller.totalEscrowed(), 0, "totalEscrowed");
    }

    function drawRound(bytes32 id, address[] memory set, bool[] memory tried, bytes32 seed, uint256 round)
        internal
        returns (uint256 drawn)
    {
        uint256 b = controller.getDeal(id).drawBlock;
        bytes32 h = keccak256(abi.encode(seed, round));
        vm.roll(b + 1);
        vm.setBlockhash(b, h);
        controller.drawMediator(id, set);
        LilypadController.DealView memory d = controller.getDeal(id);
        drawn = referenceDraw(h, id, set, tried);
        assertEq(d.mediator, set[drawn], "the documented formula");
        assertTrue(!tried[drawn], "an untried mediator");
        assertEq(d.round, round, "round");
    }

    // ------------------------------------------------------------------ the draw's block window

    function testFuzz_drawWindow(uint256 k, bytes32 h) public {
        k = bound(k, 0, 600);
        bytes32 id = createDefault();
        submit(id);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        uint256 b = block.number;
        vm.roll(b + k);
        vm.setBlockhash(b, h);
        if (k == 0) {
            vm.expectRevert(abi.encodeWithSelector(LilypadController.DrawNotReady.selector, b, b));
            controller.drawMediator(id, addrs(m1, m2));
        } else if (k <= 256) {
            controller.drawMediator(id, addrs(m1, m2));
            (address expected,) = DrawMath.choose(h, id, addrs(m1, m2), 0);
            assertEq(controller.getDeal(id).mediator, expected, "drawn from the challenge block");
        } else {
            controller.drawMediator(id, addrs(m1, m2));
            LilypadController.DealView memory d = controller.getDeal(id);
            assertEq(d.mediator, address(0), "re-armed, not drawn");
            assertEq(d.drawBlock, b + k, "from this block");
        }
    }

    // ------------------------------------------------------------------ failure report windows

    function testFuzz_failureReportWindows(uint256 dtReport, uint256 dtJudge, bool accept) public {
        dtReport = bound(dtReport, 0, 1200);
        dtJudge = bound(dtJudge, 0, 2 * uint256(JUDGE));
        bytes32 id = createDefault();
        vm.warp(START + dtReport);
        if (dtReport > 600) {
            vm.prank(rp);
            vm.expectRevert(
                abi.encodeWithSelector(
                    LilypadController.DeadlinePassed.selector, START + 600, START + dtReport
                )
            );
            controller.reportFailure(id, JobFailure.InputsRejected, "");
            return;
        }
        vm.prank(rp);
        controller.reportFailure(id, JobFailure.InputsRejected, "");
        uint256 deadline = START + dtReport + JUDGE;
        vm.warp(START + dtReport + dtJudge);
        (uint256 jc0, uint256 rp0,) = balances();
        if (dtJudge <= JUDGE) {
            vm.expectRevert(
                abi.encodeWithSelector(LilypadController.TooEarly.selector, deadline, block.timestamp)
            );
            controller.claimTimeout(id);
            vm.prank(jc);
            if (accept) {
                controller.acceptFailure(id);
            } else {
                controller.challengeFailure(id, addrs(m1, m2));
                assertTrue(controller.getDeal(id).state == DealState.FailureChallenged, "challenged");
                return;
            }
        } else {
            vm.prank(jc);
            vm.expectRevert(
                abi.encodeWithSelector(LilypadController.DeadlinePassed.selector, deadline, block.timestamp)
            );
            controller.acceptFailure(id);
            controller.claimTimeout(id);
        }
        (uint256 jc1, uint256 rp1,) = balances();
        assertEq(jc1 - jc0, PAYMENT, "job creator refunded");
        assertEq(rp1 - rp0, TIMEOUT, "provider keeps its collateral");
        assertTrue(controller.getDeal(id).outcome == Outcome.FailureAccepted, "failure accepted");
    }

    // ------------------------------------------------------------------ recovery against escrow

    /// Whatever state the deal is in, the owner can take back exactly the stray tokens and no
    /// more; afterwards the deal still settles in full.
    function testFuzz_recoverTokensNeverTouchesEscrow(uint256 stray, uint256 amount, uint8 stage) public {
        stray = bound(stray, 0, 1e24);
        amount = bound(amount, 0, 2e24);
        stage = uint8(bound(stage, 0, 4));
        bytes32 id = createDefault();
        if (stage == 1 || stage == 2) submit(id);
        if (stage == 2) {
            vm.prank(jc);
            controller.challengeResults(id, addrs(m1, m2));
        }
        if (stage >= 3) {
            vm.prank(rp);
            controller.reportFailure(id, JobFailure.ModuleUnresolvable, "");
        }
        if (stage == 4) {
            vm.prank(jc);
            controller.challengeFailure(id, addrs(m1, m2));
        }
        uint256 escrow = controller.escrowOf(id);
        assertEq(controller.totalEscrowed(), escrow, "totalEscrowed == escrowOf");
        vm.prank(other);
        token.transfer(address(controller), stray);
        vm.prank(owner);
        if (amount > stray) {
            vm.expectRevert(
                abi.encodeWithSelector(LilypadController.WouldTouchEscrow.selector, amount, stray)
            );
            controller.recoverTokens(address(token), owner, amount);
            amount = 0;
        } else {
            controller.recoverTokens(address(token), owner, amount);
        }
        assertEq(token.balanceOf(owner), amount, "recovered");
        assertEq(token.balanceOf(address(controller)), escrow + stray - amount, "escrow untouched");

        // Settle: time out whatever stage it is in (draw first if challenged, then time out).
        if (stage == 2 || stage == 4) {
            vm.roll(block.number + 1);
            controller.drawMediator(id, addrs(m1, m2));
            vm.warp(block.timestamp + MEDIATE + 1);
            controller.redrawMediator(id, addrs(m1, m2));
        }
        vm.warp(block.timestamp + 2 days);
        controller.claimTimeout(id);
        assertEq(token.balanceOf(address(controller)), stray - amount, "only the stray rest remains");
        assertEq(controller.totalEscrowed(), 0, "nothing escrowed");
    }
}
