"""The one rule of whether a bill still stands in the club's data: asked when the backfill plans
links, when an email offers them, and when money arrives for them.

A bill is an order (the club raised it by hand) or a product's default fee for a signed player.
An order stands while it is pending, its player has not withdrawn and its product still bills;
when money arrives, an order the club has since marked paid still stands (that money is for it).
A default fee stands while its player is signed and its product bills signed players.
"""

from __future__ import annotations

from dataclasses import dataclass

from paylinks.vocabulary import OrderStatus, PlayerStatus, StrLabelEnum


class BillGone(StrLabelEnum):
    """Why a bill no longer stands (the first reason found, in this order)."""

    order_not_pending = "order_not_pending", "its order is no longer pending"
    player_withdrawn = "player_withdrawn", "the player has withdrawn"
    player_not_signed = "player_not_signed", "the player is no longer signed"
    product_stopped = "product_stopped", "the product stopped billing"


@dataclass(frozen=True)
class Bill:
    """What the rule reads of one bill: its order (if any), its player and its product."""

    is_order: bool  # False: the product's default fee
    order_status: str | None  # None for a fee, or for an order that no longer exists
    player_status: str
    product_active: bool
    product_bills_signed_players: bool


def why_gone(bill: Bill, *, money_arrived: bool = False) -> BillGone | None:
    """None while the bill stands; else why it went away. `money_arrived`: asked for a payment,
    when an order already marked paid still stands."""
    if bill.is_order:
        standing = (OrderStatus.pending, OrderStatus.paid) if money_arrived else (OrderStatus.pending,)
        if bill.order_status not in standing:
            return BillGone.order_not_pending
        if bill.player_status == PlayerStatus.withdrawn:
            return BillGone.player_withdrawn
        if not bill.product_active:
            return BillGone.product_stopped
        return None
    if bill.player_status != PlayerStatus.signed:
        return BillGone.player_not_signed
    if not (bill.product_active and bill.product_bills_signed_players):
        return BillGone.product_stopped
    return None


def still_owed(bill: Bill, *, money_arrived: bool = False) -> bool:
    return why_gone(bill, money_arrived=money_arrived) is None
