// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {ILilypadJobClient} from "./ILilypadJobClient.sol";

/// @notice On-chain jobs: a contract (or an account) asks for a module run and
/// escrows a payment; the bridge (BRIDGE_ROLE, the lilypad-cli `bridge`
/// service) runs the job through the normal protocol and posts the results or
/// cancels; this contract then settles the escrow and calls the client back.
/// See docs/contracts.md ("On-chain jobs") for the lifecycle.
///
/// - Each job ends exactly once: Requested -> Fulfilled | Cancelled.
/// - Only this contract calls clients, once per job, with CALLBACK_GAS_LIMIT
///   gas, in a try/catch: a client that reverts or burns its gas cannot block
///   the bridge (CallbackFailed records it; the job stays final).
/// - Time: the bridge may fulfill up to and including the job's deadline
///   (request time + jobTimeout); from deadline + 1 anyone may cancelExpired
///   (full refund). The bridge may cancel at any time while the job is open.
contract LilypadJobManager is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice A job's state; `None` means no such job.
    enum JobState {
        None,
        Requested,
        Fulfilled,
        Cancelled
    }

    /// @notice A job (two storage slots).
    struct Job {
        address client;
        uint64 deadline; // last second the bridge may fulfill
        JobState state;
        uint256 payment; // escrowed while Requested; kept afterwards as a record
    }

    /// @notice May fulfill and cancel jobs (the bridge service's account).
    bytes32 public constant BRIDGE_ROLE = keccak256("BRIDGE_ROLE");

    /// @notice Gas each client callback gets; a callback that needs more fails (CallbackFailed).
    uint256 public constant CALLBACK_GAS_LIMIT = 200_000;
    /// @dev Gas kept aside, on top of the 64/63 of the limit, for the work between the gas
    /// check and the CALL (argument encoding, the call itself).
    uint256 private constant _CALLBACK_OVERHEAD = 10_000;

    /// @notice Bounds of `jobTimeout` (constructor).
    uint256 public constant MIN_JOB_TIMEOUT = 5 minutes;
    uint256 public constant MAX_JOB_TIMEOUT = 30 days;

    /// @notice Input limits of runJob, in bytes (module, one "KEY=VALUE" input) and entries.
    uint256 public constant MAX_MODULE_BYTES = 256;
    uint256 public constant MAX_INPUTS = 32;
    uint256 public constant MAX_INPUT_BYTES = 4096;
    /// @notice Limits of what the bridge posts (and the client callback receives), in bytes.
    uint256 public constant MAX_RESULTS_BYTES = 128;
    uint256 public constant MAX_REASON_BYTES = 128;

    /// @notice The reason given to a client whose job was cancelled by cancelExpired.
    string public constant EXPIRED_REASON = "expired";

    /// @notice The token jobs are paid in.
    IERC20 public immutable token;
    /// @notice Seconds from a request to its deadline (the last second the bridge may fulfill).
    uint256 public immutable jobTimeout;

    /// @notice The least payment runJob accepts (the admin sets it to cover the bridge's gas).
    uint256 public minPayment;

    /// @dev The job counter and the payments held for open jobs share the slot runJob writes anyway.
    struct Book {
        uint64 jobCount;
        uint192 escrowed;
    }

    Book private _book;
    mapping(uint256 jobId => Job) private _jobs;

    /// @notice `client` asked for `module` with `inputs` ("KEY=VALUE" each) and escrowed
    /// `payment`; the bridge may fulfill up to `deadline` (unix seconds, inclusive).
    event JobRequested(
        uint256 indexed jobId,
        address indexed client,
        string module,
        string[] inputs,
        uint256 payment,
        uint64 deadline
    );
    /// @notice `bridge` posted the results: it got `spent`, the client `refund` (payment - spent).
    event JobFulfilled(
        uint256 indexed jobId,
        address indexed client,
        address indexed bridge,
        string resultsCid,
        uint256 spent,
        uint256 refund
    );
    /// @notice The job was cancelled by `by` (the bridge, or anyone after the deadline with
    /// reason EXPIRED_REASON); the client got its whole payment back (`refund`).
    event JobCancelled(
        uint256 indexed jobId, address indexed client, address indexed by, string reason, uint256 refund
    );
    /// @notice The callback `selector` to `client` reverted, ran out of gas, or was not made
    /// because `client` has no code. The job is final regardless.
    event CallbackFailed(uint256 indexed jobId, address indexed client, bytes4 selector);
    /// @notice The admin set the least payment runJob accepts.
    event MinPaymentSet(uint256 minPayment);
    /// @notice The admin sent `amount` of `token` that no job holds to `to`.
    event TokensRecovered(address indexed token, address indexed to, uint256 amount);

    /// @notice No job has this id.
    error JobNotFound(uint256 jobId);
    /// @notice The job is already Fulfilled or Cancelled.
    error JobAlreadyFinal(uint256 jobId, JobState state);
    /// @notice The bridge's time to fulfill is over (now > deadline); cancel it (or cancelExpired).
    error JobExpired(uint256 jobId, uint64 deadline, uint256 now);
    /// @notice cancelExpired before the deadline has passed (possible from deadline + 1).
    error JobNotExpired(uint256 jobId, uint64 deadline, uint256 now);
    /// @notice The bridge claims more than the job escrowed.
    error SpentExceedsPayment(uint256 jobId, uint256 spent, uint256 payment);
    /// @notice A job must escrow something.
    error ZeroPayment();
    /// @notice The payment is below minPayment (what the bridge needs to cover its own gas).
    error PaymentTooLow(uint256 payment, uint256 minimum);
    /// @notice recoverTokens would take `amount` of the job token, of which only `free` is not escrow.
    error WouldTouchEscrow(uint256 amount, uint256 free);
    /// @notice The module reference is empty.
    error EmptyModule();
    /// @notice The module reference is longer than MAX_MODULE_BYTES.
    error ModuleTooLong(uint256 length, uint256 max);
    /// @notice More than MAX_INPUTS inputs.
    error TooManyInputs(uint256 count, uint256 max);
    /// @notice Input `index` is longer than MAX_INPUT_BYTES.
    error InputTooLong(uint256 index, uint256 length, uint256 max);
    /// @notice Input `index` is not "KEY=VALUE" with a non-empty KEY free of spaces and control bytes.
    error InvalidInput(uint256 index);
    /// @notice The results CID is empty.
    error EmptyResults();
    /// @notice The results CID is longer than MAX_RESULTS_BYTES.
    error ResultsTooLong(uint256 length, uint256 max);
    /// @notice The cancel reason is longer than MAX_REASON_BYTES.
    error ReasonTooLong(uint256 length, uint256 max);
    /// @notice Not enough gas left to give the callback CALLBACK_GAS_LIMIT: send more gas.
    error InsufficientGasForCallback(uint256 gasLeft, uint256 needed);
    /// @notice jobTimeout outside [MIN_JOB_TIMEOUT, MAX_JOB_TIMEOUT].
    error InvalidJobTimeout(uint256 secs);
    /// @notice The token or the admin is the zero address.
    error ZeroAddress();

    /// @param token_ the token jobs are paid in (a plain ERC-20: no fee on transfer, no rebasing).
    /// @param admin gets DEFAULT_ADMIN_ROLE (grants and revokes BRIDGE_ROLE).
    /// @param bridge gets BRIDGE_ROLE unless it is the zero address.
    /// @param jobTimeout_ seconds from a request to its deadline, in [MIN_JOB_TIMEOUT, MAX_JOB_TIMEOUT].
    constructor(IERC20 token_, address admin, address bridge, uint256 jobTimeout_) {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        if (jobTimeout_ < MIN_JOB_TIMEOUT || jobTimeout_ > MAX_JOB_TIMEOUT) {
            revert InvalidJobTimeout(jobTimeout_);
        }
        token = token_;
        jobTimeout = jobTimeout_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (bridge != address(0)) _grantRole(BRIDGE_ROLE, bridge);
    }

    // ------------------------------------------------------------------ client

    /// @notice Asks the bridge to run `module` (a module reference, e.g. "cowsay:v0.0.4") with
    /// `inputs` ("KEY=VALUE" each, split at the first '='), escrowing `payment` from the caller,
    /// who must have approved it to this contract. The caller is the job's client: it gets the
    /// callback and the refunds.
    function runJob(string calldata module, string[] calldata inputs, uint256 payment)
        external
        nonReentrant
        returns (uint256 jobId)
    {
        uint256 len = bytes(module).length;
        if (len == 0) revert EmptyModule();
        if (len > MAX_MODULE_BYTES) revert ModuleTooLong(len, MAX_MODULE_BYTES);
        if (inputs.length > MAX_INPUTS) revert TooManyInputs(inputs.length, MAX_INPUTS);
        for (uint256 i; i < inputs.length; ++i) {
            _checkInput(bytes(inputs[i]), i);
        }
        if (payment == 0) revert ZeroPayment();
        uint256 minimum = minPayment;
        if (payment < minimum) revert PaymentTooLow(payment, minimum);

        Book memory book = _book;
        jobId = uint256(book.jobCount) + 1;
        _book =
            Book({jobCount: SafeCast.toUint64(jobId), escrowed: SafeCast.toUint192(book.escrowed + payment)});
        // forge-lint: disable-next-line(unsafe-typecast): timestamp + at most 30 days fits 64 bits
        uint64 deadline = uint64(block.timestamp + jobTimeout);
        _jobs[jobId] =
            Job({client: msg.sender, deadline: deadline, state: JobState.Requested, payment: payment});
        emit JobRequested(jobId, msg.sender, module, inputs, payment, deadline);

        token.safeTransferFrom(msg.sender, address(this), payment);
    }

    /// @dev "KEY=VALUE": a non-empty KEY before the first '=', without spaces or control bytes
    /// (the bridge applies the CLI's full rules and cancels what it cannot run).
    function _checkInput(bytes calldata input, uint256 index) private pure {
        uint256 len = input.length;
        if (len > MAX_INPUT_BYTES) revert InputTooLong(index, len, MAX_INPUT_BYTES);
        uint256 i;
        for (; i < len; ++i) {
            uint8 c = uint8(input[i]);
            if (c == 0x3d) break; // '='
            if (c <= 0x20 || c == 0x7f) revert InvalidInput(index);
        }
        if (i == 0 || i == len) revert InvalidInput(index);
    }

    // ------------------------------------------------------------------ bridge

    /// @notice The bridge posts the results of job `jobId` up to its deadline: it is reimbursed
    /// `spent` (what running the job cost it, at most the payment), the client gets the rest back
    /// and then `lilypadFulfilled(jobId, resultsCid)`. The transaction needs a gas limit that
    /// leaves the callback its whole CALLBACK_GAS_LIMIT (about 295,000 in all; eth_estimateGas
    /// finds it), else it reverts with InsufficientGasForCallback; only the gas used is charged.
    function fulfill(uint256 jobId, string calldata resultsCid, uint256 spent)
        external
        onlyRole(BRIDGE_ROLE)
        nonReentrant
    {
        Job storage j = _open(jobId);
        uint64 deadline = j.deadline;
        if (block.timestamp > deadline) revert JobExpired(jobId, deadline, block.timestamp);
        uint256 len = bytes(resultsCid).length;
        if (len == 0) revert EmptyResults();
        if (len > MAX_RESULTS_BYTES) revert ResultsTooLong(len, MAX_RESULTS_BYTES);
        uint256 payment = j.payment;
        if (spent > payment) revert SpentExceedsPayment(jobId, spent, payment);

        address client = j.client;
        uint256 refund = payment - spent;
        j.state = JobState.Fulfilled;
        _book.escrowed -= SafeCast.toUint192(payment);
        emit JobFulfilled(jobId, client, msg.sender, resultsCid, spent, refund);

        if (spent != 0) token.safeTransfer(msg.sender, spent);
        if (refund != 0) token.safeTransfer(client, refund);

        if (_canCall(jobId, client, ILilypadJobClient.lilypadFulfilled.selector)) {
            try ILilypadJobClient(client).lilypadFulfilled{gas: CALLBACK_GAS_LIMIT}(jobId, resultsCid) {}
            catch {
                emit CallbackFailed(jobId, client, ILilypadJobClient.lilypadFulfilled.selector);
            }
        }
    }

    /// @notice The bridge cancels job `jobId` (at any time while it is open): the client gets its
    /// whole payment back and then `lilypadCancelled(jobId, reason)`. Gas as for fulfill.
    function cancel(uint256 jobId, string calldata reason) external onlyRole(BRIDGE_ROLE) nonReentrant {
        Job storage j = _open(jobId);
        if (bytes(reason).length > MAX_REASON_BYTES) {
            revert ReasonTooLong(bytes(reason).length, MAX_REASON_BYTES);
        }
        _cancel(jobId, j, reason);
    }

    // ------------------------------------------------------------------ anyone

    /// @notice Anyone may cancel a job the bridge left open past its deadline (from deadline + 1):
    /// the client gets its whole payment back and `lilypadCancelled(jobId, EXPIRED_REASON)`.
    function cancelExpired(uint256 jobId) external nonReentrant {
        Job storage j = _open(jobId);
        uint64 deadline = j.deadline;
        if (block.timestamp <= deadline) revert JobNotExpired(jobId, deadline, block.timestamp);
        _cancel(jobId, j, EXPIRED_REASON);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Sets the least payment runJob accepts (DEFAULT_ADMIN_ROLE); open jobs are unaffected.
    function setMinPayment(uint256 minimum) external onlyRole(DEFAULT_ADMIN_ROLE) {
        minPayment = minimum;
        emit MinPaymentSet(minimum);
    }

    /// @notice Sends `amount` of `token_` held by this contract to `to` (DEFAULT_ADMIN_ROLE):
    /// tokens sent here by mistake. Of the job token only what no open job holds can leave
    /// (balance - totalEscrowed(), else WouldTouchEscrow).
    function recoverTokens(address token_, address to, uint256 amount)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        nonReentrant
    {
        if (token_ == address(token)) {
            uint256 balance = token.balanceOf(address(this));
            uint256 escrowed = _book.escrowed;
            uint256 free = balance > escrowed ? balance - escrowed : 0;
            if (amount > free) revert WouldTouchEscrow(amount, free);
        }
        emit TokensRecovered(token_, to, amount);
        IERC20(token_).safeTransfer(to, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice Number of jobs requested so far; job ids are 1..jobCount, in request order.
    function jobCount() external view returns (uint256) {
        return _book.jobCount;
    }

    /// @notice The payments held for open (Requested) jobs: the job token balance never falls below it.
    function totalEscrowed() external view returns (uint256) {
        return _book.escrowed;
    }

    /// @notice Job `jobId` (all zero if there is none).
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    /// @notice What this contract holds for job `jobId` now: its payment while Requested, else 0.
    function escrowOf(uint256 jobId) external view returns (uint256) {
        Job storage j = _jobs[jobId];
        return j.state == JobState.Requested ? j.payment : 0;
    }

    // ------------------------------------------------------------------ internals

    function _open(uint256 jobId) private view returns (Job storage j) {
        j = _jobs[jobId];
        JobState state = j.state;
        if (state == JobState.None) revert JobNotFound(jobId);
        if (state != JobState.Requested) revert JobAlreadyFinal(jobId, state);
    }

    function _cancel(uint256 jobId, Job storage j, string memory reason) private {
        address client = j.client;
        uint256 refund = j.payment;
        j.state = JobState.Cancelled;
        _book.escrowed -= SafeCast.toUint192(refund);
        emit JobCancelled(jobId, client, msg.sender, reason, refund);

        token.safeTransfer(client, refund); // refund > 0: runJob refuses a zero payment

        if (_canCall(jobId, client, ILilypadJobClient.lilypadCancelled.selector)) {
            try ILilypadJobClient(client).lilypadCancelled{gas: CALLBACK_GAS_LIMIT}(jobId, reason) {}
            catch {
                emit CallbackFailed(jobId, client, ILilypadJobClient.lilypadCancelled.selector);
            }
        }
    }

    /// @dev Whether to call `client` back. A client without code (an account) gets no call
    /// (CallbackFailed records it). Otherwise the callback must get its full CALLBACK_GAS_LIMIT:
    /// a CALL forwards at most 63/64 of the gas left (EIP-150), so a caller sending too little
    /// gas could make a sound client fail; this reverts instead.
    function _canCall(uint256 jobId, address client, bytes4 selector) private returns (bool) {
        if (client.code.length == 0) {
            emit CallbackFailed(jobId, client, selector);
            return false;
        }
        uint256 needed = CALLBACK_GAS_LIMIT + CALLBACK_GAS_LIMIT / 63 + 1 + _CALLBACK_OVERHEAD;
        uint256 left = gasleft();
        if (left < needed) revert InsufficientGasForCallback(left, needed);
        return true;
    }
}
