// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {LilypadModuleRegistry} from "../src/LilypadModuleRegistry.sol";
import {LilypadToken} from "../src/LilypadToken.sol";
import {LilypadUsers} from "../src/LilypadUsers.sol";

contract LilypadModuleRegistryTest is Test {
    LilypadModuleRegistry internal reg;
    address internal owner = address(0xA);
    bytes32 internal constant A = keccak256("module a");
    bytes32 internal constant B = keccak256("module b");

    event ModuleStatusSet(bytes32 indexed moduleId, LilypadModuleRegistry.Status status);
    event AllowlistOnlySet(bool allowlistOnly);

    function setUp() public {
        reg = new LilypadModuleRegistry(owner);
    }

    function both() internal pure returns (bytes32[] memory xs) {
        xs = new bytes32[](2);
        xs[0] = A;
        xs[1] = B;
    }

    function test_defaultAllowsEverythingNotBlocked() public {
        assertTrue(reg.isAllowed(A), "unlisted allowed by default");
        vm.expectEmit(address(reg));
        emit ModuleStatusSet(A, LilypadModuleRegistry.Status.Blocked);
        vm.expectEmit(address(reg));
        emit ModuleStatusSet(B, LilypadModuleRegistry.Status.Blocked);
        vm.prank(owner);
        reg.setStatus(both(), LilypadModuleRegistry.Status.Blocked);
        assertTrue(!reg.isAllowed(A) && !reg.isAllowed(B), "blocked");
        assertTrue(reg.statusOf(A) == LilypadModuleRegistry.Status.Blocked, "status");
    }

    function test_allowlistOnly() public {
        vm.expectEmit(address(reg));
        emit AllowlistOnlySet(true);
        vm.prank(owner);
        reg.setAllowlistOnly(true);
        assertTrue(!reg.isAllowed(A), "unlisted refused");
        bytes32[] memory a = new bytes32[](1);
        a[0] = A;
        vm.prank(owner);
        reg.setStatus(a, LilypadModuleRegistry.Status.Allowed);
        assertTrue(reg.isAllowed(A), "allowlisted");
        assertTrue(!reg.isAllowed(B), "other still refused");
        vm.prank(owner);
        reg.setStatus(a, LilypadModuleRegistry.Status.Blocked);
        assertTrue(!reg.isAllowed(A), "block wins");
        vm.prank(owner);
        reg.setAllowlistOnly(false);
        assertTrue(reg.isAllowed(B), "open again");
    }

    function test_onlyOwner() public {
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(0xBAD)));
        reg.setStatus(both(), LilypadModuleRegistry.Status.Blocked);
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(0xBAD)));
        reg.setAllowlistOnly(true);
    }
}

contract LilypadUsersTest is Test {
    LilypadUsers internal users;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);

    event UserUpdated(address indexed account, uint8 roles, string url, bytes32 metadata);
    event UserRemoved(address indexed account);

    uint8 internal JC;
    uint8 internal RP;
    uint8 internal SOLVER;
    uint8 internal MEDIATOR;

    function setUp() public {
        users = new LilypadUsers();
        // Read once here: inside a test, `vm.prank` would apply to these view calls instead.
        JC = users.JOB_CREATOR();
        RP = users.RESOURCE_PROVIDER();
        SOLVER = users.SOLVER();
        MEDIATOR = users.MEDIATOR();
        assertEq(uint256(JC) | RP | SOLVER | MEDIATOR, 15, "four distinct role bits");
    }

    function test_registerListAndUpdate() public {
        uint8 solverAndMediator = SOLVER | MEDIATOR;
        vm.expectEmit(address(users));
        emit UserUpdated(alice, solverAndMediator, "https://solver.example/api/v1", bytes32(uint256(1)));
        vm.prank(alice);
        users.register(solverAndMediator, "https://solver.example/api/v1", bytes32(uint256(1)));
        vm.prank(bob);
        users.register(SOLVER, "https://b.example", 0);

        LilypadUsers.User memory u = users.userOf(alice);
        assertEq(u.roles, solverAndMediator, "roles");
        assertTrue(keccak256(bytes(u.url)) == keccak256("https://solver.example/api/v1"), "url");
        assertTrue(users.hasRoles(alice, SOLVER), "alice solver");
        assertTrue(!users.hasRoles(alice, RP), "alice not provider");
        assertTrue(!users.hasRoles(alice, 0), "no roles asked is false");
        assertEq(users.count(SOLVER), 2, "two solvers");
        assertEq(users.count(MEDIATOR), 1, "one mediator");
        address[] memory solvers = users.members(SOLVER, 0, 10);
        assertEq(solvers.length, 2, "page");
        assertEq(solvers[0], alice, "first");
        assertEq(solvers[1], bob, "second");
        assertEq(users.members(SOLVER, 1, 10).length, 1, "offset");
        assertEq(users.members(SOLVER, 0, 1).length, 1, "limit");
        assertEq(users.members(SOLVER, 5, 1).length, 0, "past the end");

        // Changing roles moves the account between lists.
        vm.prank(alice);
        users.register(MEDIATOR, "", 0);
        assertEq(users.count(SOLVER), 1, "alice left the solvers");
        assertEq(users.count(MEDIATOR), 1, "still a mediator");
    }

    function test_unregister() public {
        vm.prank(alice);
        users.register(JC | RP, "", 0);
        vm.expectEmit(address(users));
        emit UserRemoved(alice);
        vm.prank(alice);
        users.unregister();
        assertEq(users.userOf(alice).roles, 0, "gone");
        assertEq(users.count(JC), 0, "no job creators");
        assertEq(users.count(RP), 0, "no providers");
    }

    function test_reverts() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(LilypadUsers.InvalidRoles.selector, 0));
        users.register(0, "", 0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(LilypadUsers.InvalidRoles.selector, 16));
        users.register(16, "", 0);
        bytes memory long = new bytes(513);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(LilypadUsers.UrlTooLong.selector, 513, 512));
        users.register(1, string(long), 0);
        vm.expectRevert(abi.encodeWithSelector(LilypadUsers.UnknownRole.selector, 3));
        users.count(3);
        vm.expectRevert(abi.encodeWithSelector(LilypadUsers.UnknownRole.selector, 0));
        users.members(0, 0, 1);
    }
}

contract LilypadTokenTest is Test {
    LilypadToken internal token;
    address internal admin = address(0xAD);
    address internal alice = address(0xA11CE);

    function setUp() public {
        token = new LilypadToken(admin);
    }

    function test_metadataAndMint() public {
        assertTrue(keccak256(bytes(token.name())) == keccak256("Lilypad"), "name");
        assertTrue(keccak256(bytes(token.symbol())) == keccak256("LP"), "symbol");
        assertEq(token.decimals(), 18, "decimals");
        vm.prank(admin);
        token.mint(alice, 5);
        assertEq(token.balanceOf(alice), 5, "minted");
        vm.prank(alice);
        token.burn(2);
        assertEq(token.totalSupply(), 3, "burned");
    }

    function test_onlyMintersMint() public {
        bytes32 role = token.MINTER_ROLE();
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role)
        );
        token.mint(alice, 1);
        vm.prank(admin);
        token.grantRole(role, alice);
        vm.prank(alice);
        token.mint(alice, 1);
        assertEq(token.balanceOf(alice), 1, "new minter mints");
    }

    function test_permit() public {
        uint256 key = 0xBEEF;
        address holder = vm.addr(key);
        bytes32 digest = keccak256(
            abi.encodePacked(
                hex"1901",
                token.DOMAIN_SEPARATOR(),
                keccak256(
                    abi.encode(
                        keccak256(
                            "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                        ),
                        holder,
                        alice,
                        7,
                        0,
                        block.timestamp + 1
                    )
                )
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        token.permit(holder, alice, 7, block.timestamp + 1, v, r, s);
        assertEq(token.allowance(holder, alice), 7, "allowance from permit");
        assertEq(token.nonces(holder), 1, "nonce used");
    }
}
