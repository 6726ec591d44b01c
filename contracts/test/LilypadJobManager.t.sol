// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {JobFixture} from "./utils/JobFixture.sol";
import {vm} from "./utils/Vm.sol";

import {ExampleClient} from "../src/ExampleClient.sol";
import {ILilypadJobClient} from "../src/ILilypadJobClient.sol";
import {LilypadJobManager} from "../src/LilypadJobManager.sol";
import {LilypadToken} from "../src/LilypadToken.sol";

contract LilypadJobManagerTest is JobFixture {
    bytes4 internal constant FULFILLED = ILilypadJobClient.lilypadFulfilled.selector;
    bytes4 internal constant CANCELLED = ILilypadJobClient.lilypadCancelled.selector;
    bytes32 internal constant CALLBACK_FAILED = keccak256("CallbackFailed(uint256,address,bytes4)");

    // ------------------------------------------------------------------ construction

    function test_constructor_setsRolesAndParameters() public view {
        assertEq(address(manager.token()), address(token), "token");
        assertEq(manager.jobTimeout(), TIMEOUT, "timeout");
        assertEq(manager.jobCount(), 0, "no jobs");
        assertTrue(manager.hasRole(manager.DEFAULT_ADMIN_ROLE(), admin), "admin");
        assertTrue(manager.hasRole(manager.BRIDGE_ROLE(), bridge), "bridge");
        assertTrue(!manager.hasRole(manager.BRIDGE_ROLE(), admin), "the admin is not a bridge");
        assertEq(manager.BRIDGE_ROLE(), keccak256("BRIDGE_ROLE"), "role id");
        assertEq(manager.CALLBACK_GAS_LIMIT(), 200_000, "callback gas");
    }

    function test_constructor_zeroBridgeGrantsNothing() public {
        LilypadJobManager m = new LilypadJobManager(token, admin, address(0), TIMEOUT);
        assertTrue(!m.hasRole(m.BRIDGE_ROLE(), address(0)), "no zero bridge");
    }

    function test_constructor_revertsOnZeroAddresses() public {
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ZeroAddress.selector));
        new LilypadJobManager(LilypadToken(address(0)), admin, bridge, TIMEOUT);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ZeroAddress.selector));
        new LilypadJobManager(token, address(0), bridge, TIMEOUT);
    }

    function test_constructor_timeoutBounds() public {
        new LilypadJobManager(token, admin, bridge, 5 minutes);
        new LilypadJobManager(token, admin, bridge, 30 days);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.InvalidJobTimeout.selector, 5 minutes - 1));
        new LilypadJobManager(token, admin, bridge, 5 minutes - 1);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.InvalidJobTimeout.selector, 30 days + 1));
        new LilypadJobManager(token, admin, bridge, 30 days + 1);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.InvalidJobTimeout.selector, 0));
        new LilypadJobManager(token, admin, bridge, 0);
    }

    // ------------------------------------------------------------------ runJob

    function test_runJob_escrowsAndEmits() public {
        string[] memory ins = inputs2("Message=hello", "Seed=42");
        vm.prank(address(recorder));
        token.approve(address(manager), PAY);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.JobRequested(1, address(recorder), "cowsay:v0.0.4", ins, PAY, DEADLINE);
        vm.prank(address(recorder));
        uint256 id = manager.runJob("cowsay:v0.0.4", ins, PAY);

        assertEq(id, 1, "first id is 1");
        assertEq(manager.jobCount(), 1, "count");
        assertEq(token.balanceOf(address(manager)), PAY, "escrowed");
        assertEq(token.balanceOf(address(recorder)), FUNDS - PAY, "paid by the client");
        assertEq(manager.escrowOf(id), PAY, "escrowOf");
        LilypadJobManager.Job memory j = manager.getJob(id);
        assertEq(j.client, address(recorder), "client");
        assertEq(j.deadline, START + TIMEOUT, "deadline");
        assertEq(j.payment, PAY, "payment");
        assertState(id, LilypadJobManager.JobState.Requested, "requested");
    }

    function test_runJob_idsIncreaseAcrossClients() public {
        assertEq(requestBy(recorder, 1), 1, "1");
        assertEq(requestBy(reverter, 2), 2, "2");
        assertEq(requestBy(recorder, 3), 3, "3");
        vm.warp(START + 5);
        assertEq(requestBy(burner, 4), 4, "4");
        assertEq(manager.getJob(4).deadline, START + 5 + TIMEOUT, "deadline from the request time");
        assertEq(token.balanceOf(address(manager)), 10, "all four escrowed");
    }

    function test_runJob_acceptsEdgeInputs() public {
        string[] memory ins = new string[](5);
        ins[0] = "A="; // empty value
        ins[1] = "B=c=d"; // value holds '='
        ins[2] = "Prompt=a, \"b\"! with spaces \xf0\x9f\x90\x84";
        ins[3] = string.concat("K=", repeat("x", manager.MAX_INPUT_BYTES() - 2)); // exactly the limit
        ins[4] = "~!@#$%^&*()_+{}|:<>?=1"; // any printable key byte
        recorder.request(repeat("m", manager.MAX_MODULE_BYTES()), ins, PAY);
        recorder.request("m", new string[](0), PAY); // no inputs
        string[] memory many = new string[](manager.MAX_INPUTS());
        for (uint256 i; i < many.length; ++i) {
            many[i] = "K=v";
        }
        recorder.request("m", many, PAY);
        assertEq(manager.jobCount(), 3, "three jobs");
    }

    function test_runJob_revertsOnBadModule() public {
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.EmptyModule.selector));
        recorder.request("", new string[](0), PAY);
        uint256 max = manager.MAX_MODULE_BYTES();
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ModuleTooLong.selector, max + 1, max));
        recorder.request(repeat("m", max + 1), new string[](0), PAY);
    }

    function test_runJob_revertsOnTooManyInputs() public {
        uint256 max = manager.MAX_INPUTS();
        string[] memory many = new string[](max + 1);
        for (uint256 i; i < many.length; ++i) {
            many[i] = "K=v";
        }
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.TooManyInputs.selector, max + 1, max));
        recorder.request("m", many, PAY);
    }

    function test_runJob_revertsOnInputTooLong() public {
        uint256 max = manager.MAX_INPUT_BYTES();
        string[] memory ins = inputs2("A=1", string.concat("K=", repeat("x", max - 1)));
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.InputTooLong.selector, 1, max + 1, max));
        recorder.request("m", ins, PAY);
    }

    function test_runJob_revertsOnMalformedInputs() public {
        string[8] memory bad = ["noequals", "=value", "", "a b=c", "a\tb=c", "a\nb=c", "\x7f=c", " =c"];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.InvalidInput.selector, 1));
            recorder.request("m", inputs2("Ok=1", bad[i]), PAY);
        }
        assertEq(manager.jobCount(), 0, "none created");
    }

    function test_runJob_revertsOnZeroPayment() public {
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ZeroPayment.selector));
        recorder.request("m", new string[](0), 0);
    }

    function test_runJob_revertsWithoutAllowance() public {
        vm.prank(address(recorder));
        token.approve(address(manager), PAY - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(manager), PAY - 1, PAY
            )
        );
        vm.prank(address(recorder));
        manager.runJob("m", new string[](0), PAY);
    }

    function test_runJob_revertsWithoutBalance() public {
        address poor = address(0x9009);
        vm.prank(tokenOwner);
        token.mint(poor, PAY - 1);
        vm.prank(poor);
        token.approve(address(manager), PAY);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, PAY - 1, PAY)
        );
        vm.prank(poor);
        manager.runJob("m", new string[](0), PAY);
        assertEq(manager.jobCount(), 0, "none created");
    }

    // ------------------------------------------------------------------ fulfill

    function test_fulfill_paysBridgeRefundsClientAndCallsBack() public {
        uint256 id = requestBy(recorder, PAY);
        uint256 spent = 3 ether;
        vm.expectEmit(address(manager));
        emit LilypadJobManager.JobFulfilled(id, address(recorder), bridge, CID, spent, PAY - spent);
        fulfillAs(id, spent);

        assertEq(token.balanceOf(bridge), spent, "bridge reimbursed");
        assertEq(token.balanceOf(address(recorder)), FUNDS - spent, "client refunded the rest");
        assertEq(token.balanceOf(address(manager)), 0, "nothing left");
        assertEq(manager.escrowOf(id), 0, "escrow closed");
        assertEq(manager.getJob(id).payment, PAY, "payment kept as a record");
        assertState(id, LilypadJobManager.JobState.Fulfilled, "fulfilled");
        assertEq(recorder.fulfilledCalls(id), 1, "called back once");
        assertEq(recorder.cancelledCalls(id), 0, "not cancelled");
        assertEq(keccak256(bytes(recorder.lastResults(id))), keccak256(bytes(CID)), "cid delivered");
        assertEq(recorder.balanceInCallback(), FUNDS - spent, "refund arrived before the callback");
    }

    function test_fulfill_spentZeroAndSpentAll() public {
        uint256 a = requestBy(recorder, PAY);
        uint256 b = requestBy(recorder, PAY);
        fulfillAs(a, 0);
        assertEq(token.balanceOf(bridge), 0, "nothing to the bridge");
        fulfillAs(b, PAY);
        assertEq(token.balanceOf(bridge), PAY, "all to the bridge");
        assertEq(token.balanceOf(address(recorder)), FUNDS - PAY, "client paid one job");
        assertEq(token.balanceOf(address(manager)), 0, "empty");
    }

    function test_fulfill_onlyBridge() public {
        uint256 id = requestBy(recorder, PAY);
        address[3] memory notBridges = [stranger, admin, address(recorder)];
        for (uint256 i; i < notBridges.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControl.AccessControlUnauthorizedAccount.selector,
                    notBridges[i],
                    manager.BRIDGE_ROLE()
                )
            );
            vm.prank(notBridges[i]);
            manager.fulfill(id, CID, 0);
        }
        assertState(id, LilypadJobManager.JobState.Requested, "still open");
        assertEq(recorder.callbacks(id), 0, "no callback");
    }

    function test_fulfill_unknownJob() public {
        requestBy(recorder, PAY);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.JobNotFound.selector, 0));
        fulfillAs(0, 0);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.JobNotFound.selector, 2));
        fulfillAs(2, 0);
    }

    function test_fulfill_twiceReverts() public {
        uint256 id = requestBy(recorder, PAY);
        fulfillAs(id, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, id, LilypadJobManager.JobState.Fulfilled
            )
        );
        fulfillAs(id, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, id, LilypadJobManager.JobState.Fulfilled
            )
        );
        cancelAs(id, "late");
        vm.warp(START + TIMEOUT + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, id, LilypadJobManager.JobState.Fulfilled
            )
        );
        manager.cancelExpired(id);
        assertEq(recorder.callbacks(id), 1, "exactly one callback");
        assertEq(token.balanceOf(bridge), 1 ether, "paid once");
    }

    function test_fulfill_afterCancelReverts() public {
        uint256 id = requestBy(recorder, PAY);
        cancelAs(id, "no provider");
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, id, LilypadJobManager.JobState.Cancelled
            )
        );
        fulfillAs(id, 0);
        assertEq(recorder.callbacks(id), 1, "exactly one callback");
    }

    function test_fulfill_upToTheDeadlineOnly() public {
        uint256 a = requestBy(recorder, PAY);
        uint256 b = requestBy(recorder, PAY);
        uint64 deadline = DEADLINE;
        vm.warp(deadline);
        fulfillAs(a, 0); // the deadline second itself is in time
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadJobManager.JobExpired.selector, b, deadline, deadline + 1)
        );
        fulfillAs(b, 0);
        cancelAs(b, "too late"); // the bridge can still give the money back
        assertState(b, LilypadJobManager.JobState.Cancelled, "cancelled");
    }

    function test_fulfill_revertsOnBadResults() public {
        uint256 id = requestBy(recorder, PAY);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.EmptyResults.selector));
        vm.prank(bridge);
        manager.fulfill(id, "", 0);
        uint256 max = manager.MAX_RESULTS_BYTES();
        string memory tooLong = repeat("b", max + 1);
        string memory longest = repeat("b", max);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ResultsTooLong.selector, max + 1, max));
        vm.prank(bridge);
        manager.fulfill(id, tooLong, 0);
        vm.prank(bridge);
        manager.fulfill(id, longest, 0); // the limit itself is fine
        assertEq(recorder.fulfilledCalls(id), 1, "delivered");
    }

    function test_fulfill_revertsWhenSpentExceedsPayment() public {
        uint256 id = requestBy(recorder, PAY);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadJobManager.SpentExceedsPayment.selector, id, PAY + 1, PAY)
        );
        fulfillAs(id, PAY + 1);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadJobManager.SpentExceedsPayment.selector, id, type(uint256).max, PAY)
        );
        fulfillAs(id, type(uint256).max);
    }

    function test_bridgeRoleCanBeGrantedAndRevoked() public {
        address bridge2 = address(0xB2);
        bytes32 role = manager.BRIDGE_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, bridge, manager.DEFAULT_ADMIN_ROLE()
            )
        );
        vm.prank(bridge);
        manager.grantRole(role, bridge2);

        vm.prank(admin);
        manager.grantRole(role, bridge2);
        uint256 a = requestBy(recorder, PAY);
        vm.prank(bridge2);
        manager.fulfill(a, CID, 2 ether);
        assertEq(token.balanceOf(bridge2), 2 ether, "the fulfilling bridge is reimbursed");

        vm.prank(admin);
        manager.revokeRole(role, bridge2);
        uint256 b = requestBy(recorder, PAY);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bridge2, role)
        );
        vm.prank(bridge2);
        manager.cancel(b, "x");
    }

    // ------------------------------------------------------------------ cancel

    function test_cancel_refundsAllAndCallsBack() public {
        uint256 id = requestBy(recorder, PAY);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.JobCancelled(id, address(recorder), bridge, "no provider for cowsay", PAY);
        cancelAs(id, "no provider for cowsay");
        assertEq(token.balanceOf(address(recorder)), FUNDS, "full refund");
        assertEq(token.balanceOf(bridge), 0, "bridge gets nothing");
        assertEq(token.balanceOf(address(manager)), 0, "empty");
        assertState(id, LilypadJobManager.JobState.Cancelled, "cancelled");
        assertEq(recorder.cancelledCalls(id), 1, "called back once");
        assertEq(recorder.fulfilledCalls(id), 0, "not fulfilled");
        assertEq(keccak256(bytes(recorder.lastReason(id))), keccak256("no provider for cowsay"), "reason");
        assertEq(recorder.balanceInCallback(), FUNDS, "refund arrived before the callback");
    }

    function test_cancel_emptyReasonAndMaxReason() public {
        uint256 a = requestBy(recorder, PAY);
        uint256 b = requestBy(recorder, PAY);
        cancelAs(a, "");
        cancelAs(b, repeat("r", manager.MAX_REASON_BYTES()));
        assertEq(recorder.cancelledCalls(b), 1, "delivered");
    }

    function test_cancel_onlyBridge() public {
        uint256 id = requestBy(recorder, PAY);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                address(recorder),
                manager.BRIDGE_ROLE()
            )
        );
        vm.prank(address(recorder)); // not even the client
        manager.cancel(id, "mine");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, manager.BRIDGE_ROLE()
            )
        );
        vm.prank(stranger);
        manager.cancel(id, "x");
        assertState(id, LilypadJobManager.JobState.Requested, "still open");
    }

    function test_cancel_unknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.JobNotFound.selector, 7));
        cancelAs(7, "x");
    }

    function test_cancel_twiceReverts() public {
        uint256 id = requestBy(recorder, PAY);
        cancelAs(id, "one");
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, id, LilypadJobManager.JobState.Cancelled
            )
        );
        cancelAs(id, "two");
        assertEq(recorder.callbacks(id), 1, "exactly one callback");
        assertEq(token.balanceOf(address(recorder)), FUNDS, "refunded once");
    }

    function test_cancel_reasonTooLong() public {
        uint256 id = requestBy(recorder, PAY);
        uint256 max = manager.MAX_REASON_BYTES();
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ReasonTooLong.selector, max + 1, max));
        cancelAs(id, repeat("r", max + 1));
    }

    // ------------------------------------------------------------------ cancelExpired

    function test_cancelExpired_byAnyoneAfterTheDeadline() public {
        uint256 id = requestBy(recorder, PAY);
        uint64 deadline = DEADLINE;
        vm.warp(deadline);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadJobManager.JobNotExpired.selector, id, deadline, deadline)
        );
        vm.prank(stranger);
        manager.cancelExpired(id);

        vm.warp(deadline + 1);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.JobCancelled(id, address(recorder), stranger, "expired", PAY);
        vm.prank(stranger);
        manager.cancelExpired(id);
        assertEq(token.balanceOf(address(recorder)), FUNDS, "full refund");
        assertEq(token.balanceOf(stranger), 0, "the caller gets nothing");
        assertEq(keccak256(bytes(recorder.lastReason(id))), keccak256("expired"), "reason");
        assertEq(keccak256(bytes(manager.EXPIRED_REASON())), keccak256("expired"), "constant");
        assertState(id, LilypadJobManager.JobState.Cancelled, "cancelled");

        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, id, LilypadJobManager.JobState.Cancelled
            )
        );
        manager.cancelExpired(id);
        assertEq(recorder.callbacks(id), 1, "exactly one callback");
    }

    function test_cancelExpired_unknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.JobNotFound.selector, 1));
        manager.cancelExpired(1);
    }

    function test_cancelExpired_afterCancelOrFulfillReverts() public {
        uint256 a = requestBy(recorder, PAY);
        uint256 b = requestBy(recorder, PAY);
        cancelAs(a, "x");
        fulfillAs(b, 1);
        vm.warp(START + TIMEOUT + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, a, LilypadJobManager.JobState.Cancelled
            )
        );
        manager.cancelExpired(a);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, b, LilypadJobManager.JobState.Fulfilled
            )
        );
        manager.cancelExpired(b);
    }

    // ------------------------------------------------------------------ hostile clients

    function test_revertingClient_doesNotBlockFulfill() public {
        uint256 id = requestBy(reverter, PAY);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.CallbackFailed(id, address(reverter), FULFILLED);
        fulfillAs(id, 4 ether);
        assertState(id, LilypadJobManager.JobState.Fulfilled, "final despite the revert");
        assertEq(token.balanceOf(bridge), 4 ether, "bridge paid");
        assertEq(token.balanceOf(address(reverter)), FUNDS - 4 ether, "client refunded");
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.JobAlreadyFinal.selector, id, LilypadJobManager.JobState.Fulfilled
            )
        );
        fulfillAs(id, 4 ether);
    }

    function test_revertingClient_doesNotBlockCancel() public {
        uint256 a = requestBy(reverter, PAY);
        uint256 b = requestBy(reverter, PAY);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.CallbackFailed(a, address(reverter), CANCELLED);
        cancelAs(a, "x");
        vm.warp(START + TIMEOUT + 1);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.CallbackFailed(b, address(reverter), CANCELLED);
        manager.cancelExpired(b);
        assertEq(token.balanceOf(address(reverter)), FUNDS, "refunded twice");
    }

    function test_gasBurningClient_doesNotBlockFulfill() public {
        uint256 id = requestBy(burner, PAY);
        vm.recordLogs();
        uint256 before = gasleft();
        fulfillAs(id, 1 ether);
        uint256 used = before - gasleft();
        assertEq(countLogs(CALLBACK_FAILED, address(manager)), 1, "failure recorded");
        assertState(id, LilypadJobManager.JobState.Fulfilled, "final");
        assertEq(token.balanceOf(bridge), 1 ether, "bridge paid");
        assertLe(used, manager.CALLBACK_GAS_LIMIT() + 100_000, "the burn is capped at the limit");
    }

    function test_gasBurningClient_doesNotBlockCancel() public {
        uint256 id = requestBy(burner, PAY);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.CallbackFailed(id, address(burner), CANCELLED);
        cancelAs(id, "x");
        assertEq(token.balanceOf(address(burner)), FUNDS, "refunded");
    }

    function test_returnBomb_costsTheBridgeNothingExtra() public {
        uint256 warm = requestBy(recorder, PAY);
        uint256 a = requestBy(reverter, PAY);
        uint256 b = requestBy(bomber, PAY);
        fulfillAs(warm, 1); // the bridge's balance and the token are warm and non-zero from here
        uint256 g0 = gasleft();
        fulfillAs(a, 1);
        uint256 plain = g0 - gasleft();
        g0 = gasleft();
        fulfillAs(b, 1);
        uint256 bombed = g0 - gasleft();
        assertState(b, LilypadJobManager.JobState.Fulfilled, "final");
        // The bomber pays ~57,000 for its own 150 KB of memory, within its callback gas; copying
        // that into the manager would cost about as much again.
        assertLe(bombed, plain + 60_000, "no returndata copy");
    }

    function test_reentrantClient_isRefusedAndTheJobStaysFinal() public {
        uint256 other = requestBy(recorder, PAY);
        uint256 id = requestBy(reentrant, PAY);
        reentrant.setOtherJob(other);
        // The bridge role would let a reentrant fulfill through if the guard were missing.
        bytes32 role = manager.BRIDGE_ROLE();
        vm.prank(admin);
        manager.grantRole(role, address(reentrant));
        fulfillAs(id, 0);

        bytes memory guard =
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        assertEq(reentrant.reached(), 1, "callback ran");
        assertEq(keccak256(reentrant.fulfillError()), keccak256(guard), "fulfill refused");
        assertEq(keccak256(reentrant.cancelError()), keccak256(guard), "cancel refused");
        assertEq(keccak256(reentrant.expiredError()), keccak256(guard), "cancelExpired refused");
        assertEq(keccak256(reentrant.runJobError()), keccak256(guard), "runJob refused");
        assertState(other, LilypadJobManager.JobState.Requested, "the other job is untouched");
        assertState(id, LilypadJobManager.JobState.Fulfilled, "final");
        assertEq(manager.jobCount(), 2, "no job created from the callback");
    }

    function test_accountClient_getsFundsWithoutCallback() public {
        address eoa = address(0xE0A);
        vm.prank(tokenOwner);
        token.mint(eoa, PAY * 2);
        vm.startPrank(eoa);
        token.approve(address(manager), PAY * 2);
        uint256 a = manager.runJob("cowsay:v0.0.4", inputs1("Message=hi"), PAY);
        uint256 b = manager.runJob("cowsay:v0.0.4", inputs1("Message=hi"), PAY);
        vm.stopPrank();

        vm.expectEmit(address(manager));
        emit LilypadJobManager.CallbackFailed(a, eoa, FULFILLED);
        fulfillAs(a, 3 ether);
        vm.expectEmit(address(manager));
        emit LilypadJobManager.CallbackFailed(b, eoa, CANCELLED);
        cancelAs(b, "x");
        assertEq(token.balanceOf(eoa), 2 * PAY - 3 ether, "refunds arrive");
    }

    function test_insufficientGas_revertsAndKeepsTheJobOpen() public {
        uint256 id = requestBy(probe, PAY);
        // Enough for everything but the callback's full allowance.
        vm.prank(bridge);
        try manager.fulfill{gas: 150_000}(id, CID, 0) {
            revert AssertionFailed("must not finalize with a starved callback");
        } catch (bytes memory e) {
            assertTrue(
                selectorOf(e) == LilypadJobManager.InsufficientGasForCallback.selector,
                "InsufficientGasForCallback"
            );
        }
        assertState(id, LilypadJobManager.JobState.Requested, "still open");
        assertEq(token.balanceOf(address(manager)), PAY, "still escrowed");
        vm.prank(bridge);
        manager.fulfill{gas: 400_000}(id, CID, 0);
        assertEq(probe.ran(), 1, "the callback got its gas");
        assertEq(
            probe.gasAtEntry(), probe.need(), "the whole limit (less the probe's own 457 gas to read gasleft)"
        );
    }

    function test_insufficientGas_appliesToCancelExpired() public {
        uint256 id = requestBy(probe, PAY);
        vm.warp(START + TIMEOUT + 1);
        vm.prank(stranger);
        try manager.cancelExpired{gas: 120_000}(id) {
            revert AssertionFailed("must not finalize with a starved callback");
        } catch (bytes memory e) {
            assertTrue(
                selectorOf(e) == LilypadJobManager.InsufficientGasForCallback.selector,
                "InsufficientGasForCallback"
            );
        }
        manager.cancelExpired(id);
        assertEq(probe.ran(), 1, "ran");
    }

    // ------------------------------------------------------------------ only the manager calls clients

    function test_exampleClient_rejectsCallbacksFromAnyoneButTheManager() public {
        vm.prank(clientOwner);
        uint256 id = example.requestCowsay("moo");
        address[4] memory callers = [stranger, bridge, admin, clientOwner];
        for (uint256 i; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(ExampleClient.NotManager.selector, callers[i]));
            vm.prank(callers[i]);
            example.lilypadFulfilled(id, "bafyforged");
            vm.expectRevert(abi.encodeWithSelector(ExampleClient.NotManager.selector, callers[i]));
            vm.prank(callers[i]);
            example.lilypadCancelled(id, "forged");
        }
        assertEq(uint256(example.statusOf(id)), uint256(ExampleClient.Status.Requested), "untouched");
        assertEq(bytes(example.resultsOf(id)).length, 0, "no results");
    }

    function test_exampleClient_fullCycle() public {
        vm.expectEmit(address(manager));
        emit LilypadJobManager.JobRequested(
            1, address(example), "cowsay:v0.0.4", inputs1("Message=hello, world"), PAY, DEADLINE
        );
        vm.expectEmit(address(example));
        emit ExampleClient.CowsayRequested(1, "hello, world", PAY);
        vm.prank(clientOwner);
        uint256 id = example.requestCowsay("hello, world");
        assertEq(uint256(example.statusOf(id)), uint256(ExampleClient.Status.Requested), "requested");
        assertEq(token.allowance(address(example), address(manager)), 0, "exact approval used up");

        vm.expectEmit(address(example));
        emit ExampleClient.CowsayFulfilled(id, CID);
        fulfillAs(id, 6 ether);
        assertEq(uint256(example.statusOf(id)), uint256(ExampleClient.Status.Fulfilled), "fulfilled");
        assertEq(keccak256(bytes(example.resultsOf(id))), keccak256(bytes(CID)), "results stored");
        assertEq(token.balanceOf(address(example)), FUNDS - 6 ether, "paid what the bridge spent");

        vm.prank(clientOwner);
        uint256 id2 = example.requestCowsay("again");
        vm.expectEmit(address(example));
        emit ExampleClient.CowsayCancelled(id2, "no provider");
        cancelAs(id2, "no provider");
        assertEq(uint256(example.statusOf(id2)), uint256(ExampleClient.Status.Cancelled), "cancelled");
        assertEq(keccak256(bytes(example.cancelReasonOf(id2))), keccak256("no provider"), "reason stored");
        assertEq(token.balanceOf(address(example)), FUNDS - 6 ether, "refunded in full");
    }

    function test_exampleClient_worstCaseCallbacksFitTheGasLimit() public {
        vm.startPrank(clientOwner);
        uint256 a = example.requestCowsay("a");
        uint256 b = example.requestCowsay("b");
        vm.stopPrank();
        string memory longest = repeat("b", manager.MAX_RESULTS_BYTES());
        vm.recordLogs();
        vm.prank(bridge);
        manager.fulfill(a, longest, 0);
        cancelAs(b, repeat("r", manager.MAX_REASON_BYTES()));
        assertEq(countLogs(CALLBACK_FAILED, address(manager)), 0, "both callbacks succeeded");
        assertEq(bytes(example.resultsOf(a)).length, manager.MAX_RESULTS_BYTES(), "long cid stored");
        assertEq(bytes(example.cancelReasonOf(b)).length, manager.MAX_REASON_BYTES(), "long reason stored");
    }

    function test_exampleClient_refusesCallbacksForJobsItDidNotRequestOrThatAreFinal() public {
        vm.expectRevert(
            abi.encodeWithSelector(ExampleClient.NotRequested.selector, 5, ExampleClient.Status.None)
        );
        vm.prank(address(manager));
        example.lilypadFulfilled(5, CID);
        vm.prank(clientOwner);
        uint256 id = example.requestCowsay("moo");
        fulfillAs(id, 0);
        vm.expectRevert(
            abi.encodeWithSelector(ExampleClient.NotRequested.selector, id, ExampleClient.Status.Fulfilled)
        );
        vm.prank(address(manager));
        example.lilypadCancelled(id, "again");
    }

    function test_exampleClient_ownerOnly() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        example.requestCowsay("moo");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        example.setPayment(1);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        example.withdraw(stranger, 1);
    }

    function test_exampleClient_setPaymentAndWithdraw() public {
        vm.expectEmit(address(example));
        emit ExampleClient.PaymentSet(3 ether);
        vm.prank(clientOwner);
        example.setPayment(3 ether);
        vm.prank(clientOwner);
        uint256 id = example.requestCowsay("moo");
        assertEq(manager.getJob(id).payment, 3 ether, "new payment used");
        vm.prank(clientOwner);
        example.withdraw(clientOwner, 5 ether);
        assertEq(token.balanceOf(clientOwner), 5 ether, "withdrawn");
        assertEq(token.balanceOf(address(example)), FUNDS - 3 ether - 5 ether, "rest");
        assertEq(address(example.token()), address(token), "token from the manager");
        assertEq(address(example.manager()), address(manager), "manager");
    }

    function test_exampleClient_zeroPaymentIsRefusedByTheManager() public {
        vm.prank(clientOwner);
        example.setPayment(0);
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ZeroPayment.selector));
        vm.prank(clientOwner);
        example.requestCowsay("moo");
    }
}
