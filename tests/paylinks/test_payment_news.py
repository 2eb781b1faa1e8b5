"""How Stripe's events read as money news: pure, no database, no Prefect."""

from __future__ import annotations

import pytest

from paylinks.payments.news import (
    DisputeNews,
    RefundNews,
    SessionNews,
    SessionState,
    Skipped,
    SkippedEvent,
    news_from_event,
    news_from_scanned_session,
)
from paylinks.vocabulary import PaidMethod


def session_event(kind: str = "checkout.session.completed", **session) -> dict:
    obj = {
        "object": "checkout.session",
        "id": "cs_1",
        "payment_link": "plink_1",
        "payment_intent": "pi_1",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 4500,
        "currency": "usd",
    } | session
    return {"id": "evt_1", "type": kind, "created": 1_700_000_000, "data": {"object": obj}}


def test_a_paid_session_is_money_that_arrived_by_card():
    news = news_from_event(session_event())
    assert news == SessionNews(
        "cs_1", "plink_1", "pi_1", SessionState.paid, 4500, "usd", 1_700_000_000, method=PaidMethod.card
    )


def test_complete_but_unpaid_is_awaiting_and_a_failed_debit_is_failed_both_by_bank_debit():
    awaiting = news_from_event(session_event(payment_status="unpaid"))
    assert (awaiting.state, awaiting.method) == (SessionState.awaiting, PaidMethod.bank_debit)
    failed = news_from_event(session_event("checkout.session.async_payment_failed", payment_status="unpaid"))
    assert (failed.state, failed.method) == (SessionState.failed, PaidMethod.bank_debit)
    settled = news_from_event(session_event("checkout.session.async_payment_succeeded"))
    assert (settled.state, settled.method) == (SessionState.paid, PaidMethod.bank_debit)


def test_a_scanned_paid_session_is_a_bank_debit_only_when_its_settlement_is_known():
    session = session_event()["data"]["object"] | {"created": 1_700_000_000}
    assert news_from_scanned_session(session).method is PaidMethod.card
    assert news_from_scanned_session(session, settled_later=True).method is PaidMethod.bank_debit
    unpaid = news_from_scanned_session(session | {"payment_status": "unpaid"})
    assert (unpaid.state, unpaid.method) == (SessionState.awaiting, PaidMethod.bank_debit)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {
                "id": "evt_x",
                "account": "acct_other",
                "type": "charge.refunded",
                "created": 1,
                "data": {"object": {}},
            },
            SkippedEvent.other_account,
        ),
        ({"id": "evt_x"}, SkippedEvent.malformed),
        (session_event(payment_link=None), SkippedEvent.not_ours),
        (session_event(status="open"), SkippedEvent.open_session),
        (
            {"id": "evt_x", "type": "customer.created", "created": 1, "data": {"object": {}}},
            SkippedEvent.unhandled_type,
        ),
        (
            {
                "id": "evt_x",
                "type": "charge.refunded",
                "created": 1,
                "data": {"object": {"object": "charge"}},
            },
            SkippedEvent.malformed,
        ),
    ],
    ids=[
        "another-account",
        "no-data",
        "not-a-link-session",
        "open-session",
        "unknown-type",
        "refund-without-intent",
    ],
)
def test_events_that_say_nothing_to_paylinks_are_skipped_with_a_reason(event, reason):
    skipped = news_from_event(event)
    assert isinstance(skipped, Skipped) and skipped.reason is reason


def test_an_event_of_the_connected_account_read_for_is_not_foreign():
    event = session_event() | {"account": "acct_club"}
    assert isinstance(news_from_event(event, account="acct_club"), SessionNews)
    assert news_from_event(event).reason is SkippedEvent.other_account


def test_refunds_carry_stripes_running_total_and_disputes_their_status():
    refund = {
        "id": "evt_r",
        "type": "charge.refunded",
        "created": 5,
        "data": {"object": {"object": "charge", "payment_intent": "pi_1", "amount_refunded": 1200}},
    }
    assert news_from_event(refund) == RefundNews("pi_1", 1200, 5)
    dispute = {
        "id": "evt_d",
        "type": "charge.dispute.closed",
        "created": 6,
        "data": {"object": {"object": "dispute", "payment_intent": "pi_1", "status": "lost", "amount": 4500}},
    }
    assert news_from_event(dispute) == DisputeNews("pi_1", "lost", 4500, 6)


def test_a_scanned_session_is_paid_or_awaiting_and_open_ones_are_nothing():
    paid = {
        "id": "cs_2",
        "payment_link": "plink_2",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 100,
        "currency": "jpy",
        "created": 10,
        "payment_intent": {"id": "pi_2"},
    }
    assert news_from_scanned_session(paid) == SessionNews(
        "cs_2", "plink_2", "pi_2", SessionState.paid, 100, "jpy", 10, method=PaidMethod.card
    )
    assert news_from_scanned_session(paid | {"payment_status": "unpaid"}).state is SessionState.awaiting
    assert news_from_scanned_session(paid | {"status": "open"}) is None


FAMILY = {"paylinks_family_checkout": "12", "paylinks_tenant": "3", "paylinks_rows_1": "7:1,8:2"}


def test_a_family_checkout_without_a_link_is_news_found_by_its_metadata():
    news = news_from_event(session_event(payment_link=None, metadata=FAMILY, amount_total=9000))
    assert isinstance(news, SessionNews) and news.is_family
    assert (news.family_checkout_id, news.family_tenant_id, news.payment_link_id) == (12, 3, None)
    assert (news.state, news.amount_cents) == (SessionState.paid, 9000)
    scanned = news_from_scanned_session(
        session_event(payment_link=None, metadata=FAMILY, created=5)["data"]["object"] | {"created": 5}
    )
    assert scanned is not None and scanned.family_checkout_id == 12


def test_a_family_checkout_that_expired_is_news_and_a_links_expiry_is_not():
    expired = news_from_event(
        session_event("checkout.session.expired", payment_link=None, metadata=FAMILY, status="expired")
    )
    assert isinstance(expired, SessionNews) and expired.state is SessionState.expired
    link_expiry = news_from_event(session_event("checkout.session.expired", status="expired"))
    assert isinstance(link_expiry, Skipped) and link_expiry.reason is SkippedEvent.open_session


@pytest.mark.parametrize(
    "metadata",
    [{}, {"paylinks_family_checkout": "fc-1"}, {"paylinks_family_checkout": 12}, {"other_app": "1"}],
)
def test_a_session_naming_no_family_checkout_of_ours_is_not_ours(metadata):
    news = news_from_event(session_event(payment_link=None, metadata=metadata))
    assert isinstance(news, Skipped) and news.reason is SkippedEvent.not_ours
