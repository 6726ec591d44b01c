// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The controller's mediator draw (LilypadController.chooseMediator, internal there to
/// keep the controller under EIP-170's size limit), written out again for the tests: among the
/// mediators whose bit in `tried` is clear, the (seed mod their number)-th, with
/// seed = uint256(keccak256(abi.encode(seedBlockhash, dealId, round))), round = bits set in `tried`.
library DrawMath {
    function choose(bytes32 seedBlockhash, bytes32 dealId, address[] memory mediators, uint64 tried)
        internal
        pure
        returns (address mediator, uint8 index)
    {
        uint8 round;
        for (uint64 t = tried; t != 0; t &= t - 1) {
            ++round;
        }
        uint256 n = mediators.length;
        if (n <= round) return (address(0), 0);
        uint256 k = uint256(keccak256(abi.encode(seedBlockhash, dealId, round))) % (n - round);
        for (uint256 i; i < n; ++i) {
            if ((tried >> i) & 1 == 0) {
                // forge-lint: disable-next-line(unsafe-typecast): i < n <= 64
                if (k == 0) return (mediators[i], uint8(i));
                --k;
            }
        }
    }
}
