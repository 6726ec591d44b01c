// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {JobFixture} from "./utils/JobFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @notice Gas of each job manager call, recorded in .gas-snapshot, in the
/// steady state: the manager, the bridge and the client have had jobs before
/// (non-zero balances and counters). setUp is a separate transaction, so
/// nothing the measured call touches is warm; each test makes one call.
contract JobManagerGasTest is JobFixture {
    address internal account = address(0xE0A);
    uint256 internal exampleJob;
    uint256 internal burnerJob;
    uint256 internal reverterJob;
    string[] internal oneInput;

    function setUp() public override {
        super.setUp();
        fund(account);
        vm.prank(account);
        token.approve(address(manager), type(uint256).max);
        oneInput.push("Message=hello, world");
        // History: one finished job each for the example client and the account; the bridge has
        // been paid before.
        vm.prank(clientOwner);
        fulfillAs(example.requestCowsay("first"), 1 ether);
        vm.prank(account);
        manager.runJob("cowsay:v0.0.4", oneInput, PAY);
        vm.prank(clientOwner);
        exampleJob = example.requestCowsay("moo");
        burnerJob = requestBy(burner, PAY);
        reverterJob = requestBy(reverter, PAY);
    }

    function test_gas_jobs_runJob() public {
        vm.pauseGasMetering();
        string[] memory inputs = oneInput;
        vm.resumeGasMetering();
        vm.prank(account);
        manager.runJob("cowsay:v0.0.4", inputs, PAY);
    }

    function test_gas_jobs_requestCowsay() public {
        vm.prank(clientOwner);
        example.requestCowsay("hello, world");
    }

    function test_gas_jobs_fulfill() public {
        vm.prank(bridge);
        manager.fulfill(exampleJob, CID, 3 ether);
    }

    function test_gas_jobs_cancel() public {
        vm.prank(bridge);
        manager.cancel(exampleJob, "no provider offers cowsay:v0.0.4");
    }

    function test_gas_jobs_cancelExpired() public {
        vm.warp(DEADLINE + 1);
        vm.prank(stranger);
        manager.cancelExpired(exampleJob);
    }

    function test_gas_jobs_fulfillRevertingClient() public {
        vm.prank(bridge);
        manager.fulfill(reverterJob, CID, 3 ether);
    }

    function test_gas_jobs_fulfillGasBurningClient() public {
        vm.prank(bridge);
        manager.fulfill(burnerJob, CID, 3 ether);
    }
}
