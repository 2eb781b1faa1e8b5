"""A bill's own link and a family's "Pay all" paid at the same moment, their news applied at the
same moment (a webhook and reconcile, two office processes): the bill is paid once and the other
money is owed back, whichever wins. Locking differs by database: PostgreSQL too."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from paylinks.payments.ledger import apply_event
from paylinks.store.tables import payment_allocations
from tests.flows.test_family_money import family_rows, open_checkout, pay, statuses

pytestmark = [pytest.mark.storage, pytest.mark.slow]


def apply_at_once(engine: sa.Engine, events: list[dict]) -> None:
    """Apply each event in its own thread, released together; a writer that finds the database
    busy tries again, as a webhook's reconcile would."""
    barrier = threading.Barrier(len(events))
    errors: list[BaseException] = []

    def apply(event: dict) -> None:
        barrier.wait()
        for _ in range(20):
            try:
                apply_event(engine, event, source="webhook", account=None)
                return
            except sa.exc.OperationalError:  # SQLite: the other writer holds the database
                time.sleep(0.05)
        errors.append(RuntimeError(f"event {event['id']} never applied"))

    threads = [threading.Thread(target=apply, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors


def test_its_own_link_and_pay_all_applied_at_the_same_moment_pay_the_bill_once(
    settings, minted_club, engine, emulator, stripe_client
):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    first = open_checkout(engine, row_ids)
    second = open_checkout(engine, row_ids)  # and a second tab
    pay(bills[0]["stripe_payment_link_url"])
    pay(first.url)
    pay(second.url)
    events = [
        event.to_dict()
        for event in stripe_client.v1.events.list(
            params={"type": "checkout.session.completed", "limit": 10}
        ).data
    ]
    assert len(events) == 3

    apply_at_once(engine, events)

    with engine.connect() as connection:
        found = connection.execute(
            sa.select(payment_allocations.c.payment_link_row_id, payment_allocations.c.status)
        ).all()
    for row_id in row_ids:
        mine = sorted(status.value for row, status in found if row == row_id)
        expected_payments = 3 if row_id == bills[0]["id"] else 2
        assert mine == ["paid"] + ["refund_due"] * (expected_payments - 1), (row_id, mine)
    assert set(statuses(engine, row_ids).values()) == {"refund_due"}
