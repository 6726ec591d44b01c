// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";
import {JobOffer, ResourceOffer} from "../src/LilypadTypes.sol";

/// @notice Gas of the happy path, recorded in .gas-snapshot. Offers and
/// signatures are prepared in setUp (a separate transaction, so nothing the
/// measured calls touch is warm); the test runs only the three calls.
contract GasTest is Fixture {
    bytes internal jobSig;
    bytes internal resourceSig;
    bytes32 internal dealId;

    function setUp() public override {
        super.setUp();
        // The network's steady state: the parties have made a deal before
        // (their nonce words and the controller's balance are not zero).
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.nonce = 0;
        r.nonce = 0;
        create(j, r);
        j.nonce = 1;
        r.nonce = 1;
        jobSig = signJob(j, JC_KEY);
        resourceSig = signResource(r, RP_KEY);
        dealId = dealIdOf(j, r);
    }

    function test_gas_happyPath() public {
        vm.pauseGasMetering();
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = jobSig;
        bytes memory rs = resourceSig;
        bytes32 id = dealId;
        vm.resumeGasMetering();

        vm.prank(solver);
        controller.createDeal(j, js, r, rs);
        vm.prank(rp);
        controller.submitResults(
            id, hex"1220c3c4733ec8affd06cf9e9ff50ffc6bcd2ec85a6170004bb709669c31de94391a"
        );
        vm.prank(jc);
        controller.acceptResults(id);
    }
}

/// @notice The same three calls for the parties' first deal on a fresh
/// controller: every nonce word and the controller's balance start at zero.
contract GasFirstDealTest is Fixture {
    bytes internal jobSig;
    bytes internal resourceSig;
    bytes32 internal dealId;

    function setUp() public override {
        super.setUp();
        jobSig = signJob(jobOffer(), JC_KEY);
        resourceSig = signResource(resourceOffer(), RP_KEY);
        dealId = dealIdOf(jobOffer(), resourceOffer());
    }

    function test_gas_firstDealHappyPath() public {
        vm.pauseGasMetering();
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = jobSig;
        bytes memory rs = resourceSig;
        bytes32 id = dealId;
        vm.resumeGasMetering();

        vm.prank(solver);
        controller.createDeal(j, js, r, rs);
        vm.prank(rp);
        controller.submitResults(
            id, hex"1220c3c4733ec8affd06cf9e9ff50ffc6bcd2ec85a6170004bb709669c31de94391a"
        );
        vm.prank(jc);
        controller.acceptResults(id);
    }
}
