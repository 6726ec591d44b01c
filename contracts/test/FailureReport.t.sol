// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {LilypadSettlement} from "../src/LilypadSettlement.sol";
import {DealAction, DealRole, DealState, JobFailure, JobOffer, Outcome} from "../src/LilypadTypes.sol";

/// @notice A job the job creator made impossible (missing image, unresolvable module, rejected
/// inputs): the provider reports it and ends the deal without being slashed; a false report a
/// mediator refutes costs the provider its timeout collateral.
contract FailureReportTest is Fixture {
    uint256 internal constant PAYMENT = 12 ether;
    uint256 internal constant TIMEOUT = 5 ether;

    event FailureReported(bytes32 indexed dealId, JobFailure reason, string detail, uint64 deadline);
    event FailureChallenged(bytes32 indexed dealId, uint256 mediationFee, uint64 deadline, uint64 drawBlock);
    event DealFinished(
        bytes32 indexed dealId,
        Outcome indexed outcome,
        address by,
        uint256 toJobCreator,
        uint256 toProvider,
        uint256 toMediator
    );

    function report(bytes32 id) internal {
        vm.prank(rp);
        controller.reportFailure(id, JobFailure.ImageUnavailable, "pull access denied for no/such:image");
    }

    /// Reports at START + 100 and challenges; returns the mediator drawn in the next block.
    function reportAndChallenge(bytes32 id) internal returns (address) {
        vm.warp(START + 100);
        report(id);
        vm.prank(jc);
        controller.challengeFailure(id, addrs(m1, m2));
        vm.roll(block.number + 1);
        controller.drawMediator(id, addrs(m1, m2));
        return controller.getDeal(id).mediator;
    }

    function test_reportFailure_thenAccept_refundsBoth() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        vm.warp(START + 30);
        vm.expectEmit(address(controller));
        emit FailureReported(id, JobFailure.ModuleUnresolvable, "no such commit", uint64(START + 30 + JUDGE));
        vm.prank(rp);
        controller.reportFailure(id, JobFailure.ModuleUnresolvable, "no such commit");
        LilypadController.DealView memory d = controller.getDeal(id);
        assertTrue(d.state == DealState.FailureReported, "state");
        assertEq(d.deadline, START + 30 + JUDGE, "the job creator has the judge window");
        assertEq(d.providerCollateral, TIMEOUT, "still the timeout collateral");
        assertEq(d.results, bytes32(0), "no results");
        assertEq(controller.escrowOf(id), PAYMENT + TIMEOUT, "escrow unchanged");

        vm.warp(START + 30 + JUDGE);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.FailureAccepted, jc, PAYMENT, TIMEOUT, 0);
        vm.prank(jc);
        controller.acceptFailure(id);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc1, jc0, "job creator refunded");
        assertEq(rp1, rp0, "provider keeps its collateral");
        assertEq(c1, 0, "escrow empty");
        assertEq(controller.totalEscrowed(), 0, "totalEscrowed");
        d = controller.getDeal(id);
        assertTrue(d.state == DealState.Finished && d.outcome == Outcome.FailureAccepted, "finished");
        assertEq(d.providerCollateral, TIMEOUT, "record");
    }

    function test_claimTimeout_unansweredReportStands() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        report(id);
        vm.warp(START + JUDGE);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TooEarly.selector, START + JUDGE, START + JUDGE)
        );
        controller.claimTimeout(id);
        vm.warp(START + JUDGE + 1);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.FailureAccepted, rp, PAYMENT, TIMEOUT, 0);
        vm.prank(rp);
        controller.claimTimeout(id);
        (uint256 jc1, uint256 rp1,) = balances();
        assertEq(jc1, jc0, "job creator refunded");
        assertEq(rp1, rp0, "provider keeps its collateral");
    }

    function test_reportFailure_reverts() public {
        bytes32 unknown = keccak256("nope");
        vm.prank(rp);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DealNotFound.selector, unknown));
        controller.reportFailure(unknown, JobFailure.InputsRejected, "");

        bytes32 id = createDefault();
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.WrongSender.selector, DealRole.ResourceProvider, rp, jc)
        );
        controller.reportFailure(id, JobFailure.InputsRejected, "");

        vm.warp(START + 601);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.DeadlinePassed.selector, START + 600, START + 601)
        );
        controller.reportFailure(id, JobFailure.InputsRejected, "");

        vm.warp(START + 600);
        submit(id);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector,
                id,
                DealState.ResultsSubmitted,
                DealAction.ReportFailure
            )
        );
        controller.reportFailure(id, JobFailure.InputsRejected, "");

        // A reason outside the enum does not decode.
        vm.prank(rp);
        (bool ok,) = address(controller)
            .call(abi.encodeWithSelector(controller.reportFailure.selector, id, uint8(3), ""));
        assertTrue(!ok, "unknown reason refused");
    }

    function test_acceptFailure_reverts() public {
        bytes32 id = createDefault();
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.Agreed, DealAction.AcceptFailure
            )
        );
        controller.acceptFailure(id);
        report(id);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.WrongSender.selector, DealRole.JobCreator, jc, rp)
        );
        controller.acceptFailure(id);
        vm.warp(START + JUDGE + 1);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.DeadlinePassed.selector, START + JUDGE, START + JUDGE + 1
            )
        );
        controller.acceptFailure(id);
        controller.claimTimeout(id);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.AlreadyFinished.selector, id, Outcome.FailureAccepted)
        );
        controller.acceptFailure(id);
    }

    function test_challengeFailure_reverts() public {
        bytes32 id = createDefault();
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.Agreed, DealAction.ChallengeFailure
            )
        );
        controller.challengeFailure(id, addrs(m1, m2));
        report(id);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.WrongSender.selector, DealRole.JobCreator, jc, rp)
        );
        controller.challengeFailure(id, addrs(m1, m2));
        bytes32 want = keccak256(abi.encodePacked(addrs(m1, m2)));
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.MediatorsMismatch.selector, want, keccak256(abi.encodePacked(addrs(m1)))
            )
        );
        controller.challengeFailure(id, addrs(m1));
        vm.prank(jc);
        token.approve(address(controller), 0);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(controller), 0, FEE
            )
        );
        controller.challengeFailure(id, addrs(m1, m2));
        approveAll(jc);
        vm.warp(START + JUDGE + 1);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.DeadlinePassed.selector, START + JUDGE, START + JUDGE + 1
            )
        );
        controller.challengeFailure(id, addrs(m1, m2));
        // A results challenge makes no sense on a failure report.
        vm.warp(START + JUDGE);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector,
                id,
                DealState.FailureReported,
                DealAction.ChallengeResults
            )
        );
        controller.challengeResults(id, addrs(m1, m2));
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.FailureReported, DealAction.SubmitResults
            )
        );
        controller.submitResults(id, hex"01");
    }

    /// The mediator confirms the report: the job creator is refunded but pays the mediator; the
    /// provider keeps its collateral.
    function test_challengeFailure_upheld() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        vm.warp(START + 100);
        report(id);
        vm.expectEmit(address(controller));
        emit FailureChallenged(id, FEE, uint64(START + 100 + MEDIATE), uint64(block.number));
        vm.prank(jc);
        controller.challengeFailure(id, addrs(m1, m2));
        assertEq(controller.escrowOf(id), PAYMENT + TIMEOUT + FEE, "fee escrowed");
        assertEq(controller.totalEscrowed(), PAYMENT + TIMEOUT + FEE, "totalEscrowed");
        assertTrue(controller.getDeal(id).state == DealState.FailureChallenged, "state");
        vm.roll(block.number + 1);
        controller.drawMediator(id, addrs(m1, m2));
        address mediator = controller.getDeal(id).mediator;
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.FailureUpheld, mediator, PAYMENT, TIMEOUT, FEE);
        vm.prank(mediator);
        controller.mediate(id, true);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc0 - jc1, FEE, "job creator pays the fee");
        assertEq(rp1, rp0, "provider whole");
        assertEq(token.balanceOf(mediator), FEE, "mediator paid");
        assertEq(c1, 0, "escrow empty");
    }

    /// A false report, refuted: the provider loses its timeout collateral exactly as if it had
    /// not delivered; the mediator gets the fee from it; the job creator gets its payment, its fee
    /// and the rest of the collateral. Reporting a failure cannot skip work for free.
    function test_challengeFailure_refutedCostsTheTimeoutCollateral() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        address mediator = reportAndChallenge(id);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.FailureRefuted, mediator, PAYMENT + TIMEOUT, 0, FEE);
        vm.prank(mediator);
        controller.mediate(id, false);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(rp0 - rp1, TIMEOUT, "provider slashed as for no results");
        assertEq(jc1 - jc0, TIMEOUT - FEE, "job creator: the collateral less the fee it no longer pays");
        assertEq(token.balanceOf(mediator), FEE, "mediator gets exactly the fee");
        assertEq(c1, 0, "escrow empty");
    }

    function test_challengeFailure_refutedFeeAboveTimeoutCollateral() public {
        uint128 fee = 7 ether; // > timeout collateral 5 ether
        LilypadController.NetworkParams memory p = defaultParams();
        p.mediationFee = fee;
        vm.prank(owner);
        controller.setParams(p);
        (uint256 jc0, uint256 rp0,) = balances();
        JobOffer memory j = jobOffer();
        j.maxMediationFee = fee;
        bytes32 id = create(j, resourceOffer());
        address mediator = reportAndChallenge(id);
        vm.prank(mediator);
        controller.mediate(id, false);
        (uint256 jc1, uint256 rp1,) = balances();
        assertEq(rp0 - rp1, TIMEOUT, "provider loses the timeout collateral");
        assertEq(jc0 - jc1, fee - TIMEOUT, "job creator pays only the shortfall");
        assertEq(token.balanceOf(mediator), fee, "mediator gets exactly the fee");
    }

    /// Nobody mediates the failure challenge: everyone gets back what it paid in.
    function test_challengeFailure_noMediationRefundsEveryone() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        reportAndChallenge(id);
        vm.warp(START + 100 + MEDIATE + 1);
        controller.redrawMediator(id, addrs(m1, m2));
        vm.warp(block.timestamp + MEDIATE + 1);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.FailureNoMediationInTime, other, PAYMENT + FEE, TIMEOUT, 0);
        vm.prank(other);
        controller.claimTimeout(id);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc1, jc0, "job creator whole");
        assertEq(rp1, rp0, "provider whole");
        assertEq(c1, 0, "escrow empty");
        LilypadController.DealView memory d = controller.getDeal(id);
        assertEq(d.providerCollateral, TIMEOUT, "the timeout collateral, not results");
        assertEq(d.results, bytes32(0), "no results");
    }

    /// The table rows of the new outcomes, as LilypadSettlement.table gives them (whole deal).
    function test_settlementTable_failureRows() public pure {
        // price 30, payment 100, timeout 7, results 60, fee 10 (results are ignored: never posted)
        LilypadSettlement.Payouts memory p =
            LilypadSettlement.table(Outcome.FailureAccepted, 30, 100, 7, 60, 10);
        assertEq(p.toJobCreator, 100, "accepted jc");
        assertEq(p.toProvider, 7, "accepted rp");
        assertEq(p.toMediator, 0, "accepted mediator");
        p = LilypadSettlement.table(Outcome.FailureUpheld, 30, 100, 7, 60, 10);
        assertEq(p.toJobCreator, 100, "upheld jc");
        assertEq(p.toProvider, 7, "upheld rp");
        assertEq(p.toMediator, 10, "upheld mediator");
        p = LilypadSettlement.table(Outcome.FailureRefuted, 30, 100, 7, 60, 10);
        assertEq(p.toJobCreator, 107, "refuted jc: 100 + (7 - 7) + 7");
        assertEq(p.toProvider, 0, "refuted rp");
        assertEq(p.toMediator, 10, "refuted mediator: 7 from the collateral, 3 from the fee");
        p = LilypadSettlement.table(Outcome.FailureNoMediationInTime, 30, 100, 7, 60, 10);
        assertEq(p.toJobCreator, 110, "no mediation after a failure: jc");
        assertEq(p.toProvider, 7, "no mediation after a failure: rp");
    }
}
