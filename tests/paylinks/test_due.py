"""A bill's due date (the order's, else the product's, else raised + terms) and its due state in
words, by the club's calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from paylinks.club.due import BadDateError, as_date, due_date, due_state

CHICAGO = ZoneInfo("America/Chicago")


def test_an_orders_own_date_wins_then_the_products_then_raised_plus_terms():
    raised = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # Dec 2, 9 PM in Chicago: raised on Dec 2 there
    common = dict(is_order=True, order_created_at=raised, terms_days=14, zone=CHICAGO)
    assert due_date(order_due_on=date(2027, 1, 5), product_due_on=date(2026, 12, 20), **common) == date(
        2027, 1, 5
    )
    assert due_date(order_due_on=None, product_due_on=date(2026, 12, 20), **common) == date(2026, 12, 20)
    assert due_date(order_due_on=None, product_due_on=None, **common) == date(2026, 12, 16)


def test_a_default_fee_is_due_on_its_products_date_or_has_none():
    fee = dict(is_order=False, order_due_on=None, order_created_at=None, terms_days=14, zone=CHICAGO)
    assert due_date(product_due_on=date(2026, 12, 20), **fee) == date(2026, 12, 20)
    assert due_date(product_due_on=None, **fee) is None


@pytest.mark.parametrize(
    ("due_on", "today", "words"),
    [
        (date(2026, 12, 14), date(2026, 12, 7), "due Dec 14"),
        (date(2026, 12, 14), date(2026, 12, 14), "due today"),
        (date(2026, 12, 14), date(2026, 12, 15), "overdue by 1 day"),
        (date(2026, 12, 14), date(2026, 12, 17), "overdue by 3 days"),
        (date(2027, 1, 3), date(2026, 12, 20), "due Jan 3"),
        (date(2028, 9, 1), date(2026, 12, 20), "due Sep 1, 2028"),
        (None, date(2026, 12, 20), ""),
    ],
)
def test_due_state_in_words(due_on, today, words):
    assert due_state(due_on, today).words == words


def test_a_stored_date_that_is_not_one_names_the_field():
    assert as_date("2026-12-14", "products.due_on") == date(2026, 12, 14)
    with pytest.raises(BadDateError, match=r"products.due_on 'soon' is not a date"):
        as_date("soon", "products.due_on")
