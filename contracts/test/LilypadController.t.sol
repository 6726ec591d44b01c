// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {LilypadModuleRegistry} from "../src/LilypadModuleRegistry.sol";
import {LilypadSettlement} from "../src/LilypadSettlement.sol";
import {
    DealAction,
    DealRole,
    DealState,
    JobOffer,
    ModulePrice,
    Outcome,
    ResourceOffer
} from "../src/LilypadTypes.sol";

/// @notice An ERC-1271 wallet that accepts one digest.
contract Wallet1271 {
    bytes32 public approved;

    function approve(bytes32 digest) external {
        approved = digest;
    }

    function isValidSignature(bytes32 digest, bytes calldata) external view returns (bytes4) {
        return digest == approved ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}

contract LilypadControllerTest is Fixture {
    bytes internal constant CID = hex"01701220aabbccdd";

    // The deal of the default offers: price 8 ether (MODULE's own price), payment 12 ether,
    // timeout collateral 5 ether, results collateral 16 ether, fee FEE.
    uint256 internal constant PRICE = 8 ether;
    uint256 internal constant PAYMENT = 12 ether;
    uint256 internal constant TIMEOUT = 5 ether;
    uint256 internal constant RESULTS = 16 ether;

    event DealCreated(
        bytes32 indexed dealId,
        address indexed jobCreator,
        address indexed provider,
        address solver,
        LilypadController.DealTerms terms,
        address[] mediators
    );
    event ResultsSubmitted(
        bytes32 indexed dealId, bytes32 results, bytes resultsCid, uint256 resultsCollateral, uint64 deadline
    );
    event ResultsChallenged(bytes32 indexed dealId, uint256 mediationFee, uint64 deadline, uint64 drawBlock);
    event MediatorDrawn(bytes32 indexed dealId, address indexed mediator, uint8 round, uint64 deadline);
    event DealFinished(
        bytes32 indexed dealId,
        Outcome indexed outcome,
        address by,
        uint256 toJobCreator,
        uint256 toProvider,
        uint256 toMediator
    );
    event ParamsSet(LilypadController.NetworkParams params);
    event NoncesInvalidated(address indexed signer, uint256 word, uint256 mask);

    function err(bytes4 selector) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector);
    }

    function expectCreateRevert(JobOffer memory j, ResourceOffer memory r, bytes memory reason) internal {
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        vm.expectRevert(reason);
        controller.createDeal(j, js, r, rs);
    }

    /// Challenges the results in this block, then draws the mediator in the next one (the
    /// challenge block's hash set to `keccak256(id)`); returns the mediator.
    function challenge(bytes32 id) internal returns (address mediator) {
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        return draw(id);
    }

    function draw(bytes32 id) internal returns (address) {
        uint256 drawBlock = controller.getDeal(id).drawBlock;
        vm.roll(drawBlock + 1);
        vm.setBlockhash(drawBlock, keccak256(abi.encode(id)));
        controller.drawMediator(id, addrs(m1, m2));
        return controller.getDeal(id).mediator;
    }

    /// The mediator of round 0 by the documented formula, from `seed` (the challenge block's hash).
    function expectedMediator(bytes32 id, bytes32 seed) internal pure returns (address) {
        uint256 index = uint256(keccak256(abi.encode(seed, id, uint256(0)))) % 2;
        return index == 0 ? address(0x1001) : address(0x1002);
    }

    // ------------------------------------------------------------------ createDeal

    function test_createDeal_escrowsAndRecords() public {
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes32 id = dealIdOf(j, r);
        LilypadController.DealTerms memory t = LilypadController.DealTerms({
            jobOfferHash: controller.jobOfferHash(j),
            resourceOfferHash: controller.resourceOfferHash(r),
            moduleId: MODULE,
            inputsHash: INPUTS,
            price: PRICE,
            paymentCollateral: PAYMENT,
            timeoutCollateral: TIMEOUT,
            resultsCollateral: RESULTS,
            mediationFee: FEE,
            deadline: uint64(START + 600),
            judgeWindowSecs: JUDGE,
            mediateWindowSecs: MEDIATE
        });
        (uint256 jc0, uint256 rp0,) = balances();
        vm.expectEmit(address(controller));
        emit DealCreated(id, jc, rp, solver, t, addrs(m1, m2));
        bytes32 got = createDefault();
        assertEq(got, id, "deal id");

        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc0 - jc1, PAYMENT, "job creator escrowed the payment");
        assertEq(rp0 - rp1, TIMEOUT, "provider escrowed the timeout collateral");
        assertEq(c1, PAYMENT + TIMEOUT, "controller holds both");
        assertEq(controller.escrowOf(id), PAYMENT + TIMEOUT, "escrowOf");

        LilypadController.DealView memory d = controller.getDeal(id);
        assertTrue(d.state == DealState.Agreed, "state");
        assertEq(d.jobCreator, jc, "jc");
        assertEq(d.provider, rp, "rp");
        assertEq(d.mediator, address(0), "no mediator yet");
        assertEq(d.mediatorsHash, keccak256(abi.encodePacked(addrs(m1, m2))), "mediators hash");
        assertEq(d.deadline, START + 600, "deadline");
        assertEq(d.price, PRICE, "price");
        assertEq(d.paymentCollateral, PAYMENT, "payment");
        assertEq(d.providerCollateral, TIMEOUT, "provider collateral");
        assertEq(d.resultsCollateral, RESULTS, "results collateral");
        assertEq(d.mediationFee, FEE, "fee");
        assertEq(d.judgeWindowSecs, JUDGE, "judge window");
        assertEq(d.mediateWindowSecs, MEDIATE, "mediate window");
        assertEq(d.results, bytes32(0), "no results yet");
        assertEq(d.drawBlock, 0, "no draw yet");
        assertEq(d.round, 0, "round");
        assertEq(d.mediatorCount, 2, "two mediators in common");
        assertEq(controller.totalEscrowed(), PAYMENT + TIMEOUT, "totalEscrowed");
        assertTrue(controller.isNonceUsed(jc, 1), "jc nonce used");
        assertTrue(controller.isNonceUsed(rp, 1), "rp nonce used");
        assertTrue(!controller.isNonceUsed(jc, 2), "jc nonce 2 free");
    }

    function test_createDeal_onlyTheNamedSolver() public {
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotSolver.selector, solver, solver, other));
        controller.createDeal(j, js, r, rs);

        // Offers naming different solvers never form a deal, whoever calls.
        r.solver = other;
        rs = signResource(r, RP_KEY);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotSolver.selector, solver, other, other));
        controller.createDeal(j, js, r, rs);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.NotSolver.selector, solver, other, solver));
        controller.createDeal(j, js, r, rs);
    }

    function test_createDeal_expiry() public {
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.expiry = uint64(START + 10);
        vm.warp(START + 10);
        expectCreateRevert(
            j, r, abi.encodeWithSelector(LilypadController.OfferExpired.selector, jc, j.expiry, START + 10)
        );
        j.expiry = uint64(START + 11);
        r.expiry = uint64(START + 9);
        expectCreateRevert(
            j, r, abi.encodeWithSelector(LilypadController.OfferExpired.selector, rp, r.expiry, START + 10)
        );
        r.expiry = uint64(START + 11);
        create(j, r); // valid while now < expiry
    }

    function test_createDeal_nonceReplayRejected() public {
        createDefault();
        // The same pair again.
        expectCreateRevert(
            jobOffer(),
            resourceOffer(),
            abi.encodeWithSelector(
                LilypadController.DealExists.selector, dealIdOf(jobOffer(), resourceOffer())
            )
        );
        // The job creator's nonce with a fresh resource offer.
        ResourceOffer memory r = resourceOffer();
        r.nonce = 2;
        expectCreateRevert(jobOffer(), r, abi.encodeWithSelector(LilypadController.NonceUsed.selector, jc, 1));
        // The provider's nonce with a fresh job offer.
        JobOffer memory j = jobOffer();
        j.nonce = 2;
        expectCreateRevert(
            j, resourceOffer(), abi.encodeWithSelector(LilypadController.NonceUsed.selector, rp, 1)
        );
        // Fresh nonces on both sides work.
        create(j, r);
    }

    function test_invalidateNonces_voidsOffers() public {
        JobOffer memory j = jobOffer();
        j.nonce = 256 * 3 + 5;
        vm.expectEmit(address(controller));
        emit NoncesInvalidated(jc, 3, 1 << 5);
        vm.prank(jc);
        controller.invalidateNonces(3, 1 << 5);
        assertTrue(controller.isNonceUsed(jc, j.nonce), "invalidated");
        expectCreateRevert(
            j, resourceOffer(), abi.encodeWithSelector(LilypadController.NonceUsed.selector, jc, j.nonce)
        );
        // Only the caller's own nonces are touched.
        assertTrue(!controller.isNonceUsed(rp, j.nonce), "other signer untouched");
    }

    function test_createDeal_badSignatures() public {
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory goodJ = signJob(j, JC_KEY);
        bytes memory goodR = signResource(r, RP_KEY);
        // Signed by someone else.
        bytes memory js = signJob(j, OTHER_KEY);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.InvalidSignature.selector, jc));
        controller.createDeal(j, js, r, goodR);
        bytes memory rs = signResource(r, OTHER_KEY);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.InvalidSignature.selector, rp));
        controller.createDeal(j, goodJ, r, rs);
        // A field changed after signing (the solver raises the payment it can pull).
        j.paymentCollateral += 1;
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.InvalidSignature.selector, jc));
        controller.createDeal(j, goodJ, r, goodR);
        j = jobOffer();
        r.timeoutCollateral += 1;
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.InvalidSignature.selector, rp));
        controller.createDeal(j, goodJ, r, goodR);
        // Garbage bytes.
        r = resourceOffer();
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.InvalidSignature.selector, jc));
        controller.createDeal(j, hex"1234", r, goodR);
    }

    function test_createDeal_contractSignerViaErc1271() public {
        Wallet1271 wallet = new Wallet1271();
        vm.prank(owner);
        token.mint(address(wallet), 100 ether);
        vm.prank(address(wallet));
        token.approve(address(controller), type(uint256).max);
        JobOffer memory j = jobOffer();
        j.creator = address(wallet);
        ResourceOffer memory r = resourceOffer();
        wallet.approve(controller.jobOfferHash(j));
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        bytes32 id = controller.createDeal(j, "", r, rs);
        assertEq(controller.getDeal(id).jobCreator, address(wallet), "wallet is the job creator");
    }

    function test_createDeal_target() public {
        JobOffer memory j = jobOffer();
        j.target = other;
        expectCreateRevert(
            j, resourceOffer(), abi.encodeWithSelector(LilypadController.TargetMismatch.selector, other, rp)
        );
        j.target = rp;
        create(j, resourceOffer());
    }

    function test_createDeal_zeroTimeout() public {
        JobOffer memory j = jobOffer();
        j.timeoutSecs = 0;
        expectCreateRevert(
            j,
            resourceOffer(),
            abi.encodeWithSelector(LilypadController.TimeoutTooShort.selector, 0, 60, MIN_TIMEOUT)
        );
    }

    function test_createDeal_moduleMustBeOfferedByTheProvider() public {
        JobOffer memory j = jobOffer();
        j.moduleId = bytes32(uint256(0x5555));
        expectCreateRevert(
            j,
            resourceOffer(),
            abi.encodeWithSelector(LilypadController.ModuleNotOffered.selector, j.moduleId)
        );
        ResourceOffer memory r = resourceOffer();
        r.anyModule = true;
        r.modules = new bytes32[](0);
        bytes32 id = create(j, r);
        assertEq(controller.getDeal(id).price, 9 ether, "default price for a module without its own");
    }

    function test_createDeal_moduleMustBeAllowedByTheNetwork() public {
        vm.prank(owner);
        registry.setStatus(ids(MODULE), LilypadModuleRegistry.Status.Blocked);
        expectCreateRevert(
            jobOffer(),
            resourceOffer(),
            abi.encodeWithSelector(LilypadController.ModuleNotAllowed.selector, MODULE)
        );
        vm.startPrank(owner);
        registry.setStatus(ids(MODULE), LilypadModuleRegistry.Status.Unlisted);
        registry.setAllowlistOnly(true);
        vm.stopPrank();
        expectCreateRevert(
            jobOffer(),
            resourceOffer(),
            abi.encodeWithSelector(LilypadController.ModuleNotAllowed.selector, MODULE)
        );
        vm.prank(owner);
        registry.setStatus(ids(MODULE), LilypadModuleRegistry.Status.Allowed);
        createDefault();
    }

    function test_createDeal_price() public {
        JobOffer memory j = jobOffer();
        j.maxPrice = PRICE - 1;
        expectCreateRevert(
            j,
            resourceOffer(),
            abi.encodeWithSelector(LilypadController.PriceTooHigh.selector, PRICE, PRICE - 1)
        );
        j.maxPrice = PRICE;
        j.paymentCollateral = PRICE - 1;
        expectCreateRevert(
            j,
            resourceOffer(),
            abi.encodeWithSelector(LilypadController.PaymentBelowPrice.selector, PRICE - 1, PRICE)
        );
        j.paymentCollateral = PRICE;
        bytes32 id = create(j, resourceOffer());
        assertEq(
            controller.getDeal(id).price, PRICE, "price is the module's own price (not the 9 ether default)"
        );
    }

    function test_createDeal_amountsAbove128BitsRefused() public {
        uint256 big = uint256(type(uint128).max) + 1;
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.paymentCollateral = big;
        expectCreateRevert(j, r, abi.encodeWithSelector(LilypadController.AmountTooLarge.selector, 1, big));
        j = jobOffer();
        r.timeoutCollateral = big;
        expectCreateRevert(j, r, abi.encodeWithSelector(LilypadController.AmountTooLarge.selector, 2, big));
        r = resourceOffer();
        r.modulePrices[0].price = big;
        j.maxPrice = big;
        j.paymentCollateral = big;
        expectCreateRevert(j, r, abi.encodeWithSelector(LilypadController.AmountTooLarge.selector, 0, big));
        // A price that fits but whose results collateral (x2) does not.
        uint256 half = big / 2;
        r.modulePrices[0].price = half;
        j.maxPrice = half;
        j.paymentCollateral = half;
        expectCreateRevert(
            j, r, abi.encodeWithSelector(LilypadController.AmountTooLarge.selector, 3, half * 2)
        );
    }

    function test_createDeal_listsMustBeStrictlyAscending() public {
        JobOffer memory j = jobOffer();
        j.mediators = addrs(m2, m1);
        expectCreateRevert(
            j, resourceOffer(), abi.encodeWithSelector(LilypadController.NotStrictlyAscending.selector, 0, 1)
        );
        j.mediators = addrs(m1, m1);
        expectCreateRevert(
            j, resourceOffer(), abi.encodeWithSelector(LilypadController.NotStrictlyAscending.selector, 0, 1)
        );
        ResourceOffer memory r = resourceOffer();
        r.mediators = addrs(m1, m3, m2);
        expectCreateRevert(
            jobOffer(), r, abi.encodeWithSelector(LilypadController.NotStrictlyAscending.selector, 1, 2)
        );
        r = resourceOffer();
        r.modules = ids(MODULE, OTHER_MODULE);
        expectCreateRevert(
            jobOffer(), r, abi.encodeWithSelector(LilypadController.NotStrictlyAscending.selector, 2, 1)
        );
        r = resourceOffer();
        r.modulePrices = new ModulePrice[](2);
        r.modulePrices[0] = ModulePrice({moduleId: MODULE, price: 1});
        r.modulePrices[1] = ModulePrice({moduleId: OTHER_MODULE, price: 1});
        expectCreateRevert(
            jobOffer(), r, abi.encodeWithSelector(LilypadController.NotStrictlyAscending.selector, 3, 1)
        );
    }

    function test_createDeal_mediators() public {
        JobOffer memory j = jobOffer();
        j.mediators = addrs(address(0), m1);
        expectCreateRevert(j, resourceOffer(), err(LilypadController.ZeroMediator.selector));
        ResourceOffer memory r = resourceOffer();
        r.mediators = addrs(address(0));
        expectCreateRevert(jobOffer(), r, err(LilypadController.ZeroMediator.selector));
        r.mediators = addrs(m3);
        expectCreateRevert(jobOffer(), r, err(LilypadController.NoCommonMediator.selector));
        r.mediators = new address[](0);
        expectCreateRevert(jobOffer(), r, err(LilypadController.NoCommonMediator.selector));
        // The intersection is what the deal keeps.
        j = jobOffer();
        j.mediators = addrs(m1, m2, m3);
        r = resourceOffer();
        r.mediators = addrs(m2, m3);
        bytes32 id = create(j, r);
        assertEq(
            controller.getDeal(id).mediatorsHash,
            keccak256(abi.encodePacked(addrs(m2, m3))),
            "intersection m2 m3"
        );
    }

    function test_createDeal_needsAllowanceAndFunds() public {
        vm.prank(jc);
        token.approve(address(controller), PAYMENT - 1);
        expectCreateRevert(
            jobOffer(),
            resourceOffer(),
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(controller), PAYMENT - 1, PAYMENT
            )
        );
        approveAll(jc);
        uint256 rpBalance = token.balanceOf(rp);
        vm.prank(rp);
        token.transfer(other, rpBalance - 1);
        expectCreateRevert(
            jobOffer(),
            resourceOffer(),
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, rp, 1, TIMEOUT)
        );
    }

    function permitOf(uint256 key, uint256 value, uint256 deadline)
        internal
        view
        returns (LilypadController.Permit memory p)
    {
        address holder = vm.addr(key);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
                ),
                holder,
                address(controller),
                value,
                token.nonces(holder),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash));
        (p.v, p.r, p.s) = vm.sign(key, digest);
        p.value = value;
        p.deadline = deadline;
    }

    function test_createDealWithPermits_noPriorApproval() public {
        vm.prank(jc);
        token.approve(address(controller), 0);
        vm.prank(rp);
        token.approve(address(controller), 0);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        LilypadController.Permit memory jp = permitOf(JC_KEY, PAYMENT, START + 1 hours);
        LilypadController.Permit memory rpp = permitOf(RP_KEY, TIMEOUT, START + 1 hours);
        vm.prank(solver);
        bytes32 id = controller.createDealWithPermits(j, js, r, rs, jp, rpp);
        assertEq(controller.escrowOf(id), PAYMENT + TIMEOUT, "escrowed through permits");
        assertEq(token.allowance(jc, address(controller)), 0, "permit used up");
    }

    function test_createDealWithPermits_frontRunPermitStillWorks() public {
        vm.prank(jc);
        token.approve(address(controller), 0);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        LilypadController.Permit memory jp = permitOf(JC_KEY, PAYMENT, START + 1 hours);
        LilypadController.Permit memory none;
        // Someone submits the permit first: the controller's own permit call then fails and is ignored.
        token.permit(jc, address(controller), jp.value, jp.deadline, jp.v, jp.r, jp.s);
        vm.prank(solver);
        bytes32 id = controller.createDealWithPermits(j, js, r, rs, jp, none);
        assertEq(controller.escrowOf(id), PAYMENT + TIMEOUT, "escrowed");
    }

    function test_createDealWithPermits_badPermitWithoutAllowanceReverts() public {
        vm.prank(jc);
        token.approve(address(controller), 0);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        LilypadController.Permit memory jp = permitOf(OTHER_KEY, PAYMENT, START + 1 hours); // wrong signer
        LilypadController.Permit memory none;
        vm.prank(solver);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(controller), 0, PAYMENT
            )
        );
        controller.createDealWithPermits(j, js, r, rs, jp, none);
    }

    // ------------------------------------------------------------------ submitResults

    function test_submitResults_postsResultsCollateralAndReturnsTimeoutCollateral() public {
        bytes32 id = createDefault();
        (uint256 jc0, uint256 rp0, uint256 c0) = balances();
        vm.warp(START + 600); // the deadline second itself is still in time
        vm.expectEmit(address(controller));
        emit ResultsSubmitted(id, keccak256(CID), CID, RESULTS, uint64(START + 600 + JUDGE));
        submit(id);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc1, jc0, "job creator untouched");
        assertEq(rp0 - rp1, RESULTS - TIMEOUT, "provider paid only the difference");
        assertEq(c1 - c0, RESULTS - TIMEOUT, "controller");
        LilypadController.DealView memory d = controller.getDeal(id);
        assertTrue(d.state == DealState.ResultsSubmitted, "state");
        assertEq(d.results, keccak256(CID), "results digest");
        assertEq(d.providerCollateral, RESULTS, "now holds the results collateral");
        assertEq(d.deadline, START + 600 + JUDGE, "judge deadline");
        assertEq(controller.escrowOf(id), PAYMENT + RESULTS, "escrow");
    }

    function test_submitResults_timeoutCollateralAboveResultsCollateralIsRefunded() public {
        ResourceOffer memory r = resourceOffer();
        r.timeoutCollateral = 20 ether; // > results collateral 16 ether
        bytes32 id = create(jobOffer(), r);
        (, uint256 rp0,) = balances();
        submit(id);
        (, uint256 rp1, uint256 c1) = balances();
        assertEq(rp1 - rp0, 4 ether, "difference refunded");
        assertEq(c1, PAYMENT + RESULTS, "controller");
    }

    function test_submitResults_equalCollateralsMoveNothing() public {
        ResourceOffer memory r = resourceOffer();
        r.timeoutCollateral = RESULTS;
        bytes32 id = create(jobOffer(), r);
        (, uint256 rp0,) = balances();
        submit(id);
        (, uint256 rp1,) = balances();
        assertEq(rp1, rp0, "nothing moved");
    }

    function test_submitResults_reverts() public {
        bytes32 unknown = keccak256("nope");
        vm.prank(rp);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DealNotFound.selector, unknown));
        controller.submitResults(unknown, CID);

        bytes32 id = createDefault();
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.WrongSender.selector, DealRole.ResourceProvider, rp, jc)
        );
        controller.submitResults(id, CID);

        vm.prank(rp);
        vm.expectRevert(err(LilypadController.EmptyResults.selector));
        controller.submitResults(id, "");

        vm.warp(START + 601);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.DeadlinePassed.selector, START + 600, START + 601)
        );
        controller.submitResults(id, CID);

        vm.warp(START + 600);
        submit(id);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector,
                id,
                DealState.ResultsSubmitted,
                DealAction.SubmitResults
            )
        );
        controller.submitResults(id, CID);

        vm.prank(jc);
        controller.acceptResults(id);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.AlreadyFinished.selector, id, Outcome.Accepted)
        );
        controller.submitResults(id, CID);
    }

    // ------------------------------------------------------------------ acceptResults

    function test_acceptResults_paysTheProvider() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        submit(id);
        vm.warp(START + JUDGE); // last second of the judge window (submitted at START)
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.Accepted, jc, PAYMENT - PRICE, PRICE + RESULTS, 0);
        vm.prank(jc);
        controller.acceptResults(id);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc0 - jc1, PRICE, "job creator paid exactly the price");
        assertEq(rp1 - rp0, PRICE, "provider got exactly the price");
        assertEq(c1, 0, "nothing left in escrow");
        LilypadController.DealView memory d = controller.getDeal(id);
        assertTrue(d.state == DealState.Finished && d.outcome == Outcome.Accepted, "finished accepted");
        assertEq(controller.escrowOf(id), 0, "escrowOf");
    }

    function test_payout_receivesThePaymentAndTheCollateralRefunds() public {
        address payout = address(0xFA11);
        ResourceOffer memory r = resourceOffer();
        r.payout = payout;
        // More than the results collateral: submitting refunds the difference.
        r.timeoutCollateral = RESULTS + 3 ether;
        (, uint256 rp0,) = balances();
        bytes32 id = create(jobOffer(), r);
        assertEq(controller.payoutOf(id), payout, "payoutOf");
        assertEq(rp0 - token.balanceOf(rp), RESULTS + 3 ether, "the signing key escrows the collateral");
        submit(id);
        assertEq(token.balanceOf(payout), 3 ether, "the refund of submitResults");
        vm.prank(jc);
        controller.acceptResults(id);
        assertEq(token.balanceOf(payout), 3 ether + PRICE + RESULTS, "the price and the results collateral");
        assertEq(rp0 - token.balanceOf(rp), RESULTS + 3 ether, "nothing comes back to the signing key");

        // An offer naming its own provider (or none) pays the provider.
        ResourceOffer memory own = resourceOffer();
        own.payout = rp;
        own.nonce = 2;
        JobOffer memory j = jobOffer();
        j.nonce = 2;
        assertEq(controller.payoutOf(create(j, own)), rp, "payout = provider");
    }

    function test_acceptResults_reverts() public {
        bytes32 unknown = keccak256("nope");
        vm.prank(jc);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DealNotFound.selector, unknown));
        controller.acceptResults(unknown);

        bytes32 id = createDefault();
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.Agreed, DealAction.AcceptResults
            )
        );
        controller.acceptResults(id);

        submit(id);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.WrongSender.selector, DealRole.JobCreator, jc, rp)
        );
        controller.acceptResults(id);

        uint256 deadline = START + JUDGE;
        vm.warp(deadline + 1);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.DeadlinePassed.selector, deadline, deadline + 1)
        );
        controller.acceptResults(id);

        controller.claimTimeout(id);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.AlreadyFinished.selector, id, Outcome.NoJudgementInTime)
        );
        controller.acceptResults(id);
    }

    // ------------------------------------------------------------------ challengeResults and mediate

    function test_challengeResults_drawsAMediatorAndEscrowsTheFee() public {
        bytes32 id = createDefault();
        submit(id);
        vm.roll(500);
        (uint256 jc0,,) = balances();
        vm.expectEmit(address(controller));
        emit ResultsChallenged(id, FEE, uint64(START + MEDIATE), 500);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        (uint256 jc1,, uint256 c1) = balances();
        assertEq(jc0 - jc1, FEE, "fee escrowed");
        assertEq(c1, PAYMENT + RESULTS + FEE, "controller");
        LilypadController.DealView memory d = controller.getDeal(id);
        assertTrue(d.state == DealState.ResultsChallenged, "state");
        assertEq(d.mediator, address(0), "no mediator in the challenge block");
        assertEq(d.drawBlock, 500, "draw block is the challenge's");
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), address(0), "not computable yet");
        assertEq(d.mediatorsHash, keccak256(abi.encodePacked(addrs(m1, m2))), "hash kept for the draw");
        assertEq(d.results, keccak256(CID), "results kept");
        assertEq(controller.escrowOf(id), PAYMENT + RESULTS + FEE, "escrowOf");
        assertEq(controller.totalEscrowed(), PAYMENT + RESULTS + FEE, "totalEscrowed");

        vm.roll(501);
        vm.setBlockhash(500, keccak256("the challenge block"));
        address expected = expectedMediator(id, keccak256("the challenge block"));
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), expected, "computable from the next block");
        vm.expectEmit(address(controller));
        emit MediatorDrawn(id, expected, 0, uint64(START + MEDIATE));
        vm.prank(other); // anyone
        controller.drawMediator(id, addrs(m1, m2));
        assertEq(controller.getDeal(id).mediator, expected, "mediator from the seed");
        assertEq(controller.pendingMediator(id, addrs(m1, m2)), expected, "fixed");
    }

    function test_challengeResults_mediatorDependsOnTheBlockhash() public {
        bool sawM1;
        bool sawM2;
        for (uint256 i; i < 16 && !(sawM1 && sawM2); ++i) {
            JobOffer memory j = jobOffer();
            ResourceOffer memory r = resourceOffer();
            j.nonce = 100 + i;
            r.nonce = 100 + i;
            bytes32 id = create(j, r);
            submit(id);
            vm.roll(1000 + i);
            vm.prank(jc);
            controller.challengeResults(id, addrs(m1, m2));
            vm.roll(1001 + i);
            vm.setBlockhash(1000 + i, keccak256(abi.encode(i)));
            controller.drawMediator(id, addrs(m1, m2));
            address m = controller.getDeal(id).mediator;
            assertEq(m, expectedMediator(id, keccak256(abi.encode(i))), "formula");
            assertTrue(m == m1 || m == m2, "in the mutually trusted set");
            if (m == m1) sawM1 = true;
            if (m == m2) sawM2 = true;
        }
        assertTrue(sawM1 && sawM2, "both mediators get drawn");
    }

    function test_challengeResults_reverts() public {
        bytes32 id = createDefault();
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.Agreed, DealAction.ChallengeResults
            )
        );
        controller.challengeResults(id, addrs(m1, m2));

        submit(id);
        vm.prank(rp);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.WrongSender.selector, DealRole.JobCreator, jc, rp)
        );
        controller.challengeResults(id, addrs(m1, m2));

        // The job creator cannot narrow the set to the mediator it prefers.
        bytes32 want = keccak256(abi.encodePacked(addrs(m1, m2)));
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.MediatorsMismatch.selector, want, keccak256(abi.encodePacked(addrs(m2)))
            )
        );
        controller.challengeResults(id, addrs(m2));

        vm.warp(START + JUDGE + 1);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.DeadlinePassed.selector, START + JUDGE, START + JUDGE + 1
            )
        );
        controller.challengeResults(id, addrs(m1, m2));

        vm.warp(START + JUDGE);
        challenge(id);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector,
                id,
                DealState.ResultsChallenged,
                DealAction.ChallengeResults
            )
        );
        controller.challengeResults(id, addrs(m1, m2));
    }

    function test_challengeResults_withoutFeeAllowanceReverts() public {
        bytes32 id = createDefault();
        submit(id);
        vm.prank(jc);
        token.approve(address(controller), 0);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(controller), 0, FEE
            )
        );
        controller.challengeResults(id, addrs(m1, m2));
    }

    function test_mediate_accept() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        submit(id);
        address mediator = challenge(id);
        vm.warp(START + MEDIATE);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.MediationAccepted, mediator, PAYMENT - PRICE, PRICE + RESULTS, FEE);
        vm.prank(mediator);
        controller.mediate(id, true);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc0 - jc1, PRICE + FEE, "job creator pays the price and the fee");
        assertEq(rp1 - rp0, PRICE, "provider is paid");
        assertEq(token.balanceOf(mediator), FEE, "mediator gets the fee");
        assertEq(c1, 0, "escrow empty");
        LilypadController.DealView memory d = controller.getDeal(id);
        assertTrue(d.outcome == Outcome.MediationAccepted, "outcome");
        assertEq(d.mediator, mediator, "mediator kept");
    }

    function test_mediate_rejectFeeBelowResultsCollateral() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        submit(id);
        address mediator = challenge(id);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.MediationRejected, mediator, PAYMENT + RESULTS, 0, FEE);
        vm.prank(mediator);
        controller.mediate(id, false);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        // The provider loses its results collateral: FEE of it to the mediator, the rest to the job creator.
        assertEq(rp0 - rp1, RESULTS, "provider lost the results collateral");
        assertEq(jc1 - jc0, RESULTS - FEE, "job creator gains the rest and pays no fee");
        assertEq(token.balanceOf(mediator), FEE, "mediator gets exactly the fee");
        assertEq(c1, 0, "escrow empty");
    }

    function test_mediate_rejectFeeAboveResultsCollateral() public {
        uint128 fee = 20 ether; // > results collateral 16 ether
        LilypadController.NetworkParams memory p = defaultParams();
        p.mediationFee = fee;
        vm.prank(owner);
        controller.setParams(p);
        (uint256 jc0, uint256 rp0,) = balances();
        JobOffer memory j = jobOffer();
        j.maxMediationFee = fee;
        bytes32 id = create(j, resourceOffer());
        submit(id);
        address mediator = challenge(id);
        vm.prank(mediator);
        controller.mediate(id, false);
        (uint256 jc1, uint256 rp1,) = balances();
        assertEq(rp0 - rp1, RESULTS, "provider lost the results collateral");
        assertEq(jc0 - jc1, fee - RESULTS, "job creator pays only the shortfall");
        assertEq(token.balanceOf(mediator), fee, "mediator gets exactly the fee");
    }

    function test_mediate_reverts() public {
        bytes32 id = createDefault();
        submit(id);
        vm.prank(m1);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.NotAllowed.selector, id, DealState.ResultsSubmitted, DealAction.Mediate
            )
        );
        controller.mediate(id, true);

        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        vm.prank(m1);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MediatorNotDrawn.selector, id));
        controller.mediate(id, true);
        address mediator = draw(id);
        address notChosen = mediator == m1 ? m2 : m1;
        vm.prank(notChosen);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.WrongSender.selector, DealRole.ChosenMediator, mediator, notChosen
            )
        );
        controller.mediate(id, true);
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.WrongSender.selector, DealRole.ChosenMediator, mediator, jc
            )
        );
        controller.mediate(id, false);

        vm.warp(START + MEDIATE + 1);
        vm.prank(mediator);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.DeadlinePassed.selector, START + MEDIATE, START + MEDIATE + 1
            )
        );
        controller.mediate(id, true);

        // The other mediator's round is left: no timeout yet.
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MediatorsLeft.selector, 1));
        controller.claimTimeout(id);
        controller.redrawMediator(id, addrs(m1, m2));
        vm.warp(block.timestamp + MEDIATE + 1);
        controller.claimTimeout(id);
        vm.prank(mediator);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.AlreadyFinished.selector, id, Outcome.NoMediationInTime)
        );
        controller.mediate(id, true);
    }

    // ------------------------------------------------------------------ claimTimeout

    function test_claimTimeout_noResultsSlashesTheProvider() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        vm.warp(START + 600);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.TooEarly.selector, START + 600, START + 600));
        controller.claimTimeout(id);
        vm.warp(START + 601);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.NoResultsInTime, other, PAYMENT + TIMEOUT, 0, 0);
        vm.prank(other); // anyone
        controller.claimTimeout(id);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc1 - jc0, TIMEOUT, "job creator refunded and compensated");
        assertEq(rp0 - rp1, TIMEOUT, "provider slashed");
        assertEq(c1, 0, "escrow empty");
        assertTrue(controller.getDeal(id).outcome == Outcome.NoResultsInTime, "outcome");
    }

    function test_claimTimeout_noJudgementPaysTheProvider() public {
        (uint256 jc0, uint256 rp0,) = balances();
        bytes32 id = createDefault();
        submit(id);
        vm.warp(START + JUDGE);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TooEarly.selector, START + JUDGE, START + JUDGE)
        );
        controller.claimTimeout(id);
        vm.warp(START + JUDGE + 1);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.NoJudgementInTime, rp, PAYMENT - PRICE, PRICE + RESULTS, 0);
        vm.prank(rp);
        controller.claimTimeout(id);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc0 - jc1, PRICE, "job creator paid the price");
        assertEq(rp1 - rp0, PRICE, "provider paid");
        assertEq(c1, 0, "escrow empty");
    }

    function test_claimTimeout_noMediationRefundsEveryone() public {
        (uint256 jc0, uint256 rp0,) = balances();
        JobOffer memory j = jobOffer();
        j.mediators = addrs(m1); // one mediator: its round is the last
        bytes32 id = create(j, resourceOffer());
        submit(id);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1));
        vm.roll(block.number + 1);
        controller.drawMediator(id, addrs(m1));
        address mediator = controller.getDeal(id).mediator;
        assertEq(mediator, m1, "the only mediator");
        vm.warp(START + MEDIATE);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TooEarly.selector, START + MEDIATE, START + MEDIATE)
        );
        controller.claimTimeout(id);
        vm.warp(START + MEDIATE + 1);
        vm.expectEmit(address(controller));
        emit DealFinished(id, Outcome.NoMediationInTime, jc, PAYMENT + FEE, RESULTS, 0);
        vm.prank(jc);
        controller.claimTimeout(id);
        (uint256 jc1, uint256 rp1, uint256 c1) = balances();
        assertEq(jc1, jc0, "job creator whole");
        assertEq(rp1, rp0, "provider whole");
        assertEq(token.balanceOf(mediator), 0, "mediator unpaid");
        assertEq(c1, 0, "escrow empty");
        assertEq(controller.getDeal(id).mediator, mediator, "mediator still shown");
    }

    function test_claimTimeout_reverts() public {
        bytes32 unknown = keccak256("nope");
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DealNotFound.selector, unknown));
        controller.claimTimeout(unknown);
        bytes32 id = createDefault();
        vm.warp(START + 601);
        controller.claimTimeout(id);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.AlreadyFinished.selector, id, Outcome.NoResultsInTime)
        );
        controller.claimTimeout(id);
    }

    function test_deadlinesSaturate() public {
        JobOffer memory j = jobOffer();
        j.timeoutSecs = type(uint64).max;
        bytes32 id = create(j, resourceOffer());
        assertEq(controller.getDeal(id).deadline, type(uint64).max, "saturated");
        vm.warp(uint256(type(uint64).max));
        submit(id); // still in time at the last representable second
    }

    // ------------------------------------------------------------------ params and admin

    function test_setParams_onlyOwnerAndCapturedPerDeal() public {
        LilypadController.NetworkParams memory p = LilypadController.NetworkParams({
            resultsCollateralMultiple: 3,
            judgeWindowSecs: 100,
            mediateWindowSecs: 200,
            mediationFee: 7,
            minJobTimeoutSecs: 300
        });
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, other));
        controller.setParams(p);

        bytes32 before = createDefault();
        vm.expectEmit(address(controller));
        emit ParamsSet(p);
        vm.prank(owner);
        controller.setParams(p);
        (uint32 mult, uint32 judge, uint32 mediate_, uint128 fee, uint64 floor) = controller.params();
        assertEq(mult, 3, "multiple");
        assertEq(judge, 100, "judge");
        assertEq(mediate_, 200, "mediate");
        assertEq(fee, 7, "fee");
        assertEq(floor, 300, "floor");

        LilypadController.DealView memory d = controller.getDeal(before);
        assertEq(d.resultsCollateral, RESULTS, "old deal keeps its multiple");
        assertEq(d.mediationFee, FEE, "old deal keeps its fee");
        assertEq(d.judgeWindowSecs, JUDGE, "old deal keeps its window");

        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.nonce = 2;
        r.nonce = 2;
        bytes32 later = create(j, r);
        d = controller.getDeal(later);
        assertEq(d.resultsCollateral, 3 * PRICE, "new multiple");
        assertEq(d.mediationFee, 7, "new fee");
        assertEq(d.mediateWindowSecs, 200, "new window");
        assertEq(d.judgeWindowSecs, 100, "new judge window");
    }

    function test_setParams_windowsMustBePositive() public {
        LilypadController.NetworkParams memory p = defaultParams();
        p.judgeWindowSecs = 0;
        vm.prank(owner);
        vm.expectRevert(err(LilypadController.InvalidParams.selector));
        controller.setParams(p);
        p = defaultParams();
        p.mediateWindowSecs = 0;
        vm.prank(owner);
        vm.expectRevert(err(LilypadController.InvalidParams.selector));
        controller.setParams(p);
        p = defaultParams();
        p.minJobTimeoutSecs = 0;
        vm.prank(owner);
        vm.expectRevert(err(LilypadController.InvalidParams.selector));
        controller.setParams(p);
    }

    function test_ownershipIsTwoStep() public {
        vm.prank(owner);
        controller.transferOwnership(other);
        assertEq(controller.owner(), owner, "not yet");
        vm.prank(other);
        controller.acceptOwnership();
        assertEq(controller.owner(), other, "moved");
    }

    function test_views() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("Lilypad"),
                keccak256("1"),
                block.chainid,
                address(controller)
            )
        );
        assertEq(controller.domainSeparator(), expected, "domain separator");
        assertEq(
            controller.dealIdOf(bytes32(uint256(1)), bytes32(uint256(2))),
            keccak256(abi.encode(uint256(1), uint256(2))),
            "deal id"
        );
        assertEq(address(controller.token()), address(token), "token");
        assertEq(address(controller.modules()), address(registry), "modules");
        LilypadSettlement.Payouts memory p = LilypadSettlement.table(Outcome.Accepted, 30, 100, 7, 60, 10);
        assertEq(p.toJobCreator, 70, "table jc");
        assertEq(p.toProvider, 97, "table rp");
        assertEq(p.toMediator, 0, "table mediator");
        LilypadController.DealView memory none = controller.getDeal(bytes32(0));
        assertTrue(none.state == DealState.None, "unknown deal");
        assertEq(controller.escrowOf(bytes32(0)), 0, "no escrow");
    }
}
