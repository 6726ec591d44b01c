// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Outcome} from "./LilypadTypes.sol";

/// @notice The settlement table: who gets which escrowed funds in each final
/// outcome. The same table as `lilypad_core::settlement::settle`; the tests
/// hold the two equal.
///
/// Escrows, each held per deal and paid in by one party:
/// - Payment (job creator, `payment`, at deal creation);
/// - TimeoutCollateral (provider, `timeout`, at deal creation; returned to the
///   provider when it submits results);
/// - ResultsCollateral (provider, `results` = multiple x price, with the results);
/// - MediationFee (job creator, `fee`, with a challenge).
///
/// Each function returns what each party receives from the escrows the
/// contract still holds when the outcome is reached, so the timeout collateral
/// (already returned at submission) appears only in `noResultsInTime`.
/// `price <= payment` holds for every deal (checked at creation), so nothing here can underflow.
library LilypadSettlement {
    /// @notice What one settling transaction pays to each party.
    struct Payouts {
        uint256 toJobCreator;
        uint256 toProvider;
        uint256 toMediator;
    }

    /// @notice The job creator accepted: the provider gets the price and its results collateral back.
    function accepted(uint256 price, uint256 payment, uint256 results)
        internal
        pure
        returns (Payouts memory p)
    {
        p.toProvider = price + results;
        p.toJobCreator = payment - price;
    }

    /// @notice No judgement in time: the results count as accepted.
    function noJudgementInTime(uint256 price, uint256 payment, uint256 results)
        internal
        pure
        returns (Payouts memory)
    {
        return accepted(price, payment, results);
    }

    /// @notice No results in time: the job creator gets its payment back and the provider's timeout collateral.
    function noResultsInTime(uint256 payment, uint256 timeout) internal pure returns (Payouts memory p) {
        p.toJobCreator = payment + timeout;
    }

    /// @notice The mediator found the results right: the job creator's fee pays the mediator.
    function mediationAccepted(uint256 price, uint256 payment, uint256 results, uint256 fee)
        internal
        pure
        returns (Payouts memory p)
    {
        p.toProvider = price + results;
        p.toJobCreator = payment - price;
        p.toMediator = fee;
    }

    /// @notice The mediator found the results wrong: the mediator gets exactly `fee`, from the
    /// provider's results collateral first and any shortfall from the job creator's fee escrow;
    /// the job creator gets its payment and the rest of both escrows.
    function mediationRejected(uint256 payment, uint256 results, uint256 fee)
        internal
        pure
        returns (Payouts memory p)
    {
        uint256 fromResults = fee < results ? fee : results;
        uint256 fromFee = fee - fromResults;
        p.toMediator = fromResults + fromFee;
        p.toJobCreator = payment + (results - fromResults) + (fee - fromFee);
    }

    /// @notice No mediation in time: everyone gets back what it paid in.
    function noMediationInTime(uint256 payment, uint256 results, uint256 fee)
        internal
        pure
        returns (Payouts memory p)
    {
        p.toJobCreator = payment + fee;
        p.toProvider = results;
    }

    /// @notice The whole-deal table (what each party receives over the deal's life, the timeout
    /// collateral returned at submission included), for comparison with the Rust core's
    /// `Settlement::total_to`.
    function table(
        Outcome outcome,
        uint256 price,
        uint256 payment,
        uint256 timeout,
        uint256 results,
        uint256 fee
    ) internal pure returns (Payouts memory p) {
        if (outcome == Outcome.NoResultsInTime) return noResultsInTime(payment, timeout);
        if (outcome == Outcome.Accepted) p = accepted(price, payment, results);
        else if (outcome == Outcome.NoJudgementInTime) p = noJudgementInTime(price, payment, results);
        else if (outcome == Outcome.MediationAccepted) p = mediationAccepted(price, payment, results, fee);
        else if (outcome == Outcome.MediationRejected) p = mediationRejected(payment, results, fee);
        else p = noMediationInTime(payment, results, fee);
        p.toProvider += timeout;
    }
}
