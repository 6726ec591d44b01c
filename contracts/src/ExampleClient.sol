// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {ILilypadJobClient} from "./ILilypadJobClient.sol";
import {LilypadJobManager} from "./LilypadJobManager.sol";

/// @notice An example job client: its owner asks for cowsay runs, paid from this
/// contract's token balance; the manager calls back with the results CID or
/// the cancel reason, which are kept per job. Only the manager may call back.
contract ExampleClient is ILilypadJobClient, Ownable {
    using SafeERC20 for IERC20;

    /// @notice What became of a job of this client.
    enum Status {
        None,
        Requested,
        Fulfilled,
        Cancelled
    }

    /// @notice The module asked for.
    string public constant MODULE = "cowsay:v0.0.4";

    /// @notice The manager that runs the jobs (the only caller of the callbacks).
    LilypadJobManager public immutable manager;
    /// @notice The manager's token, which jobs are paid in.
    IERC20 public immutable token;

    /// @notice Escrowed with each request (the most the bridge may be reimbursed).
    uint256 public payment;
    /// @notice Per job: what became of it.
    mapping(uint256 jobId => Status) public statusOf;
    /// @notice Per job: the results CID, once fulfilled.
    mapping(uint256 jobId => string) public resultsOf;
    /// @notice Per job: why it was cancelled, once cancelled.
    mapping(uint256 jobId => string) public cancelReasonOf;

    /// @notice The owner asked for `message` in job `jobId`.
    event CowsayRequested(uint256 indexed jobId, string message, uint256 payment);
    /// @notice Job `jobId` ran; its results are at `resultsCid`.
    event CowsayFulfilled(uint256 indexed jobId, string resultsCid);
    /// @notice Job `jobId` was cancelled (its payment came back).
    event CowsayCancelled(uint256 indexed jobId, string reason);
    /// @notice The owner set the payment of new requests.
    event PaymentSet(uint256 payment);

    /// @notice A callback came from `caller`, not from the manager.
    error NotManager(address caller);
    /// @notice A callback names a job this client has not requested or that is already final.
    error NotRequested(uint256 jobId, Status status);

    constructor(LilypadJobManager manager_, address owner_, uint256 payment_) Ownable(owner_) {
        manager = manager_;
        token = manager_.token();
        payment = payment_;
        emit PaymentSet(payment_);
    }

    modifier onlyManager() {
        if (msg.sender != address(manager)) revert NotManager(msg.sender);
        _;
    }

    /// @notice Asks the manager to run cowsay with input `Message=<message>`, escrowing `payment`
    /// from this contract's balance. Owner only (it spends the contract's tokens).
    function requestCowsay(string calldata message) external onlyOwner returns (uint256 jobId) {
        string[] memory inputs = new string[](1);
        inputs[0] = string.concat("Message=", message);
        uint256 amount = payment;
        token.forceApprove(address(manager), amount);
        jobId = manager.runJob(MODULE, inputs, amount);
        statusOf[jobId] = Status.Requested;
        emit CowsayRequested(jobId, message, amount);
    }

    /// @inheritdoc ILilypadJobClient
    function lilypadFulfilled(uint256 jobId, string calldata resultsCid) external onlyManager {
        _finish(jobId, Status.Fulfilled);
        resultsOf[jobId] = resultsCid;
        emit CowsayFulfilled(jobId, resultsCid);
    }

    /// @inheritdoc ILilypadJobClient
    function lilypadCancelled(uint256 jobId, string calldata reason) external onlyManager {
        _finish(jobId, Status.Cancelled);
        cancelReasonOf[jobId] = reason;
        emit CowsayCancelled(jobId, reason);
    }

    /// @notice Sets the payment escrowed with new requests (owner).
    function setPayment(uint256 payment_) external onlyOwner {
        payment = payment_;
        emit PaymentSet(payment_);
    }

    /// @notice Sends `amount` of the contract's tokens to `to` (owner).
    function withdraw(address to, uint256 amount) external onlyOwner {
        token.safeTransfer(to, amount);
    }

    function _finish(uint256 jobId, Status status) private {
        Status s = statusOf[jobId];
        if (s != Status.Requested) revert NotRequested(jobId, s);
        statusOf[jobId] = status;
    }
}
