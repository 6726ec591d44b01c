// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {JobFixture} from "./utils/JobFixture.sol";
import {vm} from "./utils/Vm.sol";

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {LilypadJobManager} from "../src/LilypadJobManager.sol";
import {LilypadToken} from "../src/LilypadToken.sol";
import {JobFailure, JobOffer, Outcome, ResourceOffer} from "../src/LilypadTypes.sol";

/// @notice Tokens sent to the controller by mistake come back to the owner; escrow never does.
contract ControllerRecoverTokensTest is Fixture {
    event TokensRecovered(address indexed token, address indexed to, uint256 amount);

    uint256 internal constant PAYMENT = 12 ether;
    uint256 internal constant TIMEOUT = 5 ether;
    uint256 internal constant RESULTS = 16 ether;

    function createNonce(uint256 nonce) internal returns (bytes32) {
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.nonce = nonce;
        r.nonce = nonce;
        return create(j, r);
    }

    function test_recoverTokens_onlyWhatNoDealHolds() public {
        bytes32 a = createDefault();
        bytes32 b = createNonce(2); // results in and challenged
        submit(b);
        vm.prank(jc);
        controller.challengeResults(b, addrs(m1, m2));
        uint256 escrowed = (PAYMENT + TIMEOUT) + (PAYMENT + RESULTS + FEE);
        assertEq(controller.totalEscrowed(), escrowed, "both deals' escrow");
        assertEq(controller.escrowOf(a) + controller.escrowOf(b), escrowed, "sum of escrowOf");

        // Someone sends 3 tokens by mistake.
        vm.prank(other);
        token.transfer(address(controller), 3 ether);
        vm.prank(owner);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.WouldTouchEscrow.selector, 3 ether + 1, 3 ether)
        );
        controller.recoverTokens(address(token), other, 3 ether + 1);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, other));
        controller.recoverTokens(address(token), other, 1);

        uint256 before = token.balanceOf(other);
        vm.expectEmit(address(controller));
        emit TokensRecovered(address(token), other, 3 ether);
        vm.prank(owner);
        controller.recoverTokens(address(token), other, 3 ether);
        assertEq(token.balanceOf(other) - before, 3 ether, "returned");
        assertEq(token.balanceOf(address(controller)), escrowed, "escrow untouched");
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.WouldTouchEscrow.selector, 1, 0));
        controller.recoverTokens(address(token), other, 1);

        // Both deals still settle in full.
        vm.roll(block.number + 1);
        controller.drawMediator(b, addrs(m1, m2));
        address mediator = controller.getDeal(b).mediator;
        vm.prank(mediator);
        controller.mediate(b, true);
        vm.warp(START + 601);
        controller.claimTimeout(a);
        assertEq(token.balanceOf(address(controller)), 0, "everything paid out");
        assertEq(controller.totalEscrowed(), 0, "nothing escrowed");
    }

    function test_recoverTokens_otherTokensInFull() public {
        LilypadToken stray = new LilypadToken(owner);
        vm.prank(owner);
        stray.mint(address(controller), 7 ether);
        createDefault(); // escrow in the deal token does not limit another token
        vm.prank(owner);
        controller.recoverTokens(address(stray), owner, 7 ether);
        assertEq(stray.balanceOf(owner), 7 ether, "all of it");
    }

    function test_totalEscrowed_followsEveryState() public {
        bytes32 id = createDefault();
        assertEq(controller.totalEscrowed(), PAYMENT + TIMEOUT, "agreed");
        vm.prank(rp);
        controller.reportFailure(id, JobFailure.InputsRejected, "input too large");
        assertEq(controller.totalEscrowed(), PAYMENT + TIMEOUT, "failure reported");
        vm.prank(jc);
        controller.challengeFailure(id, addrs(m1, m2));
        assertEq(controller.totalEscrowed(), PAYMENT + TIMEOUT + FEE, "failure challenged");
        assertEq(controller.escrowOf(id), PAYMENT + TIMEOUT + FEE, "escrowOf");
        assertEq(token.balanceOf(address(controller)), PAYMENT + TIMEOUT + FEE, "balance");
        vm.roll(block.number + 1);
        controller.drawMediator(id, addrs(m1, m2));
        address mediator = controller.getDeal(id).mediator;
        vm.prank(mediator);
        controller.mediate(id, false);
        assertTrue(controller.getDeal(id).outcome == Outcome.FailureRefuted, "refuted");
        assertEq(controller.totalEscrowed(), 0, "finished");
    }
}

/// @notice The same for the job manager, plus its minimum payment.
contract JobManagerRecoverTokensTest is JobFixture {
    event TokensRecovered(address indexed token, address indexed to, uint256 amount);
    event MinPaymentSet(uint256 minPayment);

    function request(uint256 payment) internal returns (uint256) {
        vm.prank(address(recorder));
        token.approve(address(manager), payment);
        vm.prank(address(recorder));
        return manager.runJob("cowsay:v0.0.4", inputs1("Message=moo"), payment);
    }

    function test_recoverTokens_onlyWhatNoOpenJobHolds() public {
        uint256 a = request(PAY);
        uint256 b = request(2 * PAY);
        vm.prank(bridge);
        manager.fulfill(b, CID, PAY);
        assertEq(manager.totalEscrowed(), PAY, "only the open job");
        assertEq(manager.escrowOf(a), PAY, "escrowOf");

        vm.prank(tokenOwner);
        token.mint(address(manager), 4 ether); // sent by mistake
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadJobManager.WouldTouchEscrow.selector, 4 ether + 1, 4 ether)
        );
        manager.recoverTokens(address(token), admin, 4 ether + 1);
        bytes32 adminRole = manager.DEFAULT_ADMIN_ROLE();
        vm.prank(bridge);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, bridge, adminRole
            )
        );
        manager.recoverTokens(address(token), bridge, 1);
        vm.expectEmit(address(manager));
        emit TokensRecovered(address(token), admin, 4 ether);
        vm.prank(admin);
        manager.recoverTokens(address(token), admin, 4 ether);
        assertEq(token.balanceOf(admin), 4 ether, "recovered");
        assertEq(token.balanceOf(address(manager)), PAY, "the open job's payment stays");

        vm.prank(bridge);
        manager.cancel(a, "no provider");
        assertEq(manager.totalEscrowed(), 0, "nothing open");
        assertEq(token.balanceOf(address(manager)), 0, "all paid out");
    }

    function test_recoverTokens_otherTokensInFull() public {
        LilypadToken stray = new LilypadToken(tokenOwner);
        vm.prank(tokenOwner);
        stray.mint(address(manager), 7 ether);
        request(PAY);
        vm.prank(admin);
        manager.recoverTokens(address(stray), admin, 7 ether);
        assertEq(stray.balanceOf(admin), 7 ether, "all of it");
    }

    function test_minPayment() public {
        assertEq(manager.minPayment(), 0, "none by default");
        bytes32 adminRole = manager.DEFAULT_ADMIN_ROLE();
        vm.prank(bridge);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, bridge, adminRole
            )
        );
        manager.setMinPayment(1 ether);
        vm.expectEmit(address(manager));
        emit MinPaymentSet(1 ether);
        vm.prank(admin);
        manager.setMinPayment(1 ether);

        vm.prank(address(recorder));
        token.approve(address(manager), 1 ether);
        vm.prank(address(recorder));
        vm.expectRevert(
            abi.encodeWithSelector(LilypadJobManager.PaymentTooLow.selector, 1 ether - 1, 1 ether)
        );
        manager.runJob("cowsay:v0.0.4", inputs1("Message=moo"), 1 ether - 1);
        vm.prank(address(recorder));
        vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.ZeroPayment.selector));
        manager.runJob("cowsay:v0.0.4", inputs1("Message=moo"), 0);
        uint256 id = request(1 ether);
        assertEq(manager.getJob(id).payment, 1 ether, "the minimum itself is accepted");
        assertEq(manager.jobCount(), 1, "one job");
    }
}
