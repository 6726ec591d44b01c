// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm, vm} from "./Vm.sol";

/// @notice A tiny stand-in for forge-std's Test: assertions that revert with
/// the values compared, `bound` for fuzz inputs, and invariant targets.
abstract contract Test {
    error AssertionFailed(string what);
    error NotEqualUint(string what, uint256 got, uint256 want);
    error NotEqualAddress(string what, address got, address want);
    error NotEqualBytes32(string what, bytes32 got, bytes32 want);
    error NotLessOrEqual(string what, uint256 got, uint256 max);

    /// Tells forge this is a test contract (forge-std does the same).
    bool public IS_TEST = true;

    address[] private _targetContracts;

    function assertTrue(bool ok, string memory what) internal pure {
        if (!ok) revert AssertionFailed(what);
    }

    function assertEq(uint256 got, uint256 want, string memory what) internal pure {
        if (got != want) revert NotEqualUint(what, got, want);
    }

    function assertEq(address got, address want, string memory what) internal pure {
        if (got != want) revert NotEqualAddress(what, got, want);
    }

    function assertEq(bytes32 got, bytes32 want, string memory what) internal pure {
        if (got != want) revert NotEqualBytes32(what, got, want);
    }

    function assertEq(bool got, bool want, string memory what) internal pure {
        if (got != want) revert AssertionFailed(what);
    }

    function assertLe(uint256 got, uint256 max, string memory what) internal pure {
        if (got > max) revert NotLessOrEqual(what, got, max);
    }

    /// Maps `x` into [min, max] keeping small values as they are (like forge-std's bound).
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min + 1;
        if (size == 0) return x; // full range
        return min + (x % size);
    }

    function targetContract(address target) internal {
        _targetContracts.push(target);
    }

    /// Read by forge's invariant runner.
    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }
}
