"""What a parent owes, and what the backfill must do about it: a pure function of the club's rows.

The contract: one item per (signed player, active product billed to signed players) at the
product's amount, and one item per pending order at the order's amount; the order's item wins
for that player and product and keeps `order_id`. An item belongs to the parent who owes it:
the order's parent for an order (the player's parent when the order names none), the player's
parent for a default fee. Each item is then compared with paylinks' own `payment_links` row for
the same (player, product) to decide the action. No I/O here, so the dry run and the real run
plan exactly the same thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from paylinks.billing.checkout_text import checkout_text
from paylinks.club.owed import Bill, BillGone, still_owed, why_gone
from paylinks.money import STRIPE_MAX_AMOUNT
from paylinks.store.tables import as_utc
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import OrderStatus, PaymentLinkStatus, StrLabelEnum

# Stripe may prune idempotency keys after 24 hours; a reservation older than this looks for a
# link Stripe already holds before minting again.
STALE_RESERVATION = timedelta(hours=23)


class Action(StrLabelEnum):
    reserve_and_mint = "reserve_and_mint", "reserve and mint"  # no row yet
    mint = "mint", "mint (reserved earlier)"  # row reserved earlier (a crashed run), link not minted yet
    remint_amount = "remint_amount", "re-mint at new amount"  # old link deactivated, new one minted
    remint_elsewhere = (
        "remint_elsewhere",
        "re-mint here: link minted in another Stripe account/mode",
    )
    remint_missing = "remint_missing", "re-mint: Stripe no longer has its link"  # 404 on a link we hold
    reactivate = "reactivate", "re-mint cancelled row"  # bill came back after its row was cancelled
    relink = (
        "relink",
        "update parent/order",
    )  # same link; the row (and its metadata) follow a new parent/order
    verify = "verify", "verify at Stripe"  # minted before paylinks recorded the account: check at Stripe
    # minted before paylinks named the player (or the name changed): the link is updated, not re-minted
    name_player = "name_player", "name the player on its checkout"
    up_to_date = "up_to_date", "already there"
    retire = "retire", "retire"  # bill went away: deactivate the link, cancel the row


MINT_ACTIONS = (
    Action.reserve_and_mint,
    Action.mint,
    Action.remint_amount,
    Action.remint_elsewhere,
    Action.remint_missing,
    Action.reactivate,
)
# Statuses whose money is at Stripe (or was): the backfill never touches their link.
SETTLED_STATUSES = frozenset(
    {
        PaymentLinkStatus.processing,
        PaymentLinkStatus.paid,
        PaymentLinkStatus.refund_due,
        PaymentLinkStatus.refunded,
    }
)


class SkipReason(StrLabelEnum):
    no_parent = "no_parent", "no parent on file"
    non_positive_product_amount = "non_positive_product_amount", "product has a non-positive amount"
    non_positive_order_amount = (
        "non_positive_order_amount",
        "order has a non-positive amount; nothing billed for this player and product until it is fixed",
    )
    amount_above_stripe_maximum = (
        "amount_above_stripe_maximum",
        f"amount above Stripe's maximum ({STRIPE_MAX_AMOUNT:,} minor units)",
    )
    order_for_unknown_player_or_product = (
        "order_for_unknown_player_or_product",
        "order refers to a player or product of another tenant or none",
    )
    player_withdrawn = "player_withdrawn", "player is withdrawn"
    duplicate_pending_order = (
        "duplicate_pending_order",
        "duplicate pending order for this player and product; the first is billed",
    )
    new_order_on_settled_row = (
        "new_order_on_settled_row",
        "this player and product's row is already paid (or in flight); the new order needs handling by hand",
    )
    product_inactive = "product_inactive", "order for a product the club no longer bills"


@dataclass(frozen=True)
class Item:
    """One bill: a parent owes `amount_cents` for a player and product (an order, or by default)."""

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

    reason: SkipReason
    player_id: int | None = None
    product_id: int | None = None
    order_id: int | None = None
    detail: str = ""  # the figures behind the reason, e.g. the amount


@dataclass(frozen=True)
class Step:
    action: Action
    item: Item | None
    row: Mapping[str, Any] | None = None  # the existing payment_links row, if any
    # After the link is in place, the row takes the item's parent, order and description.
    relink: bool = False
    # A reservation older than Stripe's idempotency memory: look for its link before minting.
    stale_reservation: bool = False
    # The link stays; its checkout page and receipt are to say the item's `checkout_text`.
    name_on_checkout: bool = False
    checkout_text: str = ""  # what a link minted or updated for this item says it is for
    note: str = ""

    @property
    def row_id(self) -> int | None:
        return None if self.row is None else int(self.row["id"])


class Plan:
    """Everything owed (`items`), what to do about each row (`steps`), what could not be billed
    (`skipped`) and the (product, amount) price tiers still to create (`tiers_needed`). Immutable.

    A plain class rather than a dataclass on purpose: Prefect walks a flow's return value through
    every dataclass, list and dict in it (looking for futures); a report carrying a plan of
    10,000 steps and their rows cost a nightly run seconds of that walk. A plan is one value."""

    __slots__ = ("items", "steps", "skipped", "tiers_needed")
    items: tuple[Item, ...]
    steps: tuple[Step, ...]
    skipped: tuple[Skip, ...]
    tiers_needed: frozenset[tuple[int, int]]

    def __init__(
        self,
        items: tuple[Item, ...],
        steps: tuple[Step, ...],
        skipped: tuple[Skip, ...],
        tiers_needed: frozenset[tuple[int, int]] = frozenset(),
    ) -> None:
        for name, value in zip(self.__slots__, (items, steps, skipped, tiers_needed), strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _fields(self) -> tuple[Any, ...]:
        return (self.items, self.steps, self.skipped, self.tiers_needed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Plan) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # rows are dicts: a plan is not hashable

    def __reduce__(self) -> tuple[Any, ...]:
        return (Plan, self._fields())

    def __repr__(self) -> str:
        return (
            f"Plan(items={self.items!r}, steps={self.steps!r}, skipped={self.skipped!r}, "
            f"tiers_needed={self.tiers_needed!r})"
        )

    def steps_for(self, *actions: Action) -> list[Step]:
        return [step for step in self.steps if step.action in actions]

    @property
    def to_mint(self) -> list[Step]:
        return self.steps_for(*MINT_ACTIONS)

    @property
    def to_relink(self) -> list[Step]:
        """Steps whose row follows a new parent/order once its link is in place."""
        return [step for step in self.steps if step.relink]

    @property
    def to_name(self) -> list[Step]:
        """Steps whose link keeps its place but is to name the player on its checkout."""
        return [step for step in self.steps if step.name_on_checkout]

    def counts(self) -> dict[Action, int]:
        counts = dict.fromkeys(Action, 0)
        for step in self.steps:
            counts[step.action] += 1
        return counts

    @property
    def amount_owed_cents(self) -> int:
        return sum(item.amount_cents for item in self.items)


def _player_name(player: Mapping[str, Any]) -> str:
    return f"{player['first_name']} {player['last_name']}"


def plan_items(
    players: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    pending_orders: Iterable[Mapping[str, Any]],
) -> tuple[list[Item], list[Skip]]:
    """Everything owed, one item per (player, product), plus every row that had to be skipped."""
    players_by_id = {int(p["player_id"]): p for p in players}
    products_by_id = {int(p["product_id"]): p for p in products}
    player: Mapping[str, Any] | None
    product: Mapping[str, Any] | None
    items: dict[tuple[int, int], Item] = {}
    skipped: list[Skip] = []

    for player in players_by_id.values():
        for product in products_by_id.values():
            if not still_owed(_fee_bill(player, product)):
                continue  # no default fee for this player and product
            player_id, product_id = int(player["player_id"]), int(product["product_id"])
            amount = int(product["amount_cents"])
            ids: dict[str, Any] = dict(player_id=player_id, product_id=product_id)
            if player["parent_id"] is None:
                skipped.append(Skip(SkipReason.no_parent, **ids, detail=_player_name(player)))
            elif amount <= 0:
                skipped.append(Skip(SkipReason.non_positive_product_amount, **ids, detail=f"{amount}"))
            elif amount > STRIPE_MAX_AMOUNT:
                skipped.append(Skip(SkipReason.amount_above_stripe_maximum, **ids, detail=f"{amount}"))
            else:
                items[(player_id, product_id)] = Item(
                    player_id=player_id,
                    parent_id=int(player["parent_id"]),
                    product_id=product_id,
                    order_id=None,
                    description=str(product["name"]),
                    amount_cents=amount,
                    player_name=_player_name(player),
                )

    order_for: dict[tuple[int, int], int] = {}
    for order in sorted(pending_orders, key=lambda o: int(o["order_id"])):
        order_id, player_id, product_id = (
            int(order["order_id"]),
            int(order["player_id"]),
            int(order["product_id"]),
        )
        key = (player_id, product_id)
        ids = dict(player_id=player_id, product_id=product_id, order_id=order_id)
        player = players_by_id.get(player_id)
        product = products_by_id.get(product_id)
        if player is None or product is None:
            skipped.append(Skip(SkipReason.order_for_unknown_player_or_product, **ids))
            continue
        gone = why_gone(_order_bill(player, product))
        if gone is BillGone.player_withdrawn:
            skipped.append(Skip(SkipReason.player_withdrawn, **ids, detail=_player_name(player)))
            continue
        if gone is not None:
            # The club stopped billing this product: its pending orders are not chased either.
            skipped.append(Skip(SkipReason.product_inactive, **ids, detail=str(product["name"])))
            continue
        if key in order_for:
            skipped.append(
                Skip(SkipReason.duplicate_pending_order, **ids, detail=f"order {order_for[key]} billed")
            )
            continue
        parent_id = order["parent_id"] if order["parent_id"] is not None else player["parent_id"]
        amount = int(order["amount_cents"])
        if parent_id is None:
            skipped.append(Skip(SkipReason.no_parent, **ids, detail=_player_name(player)))
            continue
        if amount <= 0 or amount > STRIPE_MAX_AMOUNT:
            # The club's data contradicts itself; bill nothing for this pair until someone fixes it.
            items.pop(key, None)
            reason = (
                SkipReason.non_positive_order_amount
                if amount <= 0
                else SkipReason.amount_above_stripe_maximum
            )
            skipped.append(Skip(reason, **ids, detail=f"{amount}"))
            continue
        order_for[key] = order_id
        items[key] = Item(
            player_id=player_id,
            parent_id=int(parent_id),
            product_id=product_id,
            order_id=order_id,
            description=str(product["name"]),
            amount_cents=amount,
            player_name=_player_name(player),
        )
    return sorted(items.values(), key=lambda i: (i.player_id, i.product_id)), skipped


def _fee_bill(player: Mapping[str, Any], product: Mapping[str, Any]) -> Bill:
    return Bill(
        is_order=False,
        order_status=None,
        player_status=str(player["status"]),
        product_active=bool(product["active"]),
        product_bills_signed_players=bool(product["bill_signed_players"]),
    )


def _order_bill(player: Mapping[str, Any], product: Mapping[str, Any]) -> Bill:
    """A pending order's bill (the planner reads pending orders only)."""
    return Bill(
        is_order=True,
        order_status=OrderStatus.pending,
        player_status=str(player["status"]),
        product_active=bool(product["active"]),
        product_bills_signed_players=bool(product["bill_signed_players"]),
    )


def plan_backfill(
    players: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    pending_orders: Iterable[Mapping[str, Any]],
    existing_rows: Iterable[Mapping[str, Any]],
    existing_tiers: Iterable[tuple[int, int]] = (),
    where: StripeContext | None = None,
    now: datetime | None = None,
    club_name: str = "",
) -> Plan:
    """Compare what is owed with the rows paylinks already keeps and decide each step.

    `where` is the Stripe account and mode of this run: a row minted elsewhere is re-minted.
    `existing_tiers` are the (product, amount) pairs with a price in that account and mode.
    `club_name` ends each link's checkout text (`paylinks.billing.checkout_text`).
    """
    items, skipped = plan_items(players, products, pending_orders)
    rows = {(int(r["player_id"]), int(r["product_id"])): r for r in existing_rows}
    steps: list[Step] = []
    for item in items:
        row = rows.pop((item.player_id, item.product_id), None)
        text = checkout_text(item.description, item.player_name, club_name)
        steps.append(dataclasses.replace(_step_for(item, row, skipped, where, now, text), checkout_text=text))
    for row in rows.values():
        if row["status"] == PaymentLinkStatus.pending:
            steps.append(Step(Action.retire, None, row, note="no pending bill for this player and product"))
    tiers_needed = frozenset(
        (s.item.product_id, s.item.amount_cents)
        for s in steps
        if s.item is not None and s.action in MINT_ACTIONS
    ) - set(existing_tiers)
    return Plan(items=tuple(items), steps=tuple(steps), skipped=tuple(skipped), tiers_needed=tiers_needed)


def _follows(item: Item, row: Mapping[str, Any]) -> bool:
    """Whether the row already names the item's parent, order and description."""
    return (
        row["parent_id"] == item.parent_id
        and row["order_id"] == item.order_id
        and row["description"] == item.description
    )


def _minted_elsewhere(row: Mapping[str, Any], where: StripeContext | None) -> bool:
    if where is None or row.get("stripe_account") is None:
        return False
    return row["stripe_account"] != where.account or bool(row.get("livemode")) != where.livemode


def _step_for(
    item: Item,
    row: Mapping[str, Any] | None,
    skipped: list[Skip],
    where: StripeContext | None,
    now: datetime | None,
    text: str,
) -> Step:
    if row is None:
        return Step(Action.reserve_and_mint, item)
    status = str(getattr(row["status"], "value", row["status"]))
    if status in SETTLED_STATUSES:
        # Money is (or was) at Stripe for this row: its link is never touched. A new bill for
        # the same player and product cannot get a second row, so it is reported for a person.
        if item.order_id is not None and item.order_id != row["order_id"]:
            skipped.append(
                Skip(
                    SkipReason.new_order_on_settled_row,
                    player_id=item.player_id,
                    product_id=item.product_id,
                    order_id=item.order_id,
                    detail=f"row {row['id']} is {status}",
                )
            )
        return Step(Action.up_to_date, item, row, note=status)
    if status == PaymentLinkStatus.cancelled:
        return Step(Action.reactivate, item, row)
    relink = not _follows(item, row)
    if row["stripe_payment_link_id"] is None:
        if int(row["amount_cents"]) != item.amount_cents:
            # Never minted at this amount: a new version, so no earlier attempt's key replays.
            return Step(Action.remint_amount, item, row, note="reserved, amount changed before minting")
        stale = _is_stale(row, now)
        # The mint replays the reservation as it was (same idempotency key, same parameters);
        # a new parent or order is applied to the row and the link afterwards.
        return Step(Action.mint, item, row, relink=relink, stale_reservation=stale)
    if _minted_elsewhere(row, where):
        return Step(
            Action.remint_elsewhere,
            item,
            row,
            note=f"minted in {row['stripe_account']} ({'live' if row.get('livemode') else 'test'} mode)",
        )
    if int(row["amount_cents"]) != item.amount_cents:
        return Step(
            Action.remint_amount,
            item,
            row,
            note=f"amount changed from {row['amount_cents']} to {item.amount_cents}",
        )
    if where is not None and row.get("stripe_account") is None:
        return Step(Action.verify, item, row, relink=relink, note="minted before the account was recorded")
    # The link stays: its checkout is updated when it does not say (yet) what it is for.
    named = row.get("checkout_text") == text
    if relink:
        return Step(Action.relink, item, row, relink=True, name_on_checkout=not named)
    if not named:
        return Step(Action.name_player, item, row, name_on_checkout=True)
    return Step(Action.up_to_date, item, row)


def _is_stale(row: Mapping[str, Any], now: datetime | None) -> bool:
    reserved_at = row.get("reserved_at")
    if now is None or reserved_at is None:
        return False
    return now - as_utc(reserved_at) > STALE_RESERVATION
