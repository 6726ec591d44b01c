// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

/// @notice Who is on the network and in which roles, for discovery (e.g. a
/// solver's URL). Each account registers itself (`msg.sender`); nobody can
/// register or change another account.
///
/// Roles here are advertisements, not permissions: trust is expressed by the
/// signed offers, which name their solver and mediators explicitly.
contract LilypadUsers {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice Role bits.
    uint8 public constant JOB_CREATOR = 1;
    uint8 public constant RESOURCE_PROVIDER = 2;
    uint8 public constant SOLVER = 4;
    uint8 public constant MEDIATOR = 8;
    uint8 internal constant ALL_ROLES = 15;
    /// @notice Longest URL accepted, in bytes.
    uint256 public constant MAX_URL_BYTES = 512;

    /// @notice A registered account.
    struct User {
        uint8 roles;
        /// Where the account serves its role (a solver's API base URL); may be empty.
        string url;
        /// Optional pointer to more metadata (e.g. the digest of a CID); zero if none.
        bytes32 metadata;
    }

    mapping(address account => User) private _users;
    mapping(uint8 role => EnumerableSet.AddressSet) private _members;

    /// @notice An account registered or changed its entry.
    event UserUpdated(address indexed account, uint8 roles, string url, bytes32 metadata);
    /// @notice An account removed its entry.
    event UserRemoved(address indexed account);

    /// @notice `roles` has no bit set or unknown bits.
    error InvalidRoles(uint8 roles);
    /// @notice The URL is longer than MAX_URL_BYTES.
    error UrlTooLong(uint256 length, uint256 max);
    /// @notice `role` is not exactly one known role bit.
    error UnknownRole(uint8 role);

    /// @notice Registers the caller or replaces its entry.
    function register(uint8 roles, string calldata url, bytes32 metadata) external {
        if (roles == 0 || roles & ~ALL_ROLES != 0) revert InvalidRoles(roles);
        if (bytes(url).length > MAX_URL_BYTES) revert UrlTooLong(bytes(url).length, MAX_URL_BYTES);
        _setRoles(msg.sender, _users[msg.sender].roles, roles);
        _users[msg.sender] = User(roles, url, metadata);
        emit UserUpdated(msg.sender, roles, url, metadata);
    }

    /// @notice Removes the caller's entry.
    function unregister() external {
        _setRoles(msg.sender, _users[msg.sender].roles, 0);
        delete _users[msg.sender];
        emit UserRemoved(msg.sender);
    }

    /// @notice The entry of `account` (roles 0: not registered).
    function userOf(address account) external view returns (User memory) {
        return _users[account];
    }

    /// @notice Whether `account` has every bit of `roles`.
    function hasRoles(address account, uint8 roles) external view returns (bool) {
        return roles != 0 && _users[account].roles & roles == roles;
    }

    /// @notice How many accounts have `role`.
    function count(uint8 role) external view returns (uint256) {
        return _set(role).length();
    }

    /// @notice Up to `limit` accounts with `role`, from index `offset` (order is not stable across changes).
    function members(uint8 role, uint256 offset, uint256 limit) external view returns (address[] memory out) {
        EnumerableSet.AddressSet storage set = _set(role);
        uint256 n = set.length();
        if (offset >= n) return out;
        uint256 end = n - offset < limit ? n : offset + limit;
        out = new address[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            out[i - offset] = set.at(i);
        }
    }

    function _set(uint8 role) private view returns (EnumerableSet.AddressSet storage) {
        if (role == 0 || role & (role - 1) != 0 || role & ~ALL_ROLES != 0) revert UnknownRole(role);
        return _members[role];
    }

    function _setRoles(address account, uint8 before, uint8 next) private {
        for (uint8 role = 1; role <= 8; role <<= 1) {
            bool had = before & role != 0;
            bool has = next & role != 0;
            if (has && !had) _members[role].add(account);
            else if (had && !has) _members[role].remove(account);
        }
    }
}
