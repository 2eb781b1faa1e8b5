"""The webhook's edge cases: a signature dated in the future is refused like an old one, and a
validly signed body that is not a Stripe event (not JSON, not an object, no id or type) answers
400 naming what is wrong, never 500; nothing is applied."""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa

from paylinks.store.tables import stripe_events
from tests.helpers import stripe_signed_headers
from tests.office.conftest import WEBHOOK_SECRET

EVENT = '{"id": "evt_edge_1", "type": "charge.succeeded", "data": {"object": {}}}'


def post(office, payload: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{office.url}/stripe/webhook", content=payload, headers=headers, timeout=30)


def events_applied(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(stripe_events)).scalar()


def test_a_signature_dated_in_the_future_is_refused_like_an_old_one(engine, office):
    for at in (int(time.time()) + 600, int(time.time()) + 10 * 365 * 86400, int(time.time()) - 600):
        answer = post(office, EVENT, stripe_signed_headers(EVENT, WEBHOOK_SECRET, at))
        assert answer.status_code == 400, at
        assert "five minutes" in answer.json()["detail"]
    time.sleep(0.3)
    assert events_applied(engine) == 0
    # A clock a little ahead of ours is still Stripe's: within the tolerance, it is accepted.
    assert (
        post(office, EVENT, stripe_signed_headers(EVENT, WEBHOOK_SECRET, int(time.time()) + 60)).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ("[1, 2, 3]", "not a Stripe event"),
        ('"a string"', "not a Stripe event"),
        ("42", "not a Stripe event"),
        ("null", "not a Stripe event"),
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ('{"id": "evt_no_type"}', "not a Stripe event"),
        ('{"type": "charge.succeeded"}', "not a Stripe event"),
        ('{"id": 7, "type": "charge.succeeded"}', "not a Stripe event"),
        ('{"id": "evt_x", "type": ["charge.succeeded"]}', "not a Stripe event"),
        ('{"id": "evt_x", "type": "charge.succeeded", "data": "nope"}', None),
        ("\xff\xfe", "not JSON"),
    ],
)
def test_a_signed_body_that_is_not_an_event_answers_400(engine, office, payload, words):
    answer = post(office, payload, stripe_signed_headers(payload, WEBHOOK_SECRET))
    if words is None:  # an object with an id and a type: answered, and its odd data ignored after
        assert answer.status_code == 200
        return
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["detail"]
    assert events_applied(engine) == 0
