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
/// (already returned at submission) appears only in the outcomes reached
/// without results: `noResultsInTime` and the failure outcomes (where it is
/// the provider collateral held, in place of the results collateral).
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

    /// @notice No mediation in time: everyone gets back what it paid in. `collateral` is the
    /// provider collateral held: the results collateral after a results challenge, the timeout
    /// collateral after a failure challenge.
    function noMediationInTime(uint256 payment, uint256 collateral, uint256 fee)
        internal
        pure
        returns (Payouts memory p)
    {
        p.toJobCreator = payment + fee;
        p.toProvider = collateral;
    }

    /// @notice The job creator accepted the provider's failure report (or let it stand): the job
    /// creator gets its payment back and the provider its timeout collateral.
    function failureAccepted(uint256 payment, uint256 timeout) internal pure returns (Payouts memory p) {
        p.toJobCreator = payment;
        p.toProvider = timeout;
    }

    /// @notice The mediator found the failure report right: as failureAccepted, and the job
    /// creator's fee pays the mediator.
    function failureUpheld(uint256 payment, uint256 timeout, uint256 fee)
        internal
        pure
        returns (Payouts memory p)
    {
        p.toJobCreator = payment;
        p.toProvider = timeout;
        p.toMediator = fee;
    }

    /// @notice The mediator found the failure report wrong: as mediationRejected with the
    /// timeout collateral in place of the results collateral. The provider loses its timeout
    /// collateral, as if it had not delivered in time.
    function failureRefuted(uint256 payment, uint256 timeout, uint256 fee)
        internal
        pure
        returns (Payouts memory)
    {
        return mediationRejected(payment, timeout, fee);
    }

    /// @notice The whole-deal table (what each party receives over the deal's life, the timeout
    /// collateral returned at submission included), for comparison with the Rust core's
    /// `Settlement::total_to`. The failure outcomes ignore `results` (no results were posted);
    /// for NoMediationInTime after a failure challenge pass `results = 0`.
    function table(
        Outcome outcome,
        uint256 price,
        uint256 payment,
        uint256 timeout,
        uint256 results,
        uint256 fee
    ) internal pure returns (Payouts memory p) {
        if (outcome == Outcome.NoResultsInTime) return noResultsInTime(payment, timeout);
        if (outcome == Outcome.FailureAccepted) return failureAccepted(payment, timeout);
        if (outcome == Outcome.FailureUpheld) return failureUpheld(payment, timeout, fee);
        if (outcome == Outcome.FailureRefuted) return failureRefuted(payment, timeout, fee);
        if (outcome == Outcome.FailureNoMediationInTime) return noMediationInTime(payment, timeout, fee);
        if (outcome == Outcome.Accepted) p = accepted(price, payment, results);
        else if (outcome == Outcome.NoJudgementInTime) p = noJudgementInTime(price, payment, results);
        else if (outcome == Outcome.MediationAccepted) p = mediationAccepted(price, payment, results, fee);
        else if (outcome == Outcome.MediationRejected) p = mediationRejected(payment, results, fee);
        else p = noMediationInTime(payment, results, fee);
        p.toProvider += timeout;
    }
}
