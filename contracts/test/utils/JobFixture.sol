// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./Test.sol";
import {Vm, vm} from "./Vm.sol";
import {
    GasBurnerClient,
    GasProbeClient,
    RecordingClient,
    ReentrantClient,
    ReturnBombClient,
    RevertingClient,
    TestClient
} from "./JobClients.sol";

import {ExampleClient} from "../../src/ExampleClient.sol";
import {LilypadJobManager} from "../../src/LilypadJobManager.sol";
import {LilypadToken} from "../../src/LilypadToken.sol";

/// @notice A token, a job manager with a bridge, and funded clients of every kind.
abstract contract JobFixture is Test {
    address internal admin = address(0xAD);
    address internal bridge = address(0xB21D6E);
    address internal tokenOwner = address(0x0123);
    address internal stranger = address(0x5757);
    address internal clientOwner = address(0xC0FFEE);

    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant TIMEOUT = 1 days;
    /// The deadline of a job requested at START.
    uint64 internal constant DEADLINE = 1_700_086_400;
    uint256 internal constant FUNDS = 1e30;
    uint256 internal constant PAY = 10 ether;
    string internal constant CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

    LilypadToken internal token;
    LilypadJobManager internal manager;
    ExampleClient internal example;
    RecordingClient internal recorder;
    RevertingClient internal reverter;
    GasBurnerClient internal burner;
    ReturnBombClient internal bomber;
    ReentrantClient internal reentrant;
    GasProbeClient internal probe;

    function setUp() public virtual {
        require(DEADLINE == START + TIMEOUT, "DEADLINE");
        vm.warp(START);
        vm.roll(100);
        token = new LilypadToken(tokenOwner);
        manager = new LilypadJobManager(token, admin, bridge, TIMEOUT);
        example = new ExampleClient(manager, clientOwner, PAY);
        recorder = new RecordingClient(manager);
        reverter = new RevertingClient(manager);
        burner = new GasBurnerClient(manager);
        bomber = new ReturnBombClient(manager);
        reentrant = new ReentrantClient(manager);
        // A sound client that needs all of its gas: with the full limit, its first gasleft()
        // reads the limit less 457 (dispatch and argument decoding; solc 0.8.37, optimizer on).
        probe = new GasProbeClient(manager, manager.CALLBACK_GAS_LIMIT() - 457);
        fund(address(example));
        fund(address(recorder));
        fund(address(reverter));
        fund(address(burner));
        fund(address(bomber));
        fund(address(reentrant));
        fund(address(probe));
    }

    function fund(address who) internal {
        vm.prank(tokenOwner);
        token.mint(who, FUNDS);
    }

    function inputs1(string memory a) internal pure returns (string[] memory xs) {
        xs = new string[](1);
        xs[0] = a;
    }

    function inputs2(string memory a, string memory b) internal pure returns (string[] memory xs) {
        xs = new string[](2);
        xs[0] = a;
        xs[1] = b;
    }

    function repeat(bytes1 c, uint256 n) internal pure returns (string memory) {
        bytes memory b = new bytes(n);
        for (uint256 i; i < n; ++i) {
            b[i] = c;
        }
        return string(b);
    }

    function requestBy(TestClient client, uint256 payment) internal returns (uint256) {
        return client.requestSimple("moo", payment);
    }

    function fulfillAs(uint256 jobId, uint256 spent) internal {
        vm.prank(bridge);
        manager.fulfill(jobId, CID, spent);
    }

    function cancelAs(uint256 jobId, string memory reason) internal {
        vm.prank(bridge);
        manager.cancel(jobId, reason);
    }

    function stateOf(uint256 jobId) internal view returns (LilypadJobManager.JobState) {
        return manager.getJob(jobId).state;
    }

    function assertState(uint256 jobId, LilypadJobManager.JobState want, string memory what) internal view {
        assertEq(uint256(stateOf(jobId)), uint256(want), what);
    }

    /// The first four bytes of revert data.
    function selectorOf(bytes memory revertData) internal pure returns (bytes4 s) {
        if (revertData.length < 4) return bytes4(0);
        assembly {
            s := mload(add(revertData, 32))
        }
    }

    /// Counts the logs with `topic0` from `emitter` since vm.recordLogs().
    function countLogs(bytes32 topic0, address emitter) internal returns (uint256 n) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == emitter && logs[i].topics.length > 0 && logs[i].topics[0] == topic0) n++;
        }
    }
}
