"""How a bill's status moves on money news, for every status and fact (pure, no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paylinks.payments import transitions
from paylinks.payments.transitions import Outcome
from paylinks.vocabulary import AllocationStatus, PaidMethod, PaymentLinkStatus, PaymentStatus

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
    if still_due and status is not PaymentLinkStatus.pending:
        assert after is PaymentLinkStatus.refund_due
    if status is PaymentLinkStatus.pending:
        assert after is None  # still owed: money for a bill's old terms going back changes nothing


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


stripe_methods = st.sampled_from([None, PaidMethod.card, PaidMethod.bank_debit])


@given(stripe_methods, stripe_methods)
def test_a_payment_seen_awaiting_settlement_stays_a_bank_debit_whatever_later_news_reads(recorded, reported):
    method = transitions.paid_method(recorded, reported)
    if recorded is PaidMethod.bank_debit:
        assert method is PaidMethod.bank_debit
    elif reported is not None:
        assert method is reported
    else:
        assert method is (recorded or PaidMethod.stripe)


# -- a family's "Pay all": terms that changed, a refund of part of it ------------------------------
def test_a_bill_still_owed_whose_terms_changed_stays_owed_and_its_money_is_owed_back():
    changed = transitions.terms_changed(
        offered_cents=4500, offered_version=1, billed_cents=5000, current_version=2
    )
    assert changed is not None and changed.startswith(transitions.BILL_CHANGED)
    move = transitions.on_money(
        PaymentLinkStatus.pending, row_session=None, session="cs_1", bill_stands=True, changed=changed
    )
    assert (move.outcome, move.row_status) == (Outcome.refund_due, None)
    same = transitions.terms_changed(
        offered_cents=4500, offered_version=3, billed_cents=4500, current_version=3
    )
    assert same is None


portions = st.lists(
    st.builds(
        transitions.Portion,
        st.integers(1, 10_000),
        st.sampled_from([1500, 3000, 4500, 12000]),
        st.just(0),
        st.sampled_from([AllocationStatus.paid, AllocationStatus.refund_due]),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda p: p.allocation_id,
)


@given(portions, st.integers(1, 50_000), st.booleans())
def test_a_refund_lands_on_whole_items_or_is_listed_never_lost(items, cents, in_full):
    split = transitions.split_refund(cents, items, in_full=in_full)
    by_id = {p.allocation_id: p for p in items}
    if in_full:
        assert set(split.whole) == set(by_id) and split.unmatched_cents == 0
        return
    on_items = sum(by_id[i].open_cents for i in split.whole) + sum(c for _, c in split.partial)
    assert on_items + split.unmatched_cents == cents  # every refunded cent is on an item or listed
    if split.ambiguous:
        assert not split.whole and split.unmatched_cents == cents


def test_a_refund_of_one_items_amount_takes_the_item_owed_back_first_and_two_alike_are_ambiguous():
    paid, owed = AllocationStatus.paid, AllocationStatus.refund_due
    split = transitions.split_refund(
        4500, [transitions.Portion(1, 4500, 0, paid), transitions.Portion(2, 4500, 0, owed)], in_full=False
    )
    assert split.whole == (2,)
    split = transitions.split_refund(
        4500, [transitions.Portion(1, 4500, 0, paid), transitions.Portion(2, 4500, 0, paid)], in_full=False
    )
    assert split.ambiguous and split.unmatched_cents == 4500
    split = transitions.split_refund(
        7500, [transitions.Portion(1, 4500, 0, paid), transitions.Portion(2, 3000, 0, paid)], in_full=False
    )
    assert set(split.whole) == {1, 2}
    split = transitions.split_refund(500, [transitions.Portion(1, 4500, 0, paid)], in_full=False)
    assert split.partial == ((1, 500),)  # a one-item payment takes any part
