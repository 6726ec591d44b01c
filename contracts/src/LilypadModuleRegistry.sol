// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

/// @notice The network's module allow and block lists, governed by the owner.
/// The deal controller asks `isAllowed` for every deal.
///
/// A blocked module is never allowed. While `allowlistOnly` is off (the
/// default) every module not blocked is allowed; while it is on, only modules
/// on the allowlist are. Module id = keccak256(canonical repo URL, resolved commit).
contract LilypadModuleRegistry is Ownable2Step {
    /// @notice A module's standing.
    enum Status {
        Unlisted,
        Allowed,
        Blocked
    }

    /// @notice Standing of each module id.
    mapping(bytes32 moduleId => Status) public statusOf;
    /// @notice Whether only allowlisted modules are allowed.
    bool public allowlistOnly;

    /// @notice A module's standing changed.
    event ModuleStatusSet(bytes32 indexed moduleId, Status status);
    /// @notice The allowlist-only switch changed.
    event AllowlistOnlySet(bool allowlistOnly);

    constructor(address owner_) Ownable(owner_) {}

    /// @notice Sets the standing of `moduleIds` (Unlisted removes a module from both lists).
    function setStatus(bytes32[] calldata moduleIds, Status status) external onlyOwner {
        for (uint256 i; i < moduleIds.length; ++i) {
            statusOf[moduleIds[i]] = status;
            emit ModuleStatusSet(moduleIds[i], status);
        }
    }

    /// @notice Turns allowlist-only mode on or off.
    function setAllowlistOnly(bool on) external onlyOwner {
        allowlistOnly = on;
        emit AllowlistOnlySet(on);
    }

    /// @notice Whether the network allows deals for `moduleId`.
    function isAllowed(bytes32 moduleId) external view returns (bool) {
        Status s = statusOf[moduleId];
        if (s == Status.Blocked) return false;
        return s == Status.Allowed || !allowlistOnly;
    }
}
