// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What a contract that runs jobs through LilypadJobManager implements.
/// The manager calls exactly one of the two functions, exactly once per job,
/// with at most LilypadJobManager.CALLBACK_GAS_LIMIT gas. An implementation
/// must accept calls from the manager only (`msg.sender == manager`): anyone
/// can call these functions with any arguments.
///
/// A callback that reverts or runs out of gas does not undo the job: the
/// manager records `CallbackFailed` and the job stays final (funds already
/// moved). Callbacks cannot call back into the manager (reentrancy guard):
/// request follow-up jobs in a separate transaction.
interface ILilypadJobClient {
    /// @notice Job `jobId` ran; `resultsCid` is the results' IPFS CID as text
    /// (e.g. "bafy..."), at most LilypadJobManager.MAX_RESULTS_BYTES bytes.
    function lilypadFulfilled(uint256 jobId, string calldata resultsCid) external;

    /// @notice Job `jobId` will not run; its payment was refunded in full.
    /// `reason` is the bridge's (at most LilypadJobManager.MAX_REASON_BYTES
    /// bytes) or "expired" when anyone cancelled it after its deadline.
    function lilypadCancelled(uint256 jobId, string calldata reason) external;
}
