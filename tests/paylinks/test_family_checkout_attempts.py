"""A family checkout's attempts, at the local emulator: an open session is handed out again while
it has time left; once past its expiry the next press makes a new attempt (a new key, a new session)
and the old one is `expired`; a complete one sends the parent to the thank-you notice."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from paylinks.club.tenants import tenant_by_slug
from paylinks.family.checkout import CheckoutReady, ChosenBill, start_checkout
from paylinks.family.page import family_page
from paylinks.store.tables import family_checkouts, utcnow
from paylinks.stripe_api.gateway import StripeGateway
from paylinks.stripe_api.where import stripe_where
from tests.helpers import TENANT, current_settings
from tests.office.test_family_page import busiest_parent


def test_attempts_follow_the_sessions_life(minted_club, engine, emulator):
    settings = current_settings()
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
    gateway = StripeGateway(settings, account=club.stripe_account)
    context = stripe_where(engine, gateway, settings)
    parent_id = busiest_parent(engine)
    with engine.connect() as connection:
        page = family_page(connection, club, parent_id, context)
    assert page is not None
    chosen = [ChosenBill(i.row_id, i.mint_version, i.amount_cents) for i in page.payable_together]
    now = utcnow()

    def press(at):
        ready = start_checkout(
            engine, gateway, club, parent_id, context, chosen, page_url="https://o.example/f/x", now=at
        )
        assert isinstance(ready, CheckoutReady)
        return ready

    first = press(now)
    again = press(now + timedelta(minutes=20))  # 11 minutes left: the same session
    assert (again.url, again.reused) == (first.url, True)
    later = press(now + timedelta(minutes=40))  # past its expiry: a new attempt
    assert later.url != first.url and not later.reused
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(family_checkouts.c.idempotency_key, family_checkouts.c.status).order_by(
                family_checkouts.c.id
            )
        ).all()
    assert [r.status.value for r in rows] == ["expired", "open"]
    assert rows[0].idempotency_key.endswith("-1") and rows[1].idempotency_key.endswith("-2")
    assert rows[0].idempotency_key[:-2] == rows[1].idempotency_key[:-2]
    assert emulator.emulator.counts()["checkout_sessions"] == 2

    with engine.begin() as connection:  # the ledger saw it paid
        connection.execute(
            sa.update(family_checkouts).where(family_checkouts.c.status == "open").values(status="complete")
        )
    paid = press(now + timedelta(minutes=41))
    assert paid.paid and paid.url is None and paid.family_checkout_id == later.family_checkout_id
    assert emulator.emulator.counts()["checkout_sessions"] == 2
