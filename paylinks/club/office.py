"""What the club office shows: the coach's search and player card, the admin's balances by team,
open items, and refunds due; and the admin's "resolved" on a refund.

Every function takes the tenant and reads only its rows, so another tenant's id finds nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.access.audit import Actor, record
from paylinks.club.tenants import Tenant
from paylinks.payments import refunds
from paylinks.payments.transitions import REFUNDABLE
from paylinks.store.queries import QUERY_REGISTRY, fetch_all
from paylinks.store.tables import as_utc, payment_allocations, payment_links, players
from paylinks.vocabulary import (
    AuditAction,
    EmailStatus,
    EmailType,
    PaidMethod,
    PaymentLinkStatus,
    PlayerStatus,
    RefundResolution,
)

SEARCH_LIMIT = 25  # a coach types more rather than scrolls; fewer rows answer faster as they type


def _moment(value: datetime | str | None) -> datetime | None:
    """A timestamp from a text query: SQLite hands these back as ISO strings."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _full_name(first: str | None, last: str | None) -> str | None:
    return f"{first} {last}" if first is not None else None


@dataclass(frozen=True)
class PlayerHit:
    player_id: int
    name: str
    team: str | None
    status: PlayerStatus
    parent_name: str | None


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[PlayerHit]
    more: bool  # there were more matches than shown: type more of the name


def search_players(
    connection: Connection, tenant: Tenant, query: str, limit: int = SEARCH_LIMIT
) -> SearchResult:
    """Players whose id is `query` or whose name contains it (case-insensitive), at most `limit`."""
    query = query.strip()[:200]
    if not query:
        return SearchResult(query, [], False)
    digits = query.lstrip("#")
    player_id = int(digits) if digits.isdigit() and len(digits) < 10 else None
    # LIKE wildcards typed by a coach are matched literally.
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = fetch_all(
        connection,
        "office_search_players",
        tenant_id=tenant.id,
        player_id=player_id,
        name_pattern=f"%{escaped}%",
        limit=limit + 1,
    )
    hits = [
        PlayerHit(
            player_id=r["player_id"],
            name=f"{r['first_name']} {r['last_name']}",
            team=r["team"],
            status=PlayerStatus(r["status"]),
            parent_name=_full_name(r["parent_first_name"], r["parent_last_name"]),
        )
        for r in rows[:limit]
    ]
    return SearchResult(query, hits, len(rows) > limit)


@dataclass(frozen=True)
class FamilyParent:
    parent_id: int
    name: str
    email: str | None


@dataclass(frozen=True)
class CardItem:
    row_id: int
    description: str
    amount_cents: int
    status: PaymentLinkStatus
    url: str | None
    parent_id: int | None
    paid_at: datetime | None
    paid_method: PaidMethod | None
    paid_by: str | None
    paid_note: str | None

    @property
    def is_open(self) -> bool:
        return self.status == PaymentLinkStatus.pending


@dataclass(frozen=True)
class EmailHistoryEntry:
    at: datetime
    email_type: EmailType
    recipient: str
    subject: str
    status: EmailStatus
    error: str | None


@dataclass(frozen=True)
class PlayerCard:
    player_id: int
    name: str
    team: str | None
    status: PlayerStatus
    parents: list[FamilyParent]  # the parent on file first, then any other parent who owes an item
    items: list[CardItem]
    emails: list[EmailHistoryEntry]

    @property
    def open_total_cents(self) -> int:
        return sum(item.amount_cents for item in self.items if item.is_open)


def player_card(
    connection: Connection, tenant: Tenant, player_id: int, email_limit: int = 20
) -> PlayerCard | None:
    """The player's family, items and email history; None when the id is not this tenant's."""
    rows = fetch_all(connection, "office_player", tenant_id=tenant.id, player_id=player_id)
    if not rows:
        return None
    player = rows[0]
    parents: dict[int, FamilyParent] = {}
    if player["parent_id"] is not None:
        parents[player["parent_id"]] = FamilyParent(
            player["parent_id"],
            f"{player['parent_first_name']} {player['parent_last_name']}",
            player["parent_email"],
        )
    items = []
    for r in fetch_all(connection, "office_player_items", tenant_id=tenant.id, player_id=player_id):
        if r["parent_id"] is not None and r["parent_id"] not in parents:
            parents[r["parent_id"]] = FamilyParent(
                r["parent_id"], f"{r['parent_first_name']} {r['parent_last_name']}", r["parent_email"]
            )
        items.append(
            CardItem(
                row_id=r["payment_link_id"],
                description=r["description"],
                amount_cents=int(r["amount_cents"]),
                status=PaymentLinkStatus(r["status"]),
                url=r["url"],
                parent_id=r["parent_id"],
                paid_at=_moment(r["paid_at"]),
                paid_method=PaidMethod(r["paid_method"]) if r["paid_method"] else None,
                paid_by=r["paid_by"],
                paid_note=r["paid_note"],
            )
        )
    emails: list[EmailHistoryEntry] = []
    if parents:
        statement = QUERY_REGISTRY["office_family_emails"].statement.bindparams(
            sa.bindparam("parent_ids", expanding=True)
        )
        emails = [
            EmailHistoryEntry(
                at=cast(datetime, _moment(r["sent_at"] or r["created_at"])),
                email_type=EmailType(r["email_type"]),
                recipient=r["recipient"],
                subject=r["subject"],
                status=EmailStatus(r["status"]),
                error=r["error"],
            )
            for r in connection.execute(
                statement, {"tenant_id": tenant.id, "parent_ids": list(parents), "limit": email_limit}
            ).mappings()
        ]
    return PlayerCard(
        player_id=player["player_id"],
        name=f"{player['first_name']} {player['last_name']}",
        team=player["team"],
        status=PlayerStatus(player["status"]),
        parents=list(parents.values()),
        items=items,
        emails=emails,
    )


@dataclass(frozen=True)
class StripeNewsAge:
    """How fresh the tenant's payments are: the last refresh from Stripe (a reconcile's read of the
    account its links were minted in), and the newest payment news a webhook brought."""

    refreshed_at: datetime | None
    webhook_at: datetime | None

    @property
    def webhook_is_newer(self) -> bool:
        if self.webhook_at is None:
            return False
        return self.refreshed_at is None or as_utc(self.webhook_at) > as_utc(self.refreshed_at)


def stripe_news_age(connection: Connection, tenant: Tenant) -> StripeNewsAge:
    (row,) = fetch_all(
        connection, "office_stripe_news", tenant_id=tenant.id, account=tenant.stripe_account or ""
    )
    return StripeNewsAge(_moment(row["refreshed_at"]), _moment(row["webhook_at"]))


@dataclass(frozen=True)
class TeamBalance:
    team: str  # '' for players without a team
    owed_cents: int
    processing_cents: int
    paid_cents: int
    refund_due_cents: int
    open_items: int


def team_balances(connection: Connection, tenant: Tenant) -> list[TeamBalance]:
    """Owed, processing, paid and refund due per team, with a line for each team that has any."""
    refund_due: dict[str, int] = {}
    for refund in refunds_due(connection, tenant):
        refund_due[refund.team] = refund_due.get(refund.team, 0) + refund.outstanding_cents
    teams = {
        r["team"]: TeamBalance(
            team=r["team"],
            owed_cents=int(r["owed_cents"] or 0),
            processing_cents=int(r["processing_cents"] or 0),
            paid_cents=int(r["paid_cents"] or 0),
            refund_due_cents=refund_due.get(r["team"], 0),
            open_items=int(r["open_items"] or 0),
        )
        for r in fetch_all(connection, "office_team_balances", tenant_id=tenant.id)
    }
    for team, cents in refund_due.items():
        if team not in teams:
            teams[team] = TeamBalance(team, 0, 0, 0, cents, 0)
    return [teams[name] for name in sorted(teams)]


@dataclass(frozen=True)
class OpenItemLine:
    row_id: int
    player_id: int
    player_name: str
    team: str | None
    parent_name: str | None
    parent_email: str | None
    product: str
    description: str
    amount_cents: int
    status: PaymentLinkStatus
    url: str | None


def open_items(connection: Connection, tenant: Tenant) -> list[OpenItemLine]:
    return [
        OpenItemLine(
            row_id=r["payment_link_id"],
            player_id=r["player_id"],
            player_name=f"{r['player_first_name']} {r['player_last_name']}",
            team=r["team"],
            parent_name=_full_name(r["parent_first_name"], r["parent_last_name"]),
            parent_email=r["parent_email"],
            product=r["product_name"],
            description=r["description"],
            amount_cents=int(r["amount_cents"]),
            status=PaymentLinkStatus(r["status"]),
            url=r["url"],
        )
        for r in fetch_all(connection, "office_open_items", tenant_id=tenant.id)
    ]


OPEN_ITEMS_CSV_HEADER = (
    "player",
    "team",
    "parent",
    "email",
    "product",
    "item",
    "amount",
    "currency",
    "status",
    "link",
)


# Text a spreadsheet would run as a formula: at the start of a cell, or of any part of it that a
# spreadsheet splitting on `;`, `,` or tab would make a cell of its own. Names come from families.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_FORMULA_AFTER_SEPARATOR = re.compile(r"([;,\t] *)(?=[=+\-@])")


def _csv_cell(value: object) -> str:
    """One cell of club data, made inert: a leading apostrophe before anything formula-like."""
    text = _FORMULA_AFTER_SEPARATOR.sub(r"\1'", "" if value is None else str(value))
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


def _decimal_amount(amount_cents: int, digits: int) -> str:
    """1234, 2 → "12.34", in integers only (no float rounding)."""
    sign = "-" if amount_cents < 0 else ""
    major, minor = divmod(abs(amount_cents), 10**digits)
    return f"{sign}{major}.{minor:0{digits}d}" if digits else f"{sign}{major}"


def open_items_csv(items: list[OpenItemLine], currency: str) -> str:
    """The open items as CSV, amounts in the currency's major unit (e.g. 350.00)."""
    from paylinks.money import minor_unit_digits

    digits = minor_unit_digits(currency)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(OPEN_ITEMS_CSV_HEADER)
    for item in items:
        club_data = (item.player_name, item.team, item.parent_name, item.parent_email, item.product)
        writer.writerow(
            [_csv_cell(v) for v in (*club_data, item.description)]
            # Our own figures and words: the amount stays a number a spreadsheet can sum.
            + [_decimal_amount(item.amount_cents, digits), currency.upper(), item.status.value]
            + [_csv_cell(item.url)]
        )
    return out.getvalue()


@dataclass(frozen=True)
class RefundDue:
    payment_id: int
    row_id: int | None
    checkout_session_id: str
    amount_cents: int
    refunded_cents: int
    currency: str
    reason: str | None
    paid_at: datetime | None
    description: str | None
    player_id: int | None
    player_name: str | None
    team: str
    # Refunded at Stripe but not matched to whole items: the admin picks which items it was for.
    unmatched_refund_cents: int = 0
    items: tuple[RefundableItem, ...] = ()

    @property
    def outstanding_cents(self) -> int:
        return max(0, self.amount_cents - self.refunded_cents)


@dataclass(frozen=True)
class RefundableItem:
    """One item of a payment whose money a refund may have been for (the admin's pick)."""

    row_id: int
    player_name: str
    description: str
    open_cents: int


def refundable_items(connection: Connection, tenant: Tenant, payment_id: int) -> tuple[RefundableItem, ...]:
    found = connection.execute(
        sa.select(
            payment_allocations.c.payment_link_row_id,
            payment_allocations.c.amount_cents,
            payment_allocations.c.refunded_cents,
            payment_links.c.description,
            players.c.first_name,
            players.c.last_name,
        )
        .join(payment_links, payment_links.c.id == payment_allocations.c.payment_link_row_id)
        .join(players, players.c.id == payment_links.c.player_id)
        .where(
            payment_allocations.c.payment_id == payment_id,
            payment_allocations.c.tenant_id == tenant.id,
            payment_allocations.c.status.in_(list(REFUNDABLE)),
        )
        .order_by(payment_allocations.c.id)
    ).all()
    return tuple(
        RefundableItem(
            r.payment_link_row_id,
            f"{r.first_name} {r.last_name}",
            r.description,
            int(r.amount_cents) - int(r.refunded_cents),
        )
        for r in found
        if int(r.amount_cents) > int(r.refunded_cents)
    )


def refunds_due(connection: Connection, tenant: Tenant) -> list[RefundDue]:
    return [
        RefundDue(
            payment_id=r["payment_id"],
            row_id=r["payment_link_row_id"],
            checkout_session_id=r["checkout_session_id"],
            amount_cents=int(r["amount_cents"]),
            refunded_cents=int(r["refunded_cents"] or 0),
            currency=r["currency"],
            reason=r["refund_due_reason"],
            paid_at=_moment(r["paid_at"]),
            description=r["description"],
            player_id=r["player_id"],
            player_name=_full_name(r["player_first_name"], r["player_last_name"]),
            team=r["team"] or "",
            unmatched_refund_cents=int(r["unmatched_refund_cents"] or 0),
            items=refundable_items(connection, tenant, r["payment_id"])
            if r["unmatched_refund_cents"]
            else (),
        )
        for r in fetch_all(connection, "office_refunds_due", tenant_id=tenant.id)
    ]


def pick_refunded_items(
    connection: Connection, tenant: Tenant, payment_id: int, row_ids: list[int], *, actor: Actor
) -> int | None:
    """The admin matches money refunded at Stripe to the items it was for: the audit entry's
    id; None when the items do not fit the refund (nothing is written then)."""
    if not refunds.pick_refunded_items(connection, tenant.id, payment_id, row_ids):
        return None
    return record(
        connection,
        actor,
        AuditAction.refund_resolved,
        tenant.id,
        f"payment #{payment_id}: refund at Stripe matched to items {', '.join(f'#{r}' for r in row_ids)}",
    )


def resolve_refund(
    connection: Connection,
    tenant: Tenant,
    payment_id: int,
    resolution: RefundResolution,
    note: str,
    *,
    actor: Actor,
) -> int | None:
    """Mark a refund due as resolved (its bill leaves `refund_due` when nothing more is owed back
    on it): the audit entry's id; None when it is not this tenant's or already resolved."""
    note = note.strip()
    if not refunds.resolve_refund_due(
        connection, tenant.id, payment_id, resolution, resolved_by=actor.name, note=note
    ):
        return None
    return record(
        connection,
        actor,
        AuditAction.refund_resolved,
        tenant.id,
        f"payment #{payment_id} {resolution.label}" + (f": {note}" if note else ""),
    )


@dataclass(frozen=True)
class LinkPreview:
    """What a test email's Pay Now button shows instead of a payable page."""

    row_id: int
    player_id: int
    player_name: str
    description: str
    amount_cents: int
    status: PaymentLinkStatus


def link_preview(connection: Connection, tenant: Tenant, row_id: int) -> LinkPreview | None:
    """One of the tenant's bills as a test email names it; None for another tenant's row."""
    from paylinks.store.tables import payment_links, players

    row = connection.execute(
        sa.select(
            payment_links.c.id,
            payment_links.c.player_id,
            payment_links.c.description,
            payment_links.c.amount_cents,
            payment_links.c.status,
            players.c.first_name,
            players.c.last_name,
        )
        .join(players, players.c.id == payment_links.c.player_id)
        .where(payment_links.c.id == row_id, payment_links.c.tenant_id == tenant.id)
    ).first()
    if row is None:
        return None
    return LinkPreview(
        row.id,
        row.player_id,
        f"{row.first_name} {row.last_name}",
        row.description,
        row.amount_cents,
        PaymentLinkStatus(row.status),
    )
