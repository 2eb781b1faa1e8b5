"""How a bill's status moves on money news, for every status and fact (pure, no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paylinks.payments import transitions
from paylinks.payments.transitions import Outcome
from paylinks.vocabulary import PaymentLinkStatus, PaymentStatus

statuses = st.sampled_from(list(PaymentLinkStatus))
sessions = st.sampled_from([None, "cs_1", "cs_2"])


@given(statuses, sessions, st.booleans())
def test_money_pays_only_a_bill_that_is_owed_and_still_stands(status, row_session, stands):
    move = transitions.on_money(status, row_session=row_session, session="cs_1", bill_stands=stands)
    if move.outcome is Outcome.marked_paid:
        assert status in (PaymentLinkStatus.pending, PaymentLinkStatus.processing) and stands
    if status in (PaymentLinkStatus.cancelled, PaymentLinkStatus.refunded) or not stands:
        assert move.outcome is not Outcome.marked_paid


@given(st.sampled_from([PaymentLinkStatus.paid, PaymentLinkStatus.refund_due]), st.booleans())
def test_a_second_payment_of_a_paid_bill_is_owed_back(status, stands):
    move = transitions.on_money(status, row_session="cs_1", session="cs_2", bill_stands=stands)
    assert move.outcome is Outcome.refund_due
    assert move.refund_reason == "a second payment of a paid bill"


def test_the_same_payment_told_twice_changes_nothing():
    move = transitions.on_money(PaymentLinkStatus.paid, row_session="cs_1", session="cs_1", bill_stands=True)
    assert move.outcome is Outcome.already_known


def test_money_for_a_cancelled_bill_is_owed_back_with_its_reason():
    move = transitions.on_money(
        PaymentLinkStatus.cancelled, row_session=None, session="cs_1", bill_stands=False
    )
    assert (move.outcome, move.refund_reason) == (Outcome.refund_due, "paid after the bill was cancelled")


@given(statuses, st.booleans())
def test_a_failed_debit_puts_an_owed_bill_back_to_pending_and_replaces_only_a_spent_link(status, spent):
    move = transitions.on_failed(status, spent=spent)
    if status in (PaymentLinkStatus.pending, PaymentLinkStatus.processing):
        assert move.status is PaymentLinkStatus.pending and move.remint == spent
    else:
        assert move.status is None and not move.remint  # a paid or closed bill is left alone


@given(statuses, st.booleans(), st.booleans())
def test_money_going_back_never_leaves_a_bill_paid_by_it_alone(status, others_paying, still_due):
    after = transitions.on_money_gone(status, others_paying=others_paying, refund_still_due=still_due)
    if after is PaymentLinkStatus.paid:
        assert others_paying
    if still_due:
        assert after is PaymentLinkStatus.refund_due


@given(statuses, st.booleans(), st.booleans())
def test_settling_money_owed_back_leaves_refund_due_only_when_nothing_more_is_owed(
    status, still_due, paid_once
):
    after = transitions.on_refund_resolved(status, refund_still_due=still_due, paid_once=paid_once)
    if status is PaymentLinkStatus.refund_due and not still_due:
        assert after is (PaymentLinkStatus.paid if paid_once else PaymentLinkStatus.cancelled)
    else:
        assert after is None


@given(st.sampled_from(list(PaymentStatus)), st.sampled_from(list(PaymentStatus)))
def test_a_payment_record_only_moves_forward(known, reported):
    if transitions.moves_forward(known, reported):
        assert known is PaymentStatus.processing and reported is not PaymentStatus.processing
