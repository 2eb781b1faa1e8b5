"""Whether a bill still stands, asked at the three moments paylinks asks it: the backfill planning
links, an email offering them, and money arriving for them. One answer for every club state.

Pinned on the behaviour before the three were one rule: an order stands while pending (and, when
money arrives, once marked paid) unless its player withdrew or its product stopped; a default fee
stands while its player is signed and its product bills signed players.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa

from paylinks.billing.plan import SkipReason, plan_items
from paylinks.club.balances import Withheld, why_withheld
from paylinks.payments.ledger import bill_still_owed
from paylinks.store.tables import metadata, orders, parents, players, products, tenants
from paylinks.stripe_api.gateway import StripeContext

HERE = StripeContext(account="acct_club", livemode=False)
ORDER_STATUSES = (None, "pending", "paid", "cancelled")  # None: the product's default fee
PLAYER_STATUSES = ("registered", "signed", "withdrawn")
STATES = list(itertools.product(ORDER_STATUSES, PLAYER_STATUSES, (True, False), (True, False)))


def _id(state: tuple[Any, ...]) -> str:
    order, player, active, billed = state
    return (
        f"{order or 'fee'}-{player}-{'active' if active else 'stopped'}-{'billed' if billed else 'unbilled'}"
    )


def expected_standing(
    order: str | None, player: str, active: bool, billed: bool, *, paid_counts: bool
) -> bool:
    if order is not None:
        return (
            order in (("pending", "paid") if paid_counts else ("pending",))
            and player != "withdrawn"
            and active
        )
    return player == "signed" and active and billed


@pytest.mark.parametrize("state", STATES, ids=_id)
def test_send_time_offers_only_bills_that_stand(state: tuple[Any, ...]) -> None:
    order, player, active, billed = state
    row = {
        "amount_cents": 5000,
        "order_id": 1 if order else None,
        "order_status": order,
        "order_amount_cents": 5000,
        "player_status": player,
        "product_active": active,
        "product_bill_signed_players": billed,
        "product_amount_cents": 5000,
        "pending_order_id": None,
        "parent_id": 100,
        "url": "https://pay.example/1",
        "stripe_account": HERE.account,
        "livemode": HERE.livemode,
    }
    reason = why_withheld(row, HERE)
    assert (reason is None) == expected_standing(order, player, active, billed, paid_counts=False)
    assert reason is None or reason.no_longer_owed


@pytest.mark.parametrize("state", [s for s in STATES if s[0] in (None, "pending")], ids=_id)
def test_the_backfill_plans_only_bills_that_stand(state: tuple[Any, ...]) -> None:
    """The planner reads pending orders only (the query's filter); a gone order is skipped with a
    reason a treasurer reads, a default fee that does not apply is simply not a bill."""
    order, player, active, billed = state
    the_player = {"player_id": 1, "parent_id": 100, "first_name": "A", "last_name": "B", "status": player}
    the_product = {
        "product_id": 10,
        "name": "Dues",
        "amount_cents": 5000,
        "bill_signed_players": billed,
        "active": active,
    }
    pending = [{"order_id": 5, "player_id": 1, "product_id": 10, "amount_cents": 4500, "parent_id": None}]
    items, skipped = plan_items([the_player], [the_product], pending if order else [])
    planned = [(i.player_id, i.product_id, i.order_id) for i in items]
    standing = expected_standing(order, player, active, billed, paid_counts=False)
    if order:
        assert planned == ([(1, 10, 5)] if standing else [])
        if not standing:
            assert [s.reason for s in skipped] in (
                [SkipReason.player_withdrawn],
                [SkipReason.product_inactive],
            )
    elif standing:
        assert planned == [(1, 10, None)]
    else:
        assert planned == [] and skipped == []


@pytest.fixture(scope="module")
def club() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(tenants).values(id=1, slug="club", name="Club", reply_to_email="a@b.c"))
        connection.execute(sa.insert(parents).values(id=100, tenant_id=1, first_name="P", last_name="Q"))
    return engine


@pytest.mark.parametrize("state", STATES, ids=_id)
def test_money_arriving_counts_a_bill_that_stands_or_was_marked_paid(
    club: sa.Engine, state: tuple[Any, ...]
) -> None:
    order, player, active, billed = state
    with club.begin() as connection:
        for table in (orders, players, products):
            connection.execute(sa.delete(table))
        connection.execute(
            sa.insert(players).values(
                id=1, tenant_id=1, parent_id=100, first_name="A", last_name="B", status=player
            )
        )
        connection.execute(
            sa.insert(products).values(
                id=10, tenant_id=1, name="Dues", amount_cents=5000, active=active, bill_signed_players=billed
            )
        )
        if order:
            connection.execute(
                sa.insert(orders).values(
                    id=5, tenant_id=1, player_id=1, product_id=10, amount_cents=5000, status=order
                )
            )
        row = {"order_id": 5 if order else None, "player_id": 1, "product_id": 10}
        owed = bill_still_owed(connection, row)
    assert owed == expected_standing(order, player, active, billed, paid_counts=True)


def test_a_vanished_order_is_not_owed(club: sa.Engine) -> None:
    with club.connect() as connection:
        assert not bill_still_owed(connection, {"order_id": 999, "player_id": 1, "product_id": 10})


def test_a_row_whose_order_vanished_is_not_offered() -> None:
    row = {
        "amount_cents": 5000,
        "order_id": 7,
        "order_status": None,  # the LEFT JOIN found no such order any more
        "order_amount_cents": None,
        "player_status": "signed",
        "product_active": True,
        "product_bill_signed_players": True,
        "product_amount_cents": 5000,
        "pending_order_id": None,
        "parent_id": 100,
        "url": "https://pay.example/1",
        "stripe_account": HERE.account,
        "livemode": HERE.livemode,
    }
    assert why_withheld(row, HERE) is Withheld.order_not_pending


def test_reasons_read_as_words() -> None:
    assert Withheld.order_not_pending.no_longer_owed and not Withheld.not_minted.no_longer_owed
    assert Withheld.order_not_pending.label == "its order is no longer pending"
    assert Withheld.bill_changed.label == "the bill changed (amount or order): run the backfill"
