// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {LilypadModuleRegistry} from "./LilypadModuleRegistry.sol";
import {LilypadSettlement} from "./LilypadSettlement.sol";
import {
    DealAction,
    DealRole,
    DealState,
    JobFailure,
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
/// Time: acting (submit, report, accept, challenge, draw, mediate) is allowed up
/// to and including the current deadline second; `claimTimeout` and
/// `redrawMediator` only strictly after it. Deadlines saturate at 2^64-1.
///
/// Amounts: offers carry uint256 amounts; a deal stores them in 128 bits, so a
/// price, collateral or fee of 2^128 base units or more is refused at creation.
contract LilypadController is EIP712, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Network parameters; new deals capture the current ones (a signed offer bounds
    /// what it accepts of them, see createDeal).
    struct NetworkParams {
        /// Results collateral = this many times the price.
        uint32 resultsCollateralMultiple;
        /// Seconds the job creator has, after results or a failure report, to accept or challenge (> 0).
        uint32 judgeWindowSecs;
        /// Seconds a drawn mediator has, from the challenge or a redraw, to give a verdict (> 0).
        uint32 mediateWindowSecs;
        /// Paid by the job creator with a challenge; goes to the mediator.
        uint128 mediationFee;
        /// The shortest job timeout (seconds to deliver) the network accepts (> 0).
        uint64 minJobTimeoutSecs;
    }

    /// @notice An EIP-2612 permit for the controller; `deadline == 0` means none.
    struct Permit {
        uint256 value;
        uint256 deadline;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @dev The parameters a deal needs after its creation, one slot per version: setParams
    /// appends a version and a deal keeps the number of the one it was created under, so the
    /// deal itself does not store them.
    struct DealParams {
        uint32 resultsCollateralMultiple;
        uint32 judgeWindowSecs;
        uint32 mediateWindowSecs;
        uint128 mediationFee;
    }

    /// @dev What every createDeal reads and writes, in one slot.
    struct Book {
        uint64 minJobTimeoutSecs;
        uint32 paramsVersion; // the current version of _paramsAt
        uint160 totalEscrowed; // sum of the escrows of all open deals
    }

    /// @dev One deal: five slots at creation; the sixth only once a mediator is drawn.
    struct Deal {
        // slot 0
        address jobCreator;
        uint64 deadline; // last second to act in the current state
        DealState state;
        Outcome outcome; // meaningful once Finished
        uint8 mediatorCount; // size of the mutually trusted set (<= MAX_MEDIATORS)
        uint8 failure; // 1 + the JobFailure the provider reported; 0 on the results path
        // slot 1
        address provider;
        uint32 paramsVersion;
        uint64 drawBlock; // the block whose hash seeds the current draw (0 before a challenge)
        // slot 2
        uint128 price;
        uint128 paymentCollateral;
        // slot 3: keccak256(abi.encodePacked(mutually trusted mediators, ascending))
        bytes32 mediatorsHash;
        // slot 4: the timeout collateral (a number) until results are in, then the results
        // digest (keccak256 of the binary results CID); the results collateral is price x
        // multiple, so neither needs a slot of its own.
        bytes32 held;
        // slot 5
        address mediator; // the drawn mediator of the current round; zero until drawn
        uint64 tried; // bit i: the i-th mediator of the set had its round and did not answer
        uint8 mediatorIndex; // index of `mediator` in the set
    }

    /// @notice A deal as the getters return it.
    struct DealView {
        DealState state;
        Outcome outcome;
        address jobCreator;
        address provider;
        address mediator; // the drawn mediator of the current (or last) round; zero if none
        bytes32 mediatorsHash;
        uint64 deadline;
        uint256 price;
        uint256 paymentCollateral;
        uint256 providerCollateral; // timeout collateral until results are in, then the results collateral
        uint256 resultsCollateral;
        uint256 mediationFee;
        uint32 judgeWindowSecs;
        uint32 mediateWindowSecs;
        bytes32 results; // zero until results are in
        uint64 drawBlock; // zero before a challenge
        uint8 round; // mediators tried so far (the round of the current draw)
        uint8 mediatorCount;
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

    /// @notice The most mediators an offer may list (the draw keeps a 64-bit set of those tried).
    uint256 public constant MAX_MEDIATORS = 64;
    /// @dev EVM BLOCKHASH answers for the 256 most recent blocks only.
    uint256 private constant _BLOCKHASH_WINDOW = 256;

    /// @notice The token deals are paid in.
    IERC20 public immutable token;
    /// @notice The network's module allow and block lists.
    LilypadModuleRegistry public immutable modules;

    Book private _book;
    mapping(uint32 version => DealParams) private _paramsAt;
    mapping(bytes32 dealId => Deal) private _deals;
    /// @dev A deal's payout address, set only when it is not the provider.
    mapping(bytes32 dealId => address) private _payout;
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
    /// @notice The job creator challenged the results. The mediator is drawn from the hash of
    /// block `drawBlock` (this one): call drawMediator from the next block on.
    event ResultsChallenged(bytes32 indexed dealId, uint256 mediationFee, uint64 deadline, uint64 drawBlock);
    /// @notice The provider reports that the job could not run for a reason the job creator caused.
    event FailureReported(bytes32 indexed dealId, JobFailure reason, string detail, uint64 deadline);
    /// @notice The job creator challenged the failure report; the mediator is drawn as for results.
    event FailureChallenged(bytes32 indexed dealId, uint256 mediationFee, uint64 deadline, uint64 drawBlock);
    /// @notice The mediator of round `round` (0 first) is fixed; it may mediate up to `deadline`.
    event MediatorDrawn(bytes32 indexed dealId, address indexed mediator, uint8 round, uint64 deadline);
    /// @notice The seed block's hash had expired before anyone drew: the draw restarts from `drawBlock`.
    event MediatorDrawPending(bytes32 indexed dealId, uint64 drawBlock);
    /// @notice `previous` did not mediate in time (zero: nobody drew it before its seed expired);
    /// round `round` draws from block `drawBlock` among the mediators not tried yet.
    event MediatorRedraw(
        bytes32 indexed dealId, address previous, uint8 round, uint64 deadline, uint64 drawBlock
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
    /// @notice The owner sent `amount` of `token` that no deal holds to `to`.
    event TokensRecovered(address indexed token, address indexed to, uint256 amount);

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
    /// @notice The job's timeout is below the provider's signed minimum or the network's floor.
    error TimeoutTooShort(uint64 timeoutSecs, uint64 providerMinimum, uint64 networkMinimum);
    /// @notice A network parameter is outside what an offer accepts (`term`: 0 results multiple >
    /// resource maxResultsMultiple, 1 mediation fee > job maxMediationFee, 2 judge window >
    /// resource maxJudgeWindowSecs, 3 judge window < job minJudgeWindowSecs, 4 mediate window <
    /// resource minMediateWindowSecs).
    error TermsNotAccepted(uint8 term, uint256 value, uint256 bound);
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
    /// @notice An offer lists more than MAX_MEDIATORS mediators (`which`: 0 job, 1 resource).
    error TooManyMediators(uint8 which, uint256 count);
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
    /// @notice mediate before anyone called drawMediator for the current round.
    error MediatorNotDrawn(bytes32 dealId);
    /// @notice The caller does not hold the role the action needs.
    error WrongSender(DealRole role, address expected, address got);
    /// @notice The window to act has closed; claim the timeout (or redraw the mediator) instead.
    error DeadlinePassed(uint64 deadline, uint256 now);
    /// @notice The deadline has not passed yet; a timeout can be claimed from deadline + 1.
    error TooEarly(uint64 deadline, uint256 now);
    /// @notice The mediators given are not the deal's (see DealCreated).
    error MediatorsMismatch(bytes32 expected, bytes32 got);
    /// @notice A results CID must not be empty.
    error EmptyResults();
    /// @notice The current round's mediator is drawn already.
    error MediatorAlreadyDrawn(bytes32 dealId, address mediator);
    /// @notice The seed block's hash is not known yet: draw from block drawBlock + 1 on.
    error DrawNotReady(uint64 drawBlock, uint256 blockNumber);
    /// @notice claimTimeout while `untried` mediators have not had their round: call redrawMediator.
    error MediatorsLeft(uint256 untried);

    // admin
    /// @notice Windows and the job timeout floor must be positive.
    error InvalidParams();
    /// @notice recoverTokens would take `amount` of the deal token, of which only `free` is not escrow.
    error WouldTouchEscrow(uint256 amount, uint256 free);

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

    /// @notice Sets the parameters new deals capture; existing deals keep theirs. A signed offer
    /// names the bounds it accepts, so a change outside them stops such offers from matching
    /// (TermsNotAccepted) instead of binding their signers to new terms.
    function setParams(NetworkParams calldata params_) external onlyOwner {
        _setParams(params_);
    }

    function _setParams(NetworkParams memory p) private {
        if (p.judgeWindowSecs == 0 || p.mediateWindowSecs == 0 || p.minJobTimeoutSecs == 0) {
            revert InvalidParams();
        }
        Book memory b = _book;
        uint32 version = b.paramsVersion + 1;
        _paramsAt[version] = DealParams({
            resultsCollateralMultiple: p.resultsCollateralMultiple,
            judgeWindowSecs: p.judgeWindowSecs,
            mediateWindowSecs: p.mediateWindowSecs,
            mediationFee: p.mediationFee
        });
        _book = Book({
            minJobTimeoutSecs: p.minJobTimeoutSecs, paramsVersion: version, totalEscrowed: b.totalEscrowed
        });
        emit ParamsSet(p);
    }

    /// @notice The current network parameters (those a deal created now captures).
    function params()
        external
        view
        returns (
            uint32 resultsCollateralMultiple,
            uint32 judgeWindowSecs,
            uint32 mediateWindowSecs,
            uint128 mediationFee,
            uint64 minJobTimeoutSecs
        )
    {
        Book memory b = _book;
        DealParams memory p = _paramsAt[b.paramsVersion];
        return (
            p.resultsCollateralMultiple,
            p.judgeWindowSecs,
            p.mediateWindowSecs,
            p.mediationFee,
            b.minJobTimeoutSecs
        );
    }

    /// @notice Sends `amount` of `token_` held by this contract to `to` (owner only): tokens sent
    /// here by mistake. Of the deal token only what no deal holds can leave
    /// (balance - totalEscrowed(), else WouldTouchEscrow).
    function recoverTokens(address token_, address to, uint256 amount) external onlyOwner nonReentrant {
        if (token_ == address(token)) {
            uint256 balance = token.balanceOf(address(this));
            uint256 escrowed = _book.totalEscrowed;
            uint256 free = balance > escrowed ? balance - escrowed : 0;
            if (amount > free) revert WouldTouchEscrow(amount, free);
        }
        emit TokensRecovered(token_, to, amount);
        IERC20(token_).safeTransfer(to, amount);
    }

    /// @notice What all open deals hold together: the deal token balance never falls below it.
    function totalEscrowed() external view returns (uint256) {
        return _book.totalEscrowed;
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
        Book memory book = _book;
        DealParams memory p = _paramsAt[book.paramsVersion];
        _checkTerms(job, resource, book.minJobTimeoutSecs, p);

        if (!resource.anyModule && !_contains(resource.modules, job.moduleId)) {
            revert ModuleNotOffered(job.moduleId);
        }
        if (!modules.isAllowed(job.moduleId)) revert ModuleNotAllowed(job.moduleId);
        uint256 price = _priceFor(resource, job.moduleId);
        if (price > job.maxPrice) revert PriceTooHigh(price, job.maxPrice);
        if (job.paymentCollateral < price) revert PaymentBelowPrice(job.paymentCollateral, price);
        if (job.mediators.length > MAX_MEDIATORS) {
            revert TooManyMediators(_JOB_MEDIATORS, job.mediators.length);
        }
        if (resource.mediators.length > MAX_MEDIATORS) {
            revert TooManyMediators(_RESOURCE_MEDIATORS, resource.mediators.length);
        }
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
        terms.moduleId = job.moduleId;
        terms.inputsHash = job.inputsHash;
        terms.price = price;
        terms.paymentCollateral = job.paymentCollateral;
        terms.timeoutCollateral = resource.timeoutCollateral;
        terms.resultsCollateral = price * p.resultsCollateralMultiple; // price < 2^128 checked above
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
        // forge-lint: disable-next-line(unsafe-typecast): the intersection of lists of at most 64
        d.mediatorCount = uint8(mediators.length);
        d.provider = resource.provider;
        d.paramsVersion = book.paramsVersion;
        // forge-lint: disable-start(unsafe-typecast): each amount was checked against 2^128 above
        d.price = uint128(price);
        d.paymentCollateral = uint128(terms.paymentCollateral);
        // forge-lint: disable-end(unsafe-typecast)
        d.mediatorsHash = mediatorsHash;
        d.held = bytes32(terms.timeoutCollateral);
        if (resource.payout != address(0) && resource.payout != resource.provider) {
            _payout[dealId] = resource.payout;
        }
        _book.totalEscrowed = SafeCast.toUint160(
            uint256(book.totalEscrowed) + terms.paymentCollateral + terms.timeoutCollateral
        );

        emit DealCreated(dealId, job.creator, resource.provider, msg.sender, terms, mediators);

        _pull(job.creator, terms.paymentCollateral);
        _pull(resource.provider, terms.timeoutCollateral);
    }

    /// @dev The job timeout against the provider's and the network's minimum, then the network
    /// parameters against the bounds each offer signed.
    function _checkTerms(
        JobOffer calldata job,
        ResourceOffer calldata resource,
        uint64 minJobTimeoutSecs,
        DealParams memory p
    ) private pure {
        uint64 timeoutSecs = job.timeoutSecs;
        if (timeoutSecs < resource.minTimeoutSecs || timeoutSecs < minJobTimeoutSecs) {
            revert TimeoutTooShort(timeoutSecs, resource.minTimeoutSecs, minJobTimeoutSecs);
        }
        if (p.resultsCollateralMultiple > resource.maxResultsMultiple) {
            revert TermsNotAccepted(0, p.resultsCollateralMultiple, resource.maxResultsMultiple);
        }
        if (p.mediationFee > job.maxMediationFee) {
            revert TermsNotAccepted(1, p.mediationFee, job.maxMediationFee);
        }
        if (p.judgeWindowSecs > resource.maxJudgeWindowSecs) {
            revert TermsNotAccepted(2, p.judgeWindowSecs, resource.maxJudgeWindowSecs);
        }
        if (p.judgeWindowSecs < job.minJudgeWindowSecs) {
            revert TermsNotAccepted(3, p.judgeWindowSecs, job.minJudgeWindowSecs);
        }
        if (p.mediateWindowSecs < resource.minMediateWindowSecs) {
            revert TermsNotAccepted(4, p.mediateWindowSecs, resource.minMediateWindowSecs);
        }
    }

    /// @notice The provider submits results (the binary CID) up to the deadline, posting the
    /// results collateral; its timeout collateral comes back (only the difference moves).
    function submitResults(bytes32 dealId, bytes calldata resultsCid) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.Agreed, DealAction.SubmitResults);
        if (msg.sender != d.provider) revert WrongSender(DealRole.ResourceProvider, d.provider, msg.sender);
        _beforeDeadline(d.deadline);
        if (resultsCid.length == 0) revert EmptyResults();

        DealParams memory p = _paramsAt[d.paramsVersion];
        uint256 timeoutCollateral = uint256(d.held);
        uint256 resultsCollateral = uint256(d.price) * p.resultsCollateralMultiple; // < 2^128: checked at creation
        bytes32 results = keccak256(resultsCid);
        uint64 deadline = _deadline(p.judgeWindowSecs);
        d.state = DealState.ResultsSubmitted;
        d.deadline = deadline;
        d.held = results;
        _book.totalEscrowed =
            SafeCast.toUint160(uint256(_book.totalEscrowed) + resultsCollateral - timeoutCollateral);
        emit ResultsSubmitted(dealId, results, resultsCid, resultsCollateral, deadline);

        if (resultsCollateral > timeoutCollateral) _pull(msg.sender, resultsCollateral - timeoutCollateral);
        else _push(payoutOf(dealId), timeoutCollateral - resultsCollateral);
    }

    /// @notice The job creator accepts the results up to the deadline: the provider is paid.
    function acceptResults(bytes32 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.ResultsSubmitted, DealAction.AcceptResults);
        if (msg.sender != d.jobCreator) revert WrongSender(DealRole.JobCreator, d.jobCreator, msg.sender);
        _beforeDeadline(d.deadline);
        _settle(dealId, d, Outcome.Accepted, address(0));
    }

    /// @notice The job creator challenges the results up to the deadline, paying the mediation
    /// fee. `mediators` must be the deal's mutually trusted set as emitted in DealCreated. The
    /// mediator is drawn from the hash of this very block, which nothing running in it can know:
    /// anyone calls drawMediator from the next block on (see docs/contracts.md).
    function challengeResults(bytes32 dealId, address[] calldata mediators) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.ResultsSubmitted, DealAction.ChallengeResults);
        if (msg.sender != d.jobCreator) revert WrongSender(DealRole.JobCreator, d.jobCreator, msg.sender);
        _beforeDeadline(d.deadline);
        _checkMediators(d, mediators);
        _challenge(dealId, d, DealState.ResultsChallenged);
    }

    /// @notice The provider reports, up to the deadline, that the job cannot run for a reason the
    /// job creator caused (`detail` says what was seen). The job creator then accepts
    /// (acceptFailure, or lets the judge window pass) or challenges (challengeFailure): a report
    /// a mediator refutes costs the provider its timeout collateral.
    function reportFailure(bytes32 dealId, JobFailure reason, string calldata detail) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.Agreed, DealAction.ReportFailure);
        if (msg.sender != d.provider) revert WrongSender(DealRole.ResourceProvider, d.provider, msg.sender);
        _beforeDeadline(d.deadline);
        uint64 deadline = _deadline(_paramsAt[d.paramsVersion].judgeWindowSecs);
        d.state = DealState.FailureReported;
        d.deadline = deadline;
        d.failure = uint8(reason) + 1;
        emit FailureReported(dealId, reason, detail, deadline);
    }

    /// @notice The job creator accepts the provider's failure report up to the deadline: it gets
    /// its payment back and the provider its timeout collateral.
    function acceptFailure(bytes32 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.FailureReported, DealAction.AcceptFailure);
        if (msg.sender != d.jobCreator) revert WrongSender(DealRole.JobCreator, d.jobCreator, msg.sender);
        _beforeDeadline(d.deadline);
        _settle(dealId, d, Outcome.FailureAccepted, address(0));
    }

    /// @notice The job creator challenges the provider's failure report up to the deadline,
    /// paying the mediation fee; the mediator is drawn as for challengeResults.
    function challengeFailure(bytes32 dealId, address[] calldata mediators) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expect(dealId, d, DealState.FailureReported, DealAction.ChallengeFailure);
        if (msg.sender != d.jobCreator) revert WrongSender(DealRole.JobCreator, d.jobCreator, msg.sender);
        _beforeDeadline(d.deadline);
        _checkMediators(d, mediators);
        _challenge(dealId, d, DealState.FailureChallenged);
    }

    function _challenge(bytes32 dealId, Deal storage d, DealState state) private {
        DealParams memory p = _paramsAt[d.paramsVersion];
        uint64 deadline = _deadline(p.mediateWindowSecs);
        uint64 drawBlock = SafeCast.toUint64(block.number);
        uint256 fee = p.mediationFee;
        d.state = state;
        d.deadline = deadline;
        d.drawBlock = drawBlock;
        _book.totalEscrowed = SafeCast.toUint160(uint256(_book.totalEscrowed) + fee);
        if (state == DealState.ResultsChallenged) emit ResultsChallenged(dealId, fee, deadline, drawBlock);
        else emit FailureChallenged(dealId, fee, deadline, drawBlock);

        _pull(msg.sender, fee);
    }

    // ------------------------------------------------------------------ the mediator draw

    /// @notice Anyone fixes the mediator of the current round, up to the mediate deadline and
    /// from the block after the draw block on: the ((seed mod untried))-th untried mediator of the
    /// ascending set, seed = keccak256(abi.encode(blockhash(drawBlock), dealId, round)) (see
    /// chooseMediator). Should the draw block's hash have expired (older than 256 blocks) before
    /// anyone drew, the draw restarts from this block (MediatorDrawPending) and is drawn from the next.
    function drawMediator(bytes32 dealId, address[] calldata mediators) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expectChallenged(dealId, d, DealAction.DrawMediator);
        _checkMediators(d, mediators);
        address drawn = d.mediator;
        if (drawn != address(0)) revert MediatorAlreadyDrawn(dealId, drawn);
        uint64 deadline = d.deadline;
        _beforeDeadline(deadline);
        uint64 drawBlock = d.drawBlock;
        if (block.number <= drawBlock) revert DrawNotReady(drawBlock, block.number);
        if (block.number - drawBlock > _BLOCKHASH_WINDOW) {
            drawBlock = SafeCast.toUint64(block.number);
            d.drawBlock = drawBlock;
            emit MediatorDrawPending(dealId, drawBlock);
            return;
        }
        uint64 tried = d.tried;
        (address mediator, uint8 index) = chooseMediator(blockhash(drawBlock), dealId, mediators, tried);
        d.mediator = mediator;
        d.mediatorIndex = index;
        emit MediatorDrawn(dealId, mediator, _count(tried), deadline);
    }

    /// @notice Anyone moves on, strictly after the mediate deadline, from a mediator that did not
    /// mediate: it is marked tried and the next round draws from the rest of the set, from this
    /// block's hash, with a fresh mediate window. A round whose mediator nobody drew before its
    /// seed expired restarts with no one marked. When every mediator has been tried the deal
    /// settles NoMediationInTime instead.
    function redrawMediator(bytes32 dealId, address[] calldata mediators) external nonReentrant {
        Deal storage d = _deals[dealId];
        _expectChallenged(dealId, d, DealAction.RedrawMediator);
        _checkMediators(d, mediators);
        uint64 deadline = d.deadline;
        if (block.timestamp <= deadline) revert TooEarly(deadline, block.timestamp);

        uint64 tried = d.tried;
        (address previous, uint8 index) = _currentMediator(dealId, d, mediators, tried);
        // forge-lint: disable-next-line(incorrect-shift)
        if (previous != address(0)) tried |= uint64(1) << index;
        uint8 round = _count(tried);
        d.tried = tried;
        if (round == mediators.length) {
            // Every mediator had its round: nobody mediated.
            _settle(dealId, d, _noMediation(d), address(0));
            return;
        }
        uint64 newDeadline = _deadline(_paramsAt[d.paramsVersion].mediateWindowSecs);
        uint64 drawBlock = SafeCast.toUint64(block.number);
        d.deadline = newDeadline;
        d.drawBlock = drawBlock;
        d.mediator = address(0);
        d.mediatorIndex = 0;
        emit MediatorRedraw(dealId, previous, round, newDeadline, drawBlock);
    }

    /// @notice The mediator of the deal's current (or last) round: the drawn one, else the one
    /// drawMediator would fix now, else zero (no challenge, or the seed block's hash is not known
    /// yet or has expired).
    function pendingMediator(bytes32 dealId, address[] calldata mediators) external view returns (address) {
        Deal storage d = _deals[dealId];
        if (d.state == DealState.None) revert DealNotFound(dealId);
        _checkMediators(d, mediators);
        address drawn = d.mediator;
        if (drawn != address(0)) return drawn;
        DealState s = d.state;
        if (s != DealState.ResultsChallenged && s != DealState.FailureChallenged) return address(0);
        (address mediator,) = _currentMediator(dealId, d, mediators, d.tried);
        return mediator;
    }

    /// @notice The draw: among the mediators of the ascending set whose bit in `tried` is clear,
    /// the (seed mod their number)-th, seed = uint256(keccak256(abi.encode(seedBlockhash, dealId,
    /// round))) with round = the number of bits set in `tried`. Returns it and its index in the set.
    function chooseMediator(bytes32 seedBlockhash, bytes32 dealId, address[] calldata mediators, uint64 tried)
        internal
        pure
        returns (address mediator, uint8 index)
    {
        uint8 round = _count(tried);
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

    /// @dev The current round's mediator: the drawn one, else the one its seed gives if the seed
    /// block's hash is known now, else zero.
    function _currentMediator(bytes32 dealId, Deal storage d, address[] calldata mediators, uint64 tried)
        private
        view
        returns (address mediator, uint8 index)
    {
        mediator = d.mediator;
        if (mediator != address(0)) return (mediator, d.mediatorIndex);
        uint64 drawBlock = d.drawBlock;
        if (block.number <= drawBlock || block.number - drawBlock > _BLOCKHASH_WINDOW) {
            return (address(0), 0);
        }
        return chooseMediator(blockhash(drawBlock), dealId, mediators, tried);
    }

    /// @notice The drawn mediator gives its verdict up to the deadline: after a results challenge,
    /// accept means the results are right; after a failure challenge, that the failure report is.
    function mediate(bytes32 dealId, bool accept) external nonReentrant {
        Deal storage d = _deals[dealId];
        DealState state = _expectChallenged(dealId, d, DealAction.Mediate);
        address mediator = d.mediator;
        if (mediator == address(0)) revert MediatorNotDrawn(dealId);
        if (msg.sender != mediator) revert WrongSender(DealRole.ChosenMediator, mediator, msg.sender);
        _beforeDeadline(d.deadline);
        Outcome outcome;
        if (state == DealState.ResultsChallenged) {
            outcome = accept ? Outcome.MediationAccepted : Outcome.MediationRejected;
        } else {
            outcome = accept ? Outcome.FailureUpheld : Outcome.FailureRefuted;
        }
        _settle(dealId, d, outcome, mediator);
    }

    /// @notice Anyone ends a deal strictly after its current deadline: no results -> the job
    /// creator is refunded and gets the timeout collateral; no judgement -> results count as
    /// accepted; a failure report not answered -> it stands (FailureAccepted); no mediation ->
    /// everyone is refunded, once every mediator of the set has had its round (else MediatorsLeft:
    /// redrawMediator).
    function claimTimeout(bytes32 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        DealState state = d.state;
        if (state == DealState.None) revert DealNotFound(dealId);
        if (state == DealState.Finished) revert AlreadyFinished(dealId, d.outcome);
        uint64 deadline = d.deadline;
        if (block.timestamp <= deadline) revert TooEarly(deadline, block.timestamp);
        if (state == DealState.Agreed) {
            _settle(dealId, d, Outcome.NoResultsInTime, address(0));
        } else if (state == DealState.ResultsSubmitted) {
            _settle(dealId, d, Outcome.NoJudgementInTime, address(0));
        } else if (state == DealState.FailureReported) {
            _settle(dealId, d, Outcome.FailureAccepted, address(0));
        } else {
            // The current round counts as tried: its deadline has passed.
            uint256 untried = uint256(d.mediatorCount) - _count(d.tried) - 1;
            if (untried != 0) revert MediatorsLeft(untried);
            _settle(dealId, d, _noMediation(d), address(0));
        }
    }

    // ------------------------------------------------------------------ settlement, one per outcome

    /// @dev The outcome of a challenge no mediator answered: after a results challenge or after
    /// a failure challenge (their escrows differ: results collateral or timeout collateral).
    function _noMediation(Deal storage d) private view returns (Outcome) {
        return d.failure == 0 ? Outcome.NoMediationInTime : Outcome.FailureNoMediationInTime;
    }

    /// @dev Pays the escrows the deal holds as LilypadSettlement's function for `outcome` says.
    function _settle(bytes32 dealId, Deal storage d, Outcome outcome, address mediator) private {
        uint256 payment = d.paymentCollateral;
        LilypadSettlement.Payouts memory p;
        if (outcome == Outcome.NoResultsInTime) {
            p = LilypadSettlement.noResultsInTime(payment, uint256(d.held));
        } else if (outcome == Outcome.FailureAccepted) {
            p = LilypadSettlement.failureAccepted(payment, uint256(d.held));
        } else {
            DealParams memory dp = _paramsAt[d.paramsVersion];
            uint256 price = d.price;
            uint256 results = price * dp.resultsCollateralMultiple;
            uint256 fee = dp.mediationFee;
            if (outcome == Outcome.Accepted) {
                p = LilypadSettlement.accepted(price, payment, results);
            } else if (outcome == Outcome.NoJudgementInTime) {
                p = LilypadSettlement.noJudgementInTime(price, payment, results);
            } else if (outcome == Outcome.MediationAccepted) {
                p = LilypadSettlement.mediationAccepted(price, payment, results, fee);
            } else if (outcome == Outcome.MediationRejected) {
                p = LilypadSettlement.mediationRejected(payment, results, fee);
            } else if (outcome == Outcome.FailureUpheld) {
                p = LilypadSettlement.failureUpheld(payment, uint256(d.held), fee);
            } else if (outcome == Outcome.FailureRefuted) {
                p = LilypadSettlement.failureRefuted(payment, uint256(d.held), fee);
            } else {
                // NoMediationInTime or FailureNoMediationInTime: the provider collateral held is the
                // results collateral after a results challenge, the timeout collateral after a
                // failure challenge.
                p = LilypadSettlement.noMediationInTime(
                    payment, d.failure == 0 ? results : uint256(d.held), fee
                );
            }
        }
        _finish(dealId, d, outcome, p, mediator);
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
        address provider = payoutOf(dealId);
        d.state = DealState.Finished;
        d.outcome = outcome;
        // Each outcome pays out exactly what the deal holds, which totalEscrowed counts.
        _book.totalEscrowed -= SafeCast.toUint160(p.toJobCreator + p.toProvider + p.toMediator);
        emit DealFinished(dealId, outcome, msg.sender, p.toJobCreator, p.toProvider, p.toMediator);
        _push(provider, p.toProvider);
        _push(jobCreator, p.toJobCreator);
        _push(mediator, p.toMediator);
    }

    // ------------------------------------------------------------------ views

    /// @notice A deal (state None: no such deal).
    function getDeal(bytes32 dealId) external view returns (DealView memory v) {
        Deal storage d = _deals[dealId];
        DealParams memory p = _paramsAt[d.paramsVersion];
        v.state = d.state;
        v.outcome = d.outcome;
        v.jobCreator = d.jobCreator;
        v.provider = d.provider;
        v.mediator = d.mediator;
        v.mediatorsHash = d.mediatorsHash;
        v.deadline = d.deadline;
        v.price = d.price;
        v.paymentCollateral = d.paymentCollateral;
        v.resultsCollateral = uint256(d.price) * p.resultsCollateralMultiple;
        if (_resultsIn(d)) {
            v.providerCollateral = v.resultsCollateral;
            v.results = d.held;
        } else {
            v.providerCollateral = uint256(d.held);
        }
        v.mediationFee = p.mediationFee;
        v.judgeWindowSecs = p.judgeWindowSecs;
        v.mediateWindowSecs = p.mediateWindowSecs;
        v.drawBlock = d.drawBlock;
        v.round = _count(d.tried);
        v.mediatorCount = d.mediatorCount;
    }

    /// @notice What the contract holds for a deal now (zero once finished).
    function escrowOf(bytes32 dealId) external view returns (uint256) {
        Deal storage d = _deals[dealId];
        DealState s = d.state;
        if (s == DealState.None || s == DealState.Finished) return 0;
        DealParams memory p = _paramsAt[d.paramsVersion];
        uint256 held = d.paymentCollateral;
        if (s == DealState.Agreed || s == DealState.FailureReported || s == DealState.FailureChallenged) {
            held += uint256(d.held);
        } else {
            held += uint256(d.price) * p.resultsCollateralMultiple;
        }
        if (s == DealState.ResultsChallenged || s == DealState.FailureChallenged) held += p.mediationFee;
        return held;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Whether results were submitted (then `held` is the results digest).
    function _resultsIn(Deal storage d) private view returns (bool) {
        if (d.failure != 0) return false;
        DealState s = d.state;
        if (s == DealState.None || s == DealState.Agreed) return false;
        return s != DealState.Finished || d.outcome != Outcome.NoResultsInTime;
    }

    /// @dev Reverts unless the deal exists, is not finished and is in `from`, the one state `action` moves on from.
    function _expect(bytes32 dealId, Deal storage d, DealState from, DealAction action) private view {
        DealState state = d.state;
        if (state == DealState.None) revert DealNotFound(dealId);
        if (state == DealState.Finished) revert AlreadyFinished(dealId, d.outcome);
        if (state != from) revert NotAllowed(dealId, state, action);
    }

    /// @dev As _expect, for the two challenged states; returns the state.
    function _expectChallenged(bytes32 dealId, Deal storage d, DealAction action)
        private
        view
        returns (DealState state)
    {
        state = d.state;
        if (state == DealState.None) revert DealNotFound(dealId);
        if (state == DealState.Finished) revert AlreadyFinished(dealId, d.outcome);
        if (state != DealState.ResultsChallenged && state != DealState.FailureChallenged) {
            revert NotAllowed(dealId, state, action);
        }
    }

    function _checkMediators(Deal storage d, address[] calldata mediators) private view {
        bytes32 got = keccak256(abi.encodePacked(mediators));
        bytes32 want = d.mediatorsHash;
        if (got != want) revert MediatorsMismatch(want, got);
    }

    /// @dev The number of bits set (at most 64, so it fits a uint8).
    function _count(uint64 bits) private pure returns (uint8 n) {
        while (bits != 0) {
            bits &= bits - 1;
            ++n;
        }
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

    /// @notice Where a deal pays its provider (payments and collateral refunds): the
    /// payout address its resource offer named, else the provider.
    function payoutOf(bytes32 dealId) public view returns (address payout) {
        payout = _payout[dealId];
        if (payout == address(0)) payout = _deals[dealId].provider;
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
