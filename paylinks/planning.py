"""What a parent owes, and what the backfill must do about it: a pure function of the club's rows.

The contract: one item per (signed player, active product billed to signed players) at the
product's amount, and one item per pending order at the order's amount; the order's item wins
for that player and product and keeps `order_id`. Each item is then compared with paylinks' own
`payment_links` row for the same (player, product) to decide the action. No I/O here, so the
dry run and the real run plan exactly the same thing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Action(enum.StrEnum):
    reserve_and_mint = "reserve and mint"  # no row yet
    mint = "mint"  # row reserved earlier (a crashed run), link not minted yet
    remint = "re-mint at new amount"  # amount changed: old link deactivated, new one minted
    reactivate = "re-mint cancelled row"  # bill came back after its row was cancelled
    up_to_date = "already there"
    retire = "retire"  # bill went away: deactivate the link, cancel the row


MINT_ACTIONS = (Action.reserve_and_mint, Action.mint, Action.remint, Action.reactivate)


@dataclass(frozen=True)
class Item:
    """One bill: a player owes `amount_cents` for a product (through an order, or by default)."""

    player_id: int
    parent_id: int
    product_id: int
    order_id: int | None
    description: str
    amount_cents: int
    player_name: str = ""


@dataclass(frozen=True)
class Skip:
    """A row of the club's data that could not become an item, and why (named by its ids)."""

    reason: str
    player_id: int | None = None
    product_id: int | None = None
    order_id: int | None = None


@dataclass(frozen=True)
class Step:
    action: Action
    item: Item | None
    row: Mapping[str, Any] | None = None  # the existing payment_links row, if any
    reason: str = ""

    @property
    def row_id(self) -> int | None:
        return None if self.row is None else int(self.row["id"])


@dataclass(frozen=True)
class Plan:
    items: tuple[Item, ...]
    steps: tuple[Step, ...]
    skipped: tuple[Skip, ...]
    tiers_needed: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    def steps_for(self, *actions: Action) -> list[Step]:
        return [step for step in self.steps if step.action in actions]

    @property
    def to_mint(self) -> list[Step]:
        return self.steps_for(*MINT_ACTIONS)

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for step in self.steps:
            counts[step.action.value] += 1
        return counts


def plan_items(
    players: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    pending_orders: Iterable[Mapping[str, Any]],
) -> tuple[list[Item], list[Skip]]:
    """Everything owed, one item per (player, product), plus every row that had to be skipped."""
    players_by_id = {int(p["player_id"]): p for p in players}
    products_by_id = {int(p["product_id"]): p for p in products}
    items: dict[tuple[int, int], Item] = {}
    skipped: list[Skip] = []

    def player_name(player: Mapping[str, Any]) -> str:
        return f"{player['first_name']} {player['last_name']}"

    for player in players_by_id.values():
        if player["status"] != "signed":
            continue
        for product in products_by_id.values():
            if not (product["bill_signed_players"] and product["active"]):
                continue
            player_id, product_id = int(player["player_id"]), int(product["product_id"])
            if player["parent_id"] is None:
                skipped.append(
                    Skip(
                        f"player {player_name(player)} has no parent on file",
                        player_id=player_id,
                        product_id=product_id,
                    )
                )
                continue
            if int(product["amount_cents"]) <= 0:
                skipped.append(
                    Skip(
                        f"product {product['name']!r} has a non-positive amount "
                        f"({product['amount_cents']} cents)",
                        player_id=player_id,
                        product_id=product_id,
                    )
                )
                continue
            items[(player_id, product_id)] = Item(
                player_id=player_id,
                parent_id=int(player["parent_id"]),
                product_id=product_id,
                order_id=None,
                description=str(product["name"]),
                amount_cents=int(product["amount_cents"]),
                player_name=player_name(player),
            )

    order_for: dict[tuple[int, int], int] = {}
    for order in sorted(pending_orders, key=lambda o: int(o["order_id"])):
        order_id, player_id, product_id = (
            int(order["order_id"]),
            int(order["player_id"]),
            int(order["product_id"]),
        )
        key = (player_id, product_id)
        player = players_by_id.get(player_id)
        product = products_by_id.get(product_id)
        if player is None or product is None:
            skipped.append(
                Skip(
                    "order refers to a player or product of another tenant or none",
                    player_id=player_id,
                    product_id=product_id,
                    order_id=order_id,
                )
            )
            continue
        if player["status"] == "withdrawn":
            skipped.append(
                Skip(
                    f"player {player_name(player)} is withdrawn",
                    player_id=player_id,
                    product_id=product_id,
                    order_id=order_id,
                )
            )
            continue
        if key in order_for:
            skipped.append(
                Skip(
                    f"duplicate pending order for this player and product; "
                    f"order {order_for[key]} is billed, this one is not",
                    player_id=player_id,
                    product_id=product_id,
                    order_id=order_id,
                )
            )
            continue
        parent_id = order["parent_id"] if order["parent_id"] is not None else player["parent_id"]
        if parent_id is None:
            skipped.append(
                Skip(
                    f"player {player_name(player)} has no parent on file",
                    player_id=player_id,
                    product_id=product_id,
                    order_id=order_id,
                )
            )
            continue
        if int(order["amount_cents"]) <= 0:
            # The club's data contradicts itself; bill nothing for this pair until someone fixes it.
            items.pop(key, None)
            skipped.append(
                Skip(
                    f"order has a non-positive amount ({order['amount_cents']} cents); "
                    f"nothing billed for this player and product until it is fixed",
                    player_id=player_id,
                    product_id=product_id,
                    order_id=order_id,
                )
            )
            continue
        order_for[key] = order_id
        items[key] = Item(
            player_id=player_id,
            parent_id=int(parent_id),
            product_id=product_id,
            order_id=order_id,
            description=str(product["name"]),
            amount_cents=int(order["amount_cents"]),
            player_name=player_name(player),
        )
    return sorted(items.values(), key=lambda i: (i.player_id, i.product_id)), skipped


def plan_backfill(
    players: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    pending_orders: Iterable[Mapping[str, Any]],
    existing_rows: Iterable[Mapping[str, Any]],
    existing_tiers: Iterable[tuple[int, int]] = (),
) -> Plan:
    """Compare what is owed with the rows paylinks already keeps and decide each step."""
    items, skipped = plan_items(players, products, pending_orders)
    rows = {(int(r["player_id"]), int(r["product_id"])): r for r in existing_rows}
    steps: list[Step] = []
    for item in items:
        row = rows.pop((item.player_id, item.product_id), None)
        steps.append(_step_for(item, row, skipped))
    for row in rows.values():
        if row["status"] == "pending":
            steps.append(Step(Action.retire, None, row, reason="no pending bill for this player and product"))
    known_tiers = set(existing_tiers)
    tiers_needed = (
        frozenset(
            (s.item.product_id, s.item.amount_cents)
            for s in steps
            if s.item is not None and s.action in MINT_ACTIONS
        )
        - known_tiers
    )
    return Plan(items=tuple(items), steps=tuple(steps), skipped=tuple(skipped), tiers_needed=tiers_needed)


def _step_for(item: Item, row: Mapping[str, Any] | None, skipped: list[Skip]) -> Step:
    if row is None:
        return Step(Action.reserve_and_mint, item)
    status = row["status"]
    if status == "paid":
        # A paid link is never touched. A new bill for the same player and product cannot get a
        # second row (one per player and product), so it is reported for a person to handle.
        if item.order_id is not None and item.order_id != row["order_id"]:
            skipped.append(
                Skip(
                    f"payment link row {row['id']} for this player and product is already "
                    f"paid; this new order needs handling by hand",
                    player_id=item.player_id,
                    product_id=item.product_id,
                    order_id=item.order_id,
                )
            )
        return Step(Action.up_to_date, item, row, reason="paid")
    if status == "cancelled":
        return Step(Action.reactivate, item, row)
    if int(row["amount_cents"]) != item.amount_cents:
        if row["stripe_payment_link_id"] is None:
            return Step(Action.mint, item, row, reason="reserved, amount changed before minting")
        return Step(
            Action.remint,
            item,
            row,
            reason=f"amount changed from {row['amount_cents']} to {item.amount_cents} cents",
        )
    if row["stripe_payment_link_id"] is None:
        return Step(Action.mint, item, row, reason="reserved by an earlier run, not minted yet")
    return Step(Action.up_to_date, item, row)
