// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

contract SmokeTest is Test {
    function test_cheatcodes() public {
        vm.warp(1234);
        assertEq(block.timestamp, 1234, "warp");
        address a = vm.addr(1);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(1, keccak256("x"));
        assertEq(ecrecover(keccak256("x"), v, r, s), a, "sign");
    }

    function testFuzz_bound(uint256 x) public pure {
        uint256 y = bound(x, 3, 9);
        assertTrue(y >= 3 && y <= 9, "bound");
    }
}
