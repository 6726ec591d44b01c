// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DrawMath} from "./utils/DrawMath.sol";
import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {DealAction, DealRole, DealState, JobOffer, Outcome} from "../src/LilypadTypes.sol";

/// @notice The mediator draw: seeded by the challenge block's hash, fixed by drawMediator from the
/// next block, re-armed when that hash expired undrawn, redrawn from the untried rest when a
/// mediator does not answer.
contract MediatorDrawTest is Fixture {
    uint256 internal constant PRICE = 8 ether;
    uint256 internal constant PAYMENT = 12 ether;
    uint256 internal constant TIMEOUT = 5 ether;
    uint256 internal constant RESULTS = 16 ether;

    event MediatorDrawn(bytes32 indexed dealId, address indexed mediator, uint8 round, uint64 deadline);
    event MediatorDrawPending(bytes32 indexed dealId, uint64 drawBlock);
    event MediatorRedraw(
        bytes32 indexed dealId, address previous, uint8 round, uint64 deadline, uint64 drawBlock
    );
    event DealFinished(
        bytes32 indexed dealId,
        Outcome indexed outcome,
        address by,
        uint256 toJobCreator,
        uint256 toProvider,
        uint256 toMediator
    );

    /// A deal whose three mediators (m1 m2 m3) both sides trust, with results submitted and
    /// challenged at block 1000.
    function challenged3() internal returns (bytes32 id, address[] memory set) {
        JobOffer memory j = jobOffer();
        set = addrs(m1, m2, m3);
        j.mediators = set;
        id = create(j, resourceOffer());
        submit(id);
        vm.roll(1000);
        vm.prank(jc);
        controller.challengeResults(id, set);
    }

    /// The reference draw, written out independently of the controller.
    function referenceDraw(bytes32 hash, bytes32 id, address[] memory set, uint64 tried)
        internal
        pure
        returns (address)
    {
        uint256 round;
        for (uint256 i; i < set.length; ++i) {
            if (tried & (uint64(1) << i) != 0) ++round;
        }
        uint256 k = uint256(keccak256(abi.encode(hash, id, round))) % (set.length - round);
        for (uint256 i; i < set.length; ++i) {
            if (tried & (uint64(1) << i) != 0) continue;
            if (k == 0) return set[i];
            --k;
        }
        revert("unreachable");
    }

    function indexOf(address[] memory set, address who) internal pure returns (uint256) {
        for (uint256 i; i < set.length; ++i) {
            if (set[i] == who) return i;
        }
        revert("not in the set");
    }

    // ------------------------------------------------------------------ drawMediator

    function test_drawMediator_fromTheNextBlock() public {
        (bytes32 id, address[] memory set) = challenged3();
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DrawNotReady.selector, 1000, 1000));
        controller.drawMediator(id, set);

        vm.roll(1001);
        vm.setBlockhash(1000, keccak256("sealed"));
        address expected = referenceDraw(keccak256("sealed"), id, set, 0);
        vm.expectEmit(address(controller));
        emit MediatorDrawn(id, expected, 0, uint64(START + MEDIATE));
        vm.prank(other); // anyone
        controller.drawMediator(id, set);
        LilypadController.DealView memory d = controller.getDeal(id);
        assertEq(d.mediator, expected, "fixed");
        assertEq(d.round, 0, "round 0");
        assertEq(d.mediatorCount, 3, "three mediators");
        assertEq(d.deadline, START + MEDIATE, "the challenge's deadline");
    }

    function test_drawMediator_lastBlockOfTheHashWindowStillDraws() public {
        (bytes32 id, address[] memory set) = challenged3();
        vm.roll(1000 + 256);
        vm.setBlockhash(1000, keccak256("sealed"));
        controller.drawMediator(id, set);
        assertEq(controller.getDeal(id).mediator, referenceDraw(keccak256("sealed"), id, set, 0), "drawn");
        assertEq(controller.getDeal(id).drawBlock, 1000, "same seed block");
    }

    function test_drawMediator_reArmsAfter256Blocks() public {
        (bytes32 id, address[] memory set) = challenged3();
        vm.roll(1000 + 257); // blockhash(1000) is no longer available
        assertEq(controller.pendingMediator(id, set), address(0), "nothing computable");
        vm.expectEmit(address(controller));
        emit MediatorDrawPending(id, 1257);
        controller.drawMediator(id, set);
        LilypadController.DealView memory d = controller.getDeal(id);
        assertEq(d.mediator, address(0), "not drawn yet");
        assertEq(d.drawBlock, 1257, "re-armed on this block");
        assertEq(d.deadline, START + MEDIATE, "deadline unchanged");
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DrawNotReady.selector, 1257, 1257));
        controller.drawMediator(id, set);

        vm.roll(1258);
        vm.setBlockhash(1257, keccak256("later"));
        controller.drawMediator(id, set);
        assertEq(
            controller.getDeal(id).mediator,
            referenceDraw(keccak256("later"), id, set, 0),
            "from the new seed"
        );
    }

    function test_drawMediator_reverts() public {
        bytes32 unknown = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DealNotFound.selector, unknown));
        controller.drawMediator(unknown, addrs(m1, m2));

        bytes32 id = createDefault();
        submit(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.ResultsSubmitted, DealAction.DrawMediator
            )
        );
        controller.drawMediator(id, addrs(m1, m2));

        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        vm.roll(block.number + 1);
        bytes32 want = keccak256(abi.encodePacked(addrs(m1, m2)));
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.MediatorsMismatch.selector, want, keccak256(abi.encodePacked(addrs(m1)))
            )
        );
        controller.drawMediator(id, addrs(m1));

        vm.warp(START + MEDIATE + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.DeadlinePassed.selector, START + MEDIATE, START + MEDIATE + 1
            )
        );
        controller.drawMediator(id, addrs(m1, m2));

        vm.warp(START + MEDIATE);
        controller.drawMediator(id, addrs(m1, m2));
        address drawn = controller.getDeal(id).mediator;
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MediatorAlreadyDrawn.selector, id, drawn));
        controller.drawMediator(id, addrs(m1, m2));

        vm.prank(drawn);
        controller.mediate(id, true);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.AlreadyFinished.selector, id, Outcome.MediationAccepted)
        );
        controller.drawMediator(id, addrs(m1, m2));
    }

    // ------------------------------------------------------------------ pendingMediator and chooseMediator

    function test_pendingMediator() public {
        bytes32 unknown = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DealNotFound.selector, unknown));
        controller.pendingMediator(unknown, addrs(m1, m2));

        bytes32 id = createDefault();
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), address(0), "no challenge");
        bytes32 want = keccak256(abi.encodePacked(addrs(m1, m2)));
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.MediatorsMismatch.selector, want, keccak256(abi.encodePacked(addrs(m2, m3)))
            )
        );
        controller.pendingMediator(id, addrs(m2, m3));
        submit(id);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        uint256 b = block.number;
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), address(0), "challenge block");
        vm.roll(b + 1);
        vm.setBlockhash(b, keccak256("h"));
        address expected = referenceDraw(keccak256("h"), id, addrs(m1, m2), 0);
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), expected, "computable");
        vm.roll(b + 257);
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), address(0), "expired");
        vm.roll(b + 1);
        controller.drawMediator(id, addrs(m1, m2));
        vm.roll(b + 5000);
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), expected, "fixed stays");
    }

    function test_chooseMediator_drawsOnlyUntriedMediators() public view {
        address[] memory set = addrs(m1, m2, m3);
        bytes32 id = keccak256("deal");
        for (uint256 s; s < 32; ++s) {
            bytes32 h = keccak256(abi.encode(s));
            for (uint64 tried; tried < 7; ++tried) {
                (address m, uint8 index) = DrawMath.choose(h, id, set, tried);
                assertEq(m, referenceDraw(h, id, set, tried), "the documented formula");
                assertEq(m, set[index], "index");
                assertTrue(tried & (uint64(1) << index) == 0, "an untried mediator");
            }
            (address none,) = DrawMath.choose(h, id, set, 7);
            assertEq(none, address(0), "nobody left");
        }
    }

    // ------------------------------------------------------------------ redrawMediator

    /// The drawn mediator never answers: after its window anyone moves on; the next mediator,
    /// drawn among the other two, confirms the results and the provider is paid.
    function test_redraw_firstMediatorSilent_secondPaysTheProvider() public {
        (uint256 jc0, uint256 rp0,) = balances();
        (bytes32 id, address[] memory set) = challenged3();
        vm.roll(1001);
        vm.setBlockhash(1000, keccak256("first"));
        controller.drawMediator(id, set);
        address silent = controller.getDeal(id).mediator;

        vm.warp(START + MEDIATE);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TooEarly.selector, START + MEDIATE, START + MEDIATE)
        );
        controller.redrawMediator(id, set);
        vm.warp(START + MEDIATE + 1);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MediatorsLeft.selector, 2));
        controller.claimTimeout(id);
        vm.prank(silent);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.DeadlinePassed.selector, START + MEDIATE, START + MEDIATE + 1
            )
        );
        controller.mediate(id, false);

        vm.roll(1100);
        uint64 newDeadline = uint64(START + MEDIATE + 1 + MEDIATE);
        vm.expectEmit(address(controller));
        emit MediatorRedraw(id, silent, 1, newDeadline, 1100);
        vm.prank(rp);
        controller.redrawMediator(id, set);
        LilypadController.DealView memory d = controller.getDeal(id);
        assertEq(d.mediator, address(0), "round 1 not drawn yet");
        assertEq(d.round, 1, "round 1");
        assertEq(d.deadline, newDeadline, "a fresh window");
        assertEq(d.drawBlock, 1100, "seeded by the redraw's block");
        vm.prank(silent);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MediatorNotDrawn.selector, id));
        controller.mediate(id, false);

        vm.roll(1101);
        vm.setBlockhash(1100, keccak256("second"));
        uint64 tried = uint64(1) << indexOf(set, silent);
        address second = referenceDraw(keccak256("second"), id, set, tried);
        vm.expectEmit(address(controller));
        emit MediatorDrawn(id, second, 1, newDeadline);
        controller.drawMediator(id, set);
        assertTrue(second != silent, "the silent mediator is not drawn again");
        vm.prank(silent);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.WrongSender.selector, DealRole.ChosenMediator, second, silent
            )
        );
        controller.mediate(id, false);

        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.MediationAccepted, second, PAYMENT - PRICE, PRICE + RESULTS, FEE);
        vm.prank(second);
        controller.mediate(id, true);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(rp1 - rp0, PRICE, "the provider is paid");
        assertEq(jc0 - jc1, PRICE + FEE, "the job creator pays the price and the fee");
        assertEq(token.balanceOf(second), FEE, "the answering mediator gets the fee");
        assertEq(token.balanceOf(silent), 0, "the silent one nothing");
        assertEq(c1, 0, "escrow empty");
        assertEq(controller.totalEscrowed(), 0, "totalEscrowed");
    }

    /// Nobody answers: each mediator gets its round once; after the last, a redraw (or the
    /// timeout) refunds everyone.
    function test_redraw_settlesWhenEveryMediatorWasTried() public {
        (uint256 jc0, uint256 rp0,) = balances();
        (bytes32 id, address[] memory set) = challenged3();
        uint64 tried;
        for (uint256 round; round < 3; ++round) {
            uint256 b = controller.getDeal(id).drawBlock;
            vm.roll(b + 1);
            vm.setBlockhash(b, keccak256(abi.encode("round", round)));
            controller.drawMediator(id, set);
            address m = controller.getDeal(id).mediator;
            assertTrue(tried & (uint64(1) << indexOf(set, m)) == 0, "each mediator once");
            tried |= uint64(1) << indexOf(set, m);
            vm.warp(controller.getDeal(id).deadline + 1);
            vm.roll(b + 10);
            if (round < 2) {
                controller.redrawMediator(id, set);
                assertEq(controller.getDeal(id).round, round + 1, "next round");
            }
        }
        assertEq(tried, 7, "all three had a round");
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.NoMediationInTime, other, PAYMENT + FEE, RESULTS, 0);
        vm.prank(other);
        controller.redrawMediator(id, set);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc1, jc0, "job creator whole");
        assertEq(rp1, rp0, "provider whole");
        assertEq(c1, 0, "escrow empty");
        assertEq(controller.getDeal(id).round, 3, "three rounds");
    }

    /// After the last mediator's window, claimTimeout settles too (no untried mediator left).
    function test_redraw_lastRoundThenClaimTimeout() public {
        bytes32 id = createDefault();
        submit(id);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        vm.warp(START + MEDIATE + 1);
        vm.roll(block.number + 1);
        controller.redrawMediator(id, addrs(m1, m2)); // round 0's mediator computable: marked
        assertEq(controller.getDeal(id).round, 1, "one tried");
        vm.warp(block.timestamp + MEDIATE + 1);
        controller.claimTimeout(id);
        assertTrue(controller.getDeal(id).outcome == Outcome.NoMediationInTime, "timed out");
    }

    /// A round nobody drew before its seed expired marks no one: nobody had a fair chance.
    function test_redraw_undrawnExpiredRoundMarksNobody() public {
        (bytes32 id, address[] memory set) = challenged3();
        vm.roll(1000 + 300);
        vm.warp(START + MEDIATE + 1);
        uint64 newDeadline = uint64(START + MEDIATE + 1 + MEDIATE);
        vm.expectEmit(address(controller));
        emit MediatorRedraw(id, address(0), 0, newDeadline, 1300);
        controller.redrawMediator(id, set);
        assertEq(controller.getDeal(id).round, 0, "still round 0");
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MediatorsLeft.selector, 2));
        vm.warp(newDeadline + 1);
        controller.claimTimeout(id);
    }

    function test_redraw_reverts() public {
        bytes32 id = createDefault();
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.Agreed, DealAction.RedrawMediator
            )
        );
        controller.redrawMediator(id, addrs(m1, m2));
        submit(id);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        vm.warp(START + MEDIATE + 1);
        bytes32 want = keccak256(abi.encodePacked(addrs(m1, m2)));
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.MediatorsMismatch.selector, want, keccak256(abi.encodePacked(addrs(m2)))
            )
        );
        controller.redrawMediator(id, addrs(m2));
    }
}
