// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {LilypadModuleRegistry} from "./LilypadModuleRegistry.sol";
import {LilypadSettlement} from "./LilypadSettlement.sol";
import {
    DealAction,
    DealRole,
    DealState,
    JobOffer,
    LilypadHashing,
    ModulePrice,
    Outcome,
    ResourceOffer
} from "./LilypadTypes.sol";

/// @notice Deals between job creators and resource providers: created by the
/// solver from two signed offers, escrowed per deal, settled by the table of
/// LilypadSettlement. See docs/contracts.md for the lifecycle.
///
/// Time: acting (submit, accept, challenge, mediate) is allowed up to and
/// including the current deadline second; `claimTimeout` only strictly after
/// it. Deadlines saturate at 2^64-1.
///
/// Amounts: offers carry uint256 amounts; a deal stores them in 128 bits, so a
/// price, collateral or fee of 2^128 base units or more is refused at creation.
contract LilypadController is EIP712, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Network parameters captured into every deal at creation.
    struct NetworkParams {
        /// Results collateral = this many times the price.
        uint32 resultsCollateralMultiple;
        /// Seconds the job creator has, after results, to accept or challenge (> 0).
        uint32 judgeWindowSecs;
        /// Seconds the chosen mediator has, after a challenge, to give a verdict (> 0).
        uint32 mediateWindowSecs;
        /// Paid by the job creator with a challenge; goes to the mediator.
        uint128 mediationFee;
    }

    /// @notice An EIP-2612 permit for the controller; `deadline == 0` means none.
    struct Permit {
        uint256 value;
        uint256 deadline;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @dev One deal in six slots (five at creation, the results digest with the results).
    struct Deal {
        // slot 0
        address jobCreator;
        uint64 deadline; // last second to act in the current state
        DealState state;
        Outcome outcome; // meaningful once Finished
        // slot 1
        address provider;
        uint32 judgeWindowSecs;
        uint32 mediateWindowSecs;
        uint32 resultsCollateralMultiple;
        // slot 2
        uint128 price;
        uint128 paymentCollateral;
        // slot 3
        uint128 providerCollateral; // timeout collateral until results are in, then the results collateral
        uint128 mediationFee;
        // slot 4: until a challenge, keccak256(abi.encodePacked(mutually trusted mediators, ascending));
        // from the challenge on, the chosen mediator's address.
        bytes32 mediation;
        // slot 5
        bytes32 results; // keccak256 of the binary results CID
    }

    /// @notice A deal as the getters return it.
    struct DealView {
        DealState state;
        Outcome outcome;
        address jobCreator;
        address provider;
        address mediator; // zero until a challenge
        bytes32 mediatorsHash; // zero from a challenge on
        uint64 deadline;
        uint256 price;
        uint256 paymentCollateral;
        uint256 providerCollateral;
        uint256 resultsCollateral;
        uint256 mediationFee;
        uint32 judgeWindowSecs;
        uint32 mediateWindowSecs;
        bytes32 results;
    }

    /// @notice The deal's terms as emitted at creation.
    struct DealTerms {
        bytes32 jobOfferHash;
        bytes32 resourceOfferHash;
        bytes32 moduleId;
        bytes32 inputsHash;
        uint256 price;
        uint256 paymentCollateral;
        uint256 timeoutCollateral;
        uint256 resultsCollateral;
        uint256 mediationFee;
        uint64 deadline;
        uint32 judgeWindowSecs;
        uint32 mediateWindowSecs;
    }

    /// @notice The token deals are paid in.
    IERC20 public immutable token;
    /// @notice The network's module allow and block lists.
    LilypadModuleRegistry public immutable modules;

    /// @notice Current network parameters (new deals capture them).
    NetworkParams public params;

    mapping(bytes32 dealId => Deal) private _deals;
    /// @dev Permit2-style unordered nonces: bit (nonce & 255) of word (nonce >> 8).
    mapping(address signer => mapping(uint256 word => uint256 bits)) public nonceBitmap;

    /// @notice A deal was created; `mediators` is the mutually trusted set, ascending.
    event DealCreated(
        bytes32 indexed dealId,
        address indexed jobCreator,
        address indexed provider,
        address solver,
        DealTerms terms,
        address[] mediators
    );
    /// @notice The provider submitted results (`resultsCid` in binary form, `results` its keccak256).
    event ResultsSubmitted(
        bytes32 indexed dealId, bytes32 results, bytes resultsCid, uint256 resultsCollateral, uint64 deadline
    );
    /// @notice The job creator challenged; `mediator` was drawn from the deal's mediators.
    event ResultsChallenged(
        bytes32 indexed dealId, address indexed mediator, uint256 mediationFee, uint64 deadline
    );
    /// @notice The deal ended with `outcome`; the amounts are what this transaction paid out.
    event DealFinished(
        bytes32 indexed dealId,
        Outcome indexed outcome,
        address by,
        uint256 toJobCreator,
        uint256 toProvider,
        uint256 toMediator
    );
    /// @notice The owner changed the network parameters.
    event ParamsSet(NetworkParams params);
    /// @notice `signer` invalidated the nonces of `mask` in word `word`.
    event NoncesInvalidated(address indexed signer, uint256 word, uint256 mask);

    // createDeal
    /// @notice The caller is not the solver both offers name.
    error NotSolver(address jobSolver, address resourceSolver, address caller);
    /// @notice An offer's expiry has passed (valid while now < expiry).
    error OfferExpired(address signer, uint64 expiry, uint256 now);
    /// @notice The signer already used (or invalidated) this nonce.
    error NonceUsed(address signer, uint256 nonce);
    /// @notice The signature is not the signer's over the offer.
    error InvalidSignature(address signer);
    /// @notice The job offer targets another provider.
    error TargetMismatch(address target, address provider);
    /// @notice The job offer gives the provider no time.
    error ZeroTimeout();
    /// @notice The resource offer does not accept the module.
    error ModuleNotOffered(bytes32 moduleId);
    /// @notice The network does not allow the module.
    error ModuleNotAllowed(bytes32 moduleId);
    /// @notice The provider's price is over the job's max price.
    error PriceTooHigh(uint256 price, uint256 maxPrice);
    /// @notice The job creator's payment collateral does not cover the price.
    error PaymentBelowPrice(uint256 paymentCollateral, uint256 price);
    /// @notice An amount does not fit the deal's 128-bit fields (`what`: 0 price, 1 payment, 2 timeout, 3 results).
    error AmountTooLarge(uint8 what, uint256 amount);
    /// @notice A list that must be strictly ascending is not (`what`: 0 job mediators, 1 resource mediators,
    /// 2 modules, 3 module prices).
    error NotStrictlyAscending(uint8 what, uint256 index);
    /// @notice A mediator list contains the zero address.
    error ZeroMediator();
    /// @notice No mediator is trusted by both offers.
    error NoCommonMediator();
    /// @notice A deal with this id exists: the same two offers were submitted again.
    error DealExists(bytes32 dealId);

    // deal transitions, checked in this order (as lilypad_core::state::transition)
    /// @notice No deal has this id.
    error DealNotFound(bytes32 dealId);
    /// @notice The deal is over.
    error AlreadyFinished(bytes32 dealId, Outcome outcome);
    /// @notice The action has no meaning in the deal's state.
    error NotAllowed(bytes32 dealId, DealState state, DealAction action);
    /// @notice The caller does not hold the role the action needs.
    error WrongSender(DealRole role, address expected, address got);
    /// @notice The window to act has closed; claim the timeout instead.
    error DeadlinePassed(uint64 deadline, uint256 now);
    /// @notice The deadline has not passed yet; a timeout can be claimed from deadline + 1.
    error TooEarly(uint64 deadline, uint256 now);
    /// @notice The mediators given to challengeResults are not the deal's (see DealCreated).
    error MediatorsMismatch(bytes32 expected, bytes32 got);
    /// @notice A results CID must not be empty.
    error EmptyResults();

    // admin
    /// @notice Windows must be positive.
    error InvalidParams();

    uint8 private constant _JOB_MEDIATORS = 0;
    uint8 private constant _RESOURCE_MEDIATORS = 1;
    uint8 private constant _MODULES = 2;
    uint8 private constant _MODULE_PRICES = 3;

    constructor(IERC20 token_, LilypadModuleRegistry modules_, address owner_, NetworkParams memory params_)
        EIP712("Lilypad", "1")
        Ownable(owner_)
    {
        token = token_;
        modules = modules_;
        _setParams(params_);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Sets the parameters new deals capture; existing deals keep theirs.
    function setParams(NetworkParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    function _setParams(NetworkParams memory p) private {
        if (p.judgeWindowSecs == 0 || p.mediateWindowSecs == 0) revert InvalidParams();
        params = p;
        emit ParamsSet(p);
    }

    // ------------------------------------------------------------------ nonces

    /// @notice Whether `signer` used or invalidated `nonce`.
    function isNonceUsed(address signer, uint256 nonce) external view returns (bool) {
        // forge-lint: disable-next-line(incorrect-shift)
        return nonceBitmap[signer][nonce >> 8] & (1 << (nonce & 255)) != 0;
    }

    /// @notice Invalidates the caller's nonces `word * 256 + i` for every bit i of `mask`,
    /// which voids any signed offer of the caller that uses them.
    function invalidateNonces(uint256 word, uint256 mask) external {
        nonceBitmap[msg.sender][word] |= mask;
        emit NoncesInvalidated(msg.sender, word, mask);
    }

    function _useNonce(address signer, uint256 nonce) private {
        // forge-lint: disable-next-line(incorrect-shift)
        uint256 bit = 1 << (nonce & 255);
        uint256 bits = nonceBitmap[signer][nonce >> 8];
        if (bits & bit != 0) revert NonceUsed(signer, nonce);
        nonceBitmap[signer][nonce >> 8] = bits | bit;
    }

    // ------------------------------------------------------------------ offers

    /// @notice The EIP-712 domain separator (name "Lilypad", version "1", this chain, this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The signing digest (id) of a job offer.
    function jobOfferHash(JobOffer calldata offer) public view returns (bytes32) {
        return _hashTypedDataV4(LilypadHashing.hashJobOffer(offer));
    }

    /// @notice The signing digest (id) of a resource offer.
    function resourceOfferHash(ResourceOffer calldata offer) public view returns (bytes32) {
        return _hashTypedDataV4(LilypadHashing.hashResourceOffer(offer));
    }

    /// @notice The deal id of two offer digests: keccak256(abi.encode(jobOfferHash, resourceOfferHash)).
    function dealIdOf(bytes32 jobHash, bytes32 resourceHash) public pure returns (bytes32) {
        return keccak256(abi.encode(jobHash, resourceHash));
    }

    // ------------------------------------------------------------------ deals

    /// @notice Creates a deal from two signed offers (only the solver both name). Pulls the job
    /// creator's payment collateral and the provider's timeout collateral, which both must have
    /// approved to this contract beforehand (or see createDealWithPermits).
    function createDeal(
        JobOffer calldata job,
        bytes calldata jobSig,
        ResourceOffer calldata resource,
        bytes calldata resourceSig
    ) external nonReentrant returns (bytes32 dealId) {
        return _createDeal(job, jobSig, resource, resourceSig);
    }

    /// @notice createDeal with EIP-2612 permits from the job creator and the provider (a permit
    /// with deadline 0 is skipped). A permit that fails (e.g. one already used by a front-runner)
    /// is ignored: the transfer then needs an allowance that is already there.
    function createDealWithPermits(
        JobOffer calldata job,
        bytes calldata jobSig,
        ResourceOffer calldata resource,
        bytes calldata resourceSig,
        Permit calldata jobPermit,
        Permit calldata resourcePermit
    ) external nonReentrant returns (bytes32 dealId) {
        _permit(job.creator, jobPermit);
        _permit(resource.provider, resourcePermit);
        return _createDeal(job, jobSig, resource, resourceSig);
    }

    function _permit(address owner_, Permit calldata p) private {
        if (p.deadline == 0) return;
        try IERC20Permit(address(token)).permit(owner_, address(this), p.value, p.deadline, p.v, p.r, p.s) {}
            catch {}
    }

    function _createDeal(
        JobOffer calldata job,
        bytes calldata jobSig,
        ResourceOffer calldata resource,
        bytes calldata resourceSig
    ) private returns (bytes32 dealId) {
        if (job.solver != msg.sender || resource.solver != msg.sender) {
            revert NotSolver(job.solver, resource.solver, msg.sender);
        }
        if (block.timestamp >= job.expiry) revert OfferExpired(job.creator, job.expiry, block.timestamp);
        if (block.timestamp >= resource.expiry) {
            revert OfferExpired(resource.provider, resource.expiry, block.timestamp);
        }
        if (job.target != address(0) && job.target != resource.provider) {
            revert TargetMismatch(job.target, resource.provider);
        }
        if (job.timeoutSecs == 0) revert ZeroTimeout();

        bytes32 moduleId = job.moduleId;
        if (!resource.anyModule && !_contains(resource.modules, moduleId)) revert ModuleNotOffered(moduleId);
        if (!modules.isAllowed(moduleId)) revert ModuleNotAllowed(moduleId);
        uint256 price = _priceFor(resource, moduleId);
        if (price > job.maxPrice) revert PriceTooHigh(price, job.maxPrice);
        if (job.paymentCollateral < price) revert PaymentBelowPrice(job.paymentCollateral, price);
        (address[] memory mediators, bytes32 mediatorsHash) =
            _commonMediators(job.mediators, resource.mediators);

        DealTerms memory terms;
        terms.jobOfferHash = jobOfferHash(job);
        terms.resourceOfferHash = resourceOfferHash(resource);
        dealId = dealIdOf(terms.jobOfferHash, terms.resourceOfferHash);
        Deal storage d = _deals[dealId];
        if (d.state != DealState.None) revert DealExists(dealId);
        _useNonce(job.creator, job.nonce);
        _useNonce(resource.provider, resource.nonce);
        if (!SignatureChecker.isValidSignatureNowCalldata(job.creator, terms.jobOfferHash, jobSig)) {
            revert InvalidSignature(job.creator);
        }
        if (!SignatureChecker.isValidSignatureNowCalldata(
                resource.provider, terms.resourceOfferHash, resourceSig
            )) {
            revert InvalidSignature(resource.provider);
        }

        if (price > type(uint128).max) revert AmountTooLarge(0, price);
        NetworkParams memory p = params;
        terms.moduleId = moduleId;
        terms.inputsHash = job.inputsHash;
        terms.price = price;
        terms.paymentCollateral = job.paymentCollateral;
        terms.timeoutCollateral = resource.timeoutCollateral;
        terms.resultsCollateral = price * p.resultsCollateralMultiple; // price < 2^128 checked below
        terms.mediationFee = p.mediationFee;
        terms.deadline = _deadline(job.timeoutSecs);
        terms.judgeWindowSecs = p.judgeWindowSecs;
        terms.mediateWindowSecs = p.mediateWindowSecs;
        if (terms.paymentCollateral > type(uint128).max) revert AmountTooLarge(1, terms.paymentCollateral);
        if (terms.timeoutCollateral > type(uint128).max) revert AmountTooLarge(2, terms.timeoutCollateral);
        if (terms.resultsCollateral > type(uint128).max) revert AmountTooLarge(3, terms.resultsCollateral);

        d.jobCreator = job.creator;
        d.deadline = terms.deadline;
        d.state = DealState.Agreed;
        d.provider = resource.provider;
        d.judgeWindowSecs = p.judgeWindowSecs;
        d.mediateWindowSecs = p.mediateWindowSecs;
        d.resultsCollateralMultiple = p.resultsCollateralMultiple;
        // forge-lint: disable-start(unsafe-typecast): each amount was checked against 2^128 above
        d.price = uint128(price);
        d.paymentCollateral = uint128(terms.paymentCollateral);
        d.providerCollateral = uint128(terms.timeoutCollateral);
        // forge-lint: disable-end(unsafe-typecast)
        d.mediationFee = p.mediationFee;
        d.mediation = mediatorsHash;

        emit DealCreated(dealId, job.creator, resource.provider, msg.sender, terms, mediators);

        _pull(job.creator, terms.paymentCollateral);
        _pull(resource.provider, terms.timeoutCollateral);
    }

    /// @notice The provider submits results (the binary CID) up to the deadline, posting the
    /// results collateral; its timeout collateral comes back (only the difference moves).
    function submitResults(bytes32 dealId, bytes calldata resultsCid) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.Agreed, DealAction.SubmitResults);
        if (msg.sender != d.provider) revert WrongSender(DealRole.ResourceProvider, d.provider, msg.sender);
        _beforeDeadline(d.deadline);
        if (resultsCid.length == 0) revert EmptyResults();

        uint256 timeoutCollateral = d.providerCollateral;
        uint256 resultsCollateral = uint256(d.price) * d.resultsCollateralMultiple; // fits: checked at creation
        bytes32 results = keccak256(resultsCid);
        uint64 deadline = _deadline(d.judgeWindowSecs);
        d.state = DealState.ResultsSubmitted;
        d.deadline = deadline;
        // forge-lint: disable-next-line(unsafe-typecast): price x multiple < 2^128 was checked at creation
        d.providerCollateral = uint128(resultsCollateral);
        d.results = results;
        emit ResultsSubmitted(dealId, results, resultsCid, resultsCollateral, deadline);

        if (resultsCollateral > timeoutCollateral) _pull(msg.sender, resultsCollateral - timeoutCollateral);
        else _push(msg.sender, timeoutCollateral - resultsCollateral);
    }

    /// @notice The job creator accepts the results up to the deadline: the provider is paid.
    function acceptResults(bytes32 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.ResultsSubmitted, DealAction.AcceptResults);
        if (msg.sender != d.jobCreator) revert WrongSender(DealRole.JobCreator, d.jobCreator, msg.sender);
        _beforeDeadline(d.deadline);
        _settleAccepted(dealId, d);
    }

    /// @notice The job creator challenges the results up to the deadline, paying the mediation
    /// fee. `mediators` must be the deal's mutually trusted set as emitted in DealCreated; the
    /// mediator is drawn from it (see docs/contracts.md for what this randomness is worth).
    function challengeResults(bytes32 dealId, address[] calldata mediators) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.ResultsSubmitted, DealAction.ChallengeResults);
        if (msg.sender != d.jobCreator) revert WrongSender(DealRole.JobCreator, d.jobCreator, msg.sender);
        _beforeDeadline(d.deadline);
        bytes32 got = keccak256(abi.encodePacked(mediators));
        if (got != d.mediation) revert MediatorsMismatch(d.mediation, got);

        address mediator =
            mediators[chooseMediatorIndex(blockhash(block.number - 1), dealId, mediators.length)];
        uint64 deadline = _deadline(d.mediateWindowSecs);
        uint256 fee = d.mediationFee;
        d.state = DealState.ResultsChallenged;
        d.deadline = deadline;
        d.mediation = bytes32(uint256(uint160(mediator)));
        emit ResultsChallenged(dealId, mediator, fee, deadline);

        _pull(msg.sender, fee);
    }

    /// @notice The index of the mediator drawn for a challenge:
    /// uint256(keccak256(abi.encode(previousBlockhash, dealId))) mod count, over the ascending set.
    function chooseMediatorIndex(bytes32 previousBlockhash, bytes32 dealId, uint256 count)
        public
        pure
        returns (uint256)
    {
        return uint256(keccak256(abi.encode(previousBlockhash, dealId))) % count;
    }

    /// @notice The chosen mediator gives its verdict up to the deadline.
    function mediate(bytes32 dealId, bool accept) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.ResultsChallenged, DealAction.Mediate);
        address mediator = address(uint160(uint256(d.mediation)));
        if (msg.sender != mediator) revert WrongSender(DealRole.ChosenMediator, mediator, msg.sender);
        _beforeDeadline(d.deadline);
        if (accept) _settleMediationAccepted(dealId, d, mediator);
        else _settleMediationRejected(dealId, d, mediator);
    }

    /// @notice Anyone ends a deal strictly after its current deadline: no results -> the job
    /// creator is refunded and gets the timeout collateral; no judgement -> results count as
    /// accepted; no mediation -> everyone is refunded.
    function claimTimeout(bytes32 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        DealState state = d.state;
        if (state == DealState.None) revert DealNotFound(dealId);
        if (state == DealState.Finished) revert AlreadyFinished(dealId, d.outcome);
        uint64 deadline = d.deadline;
        if (block.timestamp <= deadline) revert TooEarly(deadline, block.timestamp);
        if (state == DealState.Agreed) _settleNoResultsInTime(dealId, d);
        else if (state == DealState.ResultsSubmitted) _settleNoJudgementInTime(dealId, d);
        else _settleNoMediationInTime(dealId, d);
    }

    // ------------------------------------------------------------------ settlement, one per outcome

    function _settleAccepted(bytes32 dealId, Deal storage d) private {
        _finish(
            dealId,
            d,
            Outcome.Accepted,
            LilypadSettlement.accepted(d.price, d.paymentCollateral, d.providerCollateral),
            address(0)
        );
    }

    function _settleNoJudgementInTime(bytes32 dealId, Deal storage d) private {
        _finish(
            dealId,
            d,
            Outcome.NoJudgementInTime,
            LilypadSettlement.noJudgementInTime(d.price, d.paymentCollateral, d.providerCollateral),
            address(0)
        );
    }

    function _settleNoResultsInTime(bytes32 dealId, Deal storage d) private {
        _finish(
            dealId,
            d,
            Outcome.NoResultsInTime,
            LilypadSettlement.noResultsInTime(d.paymentCollateral, d.providerCollateral),
            address(0)
        );
    }

    function _settleMediationAccepted(bytes32 dealId, Deal storage d, address mediator) private {
        _finish(
            dealId,
            d,
            Outcome.MediationAccepted,
            LilypadSettlement.mediationAccepted(
                d.price, d.paymentCollateral, d.providerCollateral, d.mediationFee
            ),
            mediator
        );
    }

    function _settleMediationRejected(bytes32 dealId, Deal storage d, address mediator) private {
        _finish(
            dealId,
            d,
            Outcome.MediationRejected,
            LilypadSettlement.mediationRejected(d.paymentCollateral, d.providerCollateral, d.mediationFee),
            mediator
        );
    }

    function _settleNoMediationInTime(bytes32 dealId, Deal storage d) private {
        _finish(
            dealId,
            d,
            Outcome.NoMediationInTime,
            LilypadSettlement.noMediationInTime(d.paymentCollateral, d.providerCollateral, d.mediationFee),
            address(0)
        );
    }

    /// @dev Effects, then the event, then the transfers.
    function _finish(
        bytes32 dealId,
        Deal storage d,
        Outcome outcome,
        LilypadSettlement.Payouts memory p,
        address mediator
    ) private {
        address jobCreator = d.jobCreator;
        address provider = d.provider;
        d.state = DealState.Finished;
        d.outcome = outcome;
        emit DealFinished(dealId, outcome, msg.sender, p.toJobCreator, p.toProvider, p.toMediator);
        _push(provider, p.toProvider);
        _push(jobCreator, p.toJobCreator);
        _push(mediator, p.toMediator);
    }

    // ------------------------------------------------------------------ views

    /// @notice A deal (state None: no such deal).
    function getDeal(bytes32 dealId) external view returns (DealView memory v) {
        Deal storage d = _deals[dealId];
        v.state = d.state;
        v.outcome = d.outcome;
        v.jobCreator = d.jobCreator;
        v.provider = d.provider;
        if (_challenged(d)) v.mediator = address(uint160(uint256(d.mediation)));
        else v.mediatorsHash = d.mediation;
        v.deadline = d.deadline;
        v.price = d.price;
        v.paymentCollateral = d.paymentCollateral;
        v.providerCollateral = d.providerCollateral;
        v.resultsCollateral = uint256(d.price) * d.resultsCollateralMultiple;
        v.mediationFee = d.mediationFee;
        v.judgeWindowSecs = d.judgeWindowSecs;
        v.mediateWindowSecs = d.mediateWindowSecs;
        v.results = d.results;
    }

    /// @notice What the contract holds for a deal now (zero once finished).
    function escrowOf(bytes32 dealId) external view returns (uint256) {
        Deal storage d = _deals[dealId];
        DealState s = d.state;
        if (s == DealState.None || s == DealState.Finished) return 0;
        uint256 held = uint256(d.paymentCollateral) + d.providerCollateral;
        if (s == DealState.ResultsChallenged) held += d.mediationFee;
        return held;
    }

    /// @notice The whole-deal settlement table (see LilypadSettlement.table), for cross-checks.
    function settlementTable(
        Outcome outcome,
        uint256 price,
        uint256 payment,
        uint256 timeout,
        uint256 results,
        uint256 fee
    ) external pure returns (LilypadSettlement.Payouts memory) {
        return LilypadSettlement.table(outcome, price, payment, timeout, results, fee);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Whether the deal went through a challenge (then `mediation` holds the mediator).
    function _challenged(Deal storage d) private view returns (bool) {
        DealState s = d.state;
        if (s == DealState.ResultsChallenged) return true;
        if (s != DealState.Finished) return false;
        Outcome o = d.outcome;
        return
            o == Outcome.MediationAccepted || o == Outcome.MediationRejected || o == Outcome.NoMediationInTime;
    }

    /// @dev Reverts unless the deal exists, is not finished and is in `from`, the one state `action` moves on from.
    function _expect(bytes32 dealId, Deal storage d, DealState from, DealAction action) private view {
        DealState state = d.state;
        if (state == DealState.None) revert DealNotFound(dealId);
        if (state == DealState.Finished) revert AlreadyFinished(dealId, d.outcome);
        if (state != from) revert NotAllowed(dealId, state, action);
    }

    function _beforeDeadline(uint64 deadline) private view {
        if (block.timestamp > deadline) revert DeadlinePassed(deadline, block.timestamp);
    }

    /// @dev now + window, saturating at 2^64-1 (such a deadline never passes).
    function _deadline(uint64 window) private view returns (uint64) {
        uint256 d = block.timestamp + window;
        // forge-lint: disable-next-line(unsafe-typecast): d <= 2^64-1 on this branch
        return d > type(uint64).max ? type(uint64).max : uint64(d);
    }

    function _pull(address from, uint256 amount) private {
        if (amount != 0) token.safeTransferFrom(from, address(this), amount);
    }

    function _push(address to, uint256 amount) private {
        if (amount != 0) token.safeTransfer(to, amount);
    }

    function _contains(bytes32[] calldata sorted, bytes32 item) private pure returns (bool found) {
        uint256 n = sorted.length;
        for (uint256 i; i < n; ++i) {
            bytes32 x = sorted[i];
            if (i != 0 && x <= sorted[i - 1]) revert NotStrictlyAscending(_MODULES, i);
            if (x == item) found = true;
        }
    }

    function _priceFor(ResourceOffer calldata r, bytes32 moduleId) private pure returns (uint256 price) {
        price = r.defaultPrice;
        ModulePrice[] calldata prices = r.modulePrices;
        uint256 n = prices.length;
        for (uint256 i; i < n; ++i) {
            bytes32 id = prices[i].moduleId;
            if (i != 0 && id <= prices[i - 1].moduleId) revert NotStrictlyAscending(_MODULE_PRICES, i);
            if (id == moduleId) price = prices[i].price;
        }
    }

    /// @dev The ascending intersection of two strictly ascending, zero-free lists (a linear
    /// merge) and its keccak256(abi.encodePacked(...)).
    function _commonMediators(address[] calldata a, address[] calldata b)
        private
        pure
        returns (address[] memory out, bytes32 hash)
    {
        uint256 na = a.length;
        uint256 nb = b.length;
        if ((na != 0 && a[0] == address(0)) || (nb != 0 && b[0] == address(0))) revert ZeroMediator();
        out = new address[](na < nb ? na : nb);
        uint256 i;
        uint256 j;
        uint256 n;
        while (i < na && j < nb) {
            address x = a[i];
            address y = b[j];
            if (x < y) {
                _checkAscending(a, i, _JOB_MEDIATORS);
                ++i;
            } else if (y < x) {
                _checkAscending(b, j, _RESOURCE_MEDIATORS);
                ++j;
            } else {
                _checkAscending(a, i, _JOB_MEDIATORS);
                _checkAscending(b, j, _RESOURCE_MEDIATORS);
                out[n++] = x;
                ++i;
                ++j;
            }
        }
        for (; i < na; ++i) {
            _checkAscending(a, i, _JOB_MEDIATORS);
        }
        for (; j < nb; ++j) {
            _checkAscending(b, j, _RESOURCE_MEDIATORS);
        }
        if (n == 0) revert NoCommonMediator();
        assembly ("memory-safe") {
            mstore(out, n)
        }
        hash = keccak256(abi.encodePacked(out));
    }

    function _checkAscending(address[] calldata xs, uint256 i, uint8 what) private pure {
        if (i != 0 && xs[i] <= xs[i - 1]) revert NotStrictlyAscending(what, i);
    }
}
