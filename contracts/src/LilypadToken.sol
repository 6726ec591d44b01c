// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @notice The token deals are paid in: ERC-20 with EIP-2612 permits. Accounts
/// with MINTER_ROLE mint (the devnet faucet); DEFAULT_ADMIN_ROLE manages roles.
contract LilypadToken is ERC20, ERC20Permit, AccessControl {
    /// @notice May mint.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin gets DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    constructor(address admin) ERC20("Lilypad", "LP") ERC20Permit("Lilypad") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Mints `amount` to `to` (MINTER_ROLE only).
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Burns `amount` of the caller's tokens.
    function burn(uint256 amount) external {
        _burn(msg.sender, amount);
    }
}
