"""Sequences the club-that-lives state machine (tests/test_club_lives.py) found wrong, kept as
plain steps: the club's tables changed with SQL, parents and banks acting through the emulator,
the real flows run in between. Each test says what went wrong before its fix."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import stripe

from flows.backfill_payment_links import backfill_payment_links
from flows.reconcile_payments import reconcile_payments
from paylinks.store.tables import parents, payment_links, payments, players, products, tenants

# Storage semantics matter here (the state machine's shrunk sequences, on both stores): PostgreSQL too.
pytestmark = pytest.mark.storage

TENANT = "alpha-fc"


def seed(engine: sa.Engine, slug: str = TENANT) -> dict[str, int]:
    """One family: a parent, a signed player, a fee billed to every signed player."""
    with engine.begin() as connection:
        tenant_id = connection.execute(
            sa.insert(tenants)
            .values(slug=slug, name=slug.title(), reply_to_email=f"office@{slug}.test", currency="usd")
            .returning(tenants.c.id)
        ).scalar_one()
        parent_id = connection.execute(
            sa.insert(parents)
            .values(tenant_id=tenant_id, first_name="Pat", last_name="Okafor", email=f"okafor@{slug}.test")
            .returning(parents.c.id)
        ).scalar_one()
        player_id = connection.execute(
            sa.insert(players)
            .values(
                tenant_id=tenant_id,
                parent_id=parent_id,
                first_name="Kid",
                last_name="Okafor",
                status="signed",
            )
            .returning(players.c.id)
        ).scalar_one()
        product_id = connection.execute(
            sa.insert(products)
            .values(
                tenant_id=tenant_id,
                name="Season dues",
                amount_cents=12000,
                active=True,
                bill_signed_players=True,
            )
            .returning(products.c.id)
        ).scalar_one()
    return {"tenant": tenant_id, "parent": parent_id, "player": player_id, "product": product_id}


def the_row(engine: sa.Engine, tenant_id: int | None = None) -> sa.RowMapping:
    """The one row (of the tenant)."""
    query = sa.select(payment_links)
    if tenant_id is not None:
        query = query.where(payment_links.c.tenant_id == tenant_id)
    with engine.connect() as connection:
        (row,) = connection.execute(query).mappings().all()
        return row


def ledger(engine: sa.Engine) -> list[sa.RowMapping]:
    with engine.connect() as connection:
        return connection.execute(sa.select(payments).order_by(payments.c.id)).mappings().all()


def pay(url: str, **form: str) -> dict[str, Any]:
    """A parent pays through the link's page."""
    response = httpx.post(url, data=form, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def refund(emulator, payment_intent: str, **params: Any) -> None:
    """The club refunds from its Stripe dashboard."""
    client = stripe.StripeClient(
        "sk_test_paylinks_tests", base_addresses={"api": emulator.url}, max_network_retries=0
    )
    client.v1.refunds.create(params={"payment_intent": payment_intent, **params})


def test_a_refund_made_before_the_first_reconcile_is_recorded(settings, engine, emulator):
    # Found as: backfill → a parent pays by card → the club refunds part of it → reconcile.
    # The first reconcile of a tenant scans link sessions instead of reading events, and the
    # scan saw the payment but never the refund: the ledger said nothing was refunded, and the
    # refund event, older than the cursor the scan left, was never read afterwards either.
    seed(engine)
    backfill_payment_links(tenant=TENANT, commit=True)
    session = pay(the_row(engine)["stripe_payment_link_url"])
    refund(emulator, session["payment_intent"], amount=500)

    reconcile_payments(tenant=TENANT)

    (record,) = ledger(engine)
    assert record["refunded_cents"] == 500
    assert the_row(engine)["status"].value == "paid"  # most of the money stays: still paid


def test_a_full_refund_before_the_first_reconcile_leaves_the_row_unpaid(settings, engine, emulator):
    # The same, refunded in full: the row was left `paid` though the money had gone back.
    seed(engine)
    backfill_payment_links(tenant=TENANT, commit=True)
    session = pay(the_row(engine)["stripe_payment_link_url"])
    refund(emulator, session["payment_intent"])

    reconcile_payments(tenant=TENANT)

    (record,) = ledger(engine)
    assert record["refunded_cents"] == record["amount_cents"] == 12000
    assert the_row(engine)["status"].value == "refunded"


def test_a_refund_is_not_lost_to_another_tenant_reconciled_first(settings, engine, emulator):
    # Two clubs on one Stripe account. A Beta parent pays and is refunded in full; then every
    # tenant is reconciled, Alpha first. Alpha's run read Beta's refund before Beta's run had
    # recorded the payment, took it for a payment nobody knows and marked the event applied; Beta's
    # run then recorded the payment and skipped its refund as already applied. The row stayed
    # `paid` with the money gone.
    seed(engine, "alpha-fc")
    beta = seed(engine, "beta-united")
    backfill_payment_links(commit=True)
    reconcile_payments()  # both cursors set: news now comes from events
    session = pay(the_row(engine, beta["tenant"])["stripe_payment_link_url"])
    refund(emulator, session["payment_intent"])

    reconcile_payments()

    (record,) = ledger(engine)
    assert record["refunded_cents"] == 12000
    assert the_row(engine, beta["tenant"])["status"].value == "refunded"


def test_a_bank_debit_that_failed_before_the_first_reconcile_is_not_left_processing(
    settings, engine, emulator
):
    # Found as: backfill → a parent pays by bank debit → the debit fails → the first reconcile.
    # That run scans link sessions, and a failed debit's session still reads complete and
    # unpaid: the ledger said `processing` (not chased) for a payment the bank had refused, and
    # the spent link was never replaced, so the family could not pay the bill at all.
    seed(engine)
    backfill_payment_links(tenant=TENANT, commit=True)
    first_link = the_row(engine)["stripe_payment_link_id"]
    session = pay(the_row(engine)["stripe_payment_link_url"], payment_status="unpaid")
    response = httpx.post(
        f"{emulator.url}/_emulator/checkout_sessions/{session['id']}/settle",
        data={"outcome": "failed"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text

    reconcile_payments(tenant=TENANT)

    (record,) = ledger(engine)
    assert record["status"].value == "failed"
    row = the_row(engine)
    assert row["status"].value == "pending"
    assert row["stripe_payment_link_id"] not in (None, first_link)  # a fresh link that can take payment


def test_a_payment_made_while_the_key_was_in_another_account_is_recorded_when_it_returns(
    settings, use_settings, engine, emulator
):
    # Found as: the key moves to another Stripe account → a parent pays the link of the account
    # left behind (an old email) → reconcile, clean, in the new account → the key moves back. The
    # state machine counted the payment as seen by that reconcile; it was not (reconcile reads the
    # key's account). What must hold: once back, the next reconcile records it, and nobody is
    # chased for the bill.
    from stripe_emulator import EmulatorServer

    seed(engine)
    backfill_payment_links(tenant=TENANT, commit=True)
    reconcile_payments(tenant=TENANT)  # the first account's cursor is set
    old_link = the_row(engine)["stripe_payment_link_url"]
    with EmulatorServer(host="127.0.0.1", port=0) as other:
        use_settings(stripe_api_base=other.url)
        backfill_payment_links(tenant=TENANT, commit=True)  # minted again in the other account
        pay(old_link)
        reconcile_payments(tenant=TENANT)
        assert ledger(engine) == []  # not seen from here: another account

        use_settings(stripe_api_base=emulator.url)
        reconcile_payments(tenant=TENANT)

    (record,) = ledger(engine)
    assert record["amount_cents"] == 12000
    assert the_row(engine)["status"].value == "paid"  # the bill is settled: no reminder, no blast
