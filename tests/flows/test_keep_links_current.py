"""The backfill keeps links current: bills that went away or changed stop taking money."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from flows.backfill_payment_links import backfill_payment_links
from flows.reconcile_payments import reconcile_payments
from paylinks.billing.plan import Action
from paylinks.store.tables import orders, players
from tests.helpers import TENANT, rows


def test_cancelled_withdrawn_and_changed_bills_are_retired_or_reminted(
    settings, engine, emulator, minted_club, stripe_client
):
    before = rows(engine)
    with_order = [r for r in before.values() if r["order_id"] is not None]
    cancelled_row, changed_row = with_order[0], with_order[1]
    withdrawn_player = next(
        r["player_id"]
        for r in before.values()
        if r["order_id"] is None
        and r["player_id"] not in {cancelled_row["player_id"], changed_row["player_id"]}
    )
    withdrawn_rows = [r for r in before.values() if r["player_id"] == withdrawn_player]
    paid_row = next(
        r
        for r in before.values()
        if r["player_id"] not in {cancelled_row["player_id"], changed_row["player_id"], withdrawn_player}
    )
    withdrawn_rows += [
        r for r in before.values() if r["player_id"] == paid_row["player_id"] and r is not paid_row
    ]
    httpx.post(paid_row["stripe_payment_link_url"]).raise_for_status()
    reconcile_payments(tenant=TENANT)

    with engine.begin() as connection:
        connection.execute(
            sa.update(orders).where(orders.c.id == cancelled_row["order_id"]).values(status="cancelled")
        )
        connection.execute(
            sa.update(orders).where(orders.c.id == changed_row["order_id"]).values(amount_cents=3333)
        )
        connection.execute(
            sa.update(players).where(players.c.id == withdrawn_player).values(status="withdrawn")
        )
        # The paid player's bill goes away too: a paid link is never touched.
        connection.execute(
            sa.update(players).where(players.c.id == paid_row["player_id"]).values(status="withdrawn")
        )

    (dry,) = backfill_payment_links(tenant=TENANT, commit=False)
    dry_actions = {(s.row_id, s.action) for s in dry.plan.steps}
    assert (cancelled_row["id"], Action.retire) in dry_actions
    assert (changed_row["id"], Action.remint_amount) in dry_actions
    assert all((r["id"], Action.retire) in dry_actions for r in withdrawn_rows)
    assert (paid_row["id"], Action.retire) not in dry_actions

    backfill_payment_links(tenant=TENANT, commit=True)

    after = rows(engine)

    def link(link_id):
        return stripe_client.v1.payment_links.retrieve(link_id)

    for retired in [cancelled_row, *withdrawn_rows]:
        assert after[retired["id"]]["status"].value == "cancelled"
        old = link(retired["stripe_payment_link_id"])
        assert old.active is False and old.inactive_message
    reminted = after[changed_row["id"]]
    assert reminted["status"].value == "pending" and reminted["amount_cents"] == 3333
    assert reminted["stripe_payment_link_id"] != changed_row["stripe_payment_link_id"]
    assert link(changed_row["stripe_payment_link_id"]).active is False
    new_link = link(reminted["stripe_payment_link_id"])
    assert new_link.active is True
    (line_item,) = stripe_client.v1.payment_links.line_items.list(new_link.id).data
    assert line_item.price.unit_amount == 3333
    assert after[paid_row["id"]]["status"].value == "paid"
    assert after[paid_row["id"]]["stripe_payment_link_id"] == paid_row["stripe_payment_link_id"]
    untouched = (
        set(before)
        - {cancelled_row["id"], changed_row["id"], paid_row["id"]}
        - {r["id"] for r in withdrawn_rows}
    )
    assert all(after[i] == before[i] for i in untouched)

    objects = emulator.emulator.counts()
    (again,) = backfill_payment_links(tenant=TENANT, commit=True)
    assert emulator.emulator.counts() == objects and rows(engine) == after


def test_a_bill_that_comes_back_gets_a_fresh_link_in_the_same_row(settings, engine, emulator, minted_club):
    row = next(r for r in rows(engine).values() if r["order_id"] is None)
    with engine.begin() as connection:
        connection.execute(
            sa.update(players).where(players.c.id == row["player_id"]).values(status="withdrawn")
        )
    backfill_payment_links(tenant=TENANT, commit=True)
    with engine.begin() as connection:
        connection.execute(sa.update(players).where(players.c.id == row["player_id"]).values(status="signed"))
    backfill_payment_links(tenant=TENANT, commit=True)
    back = rows(engine)[row["id"]]
    assert back["status"].value == "pending"
    assert back["stripe_payment_link_id"] not in (None, row["stripe_payment_link_id"])
