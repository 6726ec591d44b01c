// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {JobFixture} from "./utils/JobFixture.sol";
import {TestClient} from "./utils/JobClients.sol";
import {vm} from "./utils/Vm.sol";

import {LilypadJobManager} from "../src/LilypadJobManager.sol";

/// @notice Fuzzed payments, spends, times and gas (runs from foundry.toml):
/// every token that enters the manager leaves it exactly once, to the bridge
/// and the client in the documented shares.
contract JobManagerFuzzTest is JobFixture {
    function client(uint256 kind) internal view returns (TestClient) {
        kind %= 4;
        if (kind == 0) return recorder;
        if (kind == 1) return reverter;
        if (kind == 2) return burner;
        return bomber;
    }

    function testFuzz_fulfill_conservation(uint256 background, uint256 payment, uint256 spent, uint256 kind)
        public
    {
        // Another client's open job keeps the manager's balance non-zero throughout.
        background = bound(background, 1, FUNDS);
        requestBy(probe, background);
        payment = bound(payment, 1, FUNDS);
        spent = bound(spent, 0, payment);
        TestClient c = client(kind);

        uint256 id = requestBy(c, payment);
        assertEq(token.balanceOf(address(manager)), background + payment, "balance == open escrows");
        fulfillAs(id, spent);

        uint256 toClient = token.balanceOf(address(c)) - (FUNDS - payment);
        uint256 toBridge = token.balanceOf(bridge);
        assertEq(toBridge, spent, "bridge gets what it spent");
        assertEq(toClient, payment - spent, "client gets the rest");
        assertEq(toClient + toBridge, payment, "exactly the escrow went out");
        assertEq(token.balanceOf(address(manager)), background, "balance == the open escrow left");
        assertEq(manager.escrowOf(id), 0, "closed");
        assertEq(manager.escrowOf(1), background, "the other job untouched");
    }

    function testFuzz_fulfill_spentAbovePaymentReverts(uint256 payment, uint256 over) public {
        payment = bound(payment, 1, FUNDS);
        over = bound(over, 1, type(uint256).max - payment);
        uint256 id = requestBy(recorder, payment);
        vm.expectRevert(
            abi.encodeWithSelector(
                LilypadJobManager.SpentExceedsPayment.selector, id, payment + over, payment
            )
        );
        fulfillAs(id, payment + over);
        assertEq(token.balanceOf(address(manager)), payment, "still escrowed");
    }

    function testFuzz_cancel_refundsEverything(uint256 payment, bool expired, uint256 late, uint256 kind)
        public
    {
        payment = bound(payment, 1, FUNDS);
        TestClient c = client(kind);
        uint256 id = requestBy(c, payment);
        if (expired) {
            vm.warp(DEADLINE + bound(late, 1, 365 days));
            vm.prank(stranger);
            manager.cancelExpired(id);
        } else {
            vm.warp(START + bound(late, 0, 2 * TIMEOUT)); // the bridge may cancel at any time
            cancelAs(id, "fuzz");
        }
        assertEq(token.balanceOf(address(c)), FUNDS, "full refund");
        assertEq(token.balanceOf(address(manager)), 0, "empty");
        assertEq(token.balanceOf(bridge) + token.balanceOf(stranger), 0, "nobody else is paid");
        assertState(id, LilypadJobManager.JobState.Cancelled, "cancelled");
    }

    /// Eight jobs of fuzzed payments (two per client kind), each left open, fulfilled with a
    /// fuzzed spend, cancelled by the bridge or cancelled once expired: the manager always holds exactly the sum of the open escrows, and each closed job
    /// paid out exactly its payment.
    function testFuzz_manyJobs_balanceEqualsOpenEscrows(
        uint256[8] memory payments,
        uint256[8] memory spends,
        uint16 actions
    ) public {
        uint256[8] memory ids;
        for (uint256 i; i < 8; ++i) {
            payments[i] = bound(payments[i], 1, FUNDS / 8);
            ids[i] = requestBy(client(i), payments[i]);
        }
        uint256 bridgeWant;
        uint256 open;
        uint256[4] memory clientWant; // refunds per client kind
        // Pass 0: the bridge fulfills and cancels in time; pass 1: the rest expire.
        for (uint256 pass; pass < 2; ++pass) {
            if (pass == 1) vm.warp(DEADLINE + 1);
            for (uint256 i; i < 8; ++i) {
                uint256 action = (actions >> (2 * i)) & 3;
                if (pass == 0 && action == 1) {
                    uint256 spent = bound(spends[i], 0, payments[i]);
                    fulfillAs(ids[i], spent);
                    bridgeWant += spent;
                    clientWant[i % 4] += payments[i] - spent;
                } else if (pass == 0 && action == 2) {
                    cancelAs(ids[i], "fuzz");
                    clientWant[i % 4] += payments[i];
                } else if (pass == 1 && action == 3) {
                    manager.cancelExpired(ids[i]);
                    clientWant[i % 4] += payments[i];
                } else if (pass == 1 && action == 0) {
                    open += payments[i];
                }
                uint256 sum;
                for (uint256 k; k < 8; ++k) {
                    sum += manager.escrowOf(ids[k]);
                }
                assertEq(token.balanceOf(address(manager)), sum, "balance == sum of open escrows");
            }
        }
        assertEq(token.balanceOf(address(manager)), open, "open jobs' payments");
        assertEq(token.balanceOf(bridge), bridgeWant, "bridge got the spends");
        for (uint256 k; k < 4; ++k) {
            uint256 paid = payments[k] + payments[k + 4];
            assertEq(token.balanceOf(address(client(k))), FUNDS - paid + clientWant[k], "client books");
        }
    }

    /// Fulfill is possible up to and including the deadline second, cancelExpired strictly after:
    /// at every second exactly one of the two.
    function testFuzz_deadlineBoundary(uint256 offset) public {
        offset = bound(offset, 0, 2 * TIMEOUT);
        uint256 a = requestBy(recorder, PAY);
        uint256 b = requestBy(recorder, PAY);
        vm.warp(START + offset);
        bool inTime = offset <= TIMEOUT;

        vm.prank(bridge);
        try manager.fulfill(a, CID, 1) {
            assertTrue(inTime, "fulfilled after the deadline");
        } catch (bytes memory e) {
            assertTrue(!inTime, "refused in time");
            assertTrue(selectorOf(e) == LilypadJobManager.JobExpired.selector, "JobExpired");
        }
        vm.prank(stranger);
        try manager.cancelExpired(b) {
            assertTrue(!inTime, "expired in time");
        } catch (bytes memory e) {
            assertTrue(inTime, "refused after the deadline");
            assertTrue(selectorOf(e) == LilypadJobManager.JobNotExpired.selector, "JobNotExpired");
        }
    }

    /// Whatever gas the bridge sends, a sound client's callback either gets its full allowance
    /// or the whole fulfill reverts (the job stays open): the bridge cannot make it fail.
    function testFuzz_bridgeCannotStarveTheCallback(uint256 gas) public {
        gas = bound(gas, 30_000, 500_000);
        uint256 id = requestBy(probe, PAY);
        vm.prank(bridge);
        try manager.fulfill{gas: gas}(id, CID, 1) {
            assertEq(probe.ran(), 1, "finalized: the callback must have run");
            assertState(id, LilypadJobManager.JobState.Fulfilled, "fulfilled");
        } catch {
            assertEq(probe.ran(), 0, "reverted: nothing ran");
            assertState(id, LilypadJobManager.JobState.Requested, "still open");
            assertEq(token.balanceOf(address(manager)), PAY, "still escrowed");
        }
    }

    /// The same, gas by gas across the threshold, for fulfill and for cancel with the longest
    /// reason: below it the call reverts, from it on the callback runs with its whole allowance;
    /// never a finalized job with a starved callback.
    function test_bridgeCannotStarveTheCallback_scan() public {
        scan(false);
        scan(true);
    }

    function scan(bool cancelling) internal {
        string memory reason = repeat("r", manager.MAX_REASON_BYTES());
        uint256 reverted;
        uint256 finalized;
        for (uint256 gas = 200_000; gas < 320_000; gas += 50) {
            uint256 id = requestBy(probe, PAY);
            uint256 ranBefore = probe.ran();
            vm.prank(bridge);
            bool ok;
            if (cancelling) {
                try manager.cancel{gas: gas}(id, reason) {
                    ok = true;
                } catch {}
            } else {
                try manager.fulfill{gas: gas}(id, CID, 1) {
                    ok = true;
                } catch {}
            }
            if (ok) {
                assertEq(probe.ran(), ranBefore + 1, "finalized: the callback must have run");
                finalized++;
            } else {
                assertTrue(finalized == 0, "once enough, more gas is enough too");
                assertState(id, LilypadJobManager.JobState.Requested, "still open");
                reverted++;
            }
        }
        assertTrue(reverted > 0 && finalized > 0, "the scan crosses the threshold");
    }

    /// The first byte of an input's key: anything but space, control bytes, DEL and '='.
    function testFuzz_inputKeyByte(uint8 c) public {
        string memory input = string(abi.encodePacked(bytes1(c), "=v"));
        bool valid = c > 0x20 && c != 0x7f && c != 0x3d;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(LilypadJobManager.InvalidInput.selector, 0));
        recorder.request("m", inputs1(input), PAY);
        assertEq(manager.jobCount(), valid ? 1 : 0, "created iff valid");
    }
}
