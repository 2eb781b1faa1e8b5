"""What each parent owes right now: open payment links grouped by parent (siblings together)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from paylinks.queries import fetch_all
from paylinks.rendering import Brand, OpenItem, ParentBalance
from paylinks.tenants import Tenant


@dataclass(frozen=True)
class UnmintedItem:
    """An open bill whose link the backfill has not minted yet: counted, never mailed."""

    parent_id: int
    payment_link_id: int
    player_name: str
    description: str
    amount_cents: int


@dataclass(frozen=True)
class BalanceSheet:
    balances: tuple[ParentBalance, ...]  # parents with at least one payable item
    unminted: tuple[UnmintedItem, ...]

    @property
    def total_cents(self) -> int:
        return sum(b.total_cents for b in self.balances)

    def sample(self) -> ParentBalance | None:
        """The parent with the most items (ties: the largest total, then the first by name)."""
        if not self.balances:
            return None
        return max(self.balances, key=lambda b: (len(b.items), b.total_cents, -self.balances.index(b)))


def brand_of(tenant: Tenant) -> Brand:
    return Brand(
        name=tenant.name,
        reply_to_email=tenant.reply_to_email,
        brand_color=tenant.brand_color,
        logo_url=tenant.logo_url,
        currency=tenant.currency,
    )


def group_balances(rows: Iterable[Mapping[str, Any]]) -> BalanceSheet:
    """Fold `query_outstanding_balances` rows (one per item, ordered by parent) into balances."""
    parents: dict[int, dict[str, Any]] = {}
    unminted: list[UnmintedItem] = []
    for row in rows:
        parent_id = int(row["parent_id"])
        parent = parents.setdefault(
            parent_id,
            {
                "name": f"{row['parent_first_name']} {row['parent_last_name']}",
                "email": row["parent_email"],
                "items": [],
            },
        )
        player_name = f"{row['player_first_name']} {row['player_last_name']}"
        if not row["url"]:
            unminted.append(
                UnmintedItem(
                    parent_id,
                    int(row["payment_link_id"]),
                    player_name,
                    row["description"],
                    int(row["amount_cents"]),
                )
            )
            continue
        parent["items"].append(
            OpenItem(
                player_name=player_name,
                description=row["description"],
                amount_cents=int(row["amount_cents"]),
                url=row["url"],
            )
        )
    balances = tuple(
        ParentBalance(
            parent_id=parent_id, parent_name=p["name"], email=p["email"] or None, items=tuple(p["items"])
        )
        for parent_id, p in parents.items()
        if p["items"]
    )
    return BalanceSheet(balances=balances, unminted=tuple(unminted))


def outstanding_balances(connection: Connection, tenant: Tenant) -> BalanceSheet:
    return group_balances(
        fetch_all(connection, "query_outstanding_balances", tenant_id=tenant.id, player_id=None)
    )


def player_balance(
    connection: Connection, tenant: Tenant, player_id: int
) -> tuple[ParentBalance | None, list[UnmintedItem]]:
    """One player's open items, addressed to their parent (for the coach's resend)."""
    sheet = group_balances(
        fetch_all(connection, "query_outstanding_balances", tenant_id=tenant.id, player_id=player_id)
    )
    return (sheet.balances[0] if sheet.balances else None), list(sheet.unminted)
