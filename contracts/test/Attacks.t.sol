// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";
import {DrawMath} from "./utils/DrawMath.sol";

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {LilypadController} from "../src/LilypadController.sol";
import {DealState, JobOffer, Outcome, ResourceOffer} from "../src/LilypadTypes.sol";

/// @notice A job creator's contract wallet (ERC-1271) that grinds the mediator draw: it challenges
/// only when what it can compute inside the challenge transaction says its colluding mediator
/// will be drawn. Against the old draw (seed = the previous block's hash, known in the block) this
/// worked every time.
contract GrindingCreator {
    LilypadController public immutable controller;
    address public immutable colluder;
    mapping(bytes32 digest => bool) public signed;

    /// What the last attempt saw inside its own transaction.
    address public predictedLegacy; // the old draw's formula on the previous block's hash
    address public predicted; // the new formula on the newest hash it can read: the previous block's
    address public predictedFromOwnBlock; // blockhash(block.number) reads 0 inside the block
    address public pendingInBlock; // controller.pendingMediator right after challenging
    bool public drawInBlockFailed; // drawMediator right after challenging reverted

    constructor(LilypadController controller_, address colluder_) {
        controller = controller_;
        colluder = colluder_;
        IERC20(address(controller_.token())).approve(address(controller_), type(uint256).max);
    }

    function sign(bytes32 digest) external {
        signed[digest] = true;
    }

    function isValidSignature(bytes32 digest, bytes calldata) external view returns (bytes4) {
        return signed[digest] ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }

    /// Challenges `dealId` only if the old draw's formula, computed now, gives `colluder` (the
    /// attack that worked); also records what the new formula gives on the hashes it can read.
    /// Returns whether it challenged.
    function challengeIfFavourable(bytes32 dealId, address[] calldata mediators) external returns (bool) {
        predictedLegacy =
            mediators[uint256(keccak256(abi.encode(blockhash(block.number - 1), dealId))) % mediators.length];
        (predicted,) = DrawMath.choose(blockhash(block.number - 1), dealId, mediators, 0);
        (predictedFromOwnBlock,) = DrawMath.choose(blockhash(block.number), dealId, mediators, 0);
        if (predictedLegacy != colluder) return false;
        controller.challengeResults(dealId, mediators);
        pendingInBlock = controller.pendingMediator(dealId, mediators);
        try controller.drawMediator(dealId, mediators) {
            drawInBlockFailed = false;
        } catch (bytes memory reason) {
            drawInBlockFailed = bytes4(reason) == LilypadController.DrawNotReady.selector;
        }
        return true;
    }
}

/// @notice The attacks of issue 11 against the fixed contracts: (a) robbing a provider with a
/// job timeout too short to deliver in, (b) grinding the mediator draw, (c) changing the network
/// parameters under signed offers.
contract AttacksTest is Fixture {
    bytes internal constant CID = hex"01701220aabbccdd";

    // ------------------------------------------------------------------ (a) the timeout robbery

    /// A job creator posts a 1-second job against a standing resource offer: no provider can
    /// submit in time, and claimTimeout would hand it the provider's timeout collateral. The
    /// provider's signed minimum refuses the deal, so there is nothing to claim.
    function test_shortTimeoutRobbery_refusedByTheProvidersMinimum() public {
        ResourceOffer memory r = resourceOffer();
        r.minTimeoutSecs = 600;
        JobOffer memory j = jobOffer();
        j.timeoutSecs = 1;
        bytes32 id = dealIdOf(j, r);
        (uint256 jc0, uint256 rp0,) = balances();
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TimeoutTooShort.selector, 1, 600, MIN_TIMEOUT)
        );
        controller.createDeal(j, js, r, rs);

        // The robbery's second step has no deal to act on.
        vm.warp(START + 2);
        vm.prank(jc);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.DealNotFound.selector, id));
        controller.claimTimeout(id);
        (uint256 jc1, uint256 rp1,) = balances();
        assertEq(rp1, rp0, "the provider keeps its collateral");
        assertEq(jc1, jc0, "the job creator gains nothing");

        // Just the provider's minimum is a deal, and the provider can deliver within it.
        j.timeoutSecs = 600;
        id = create(j, r);
        vm.warp(START + 600);
        submit(id);
        assertTrue(controller.getDeal(id).state == DealState.ResultsSubmitted, "delivered in time");
    }

    /// A provider that signed no minimum (0) is still covered by the network's floor.
    function test_shortTimeoutRobbery_refusedByTheNetworkFloor() public {
        ResourceOffer memory r = resourceOffer();
        r.minTimeoutSecs = 0;
        JobOffer memory j = jobOffer();
        j.timeoutSecs = 1;
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.TimeoutTooShort.selector, 1, 0, MIN_TIMEOUT));
        controller.createDeal(j, js, r, rs);

        j.timeoutSecs = MIN_TIMEOUT - 1;
        js = signJob(j, JC_KEY);
        vm.prank(solver);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadController.TimeoutTooShort.selector, MIN_TIMEOUT - 1, 0, MIN_TIMEOUT
            )
        );
        controller.createDeal(j, js, r, rs);

        j.timeoutSecs = MIN_TIMEOUT;
        bytes32 id = create(j, r);
        assertEq(controller.getDeal(id).deadline, START + MIN_TIMEOUT, "the floor itself is accepted");
    }

    // ------------------------------------------------------------------ (b) grinding the draw

    /// The old draw (keccak256(abi.encode(previous blockhash, dealId)) % n), as the attacker
    /// could compute it inside its challenge transaction.
    function legacyDraw(bytes32 previousHash, bytes32 id) internal view returns (address) {
        return uint256(keccak256(abi.encode(previousHash, id))) % 2 == 0 ? m1 : m2;
    }

    /// Over 64 deals in 64 blocks the contract-wallet job creator challenges exactly when its
    /// in-transaction prediction names its colluder (m1). Under the old draw each of those
    /// challenges drew the colluder; under the fixed draw the mediator comes from the challenge
    /// block's own hash, unknown inside it, and the colluder is drawn no more often than chance.
    function test_grindingTheDraw_cannotPredictTheMediator() public {
        GrindingCreator attacker = new GrindingCreator(controller, m1);
        vm.prank(owner);
        token.mint(address(attacker), 1000 ether);
        for (uint256 i; i < 64; ++i) {
            attempt(attacker, i);
        }
        // The attacker acted on about half of the deals, and each of those would have drawn its
        // colluder under the old rule: the attack worked before the fix.
        assertTrue(tally.challenges >= 16, "the attacker found favourable-looking blocks");
        assertEq(tally.legacyWins, tally.challenges, "the old draw was fully predictable");
        // Now neither prediction it can make in its transaction beats a coin.
        assertTrue(tally.colluderDrawn < tally.challenges, "the colluder is not always drawn");
        assertLe(tally.colluderDrawn, (tally.challenges * 3) / 4, "no better than chance (a fair coin: half)");
        assertTrue(tally.colluderDrawn > 0, "the honest draw still picks it sometimes");
        assertLe(
            tally.previousRight, (tally.challenges * 3) / 4, "the new formula on the previous hash: no help"
        );
        assertLe(tally.ownBlockRight, (tally.challenges * 3) / 4, "reading its own block's hash (0): no help");
    }

    struct Tally {
        uint256 challenges;
        uint256 legacyWins;
        uint256 colluderDrawn;
        uint256 previousRight;
        uint256 ownBlockRight;
    }

    Tally internal tally;

    /// Deal `i`: created and submitted; in block b (whose predecessor's hash the attacker reads)
    /// the attacker challenges if its prediction says m1; the provider draws in block b + 1.
    function attempt(GrindingCreator attacker, uint256 i) internal {
        address[] memory set = addrs(m1, m2);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        j.creator = address(attacker);
        j.nonce = 1000 + i;
        r.nonce = 1000 + i;
        attacker.sign(controller.jobOfferHash(j));
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        bytes32 id = controller.createDeal(j, "", r, rs);
        submit(id);

        uint256 b = 10_000 + 10 * i;
        vm.roll(b);
        vm.setBlockhash(b - 1, keccak256(abi.encode("previous", i)));
        if (!attacker.challengeIfFavourable(id, set)) return;
        ++tally.challenges;
        if (legacyDraw(keccak256(abi.encode("previous", i)), id) == m1) ++tally.legacyWins;
        assertEq(attacker.pendingInBlock(), address(0), "no mediator is computable in the challenge block");
        assertTrue(attacker.drawInBlockFailed(), "drawing in the challenge block reverts DrawNotReady");
        assertEq(controller.getDeal(id).drawBlock, b, "seeded by the challenge block");

        // The challenge block's hash exists only once the block is sealed.
        bytes32 sealedHash = keccak256(abi.encode("challenge block", i));
        vm.roll(b + 1);
        vm.setBlockhash(b, sealedHash);
        vm.prank(rp);
        controller.drawMediator(id, set);
        address drawn = controller.getDeal(id).mediator;
        (address expected,) = DrawMath.choose(sealedHash, id, set, 0);
        assertEq(drawn, expected, "drawn from the challenge block's hash");
        if (drawn == m1) ++tally.colluderDrawn;
        if (drawn == attacker.predicted()) ++tally.previousRight;
        if (drawn == attacker.predictedFromOwnBlock()) ++tally.ownBlockRight;
    }

    /// Once drawn, the mediator stays: a job creator that dislikes it cannot re-roll the draw
    /// while the parties draw in time (within 256 blocks of the challenge).
    function test_grindingTheDraw_noRerollOnceDrawn() public {
        bytes32 id = createDefault();
        submit(id);
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        uint256 b = block.number;
        vm.roll(b + 1);
        vm.prank(rp);
        controller.drawMediator(id, addrs(m1, m2));
        address drawn = controller.getDeal(id).mediator;
        vm.roll(b + 1000); // long after the seed expired
        vm.prank(jc);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.MediatorAlreadyDrawn.selector, id, drawn));
        controller.drawMediator(id, addrs(m1, m2));
        // Nor can it move on before the drawn mediator's window is over.
        vm.prank(jc);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TooEarly.selector, START + MEDIATE, block.timestamp)
        );
        controller.redrawMediator(id, addrs(m1, m2));
        assertEq(controller.getDeal(id).mediator, drawn, "unchanged");
    }

    // ------------------------------------------------------------------ (c) parameters under signed offers

    function expectTerms(uint8 term, uint256 value, uint256 bound_) internal {
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        vm.expectRevert(
            abi.encodeWithSelector(LilypadController.TermsNotAccepted.selector, term, value, bound_)
        );
        controller.createDeal(j, js, r, rs);
    }

    function setParams(LilypadController.NetworkParams memory p) internal {
        vm.prank(owner);
        controller.setParams(p);
    }

    /// The owner changes each parameter beyond what the signed offers accept: the same signed
    /// offers no longer make a deal (they do again once the parameters are back within bounds).
    function test_paramsChangedUnderSignedOffers_refused() public {
        // The offers accept: multiple <= 10, fee <= 1 ether, 60 s <= judge <= 1 day, mediate >= 60 s,
        // timeout 600 s.
        LilypadController.NetworkParams memory p = defaultParams();
        p.resultsCollateralMultiple = 11;
        setParams(p);
        expectTerms(0, 11, 10);

        p = defaultParams();
        p.mediationFee = 1 ether + 1;
        setParams(p);
        expectTerms(1, 1 ether + 1, 1 ether);

        p = defaultParams();
        p.judgeWindowSecs = 1 days + 1;
        setParams(p);
        expectTerms(2, 1 days + 1, 1 days);

        p = defaultParams();
        p.judgeWindowSecs = 59;
        setParams(p);
        expectTerms(3, 59, 60);

        p = defaultParams();
        p.mediateWindowSecs = 59;
        setParams(p);
        expectTerms(4, 59, 60);

        p = defaultParams();
        p.minJobTimeoutSecs = 601;
        setParams(p);
        JobOffer memory j = jobOffer();
        ResourceOffer memory r = resourceOffer();
        bytes memory js = signJob(j, JC_KEY);
        bytes memory rs = signResource(r, RP_KEY);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(LilypadController.TimeoutTooShort.selector, 600, 60, 601));
        controller.createDeal(j, js, r, rs);

        // At the bounds themselves the same signatures make the deal.
        p = LilypadController.NetworkParams({
            resultsCollateralMultiple: 10,
            judgeWindowSecs: 60,
            mediateWindowSecs: 60,
            mediationFee: 1 ether,
            minJobTimeoutSecs: 600
        });
        setParams(p);
        vm.prank(solver);
        bytes32 id = controller.createDeal(j, js, r, rs);
        LilypadController.DealView memory d = controller.getDeal(id);
        assertEq(d.resultsCollateral, 10 * 8 ether, "multiple 10");
        assertEq(d.mediationFee, 1 ether, "fee 1 ether");
    }

    /// A deal keeps the parameters it was created under, to its settlement: raising the fee
    /// afterwards does not raise what its challenge costs or what its mediator gets.
    function test_paramsChangedAfterCreation_doNotReachTheDeal() public {
        bytes32 id = createDefault();
        LilypadController.NetworkParams memory p = defaultParams();
        p.mediationFee = 1 ether;
        p.resultsCollateralMultiple = 10;
        p.judgeWindowSecs = 60;
        p.mediateWindowSecs = 60;
        setParams(p);
        (uint256 jc0, uint256 rp0,) = balances();
        submit(id);
        (, uint256 rp1,) = balances();
        assertEq(rp0 - rp1, 2 * 8 ether - 5 ether, "results collateral at the deal's multiple (2)");
        assertEq(controller.getDeal(id).deadline, START + JUDGE, "the deal's judge window");
        vm.prank(jc);
        controller.challengeResults(id, addrs(m1, m2));
        (uint256 jc1,,) = balances();
        assertEq(jc0 - jc1, FEE, "the deal's fee");
        assertEq(controller.getDeal(id).deadline, START + MEDIATE, "the deal's mediate window");
        vm.roll(block.number + 1);
        controller.drawMediator(id, addrs(m1, m2));
        address mediator = controller.getDeal(id).mediator;
        vm.prank(mediator);
        controller.mediate(id, true);
        assertEq(token.balanceOf(mediator), FEE, "the mediator gets the deal's fee");
        assertTrue(controller.getDeal(id).outcome == Outcome.MediationAccepted, "settled");
    }
}
