// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {LilypadSettlement} from "../src/LilypadSettlement.sol";
import {DealState, JobFailure, JobOffer, ModulePrice, Outcome, ResourceOffer} from "../src/LilypadTypes.sol";

/// @notice Fuzz tests on amounts, prices, timings and mediator sets (fuzz.runs in foundry.toml).
contract FuzzTest is Fixture {
    uint256 internal constant MAX = type(uint128).max;

    struct Amounts {
        uint256 price;
        uint256 payment;
        uint256 timeout;
        uint256 results;
        uint256 fee;
    }

    // ------------------------------------------------------------------ the table

    /// The table written out row by row, as in lilypad_core::settlement (independent of LilypadSettlement).
    function expectedTotals(Outcome o, Amounts memory a)
        internal
        pure
        returns (uint256 toJc, uint256 toRp, uint256 toMediator, uint256 paidIn)
    {
        uint256 m = a.fee < a.results ? a.fee : a.results;
        uint256 mt = a.fee < a.timeout ? a.fee : a.timeout;
        if (o == Outcome.FailureAccepted) {
            toJc = a.payment;
            toRp = a.timeout;
            paidIn = a.payment + a.timeout;
        } else if (o == Outcome.FailureUpheld) {
            toJc = a.payment;
            toRp = a.timeout;
            toMediator = a.fee;
            paidIn = a.payment + a.timeout + a.fee;
        } else if (o == Outcome.FailureRefuted) {
            // As MediationRejected with the timeout collateral in place of the results collateral.
            toJc = a.payment + (a.timeout - mt) + mt;
            toMediator = mt + (a.fee - mt);
            paidIn = a.payment + a.timeout + a.fee;
        } else if (o == Outcome.FailureNoMediationInTime) {
            toJc = a.payment + a.fee;
            toRp = a.timeout;
            paidIn = a.payment + a.timeout + a.fee;
        } else if (o == Outcome.Accepted || o == Outcome.NoJudgementInTime) {
            toRp = a.price + a.timeout + a.results;
            toJc = a.payment - a.price;
            paidIn = a.payment + a.timeout + a.results;
        } else if (o == Outcome.NoResultsInTime) {
            toJc = a.payment + a.timeout;
            paidIn = a.payment + a.timeout;
        } else if (o == Outcome.MediationAccepted) {
            toRp = a.price + a.timeout + a.results;
            toJc = a.payment - a.price;
            toMediator = a.fee;
            paidIn = a.payment + a.timeout + a.results + a.fee;
        } else if (o == Outcome.MediationRejected) {
            toJc = a.payment + (a.results - m) + m;
            toRp = a.timeout;
            toMediator = m + (a.fee - m);
            paidIn = a.payment + a.timeout + a.results + a.fee;
        } else {
            toJc = a.payment + a.fee;
            toRp = a.timeout + a.results;
            paidIn = a.payment + a.timeout + a.results + a.fee;
        }
    }

    function boundAmounts(uint256 price, uint256 payment, uint256 timeout, uint256 results, uint256 fee)
        internal
        pure
        returns (Amounts memory a)
    {
        a.price = bound(price, 0, MAX);
        a.payment = bound(payment, a.price, MAX);
        a.timeout = bound(timeout, 0, MAX);
        a.results = bound(results, 0, MAX);
        a.fee = bound(fee, 0, MAX);
    }

    function testFuzz_settlementTableConservesAndMatchesTheRows(
        uint8 outcome,
        uint256 price,
        uint256 payment,
        uint256 timeout,
        uint256 results,
        uint256 fee
    ) public pure {
        Outcome o = Outcome(bound(outcome, 0, 9));
        Amounts memory a = boundAmounts(price, payment, timeout, results, fee);
        LilypadSettlement.Payouts memory p =
            LilypadSettlement.table(o, a.price, a.payment, a.timeout, a.results, a.fee);
        (uint256 jcWant, uint256 rpWant, uint256 medWant, uint256 paidIn) = expectedTotals(o, a);
        assertEq(p.toJobCreator, jcWant, "job creator");
        assertEq(p.toProvider, rpWant, "provider");
        assertEq(p.toMediator, medWant, "mediator");
        assertEq(p.toJobCreator + p.toProvider + p.toMediator, paidIn, "pays out exactly what was paid in");
        bool mediated = o == Outcome.MediationAccepted || o == Outcome.MediationRejected
            || o == Outcome.FailureUpheld || o == Outcome.FailureRefuted;
        assertEq(
            p.toMediator, mediated ? a.fee : 0, "the mediator gets exactly the fee, and only when it mediated"
        );
    }

    // ------------------------------------------------------------------ whole deals with fuzzed amounts

    function offersWith(uint256 price, uint256 payment, uint256 timeout, uint256 nonce)
        internal
        view
        returns (JobOffer memory j, ResourceOffer memory r)
    {
        j = jobOffer();
        r = resourceOffer();
        j.maxPrice = price;
        j.paymentCollateral = payment;
        j.nonce = nonce;
        r.anyModule = true;
        r.modules = new bytes32[](0);
        r.modulePrices = new ModulePrice[](0);
        r.defaultPrice = price;
        r.timeoutCollateral = timeout;
        r.nonce = nonce;
        r.maxResultsMultiple = type(uint32).max;
        j.maxMediationFee = type(uint256).max;
    }

    /// Every outcome (no mediation both after a results and after a failure challenge).
    function testFuzz_everyOutcomeMovesExactlyTheTable(
        uint8 outcome,
        uint256 price,
        uint256 payment,
        uint256 timeout,
        uint32 multiple,
        uint256 fee
    ) public {
        Outcome o = Outcome(bound(outcome, 0, 9));
        bool viaFailure = o == Outcome.FailureAccepted || o == Outcome.FailureUpheld
            || o == Outcome.FailureRefuted || o == Outcome.FailureNoMediationInTime;
        Amounts memory a;
        // Funds are 1e30 each: keep amounts within what the parties hold.
        a.price = bound(price, 0, 1e26);
        a.payment = bound(payment, a.price, 1e27);
        a.timeout = bound(timeout, 0, 1e27);
        multiple = uint32(bound(multiple, 0, 1000));
        a.results = a.price * multiple;
        a.fee = bound(fee, 0, 1e27);
        LilypadController.NetworkParams memory params = defaultParams();
        params.resultsCollateralMultiple = multiple;
        params.mediationFee = uint128(a.fee);
        vm.prank(owner);
        controller.setParams(params);

        (JobOffer memory j, ResourceOffer memory r) = offersWith(a.price, a.payment, a.timeout, 7);
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = create(j, r);
        address mediator = viaFailure ? runFailureTo(id, o) : runTo(id, o);
        if (viaFailure) a.results = 0; // never posted
        checkBalances(o, a, jc0, rp0, mediator);
        assertTrue(controller.getDeal(id).outcome == o, "outcome");
        assertEq(controller.totalEscrowed(), 0, "nothing escrowed");
    }

    /// Drives a fresh deal (created at START) through a failure report to outcome `o`.
    function runFailureTo(bytes32 id, Outcome o) internal returns (address mediator) {
        vm.prank(rp);
        controller.reportFailure(id, JobFailure.ImageUnavailable, "image missing");
        if (o == Outcome.FailureAccepted) {
            vm.prank(jc);
            controller.acceptFailure(id);
            return address(0);
        }
        vm.prank(jc);
        controller.challengeFailure(id, addrs(m1, m2));
        mediator = drawNext(id);
        if (o == Outcome.FailureNoMediationInTime) {
            timeOutEveryMediator(id);
        } else {
            vm.prank(mediator);
            controller.mediate(id, o == Outcome.FailureUpheld);
        }
    }

    /// Draws the current round's mediator in the next block.
    function drawNext(bytes32 id) internal returns (address) {
        vm.roll(block.number + 1);
        controller.drawMediator(id, addrs(m1, m2));
        return controller.getDeal(id).mediator;
    }

    /// Neither of the two mediators answers: a redraw, then the timeout.
    function timeOutEveryMediator(bytes32 id) internal {
        vm.warp(block.timestamp + MEDIATE + 1);
        controller.redrawMediator(id, addrs(m1, m2));
        vm.warp(block.timestamp + MEDIATE + 1);
        controller.claimTimeout(id);
    }

    /// Drives a fresh deal (created at START) to outcome `o`; returns the mediator if one was drawn.
    function runTo(bytes32 id, Outcome o) internal returns (address mediator) {
        if (o == Outcome.NoResultsInTime) {
            vm.warp(START + 601);
            controller.claimTimeout(id);
            return address(0);
        }
        submit(id);
        if (o == Outcome.Accepted) {
            vm.prank(jc);
            controller.acceptResults(id);
            return address(0);
        }
        if (o == Outcome.NoJudgementInTime) {
            vm.warp(START + JUDGE + 1);
            controller.claimTimeout(id);
            return address(0);
        }
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        mediator = drawNext(id);
        if (o == Outcome.NoMediationInTime) {
            timeOutEveryMediator(id);
        } else {
            vm.prank(mediator);
            controller.mediate(id, o == Outcome.MediationAccepted);
        }
    }

    function checkBalances(Outcome o, Amounts memory a, uint256 jc0, uint256 rp0, address mediator)
        internal
        view
    {
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        (uint256 toJc, uint256 toRp, uint256 toMed,) = expectedTotals(o, a);
        // Net change of each party = what it received - what it paid in.
        bool challenged = o == Outcome.MediationAccepted || o == Outcome.MediationRejected
            || o == Outcome.NoMediationInTime || o == Outcome.FailureUpheld || o == Outcome.FailureRefuted
            || o == Outcome.FailureNoMediationInTime;
        uint256 jcIn = a.payment + (challenged ? a.fee : 0);
        uint256 rpIn = a.timeout + (o == Outcome.NoResultsInTime ? 0 : a.results); // results 0 via a failure
        assertEq(jc1 + jcIn, jc0 + toJc, "job creator balance");
        assertEq(rp1 + rpIn, rp0 + toRp, "provider balance");
        if (mediator != address(0)) assertEq(token.balanceOf(mediator), toMed, "mediator balance");
        assertEq(c1, 0, "the controller keeps nothing");
        assertEq(token.totalSupply(), 3 * FUNDS, "no token created or destroyed");
    }

    // ------------------------------------------------------------------ prices

    function testFuzz_priceIsTheModulePriceElseTheDefault(
        uint256 defaultPrice,
        uint256 modulePrice,
        uint256 maxPrice,
        bool hasOwnPrice
    ) public {
        defaultPrice = bound(defaultPrice, 0, 1e24);
        modulePrice = bound(modulePrice, 0, 1e24);
        maxPrice = bound(maxPrice, 0, 1e24);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        r.defaultPrice = defaultPrice;
        if (hasOwnPrice) r.modulePrices[0].price = modulePrice;
        else r.modulePrices[0].moduleId = OTHER_MODULE; // a price for another module only
        j.maxPrice = maxPrice;
        j.paymentCollateral = maxPrice;
        uint256 price = hasOwnPrice ? modulePrice : defaultPrice;
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        if (price > maxPrice) {
            vm.expectRevert(abi.encodeWithSelector(LilypadController.PriceTooHigh.selector, price, maxPrice));
            controller.createDeal(j, js, r, rs);
        } else {
            bytes32 id = controller.createDeal(j, js, r, rs);
            assertEq(controller.getDeal(id).price, price, "price");
        }
    }

    // ------------------------------------------------------------------ timings

    function testFuzz_submitInTimeOrTimeout(uint64 timeoutSecs, uint256 dt) public {
        timeoutSecs = uint64(bound(timeoutSecs, 60, 365 days));
        dt = bound(dt, 0, 2 * uint256(timeoutSecs) + 10);
        JobOffer memory j = jobOffer();
        j.timeoutSecs = timeoutSecs;
        bytes32 id = create(j, resourceOffer());
        vm.warp(START + dt);
        if (dt <= timeoutSecs) {
            vm.expectRevert(
                abi.encodeWithSelector(LilypadController.TooEarly.selector, START + timeoutSecs, START + dt)
            );
            controller.claimTimeout(id);
            submit(id);
            assertTrue(controller.getDeal(id).state == DealState.ResultsSubmitted, "submitted");
        } else {
            vm.prank(rp);
            vm.expectRevert(
                abi.encodeWithSelector(
                    LilypadController.DeadlinePassed.selector, START + timeoutSecs, START + dt
                )
            );
            controller.submitResults(id, hex"01");
            controller.claimTimeout(id);
            assertTrue(controller.getDeal(id).outcome == Outcome.NoResultsInTime, "timed out");
        }
    }

    function testFuzz_judgeAndMediateWindows(
        uint32 judge,
        uint32 mediate_,
        uint256 dtJudge,
        uint256 dtMediate
    ) public {
        judge = uint32(bound(judge, 1, 30 days));
        mediate_ = uint32(bound(mediate_, 1, 30 days));
        dtJudge = bound(dtJudge, 0, 2 * uint256(judge));
        dtMediate = bound(dtMediate, 0, 2 * uint256(mediate_));
        LilypadController.NetworkParams memory p = defaultParams();
        p.judgeWindowSecs = judge;
        p.mediateWindowSecs = mediate_;
        vm.prank(owner);
        controller.setParams(p);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.minJudgeWindowSecs = 0;
        j.mediators = addrs(m1); // one mediator: its round is the only one
        r.maxJudgeWindowSecs = judge;
        r.minMediateWindowSecs = 0;
        bytes32 id = create(j, r);
        vm.warp(START + 100);
        submit(id);
        uint256 judgeDeadline = START + 100 + judge;
        assertEq(controller.getDeal(id).deadline, judgeDeadline, "judge deadline");
        vm.warp(START + 100 + dtJudge);
        if (dtJudge > judge) {
            vm.prank(jc);
            vm.expectRevert(
                abi.encodeWithSelector(
                    LilypadController.DeadlinePassed.selector, judgeDeadline, block.timestamp
                )
            );
            controller.challengeResults(id, addrs(m1));
            controller.claimTimeout(id);
            assertTrue(controller.getDeal(id).outcome == Outcome.NoJudgementInTime, "no judgement");
            return;
        }
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TooEarly.selector, judgeDeadline, block.timestamp)
        );
        controller.claimTimeout(id);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1));
        vm.roll(block.number + 1);
        controller.drawMediator(id, addrs(m1));
        address mediator = controller.getDeal(id).mediator;
        uint256 mediateDeadline = block.timestamp + mediate_;
        vm.warp(block.timestamp + dtMediate);
        if (dtMediate > mediate_) {
            vm.prank(mediator);
            vm.expectRevert(
                abi.encodeWithSelector(
                    LilypadController.DeadlinePassed.selector, mediateDeadline, block.timestamp
                )
            );
            controller.mediate(id, true);
            controller.claimTimeout(id);
            assertTrue(controller.getDeal(id).outcome == Outcome.NoMediationInTime, "no mediation");
        } else {
            vm.expectRevert(
                abi.encodeWithSelector(LilypadController.TooEarly.selector, mediateDeadline, block.timestamp)
            );
            controller.claimTimeout(id);
            vm.prank(mediator);
            controller.mediate(id, false);
            assertTrue(controller.getDeal(id).outcome == Outcome.MediationRejected, "mediated");
        }
    }

    // ------------------------------------------------------------------ mediator sets

    /// Ascending addresses of the bits of `mask` from a pool of 8.
    function pool(uint8 mask) internal pure returns (address[] memory xs) {
        uint256 n;
        for (uint256 i; i < 8; ++i) {
            if (mask & (1 << i) != 0) ++n;
        }
        xs = new address[](n);
        n = 0;
        for (uint256 i; i < 8; ++i) {
            if (mask & (1 << i) != 0) xs[n++] = address(uint160(0x2000 + i));
        }
    }

    function testFuzz_mediatorsAreTheIntersectionAndTheDrawIsInIt(
        uint8 jobMask,
        uint8 resourceMask,
        bytes32 hash
    ) public {
        vm.assume(jobMask != 0 && resourceMask != 0);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.mediators = pool(jobMask);
        r.mediators = pool(resourceMask);
        address[] memory common = pool(jobMask & resourceMask);
        if (common.length == 0) {
            bytes memory js = signJob(j, JC_KEY);
            bytes memory rs = signResource(r, RP_KEY);
            vm.prank(solver);
            vm.expectRevert(abi.encodeWithSelector(LilypadController.NoCommonMediator.selector));
            controller.createDeal(j, js, r, rs);
            return;
        }
        bytes32 id = create(j, r);
        assertEq(controller.getDeal(id).mediatorsHash, keccak256(abi.encodePacked(common)), "intersection");
        submit(id);
        uint256 challengeBlock = block.number;
        vm.prank(jc);
        controller.challengeResults(id, common);
        vm.roll(challengeBlock + 1);
        vm.setBlockhash(challengeBlock, hash);
        controller.drawMediator(id, common);
        uint256 index = uint256(keccak256(abi.encode(hash, id, uint256(0)))) % common.length;
        assertEq(controller.getDeal(id).mediator, common[index], "drawn by the documented formula");
    }

    // ------------------------------------------------------------------ nonces

    function testFuzz_nonceBitmapMarksOnlyThatNonce(uint256 nonce, uint256 probe) public {
        vm.assume(probe != nonce);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.nonce = nonce;
        r.nonce = nonce;
        create(j, r);
        assertTrue(controller.isNonceUsed(jc, nonce) && controller.isNonceUsed(rp, nonce), "used");
        assertTrue(!controller.isNonceUsed(jc, probe), "another nonce stays free");
        assertTrue(!controller.isNonceUsed(other, nonce), "another signer stays free");
    }
}
