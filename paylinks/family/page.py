"""What a parent's family page shows: for each child, what is owed now (each with its own Pay Now
link), what is processing, what was paid (when, how) and what was refunded; and the total owed.

It reads the club's data as it is at that moment, by the blast's rules: an item is owed (and
offered) only when `club.balances.why_withheld` finds no reason to hold it back (the bill still
stands, it is billed to this parent today, its link was minted in the account and mode the key
acts in). Paid, refunded and refund-due items are the parent's they were billed to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.club.balances import balance_rows, why_withheld
from paylinks.club.tenants import Tenant
from paylinks.store.tables import as_utc, family_checkout_rows, family_checkouts, parents, payment_links
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import FamilyCheckoutStatus, PaidMethod, PaymentLinkStatus, StrLabelEnum

# Stripe's own limit on a Checkout Session's line items (payment mode).
MAX_CHECKOUT_ITEMS = 100


class ItemState(StrLabelEnum):
    """Where one of a family's bills stands, as the family page says it."""

    owed = "owed", "To pay"
    processing = "processing", "Processing — your bank payment is on its way"
    paid = "paid", "Paid"
    refund_due = "refund_due", "Paid twice — the club owes you a refund"
    refunded = "refunded", "Refunded"


_STATE_OF_STATUS = {
    PaymentLinkStatus.processing: ItemState.processing,
    PaymentLinkStatus.paid: ItemState.paid,
    PaymentLinkStatus.refund_due: ItemState.refund_due,
    PaymentLinkStatus.refunded: ItemState.refunded,
}
# Who a bill is shown to: an open one to the parent it is billed to today (the blast's rule); one
# already settled to the parent it was billed to when it was.
_SETTLED = (PaymentLinkStatus.paid, PaymentLinkStatus.refund_due, PaymentLinkStatus.refunded)

PAID_HOW = {
    PaidMethod.card: "by card",
    PaidMethod.bank_debit: "by bank debit",
    PaidMethod.stripe: "online",  # paid at Stripe before paylinks recorded how
    PaidMethod.cash: "in cash",
    PaidMethod.cheque: "by cheque",
    PaidMethod.other: "offline",
}


@dataclass(frozen=True)
class FamilyItem:
    row_id: int
    player_id: int
    player_name: str
    description: str
    amount_cents: int
    state: ItemState
    mint_version: int
    url: str | None  # only for an item owed now: its own Pay Now link
    stripe_price_id: str | None
    paid_at: datetime | None
    paid_method: PaidMethod | None

    @property
    def paid_how(self) -> str | None:
        return PAID_HOW.get(self.paid_method) if self.paid_method else None


@dataclass(frozen=True)
class FamilyChild:
    player_id: int
    name: str
    items: tuple[FamilyItem, ...]

    def in_state(self, state: ItemState) -> tuple[FamilyItem, ...]:
        return tuple(item for item in self.items if item.state is state)

    @property
    def owed(self) -> tuple[FamilyItem, ...]:
        return self.in_state(ItemState.owed)

    @property
    def owed_cents(self) -> int:
        return sum(item.amount_cents for item in self.owed)


@dataclass(frozen=True)
class FamilyPage:
    tenant: Tenant
    parent_id: int
    parent_name: str
    children: tuple[FamilyChild, ...]
    not_yet_payable: int  # open bills of this parent the club is still updating (not offered yet)

    @property
    def owed(self) -> tuple[FamilyItem, ...]:
        """Every item owed now, in the page's order (children, then their items)."""
        return tuple(item for child in self.children for item in child.owed)

    @property
    def owed_cents(self) -> int:
        return sum(item.amount_cents for item in self.owed)

    @property
    def payable_together(self) -> tuple[FamilyItem, ...]:
        """What one "Pay all" checkout takes: the first 100 items owed (Stripe's limit)."""
        return self.owed[:MAX_CHECKOUT_ITEMS]

    @property
    def payable_together_cents(self) -> int:
        return sum(item.amount_cents for item in self.payable_together)

    @property
    def over_checkout_limit(self) -> bool:
        return len(self.owed) > MAX_CHECKOUT_ITEMS


def family_page(
    connection: Connection, tenant: Tenant, parent_id: int, context: StripeContext
) -> FamilyPage | None:
    """The parent's page as the club's data stands now; None when the parent is not the tenant's."""
    parent = connection.execute(
        sa.select(parents.c.first_name, parents.c.last_name).where(
            parents.c.tenant_id == tenant.id, parents.c.id == parent_id
        )
    ).first()
    if parent is None:
        return None
    rows = balance_rows(connection, tenant, PaymentLinkStatus, parent_id=parent_id)
    children: dict[int, tuple[str, list[FamilyItem]]] = {}
    not_yet_payable = 0
    for row in rows:
        status = PaymentLinkStatus(getattr(row["status"], "value", row["status"]))
        billed_now = row["parent_id"] is not None and int(row["parent_id"]) == parent_id
        billed_then = row["billed_parent_id"] is not None and int(row["billed_parent_id"]) == parent_id
        if status is PaymentLinkStatus.pending:
            if not billed_now:
                continue
            withheld = why_withheld(row, context)
            if withheld is not None:
                not_yet_payable += 0 if withheld.no_longer_owed else 1
                continue
            state = ItemState.owed
        elif status is PaymentLinkStatus.processing and billed_now:
            state = ItemState.processing
        elif status in _SETTLED and billed_then:
            state = _STATE_OF_STATUS[status]
        else:
            continue  # cancelled, or another parent's
        player_name = f"{row['player_first_name']} {row['player_last_name']}"
        method = row["paid_method"]
        item = FamilyItem(
            row_id=int(row["payment_link_id"]),
            player_id=int(row["player_id"]),
            player_name=player_name,
            description=row["description"],
            amount_cents=int(row["amount_cents"]),
            state=state,
            mint_version=int(row["mint_version"]),
            url=row["url"] if state is ItemState.owed else None,
            stripe_price_id=row["stripe_price_id"],
            paid_at=_moment(row["paid_at"]),
            paid_method=PaidMethod(getattr(method, "value", method)) if method else None,
        )
        children.setdefault(item.player_id, (player_name, []))[1].append(item)
    return FamilyPage(
        tenant=tenant,
        parent_id=parent_id,
        parent_name=f"{parent.first_name} {parent.last_name}",
        children=tuple(
            FamilyChild(player_id, name, tuple(_ordered(items)))
            for player_id, (name, items) in children.items()
        ),
        not_yet_payable=not_yet_payable,
    )


def _ordered(items: list[FamilyItem]) -> list[FamilyItem]:
    """Owed first, then processing, paid, refund due, refunded; newest payment first within."""
    rank = {state: index for index, state in enumerate(ItemState)}
    return sorted(
        items,
        key=lambda item: (rank[item.state], -(as_utc(item.paid_at).timestamp() if item.paid_at else 0)),
    )


def _moment(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


class CheckoutProgress(StrLabelEnum):
    """What the page says after Stripe sends the parent back from a "Pay all" checkout."""

    processing = "processing", "Thank you — your payment is being processed."
    paid = "paid", "Thank you — everything in that payment is paid."
    not_paid = "not_paid", "That checkout was not paid. Nothing was charged; you can pay below."


def checkout_progress(
    connection: Connection, tenant: Tenant, parent_id: int, family_checkout_id: int
) -> CheckoutProgress | None:
    """How the parent's checkout stands (None: not theirs, or no such checkout)."""
    checkout = connection.execute(
        sa.select(family_checkouts.c.status).where(
            family_checkouts.c.id == family_checkout_id,
            family_checkouts.c.tenant_id == tenant.id,
            family_checkouts.c.parent_id == parent_id,
        )
    ).first()
    if checkout is None:
        return None
    status = FamilyCheckoutStatus(getattr(checkout.status, "value", checkout.status))
    if status in (FamilyCheckoutStatus.expired, FamilyCheckoutStatus.refused):
        return CheckoutProgress.not_paid
    statuses = [
        PaymentLinkStatus(getattr(value, "value", value))
        for value in connection.execute(
            sa.select(payment_links.c.status)
            .join(family_checkout_rows, family_checkout_rows.c.payment_link_row_id == payment_links.c.id)
            .where(
                family_checkout_rows.c.family_checkout_id == family_checkout_id,
                payment_links.c.tenant_id == tenant.id,
            )
        ).scalars()
    ]
    if statuses and all(s in _SETTLED for s in statuses):
        return CheckoutProgress.paid
    return CheckoutProgress.processing
