// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILilypadJobClient} from "../../src/ILilypadJobClient.sol";
import {LilypadJobManager} from "../../src/LilypadJobManager.sol";

/// @notice Test clients of LilypadJobManager: each requests jobs from its own
/// balance and behaves in its own way when called back.
abstract contract TestClient is ILilypadJobClient {
    LilypadJobManager public immutable manager;

    constructor(LilypadJobManager manager_) {
        manager = manager_;
    }

    /// Approves exactly `payment` and runs a job.
    function request(string memory module, string[] memory inputs, uint256 payment)
        public
        returns (uint256 jobId)
    {
        manager.token().approve(address(manager), payment);
        return manager.runJob(module, inputs, payment);
    }

    /// Runs a job with one "Message=<message>" input.
    function requestSimple(string memory message, uint256 payment) external returns (uint256) {
        string[] memory inputs = new string[](1);
        inputs[0] = string.concat("Message=", message);
        return request("cowsay:v0.0.4", inputs, payment);
    }
}

/// @notice Records every callback (and fails the test books if one comes twice).
contract RecordingClient is TestClient {
    mapping(uint256 jobId => uint256) public fulfilledCalls;
    mapping(uint256 jobId => uint256) public cancelledCalls;
    mapping(uint256 jobId => string) public lastResults;
    mapping(uint256 jobId => string) public lastReason;
    /// Token balance seen inside the last callback (the refund must have arrived first).
    uint256 public balanceInCallback;
    uint256 public gasAtEntry;

    constructor(LilypadJobManager manager_) TestClient(manager_) {}

    function lilypadFulfilled(uint256 jobId, string calldata resultsCid) external {
        gasAtEntry = gasleft();
        require(msg.sender == address(manager), "not the manager");
        fulfilledCalls[jobId]++;
        lastResults[jobId] = resultsCid;
        balanceInCallback = manager.token().balanceOf(address(this));
    }

    function lilypadCancelled(uint256 jobId, string calldata reason) external {
        gasAtEntry = gasleft();
        require(msg.sender == address(manager), "not the manager");
        cancelledCalls[jobId]++;
        lastReason[jobId] = reason;
        balanceInCallback = manager.token().balanceOf(address(this));
    }

    function callbacks(uint256 jobId) external view returns (uint256) {
        return fulfilledCalls[jobId] + cancelledCalls[jobId];
    }
}

/// @notice Reverts in every callback.
contract RevertingClient is TestClient {
    error Nope(uint256 jobId);

    constructor(LilypadJobManager manager_) TestClient(manager_) {}

    function lilypadFulfilled(uint256 jobId, string calldata) external pure {
        revert Nope(jobId);
    }

    function lilypadCancelled(uint256 jobId, string calldata) external pure {
        revert Nope(jobId);
    }
}

/// @notice Burns all the gas it gets in every callback.
contract GasBurnerClient is TestClient {
    uint256 public sink;

    constructor(LilypadJobManager manager_) TestClient(manager_) {}

    function lilypadFulfilled(uint256, string calldata) external {
        _burn();
    }

    function lilypadCancelled(uint256, string calldata) external {
        _burn();
    }

    function _burn() private {
        while (true) {
            sink = sink + 1; // ends only when the gas is gone
        }
    }
}

/// @notice Reverts with a huge revert payload (a "returndata bomb") to make
/// the caller pay for copying it.
contract ReturnBombClient is TestClient {
    constructor(LilypadJobManager manager_) TestClient(manager_) {}

    function lilypadFulfilled(uint256, string calldata) external pure {
        _bomb();
    }

    function lilypadCancelled(uint256, string calldata) external pure {
        _bomb();
    }

    function _bomb() private pure {
        assembly {
            revert(0, 150000) // ~60,000 gas of memory here, more to copy in the caller
        }
    }
}

/// @notice Tries to call back into the manager from its callbacks and records
/// how that went (the callbacks themselves succeed).
contract ReentrantClient is TestClient {
    uint256 public otherJob;
    bytes public fulfillError;
    bytes public cancelError;
    bytes public expiredError;
    bytes public runJobError;
    uint256 public reached;

    constructor(LilypadJobManager manager_) TestClient(manager_) {}

    function setOtherJob(uint256 jobId) external {
        otherJob = jobId;
    }

    function lilypadFulfilled(uint256, string calldata) external {
        _reenter();
    }

    function lilypadCancelled(uint256, string calldata) external {
        _reenter();
    }

    function _reenter() private {
        reached++;
        try manager.fulfill(otherJob, "bafyreentrant", 0) {}
        catch (bytes memory e) {
            fulfillError = e;
        }
        try manager.cancel(otherJob, "reentrant") {}
        catch (bytes memory e) {
            cancelError = e;
        }
        try manager.cancelExpired(otherJob) {}
        catch (bytes memory e) {
            expiredError = e;
        }
        string[] memory none = new string[](0);
        try manager.runJob("cowsay:v0.0.4", none, 1) {}
        catch (bytes memory e) {
            runJobError = e;
        }
    }
}

/// @notice Needs `need` gas at entry to succeed (a sound client with a known
/// appetite); records that it ran.
contract GasProbeClient is TestClient {
    uint256 public immutable need;
    uint256 public ran;
    uint256 public gasAtEntry;

    constructor(LilypadJobManager manager_, uint256 need_) TestClient(manager_) {
        need = need_;
    }

    function lilypadFulfilled(uint256, string calldata) external {
        _probe();
    }

    function lilypadCancelled(uint256, string calldata) external {
        _probe();
    }

    function _probe() private {
        uint256 g = gasleft();
        require(g >= need, "starved");
        gasAtEntry = g;
        ran++;
    }
}
