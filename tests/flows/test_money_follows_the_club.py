"""The club changes and Stripe reports back late, in pieces or in reverse: paylinks stays right
about who owes what. One test per situation, each run through the real flows, the emulator over
HTTP and SQLite/PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flows.backfill_payment_links import BackfillIncompleteError, backfill_payment_links
from flows.reconcile_payments import reconcile_payments
from paylinks.billing.plan import Action
from paylinks.payments.transitions import Outcome
from paylinks.present.backfill import backfill_tables
from paylinks.present.reconcile import reconcile_tables
from paylinks.store.tables import orders, parents, payment_links, payments, players, tenants
from tests.helpers import TENANT, rows

# The tests marked `storage` run on PostgreSQL too (the ledger's locked row and conditional updates,
# a stored time read back); the rest on SQLite.

OTHER_TENANT = "northside-eagles"


def a_row(engine, with_order: bool, status: str = "pending") -> sa.RowMapping:
    return next(
        r
        for r in rows(engine).values()
        if (r["order_id"] is not None) == with_order
        and r["status"].value == status
        and r["tenant_id"] == tenant_id(engine)
    )


def tenant_id(engine, slug: str = TENANT) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(tenants.c.id).where(tenants.c.slug == slug)).scalar_one()


def link(stripe_client, link_id: str):
    return stripe_client.v1.payment_links.retrieve(link_id)


def status_of(engine, row_id: int) -> str:
    return rows(engine)[row_id]["status"].value


def order_status(engine, order_id: int) -> str:
    with engine.connect() as connection:
        return connection.execute(sa.select(orders.c.status).where(orders.c.id == order_id)).scalar_one()


def pay(emulator, row) -> str:
    """A parent pays the row's link by card; returns the checkout session id."""
    return emulator.emulator.pay(row["stripe_payment_link_id"])["id"]


def test_a_player_who_moves_parent_is_billed_to_the_new_parent(settings, engine, minted_club):
    row = a_row(engine, with_order=False)
    with engine.begin() as connection:
        player = (
            connection.execute(sa.select(players).where(players.c.id == row["player_id"])).mappings().one()
        )
        new_parent = (
            connection.execute(
                sa.select(parents.c.id).where(
                    parents.c.tenant_id == player["tenant_id"], parents.c.id != player["parent_id"]
                )
            )
            .scalars()
            .first()
        )
        connection.execute(
            sa.update(players).where(players.c.id == player["id"]).values(parent_id=new_parent)
        )
    links_before = {
        r["id"]: r["stripe_payment_link_id"]
        for r in rows(engine).values()
        if r["player_id"] == player["id"] and r["order_id"] is None
    }
    moved = set(links_before)

    (dry,) = backfill_payment_links(tenant=TENANT, commit=False)
    assert {s.row_id for s in dry.plan.steps if s.action is Action.relink} == moved
    (report,) = backfill_payment_links(tenant=TENANT, commit=True)

    after = rows(engine)
    assert all(after[i]["parent_id"] == new_parent for i in moved)
    assert {i: after[i]["stripe_payment_link_id"] for i in moved} == links_before  # never re-minted
    assert sorted(report.relinked) == sorted(moved) and report.loaded == 0


def test_a_replaced_order_keeps_its_link_and_the_payment_marks_the_new_order(
    settings, engine, emulator, minted_club, stripe_client
):
    row = a_row(engine, with_order=True)
    with engine.begin() as connection:
        old = connection.execute(sa.select(orders).where(orders.c.id == row["order_id"])).mappings().one()
        connection.execute(sa.update(orders).where(orders.c.id == old["id"]).values(status="cancelled"))
        new_order = connection.execute(
            sa.insert(orders)
            .values(
                tenant_id=old["tenant_id"],
                player_id=old["player_id"],
                parent_id=old["parent_id"],
                product_id=old["product_id"],
                amount_cents=old["amount_cents"],
                status="pending",
            )
            .returning(orders.c.id)
        ).scalar_one()

    backfill_payment_links(tenant=TENANT, commit=True)
    after = rows(engine)[row["id"]]
    assert after["order_id"] == new_order
    assert after["stripe_payment_link_id"] == row["stripe_payment_link_id"]  # no re-mint
    assert link(stripe_client, row["stripe_payment_link_id"]).metadata["order_id"] == str(new_order)

    pay(emulator, after)
    reconcile_payments(tenant=TENANT)
    assert status_of(engine, row["id"]) == "paid"
    assert order_status(engine, new_order) == "paid"
    assert order_status(engine, old["id"]) == "cancelled"  # a cancelled order never becomes paid


def test_a_bill_cancelled_then_paid_before_the_backfill_is_refund_due(
    settings, engine, emulator, minted_club
):
    row = a_row(engine, with_order=True)
    with engine.begin() as connection:
        connection.execute(sa.update(orders).where(orders.c.id == row["order_id"]).values(status="cancelled"))
    session = pay(emulator, row)  # the family pays in the window before the next backfill

    (report,) = reconcile_payments(tenant=TENANT)

    assert status_of(engine, row["id"]) == "refund_due"
    assert order_status(engine, row["order_id"]) == "cancelled"
    (due,) = report.result.of(Outcome.refund_due)
    assert (due.row_id, due.session_id, due.amount_cents) == (row["id"], session, row["amount_cents"])
    refund_table = reconcile_tables(report)[1]
    assert refund_table.rows and session in refund_table.rows[0]
    # Not chased, and the next backfill leaves it for a person to resolve.
    (again,) = backfill_payment_links(tenant=TENANT, commit=True)
    assert status_of(engine, row["id"]) == "refund_due"


@pytest.mark.storage  # two payments of one bill: the locked row decides which pays
def test_a_second_payment_of_one_bill_is_refund_due(settings, engine, emulator, minted_club):
    row = a_row(engine, with_order=False)
    # Two sessions opened before either completes: Stripe lets both finish.
    first = emulator.emulator.open_session(row["stripe_payment_link_id"])["id"]
    second = emulator.emulator.open_session(row["stripe_payment_link_id"])["id"]
    emulator.emulator.complete_session(first)
    emulator.emulator.complete_session(second)

    (report,) = reconcile_payments(tenant=TENANT)

    (paid,) = report.result.of(Outcome.marked_paid)
    (due,) = report.result.of(Outcome.refund_due)
    assert {paid.session_id, due.session_id} == {first, second}
    assert status_of(engine, row["id"]) == "refund_due"
    with engine.connect() as connection:
        ledger = {r.checkout_session_id: r.refund_due for r in connection.execute(sa.select(payments))}
    assert ledger == {paid.session_id: False, due.session_id: True}


@pytest.mark.storage  # conditional updates (pending → processing, order pending → paid)
def test_a_slow_payment_is_processing_and_a_failed_one_gets_a_fresh_link(
    settings, engine, emulator, minted_club, stripe_client
):
    row = a_row(engine, with_order=True)
    reconcile_payments(tenant=TENANT)  # the cursor is set: news comes from events
    session = emulator.emulator.open_session(row["stripe_payment_link_id"])["id"]
    emulator.emulator.complete_session(session, payment_method="bank_debit")

    reconcile_payments(tenant=TENANT)
    assert status_of(engine, row["id"]) == "processing"

    emulator.emulator.settle(session, outcome="failed")
    (report,) = reconcile_payments(tenant=TENANT)

    after = rows(engine)[row["id"]]
    assert after["status"].value == "pending" and after["mint_version"] == row["mint_version"] + 1
    assert report.replaced_links == [row["id"]]
    fresh = link(stripe_client, after["stripe_payment_link_id"])
    assert fresh.id != row["stripe_payment_link_id"] and fresh.active
    assert order_status(engine, row["order_id"]) == "pending"
    # The fresh link takes payment; the spent one is never offered again.
    pay(emulator, after)
    reconcile_payments(tenant=TENANT)
    assert status_of(engine, row["id"]) == "paid" and order_status(engine, row["order_id"]) == "paid"


def test_a_refund_or_a_lost_dispute_leaves_no_row_paid(
    settings, engine, emulator, minted_club, stripe_client
):
    refunded, disputed, partly = [r for r in rows(engine).values() if r["status"].value == "pending"][:3]
    intents = {}
    for row in (refunded, disputed, partly):
        session = pay(emulator, row)
        intents[row["id"]] = stripe_client.v1.checkout.sessions.retrieve(session).payment_intent
    reconcile_payments(tenant=TENANT)
    assert {status_of(engine, r["id"]) for r in (refunded, disputed, partly)} == {"paid"}

    stripe_client.v1.refunds.create(params={"payment_intent": intents[refunded["id"]]})
    stripe_client.v1.refunds.create(params={"payment_intent": intents[partly["id"]], "amount": 100})
    emulator.emulator.dispute(intents[disputed["id"]], status="lost")
    (report,) = reconcile_payments(tenant=TENANT)

    assert status_of(engine, refunded["id"]) == "refunded"
    assert status_of(engine, disputed["id"]) == "refunded"
    assert status_of(engine, partly["id"]) == "paid"  # most of the money is still the club's
    outcomes = {(a.outcome, a.row_id) for a in report.result.applied}
    assert {
        (Outcome.refunded, refunded["id"]),
        (Outcome.partially_refunded, partly["id"]),
        (Outcome.dispute_lost, disputed["id"]),
    } <= outcomes


def test_one_tenants_stripe_refusal_does_not_stop_the_others(
    settings, engine, emulator, minted_club, stripe_client
):
    from paylinks.billing.price_tiers import price_lookup_key
    from paylinks.club.tenants import tenant_by_slug

    # At Stripe, an archived price already holds the lookup key of one of the other club's
    # tiers: Stripe refuses (400) to create the tier, so that club cannot be backfilled.
    with engine.connect() as connection:
        eagles = tenant_by_slug(connection, OTHER_TENANT)
        product_id, amount = connection.execute(
            sa.text(
                "SELECT id, amount_cents FROM products WHERE tenant_id = :t AND bill_signed_players AND active"
            ),
            {"t": eagles.id},
        ).first()
    squatter = stripe_client.v1.prices.create(
        params={
            "currency": eagles.currency,
            "unit_amount": amount,
            "product_data": {"name": "someone else's"},
            "lookup_key": price_lookup_key(eagles, product_id, amount),
        }
    )
    stripe_client.v1.prices.update(squatter.id, params={"active": False})

    state = backfill_payment_links(commit=True, return_state=True)

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, BackfillIncompleteError) and OTHER_TENANT in str(error)
    by_tenant = {r.tenant: r for r in error.reports}
    assert by_tenant[OTHER_TENANT].aborted and not by_tenant[TENANT].failed
    eagles = tenant_id(engine, OTHER_TENANT)
    assert not [r for r in rows(engine).values() if r["tenant_id"] == eagles and r["stripe_payment_link_id"]]


def test_a_link_stripe_does_not_have_is_a_finding_not_a_crash(settings, engine, emulator, minted_club):
    row = a_row(engine, with_order=True)
    with engine.begin() as connection:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(stripe_payment_link_id="plink_gone")
        )
        connection.execute(sa.update(orders).where(orders.c.id == row["order_id"]).values(status="cancelled"))

    (report,) = backfill_payment_links(tenant=TENANT, commit=True)

    assert [(f.kind.value, f.row_id) for f in report.retire.findings] == [
        ("link_missing_at_stripe", row["id"])
    ]
    assert status_of(engine, row["id"]) == "cancelled"
    assert any("Stripe has no such link" in cells[2] for cells in backfill_tables(report)[3].rows)


def test_after_the_key_moves_to_another_account_rows_are_reminted_and_never_mailed(
    settings, engine, minted_club, use_settings
):
    from flows.outstanding_balance_email import outstanding_balance_email
    from stripe_emulator import EmulatorServer

    before = {i: r for i, r in rows(engine).items() if r["status"].value == "pending"}
    with EmulatorServer(host="127.0.0.1", port=0) as elsewhere:
        use_settings(stripe_api_base=elsewhere.url)
        (dry,) = backfill_payment_links(tenant=TENANT, commit=False)
        moved = {s.row_id for s in dry.plan.steps if s.action is Action.remint_elsewhere}
        assert moved == {i for i, r in before.items() if r["tenant_id"] == tenant_id(engine)}
        assert any(
            row[0] == "re-mint here: link minted in another Stripe account/mode"
            for row in backfill_tables(dry)[1].rows
        )
        preview = outstanding_balance_email(tenant=TENANT)
        old_urls = {r["stripe_payment_link_url"] for r in before.values()}
        assert not any(url in old_urls for email in preview.emails for url in email.urls)

        backfill_payment_links(tenant=TENANT, commit=True)
        account = elsewhere.emulator.platform_account_id
        after = rows(engine)
        for row_id in moved:
            assert after[row_id]["stripe_payment_link_id"] != before[row_id]["stripe_payment_link_id"]
            assert after[row_id]["mint_version"] == before[row_id]["mint_version"] + 1
            assert after[row_id]["stripe_account"] == account
        assert elsewhere.emulator.counts()["payment_links"] == len(moved)


@pytest.mark.storage  # a stored time read back (text on SQLite) makes the reservation stale
def test_a_day_old_reservation_adopts_the_link_stripe_already_minted(
    settings, engine, emulator, minted_club, stripe_client
):
    from datetime import timedelta

    from paylinks.store.tables import utcnow

    row = a_row(engine, with_order=False)
    links_before = emulator.emulator.counts()["payment_links"]
    # A crash after Stripe minted the link but before the row recorded it, a day ago; Stripe
    # has since forgotten the idempotency key.
    with engine.begin() as connection:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(
                stripe_payment_link_id=None,
                stripe_payment_link_url=None,
                reserved_at=utcnow() - timedelta(hours=25),
            )
        )
    emulator.emulator.forget_idempotency_keys()

    (report,) = backfill_payment_links(tenant=TENANT, commit=True)

    assert report.adopted == 1 and report.minted == 0
    assert emulator.emulator.counts()["payment_links"] == links_before  # no second link
    assert rows(engine)[row["id"]]["stripe_payment_link_id"] == row["stripe_payment_link_id"]


def test_one_tenants_reconcile_failure_does_not_stop_the_others(settings, engine, minted_club, emulator):
    from flows.reconcile_payments import ReconcileIncompleteError

    backfill_payment_links(tenant=OTHER_TENANT, commit=True)
    eagles_row = next(r for r in rows(engine).values() if r["tenant_id"] == tenant_id(engine, OTHER_TENANT))
    pay(emulator, eagles_row)
    # This club names a Stripe account the key cannot act in: Stripe refuses its requests (a 4xx).
    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == TENANT).values(stripe_account="acct_noSuchClub0001")
        )
    state = reconcile_payments(return_state=True)

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ReconcileIncompleteError)
    assert list(error.failed) == [TENANT] and "does not have access to account" in str(error)
    assert [r.tenant for r in error.reports] == [OTHER_TENANT]
    assert status_of(engine, eagles_row["id"]) == "paid"  # the other club was reconciled
