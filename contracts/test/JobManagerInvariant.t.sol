// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";
import {
    GasBurnerClient,
    RecordingClient,
    ReturnBombClient,
    RevertingClient,
    TestClient
} from "./utils/JobClients.sol";

import {ExampleClient} from "../src/ExampleClient.sol";
import {LilypadJobManager} from "../src/LilypadJobManager.sol";
import {LilypadToken} from "../src/LilypadToken.sol";

/// @notice Drives the job manager with random requests, fulfills, cancels,
/// expiries and time, by sound and hostile clients, plus an intruder trying
/// what it must not; keeps ghost books of every token in and out per job.
contract JobHandler {
    LilypadJobManager public immutable manager;
    LilypadToken public immutable token;
    address public immutable bridge;
    ExampleClient public immutable example;
    address public immutable exampleOwner;
    address public immutable account; // a client without code
    RecordingClient public immutable recorder;
    TestClient[3] internal hostile;

    uint256 internal constant MAX_JOBS = 48;

    uint256[] public jobIds;
    mapping(uint256 jobId => uint256) public paidIn;
    mapping(uint256 jobId => uint256) public paidOut;
    uint256 public totalIn;
    uint256 public totalOut;
    address public immutable admin;
    /// Sends the manager tokens by mistake.
    address public immutable donor;
    /// Tokens sent to the manager outside any job, less those the admin recovered.
    uint256 public stray;
    /// Set when a call that must fail succeeded, or a job's ids or shares came out wrong.
    bool public breach;
    /// Effective calls per action (those that did not return early).
    mapping(bytes4 selector => uint256) public calls;

    constructor(
        LilypadJobManager manager_,
        address bridge_,
        ExampleClient example_,
        address exampleOwner_,
        address account_,
        RecordingClient recorder_,
        TestClient[3] memory hostile_,
        address admin_,
        address donor_
    ) {
        admin = admin_;
        donor = donor_;
        manager = manager_;
        token = LilypadToken(address(manager_.token()));
        bridge = bridge_;
        example = example_;
        exampleOwner = exampleOwner_;
        account = account_;
        recorder = recorder_;
        hostile = hostile_;
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + (x % (max - min + 1));
    }

    function job(uint256 seed) internal view returns (uint256 id, LilypadJobManager.Job memory j, bool ok) {
        if (jobIds.length == 0) return (0, j, false);
        id = jobIds[seed % jobIds.length];
        return (id, manager.getJob(id), true);
    }

    /// Books the manager's balance change around a call to job `id`.
    modifier books(uint256 id) {
        uint256 before = token.balanceOf(address(manager));
        _;
        uint256 afterwards = token.balanceOf(address(manager));
        if (afterwards > before) {
            paidIn[id] += afterwards - before;
            totalIn += afterwards - before;
        } else {
            paidOut[id] += before - afterwards;
            totalOut += before - afterwards;
        }
    }

    // ------------------------------------------------------------------ actions

    function runJob(uint256 who, uint256 payment) external {
        if (jobIds.length >= MAX_JOBS) return;
        payment = bound(payment, 1, 1e24);
        uint256 id = manager.jobCount() + 1;
        _run(id, who % 6, payment);
        if (manager.jobCount() != id) breach = true; // ids are 1, 2, 3, ... in request order
        jobIds.push(id);
        calls[this.runJob.selector]++;
    }

    function _run(uint256 id, uint256 who, uint256 payment) internal books(id) {
        string[] memory inputs = new string[](1);
        inputs[0] = "Message=moo";
        if (who == 0) {
            recorder.request("cowsay:v0.0.4", inputs, payment);
        } else if (who <= 3) {
            hostile[who - 1].request("cowsay:v0.0.4", inputs, payment);
        } else if (who == 4) {
            vm.prank(exampleOwner);
            example.setPayment(payment);
            vm.prank(exampleOwner);
            example.requestCowsay("moo");
        } else {
            vm.prank(account);
            token.approve(address(manager), payment);
            vm.prank(account);
            manager.runJob("cowsay:v0.0.4", inputs, payment);
        }
    }

    function fulfill(uint256 seed, uint256 spent) external {
        (uint256 id, LilypadJobManager.Job memory j, bool ok) = job(seed);
        if (!ok || j.state != LilypadJobManager.JobState.Requested || block.timestamp > j.deadline) return;
        spent = bound(spent, 0, j.payment);
        uint256 bridgeBefore = token.balanceOf(bridge);
        _fulfill(id, spent);
        if (token.balanceOf(bridge) - bridgeBefore != spent) breach = true;
        calls[this.fulfill.selector]++;
    }

    function _fulfill(uint256 id, uint256 spent) internal books(id) {
        vm.prank(bridge);
        manager.fulfill(id, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", spent);
    }

    function cancel(uint256 seed) external {
        (uint256 id, LilypadJobManager.Job memory j, bool ok) = job(seed);
        if (!ok || j.state != LilypadJobManager.JobState.Requested) return;
        uint256 clientBefore = token.balanceOf(j.client);
        _cancel(id);
        if (token.balanceOf(j.client) - clientBefore != j.payment) breach = true;
        calls[this.cancel.selector]++;
    }

    function _cancel(uint256 id) internal books(id) {
        vm.prank(bridge);
        manager.cancel(id, "no provider");
    }

    function cancelExpired(uint256 seed, uint256 who) external {
        (uint256 id, LilypadJobManager.Job memory j, bool ok) = job(seed);
        if (!ok || j.state != LilypadJobManager.JobState.Requested || block.timestamp <= j.deadline) return;
        _expire(id, address(uint160(bound(who, 1, type(uint160).max))));
        calls[this.cancelExpired.selector]++;
    }

    function _expire(uint256 id, address caller) internal books(id) {
        vm.prank(caller);
        manager.cancelExpired(id);
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 12 hours));
        vm.roll(block.number + 1);
    }

    /// Someone sends the manager tokens outside any job.
    function donate(uint256 amount) external {
        amount = bound(amount, 1, 1e24);
        vm.prank(donor);
        token.transfer(address(manager), amount);
        stray += amount;
        calls[this.donate.selector]++;
    }

    /// The admin recovers stray tokens; one more than the stray must be refused.
    function recoverTokens(uint256 amount) external {
        uint256 before = token.balanceOf(address(manager));
        vm.prank(admin);
        try manager.recoverTokens(address(token), admin, stray + 1) {
            breach = true;
        } catch {}
        if (token.balanceOf(address(manager)) != before) breach = true;
        amount = bound(amount, 0, stray);
        vm.prank(admin);
        manager.recoverTokens(address(token), admin, amount);
        stray -= amount;
        calls[this.recoverTokens.selector]++;
    }

    /// An outsider tries to post results, cancel, expire early and call clients back; the bridge
    /// tries to finish a final job again. All must fail and move nothing.
    function intrude(uint256 seed, uint256 who) external {
        (uint256 id, LilypadJobManager.Job memory j, bool ok) = job(seed);
        if (!ok) return;
        address intruder = address(uint160(bound(who, 0xdead0000, 0xdead00ff)));
        uint256 before = token.balanceOf(address(manager));
        vm.prank(intruder);
        try manager.fulfill(id, "bafyforged", 0) {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try manager.cancel(id, "forged") {
            breach = true;
        } catch {}
        if (j.state != LilypadJobManager.JobState.Requested || block.timestamp <= j.deadline) {
            vm.prank(intruder);
            try manager.cancelExpired(id) {
                breach = true;
            } catch {}
        }
        if (j.state != LilypadJobManager.JobState.Requested) {
            vm.prank(bridge);
            try manager.fulfill(id, "bafyagain", 0) {
                breach = true;
            } catch {}
            vm.prank(bridge);
            try manager.cancel(id, "again") {
                breach = true;
            } catch {}
        }
        vm.prank(intruder);
        try example.lilypadFulfilled(id, "bafyforged") {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try example.lilypadCancelled(id, "forged") {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try recorder.lilypadFulfilled(id, "bafyforged") {
            breach = true;
        } catch {}
        vm.prank(intruder);
        try manager.recoverTokens(address(token), intruder, 0) {
            breach = true;
        } catch {}
        if (token.balanceOf(address(manager)) != before) breach = true;
        calls[this.intrude.selector]++;
    }

    function jobCount() external view returns (uint256) {
        return jobIds.length;
    }
}

/// @notice Invariants of the job manager's books: its balance always equals the
/// sum of open escrows; every job paid in exactly its payment and, once final,
/// paid out exactly that; each job reached its client at most once (exactly
/// once when final, for the recording client); no outsider call ever succeeds.
contract JobManagerInvariantTest is Test {
    JobHandler internal handler;
    LilypadJobManager internal manager;
    LilypadToken internal token;
    RecordingClient internal recorder;

    function setUp() public {
        vm.warp(1_700_000_000);
        address tokenOwner = address(0x0123);
        address bridge = address(0xB21D6E);
        address exampleOwner = address(0xC0FFEE);
        address account = address(0xE0A);
        token = new LilypadToken(tokenOwner);
        manager = new LilypadJobManager(token, address(0xAD), bridge, 1 days);
        ExampleClient example = new ExampleClient(manager, exampleOwner, 1);
        recorder = new RecordingClient(manager);
        TestClient[3] memory hostile = [
            TestClient(new RevertingClient(manager)),
            new GasBurnerClient(manager),
            new ReturnBombClient(manager)
        ];
        address donor = address(0xD0D0);
        handler = new JobHandler(
            manager, bridge, example, exampleOwner, account, recorder, hostile, address(0xAD), donor
        );
        vm.startPrank(tokenOwner);
        token.mint(address(recorder), 1e30);
        token.mint(address(example), 1e30);
        token.mint(account, 1e30);
        token.mint(donor, 1e30);
        for (uint256 i; i < 3; ++i) {
            token.mint(address(hostile[i]), 1e30);
        }
        vm.stopPrank();
        targetContract(address(handler));
    }

    function invariant_balanceEqualsOpenEscrows() public view {
        uint256 n = handler.jobCount();
        uint256 open;
        for (uint256 i; i < n; ++i) {
            open += manager.escrowOf(handler.jobIds(i));
        }
        uint256 held = token.balanceOf(address(manager)) - handler.stray();
        assertEq(held, open, "balance (less tokens sent outside jobs) == sum of open escrows");
        assertEq(manager.totalEscrowed(), open, "totalEscrowed == sum of open escrows");
        assertEq(handler.totalIn() - handler.totalOut(), held, "in - out == balance less stray tokens");
    }

    function invariant_eachJobPaysOutExactlyItsEscrow() public view {
        uint256 n = handler.jobCount();
        assertEq(manager.jobCount(), n, "every job is the handler's");
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.jobIds(i);
            assertEq(id, i + 1, "ids 1, 2, 3, ...");
            LilypadJobManager.Job memory j = manager.getJob(id);
            assertEq(handler.paidIn(id), j.payment, "paid in: the payment");
            bool open = j.state == LilypadJobManager.JobState.Requested;
            assertEq(handler.paidOut(id), open ? 0 : j.payment, "paid out: nothing, or all of it once final");
            if (j.client == address(recorder)) {
                assertEq(recorder.callbacks(id), open ? 0 : 1, "one callback per final job");
            }
        }
    }

    function invariant_outsidersCannotMoveAJob() public view {
        assertTrue(!handler.breach(), "a call that must fail succeeded, or shares were wrong");
    }
}
