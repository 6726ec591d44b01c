// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

/// @notice Proof-of-work rounds for providers' hashrate. Per round, a miner's
/// challenge is keccak256(abi.encode(seed, miner, nodeId)) and a proof is a
/// nonce with uint256(keccak256(abi.encodePacked(challenge, nonce))) < target
/// (a 64-byte message), as `lilypad_core::pow`. Proofs are verified and
/// emitted; nothing but a used-proof flag is stored (no arrays), and the
/// leaderboard reads the events.
contract LilypadPow is Ownable2Step {
    /// @notice A round: its seed, target and start time.
    struct Round {
        bytes32 seed;
        uint256 target;
        uint64 startedAt;
    }

    /// @notice The latest round (0: none yet).
    uint64 public currentRound;
    mapping(uint64 round => Round) private _rounds;
    /// @notice Proof hashes already accepted (a proof counts once).
    mapping(bytes32 proofHash => bool) public usedProof;

    /// @notice A round started; miners work on it until the next one starts.
    event RoundStarted(uint64 indexed round, bytes32 seed, uint256 target);
    /// @notice A valid proof; expected work is 2^256 / target hashes.
    event ProofSubmitted(
        uint64 indexed round, address indexed miner, bytes32 indexed nodeId, uint256 nonce, uint256 target
    );

    /// @notice No round has started.
    error NoRound();
    /// @notice A target of 0 can never be met.
    error ZeroTarget();
    /// @notice The proof's hash is not below the target.
    error ProofAboveTarget(bytes32 proofHash, uint256 target);
    /// @notice This proof was already submitted.
    error ProofUsed(bytes32 proofHash);

    constructor(address owner_) Ownable(owner_) {}

    /// @notice Starts a round with `target` (owner only); the seed comes from the previous block's hash.
    function startRound(uint256 target) external onlyOwner returns (uint64 round) {
        if (target == 0) revert ZeroTarget();
        round = currentRound + 1;
        currentRound = round;
        bytes32 seed = keccak256(abi.encode(blockhash(block.number - 1), round));
        _rounds[round] = Round({seed: seed, target: target, startedAt: uint64(block.timestamp)});
        emit RoundStarted(round, seed, target);
    }

    /// @notice Submits a proof for the current round as `msg.sender` (the miner) for `nodeId`.
    function submitProof(bytes32 nodeId, uint256 nonce) external {
        uint64 round = currentRound;
        if (round == 0) revert NoRound();
        Round storage r = _rounds[round];
        bytes32 h = proofHash(challenge(r.seed, msg.sender, nodeId), nonce);
        uint256 target = r.target;
        if (uint256(h) >= target) revert ProofAboveTarget(h, target);
        if (usedProof[h]) revert ProofUsed(h);
        usedProof[h] = true;
        emit ProofSubmitted(round, msg.sender, nodeId, nonce, target);
    }

    /// @notice A round's seed, target and start time.
    function roundOf(uint64 round) external view returns (Round memory) {
        return _rounds[round];
    }

    /// @notice keccak256(abi.encode(seed, miner, nodeId)).
    function challenge(bytes32 seed, address miner, bytes32 nodeId) public pure returns (bytes32) {
        return keccak256(abi.encode(seed, miner, nodeId));
    }

    /// @notice keccak256(challenge ++ nonce), the nonce as 32 bytes big-endian.
    function proofHash(bytes32 challenge_, uint256 nonce) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(challenge_, nonce));
    }
}
