// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {JobOffer, ResourceOffer} from "../src/LilypadTypes.sol";

/// @notice A token whose transfers call back into the controller (as a hostile
/// or hook-bearing token could): the reentrant call must fail.
contract ReentrantToken is ERC20 {
    LilypadController public target;
    bytes32 public dealId;

    constructor() ERC20("Hostile", "HOST") {}

    function arm(LilypadController target_, bytes32 dealId_) external {
        target = target_;
        dealId = dealId_;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (address(target) != address(0) && from == address(target)) {
            target.claimTimeout(dealId); // would pay out a second time if it got through
        }
    }
}

contract ReentrancyTest is Fixture {
    function test_reentrantSettlementIsRefused() public {
        ReentrantToken hostile = new ReentrantToken();
        LilypadController c =
            new LilypadController(IERC20(address(hostile)), registry, owner, defaultParams());
        controller = c; // the Fixture's signing helpers use `controller`
        hostile.mint(jc, 100 ether);
        hostile.mint(rp, 100 ether);
        vm.prank(jc);
        hostile.approve(address(c), type(uint256).max);
        vm.prank(rp);
        hostile.approve(address(c), type(uint256).max);

        bytes32 id = create(jobOffer(), resourceOffer());
        vm.warp(START + 601);
        hostile.arm(c, id);
        vm.expectRevert(
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector)
        );
        c.claimTimeout(id);
        assertEq(hostile.balanceOf(address(c)), 12 ether + 5 ether, "nothing left the escrow");
    }
}
