"""What each parent owes right now: open payment links, checked against the club's data as it is
at send time, grouped by the parent who owes them (siblings together).

A row is offered to a parent only when its bill still stands (order pending, player signed,
product billing, same amount), it has a parent, and its link was minted in the Stripe account
and mode the key acts in now (as Stripe answers, `paylinks.stripe_api.where.stripe_where`). Everything else is held back with a reason: a bill that went away
is never chased, even before the next backfill retires its row.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paylinks.club.owed import Bill, BillGone, why_gone
from paylinks.club.tenants import Tenant
from paylinks.messaging.render import Brand, OpenItem, ParentBalance
from paylinks.store.queries import QUERY_REGISTRY
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import PaymentLinkStatus, StrLabelEnum


class Withheld(StrLabelEnum):
    """Why an open row is not offered to anyone right now: its bill went away (`BillGone`'s
    reasons, same codes), or the row cannot take this payment yet."""

    order_not_pending = BillGone.order_not_pending.value, BillGone.order_not_pending.label
    player_withdrawn = BillGone.player_withdrawn.value, BillGone.player_withdrawn.label
    player_not_signed = BillGone.player_not_signed.value, BillGone.player_not_signed.label
    product_stopped = BillGone.product_stopped.value, BillGone.product_stopped.label
    bill_changed = "bill_changed", "the bill changed (amount or order): run the backfill"
    no_parent = "no_parent", "no parent on file"
    # A row Stripe answered it has no link for (its objects were lost) reads as never minted.
    not_minted = "not_minted", "not minted yet: run the backfill (commit) to mint it"
    not_verified = "not_verified", "minted before paylinks recorded its Stripe account: run the backfill"
    # The one explanation of a link of another account or mode, wherever such a row is shown
    # (the blast, the coach's lookup); the backfill's plan says the same of it.
    other_stripe_account = (
        "other_stripe_account",
        "link minted in another Stripe account/mode: run the backfill (commit) to mint it here",
    )

    @property
    def no_longer_owed(self) -> bool:
        """The bill went away: the next backfill retires the row; nobody is asked to pay it."""
        return self.value in BillGone.__members__


@dataclass(frozen=True)
class HeldBackItem:
    """An open row that is not offered, and why."""

    payment_link_id: int
    player_id: int
    player_name: str
    description: str
    amount_cents: int
    parent_id: int | None
    parent_name: str | None
    reason: Withheld


@dataclass(frozen=True)
class BalanceSheet:
    balances: tuple[ParentBalance, ...]  # parents with at least one item offered
    held_back: tuple[HeldBackItem, ...] = ()

    @property
    def total_cents(self) -> int:
        return sum(b.total_cents for b in self.balances)

    def held_back_counts(self) -> dict[Withheld, int]:
        """How many rows were held back for each reason (reasons in their declared order)."""
        counts = Counter(item.reason for item in self.held_back)
        return {reason: counts[reason] for reason in Withheld if counts[reason]}

    def sample(self) -> ParentBalance | None:
        """The parent with the most items (ties: the largest total, then the first by name)."""
        if not self.balances:
            return None
        return max(self.balances, key=lambda b: (len(b.items), b.total_cents, -self.balances.index(b)))


@dataclass(frozen=True)
class LinkNow:
    """One of a player's rows as the coach's lookup shows it: any status, and whether it is offered."""

    payment_link_id: int
    description: str
    amount_cents: int
    status: PaymentLinkStatus
    url: str | None
    parent_name: str | None
    withheld: Withheld | None  # only for pending rows

    @property
    def offered(self) -> bool:
        return self.status is PaymentLinkStatus.pending and self.withheld is None


def brand_of(tenant: Tenant) -> Brand:
    return Brand(
        name=tenant.name,
        reply_to_email=tenant.reply_to_email,
        brand_color=tenant.brand_color,
        logo_url=tenant.logo_url,
        currency=tenant.currency,
    )


def why_withheld(row: Mapping[Any, Any], context: StripeContext) -> Withheld | None:
    """None when the row may be offered now; else the first reason it may not (gone bills first)."""
    amount = int(row["amount_cents"])
    gone = why_gone(
        Bill(
            is_order=row["order_id"] is not None,
            order_status=row["order_status"],
            player_status=row["player_status"],
            product_active=bool(row["product_active"]),
            product_bills_signed_players=bool(row["product_bill_signed_players"]),
        )
    )
    if gone is not None:
        return Withheld[gone.name]
    if row["order_id"] is not None:
        if int(row["order_amount_cents"]) != amount:
            return Withheld.bill_changed
    # An order now carries this bill (it wins over the default fee) or the fee changed.
    elif row["pending_order_id"] is not None or int(row["product_amount_cents"]) != amount:
        return Withheld.bill_changed
    if row["parent_id"] is None:
        return Withheld.no_parent
    if not row["url"]:
        return Withheld.not_minted
    if row["stripe_account"] is None or row["livemode"] is None:
        return Withheld.not_verified
    if (row["stripe_account"], bool(row["livemode"])) != (context.account, context.livemode):
        return Withheld.other_stripe_account
    return None


def _player_name(row: Mapping[str, Any]) -> str:
    return f"{row['player_first_name']} {row['player_last_name']}"


def _parent_name(row: Mapping[Any, Any]) -> str | None:
    if row["parent_id"] is None:
        return None
    return f"{row['parent_first_name']} {row['parent_last_name']}"


def group_balances(rows: Iterable[Mapping[Any, Any]], context: StripeContext) -> BalanceSheet:
    """Fold `query_outstanding_balances` rows (ordered by parent) into each parent's balance."""
    parents: dict[int, dict[str, Any]] = {}
    held_back: list[HeldBackItem] = []
    for row in rows:
        reason = why_withheld(row, context)
        if reason is not None:
            held_back.append(
                HeldBackItem(
                    payment_link_id=int(row["payment_link_id"]),
                    player_id=int(row["player_id"]),
                    player_name=_player_name(row),
                    description=row["description"],
                    amount_cents=int(row["amount_cents"]),
                    parent_id=None if row["parent_id"] is None else int(row["parent_id"]),
                    parent_name=_parent_name(row),
                    reason=reason,
                )
            )
            continue
        parent = parents.setdefault(
            int(row["parent_id"]), {"name": _parent_name(row), "email": row["parent_email"], "items": []}
        )
        parent["items"].append(
            OpenItem(
                player_name=_player_name(row),
                description=row["description"],
                amount_cents=int(row["amount_cents"]),
                url=row["url"],
                payment_link_id=int(row["payment_link_id"]),
            )
        )
    balances = tuple(
        ParentBalance(
            parent_id=parent_id, parent_name=p["name"], email=p["email"] or None, items=tuple(p["items"])
        )
        for parent_id, p in parents.items()
    )
    return BalanceSheet(balances=balances, held_back=tuple(held_back))


def outstanding_balances(connection: Connection, tenant: Tenant, context: StripeContext) -> BalanceSheet:
    """Every parent of the tenant with something offered now, and every open row held back."""
    return _pending_balances(connection, tenant, context, player_id=None)


def player_balances(
    connection: Connection, tenant: Tenant, player_id: int, context: StripeContext
) -> BalanceSheet:
    """One player's open items, one balance per parent who owes some of them (the coach's resend)."""
    return _pending_balances(connection, tenant, context, player_id=player_id)


def balance_rows(
    connection: Connection,
    tenant: Tenant,
    statuses: Iterable[PaymentLinkStatus],
    player_id: int | None = None,
    parent_id: int | None = None,
) -> list[RowMapping]:
    """`query_outstanding_balances`' rows of these statuses: all players', one player's, or one
    parent's (billed to them now, or when last billed), in the order emails list them."""
    statement = QUERY_REGISTRY["query_outstanding_balances"].statement.bindparams(
        sa.bindparam("statuses", expanding=True)
    )
    parameters = {
        "tenant_id": tenant.id,
        "statuses": [s.value for s in statuses],
        "player_id": player_id,
        "parent_id": parent_id,
    }
    # PostgreSQL counts each join's tenant guard (`pp.tenant_id = pl.tenant_id`, …) as a filter of
    # its own and expects a few dozen of the tenant's thousands of rows: it then looks up each
    # player and parent one row at a time. For a whole tenant, hash joins take half the time
    # (12 → 5 ms for 3,000 rows). A one-player or one-parent read keeps the lookups.
    hash_joins = player_id is None and parent_id is None and connection.dialect.name == "postgresql"
    if hash_joins:
        connection.exec_driver_sql("SET LOCAL enable_nestloop = off")
    rows = list(connection.execute(statement, parameters).mappings())
    if hash_joins:  # (a failed read leaves the transaction to be rolled back, the setting with it)
        connection.exec_driver_sql("RESET enable_nestloop")
    rows.sort(key=_email_order)
    return rows


def _email_order(row: RowMapping) -> tuple[Any, ...]:
    """Parents by last then first name (rows without a parent last), then their players by first
    name, then the item: names compared as people read them, not by case or accents."""
    return (
        row["parent_id"] is None,
        name_key(row["parent_last_name"]),
        name_key(row["parent_first_name"]),
        row["parent_id"] or 0,
        name_key(row["player_first_name"]),
        row["player_id"],
        row["description"] or "",
        row["payment_link_id"],
    )


@lru_cache(maxsize=8192)
def name_key(name: str | None) -> str:
    """A name as it sorts: accents and case set aside ("Émile" with "emile", "de Vries" with "De")."""
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _pending_balances(
    connection: Connection, tenant: Tenant, context: StripeContext, player_id: int | None
) -> BalanceSheet:
    rows = balance_rows(connection, tenant, [PaymentLinkStatus.pending], player_id)
    return group_balances(rows, context)


def player_links_now(
    connection: Connection, tenant: Tenant, player_id: int, context: StripeContext
) -> list[LinkNow]:
    """Every row of one player, any status; pending ones say whether they are offered (lookup)."""
    rows = balance_rows(connection, tenant, PaymentLinkStatus, player_id)
    links = []
    for row in rows:
        status = PaymentLinkStatus(getattr(row["status"], "value", row["status"]))
        links.append(
            LinkNow(
                payment_link_id=int(row["payment_link_id"]),
                description=row["description"],
                amount_cents=int(row["amount_cents"]),
                status=status,
                url=row["url"],
                parent_name=_parent_name(row),
                withheld=why_withheld(row, context) if status is PaymentLinkStatus.pending else None,
            )
        )
    # Open rows first, then the rest by status, as a coach reads them.
    return sorted(links, key=lambda link: (not link.offered, link.status is not PaymentLinkStatus.pending))
