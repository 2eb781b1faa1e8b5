"""Stripe's webhooks at the office: a valid signature is applied (the row becomes paid within
seconds); a wrong signature, an old timestamp or a replay changes nothing; an unknown event type
is answered and ignored."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import sqlalchemy as sa

from paylinks.store.tables import payment_links, stripe_events
from tests.helpers import stripe_signed_headers, wait_for
from tests.office.conftest import TENANT, WEBHOOK_SECRET

# The tests marked `storage` run on PostgreSQL too (an event applied once by its unique id, two events
# of one payment applied at once); the rest on SQLite.


def signed(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict[str, str]:
    return stripe_signed_headers(payload, secret, at)


def post(office, payload: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{office.url}/stripe/webhook", content=payload, headers=headers, timeout=30)


def paid_event(engine, stripe_client) -> tuple[dict, int]:
    """Pay an open link at the emulator as a parent would; Stripe's checkout.session.completed event for it."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(payment_links.c.id, payment_links.c.stripe_payment_link_url).where(
                payment_links.c.status == "pending"
            )
        ).first()
    assert httpx.post(row.stripe_payment_link_url).status_code == 200
    events = stripe_client.v1.events.list(params={"type": "checkout.session.completed", "limit": 1}).data
    return events[0].to_dict(), row.id


def row_status(engine, row_id: int) -> str:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(payment_links.c.status).where(payment_links.c.id == row_id)
        ).scalar()


def test_bad_signatures_change_nothing(minted_club, engine, office, stripe_client):
    event, row_id = paid_event(engine, stripe_client)
    payload = json.dumps(event)
    for body, headers in (
        (payload, signed(payload, secret="whsec_someone_else")),
        (payload, signed(payload, at=int(time.time()) - 600)),  # older than Stripe's five-minute tolerance
        (payload.replace('"livemode": false', '"livemode": true'), signed(payload)),  # signed, then altered
        (payload, {"content-type": "application/json"}),  # no signature at all
    ):
        assert post(office, body, headers).status_code == 400
    time.sleep(0.5)
    assert row_status(engine, row_id) == "pending"
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(stripe_events)).scalar() == 0


@pytest.mark.storage  # a replayed event applied once (its unique id)
def test_a_valid_event_is_applied_once_even_when_replayed(minted_club, engine, office, stripe_client):
    event, row_id = paid_event(engine, stripe_client)
    payload = json.dumps(event)
    headers = signed(payload)
    answer = post(office, payload, headers)
    assert answer.status_code == 200 and answer.json() == {"received": event["id"]}
    assert wait_for(lambda: row_status(engine, row_id) == "paid")
    assert post(office, payload, headers).status_code == 200  # Stripe retries; so might an attacker
    time.sleep(0.5)
    with engine.connect() as connection:
        applied = connection.execute(sa.select(stripe_events.c.event_id, stripe_events.c.source)).all()
    assert applied == [(event["id"], "webhook")]
    assert row_status(engine, row_id) == "paid"


def test_an_unknown_event_type_is_answered_and_ignored(minted_club, engine, office):
    payload = json.dumps(
        {
            "id": "evt_unknown_1",
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    )
    assert post(office, payload, signed(payload)).status_code == 200
    assert httpx.get(f"{office.url}/healthz").status_code == 200


def test_the_emulator_delivers_signed_webhooks_and_the_row_is_paid_within_seconds(
    demo_club, engine, office, use_settings
):
    from flows.backfill_payment_links import backfill_payment_links
    from stripe_emulator import EmulatorServer

    with EmulatorServer(
        webhook_url=f"{office.url}/stripe/webhook", webhook_secret=WEBHOOK_SECRET
    ) as delivering:
        use_settings(stripe_api_base=delivering.url)
        backfill_payment_links(tenant=TENANT, commit=True)
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(payment_links.c.id, payment_links.c.stripe_payment_link_url).where(
                    payment_links.c.status == "pending"
                )
            ).first()
        started = time.monotonic()
        assert httpx.post(row.stripe_payment_link_url).status_code == 200
        assert wait_for(lambda: row_status(engine, row.id) == "paid", timeout=10)
        assert time.monotonic() - started < 5


@pytest.mark.storage  # two events of one payment applied at once: the row lock
def test_a_failed_bank_debit_reported_by_webhook_gets_a_fresh_link_at_once(
    minted_club, engine, emulator, office, stripe_client
):
    with engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(payment_links).where(
                    payment_links.c.status == "pending", payment_links.c.order_id.is_(None)
                )
            )
            .mappings()
            .first()
        )
    session = emulator.emulator.open_session(row["stripe_payment_link_id"])["id"]
    emulator.emulator.complete_session(session, payment_method="bank_debit")
    emulator.emulator.settle(session, outcome="failed")
    for kind in ("checkout.session.completed", "checkout.session.async_payment_failed"):
        (event,) = stripe_client.v1.events.list(params={"type": kind, "limit": 1}).data
        payload = json.dumps(event.to_dict())
        assert post(office, payload, signed(payload)).status_code == 200

    def replaced() -> bool:
        with engine.connect() as connection:
            now = (
                connection.execute(sa.select(payment_links).where(payment_links.c.id == row["id"]))
                .mappings()
                .one()
            )
        return (
            now["stripe_payment_link_id"] not in (None, row["stripe_payment_link_id"])
            and now["status"] == "pending"
        )

    assert wait_for(replaced, timeout=15)
    with engine.connect() as connection:
        fresh = connection.execute(
            sa.select(payment_links.c.stripe_payment_link_id).where(payment_links.c.id == row["id"])
        ).scalar_one()
    assert stripe_client.v1.payment_links.retrieve(fresh).active
