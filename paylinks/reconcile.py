"""Reconcile: learn from Stripe which links were paid, and mark their rows (and orders) paid.

Where the news comes from:
- Stripe's events (`checkout.session.completed`, `...async_payment_succeeded`) since the
  tenant's cursor, when the cursor is younger than Stripe's 30-day event retention;
- otherwise (first run, or a cursor too old to trust) every pending link's checkout sessions,
  read with `GET /v1/checkout/sessions?payment_link=`.

A complete session with `payment_status = unpaid` (slow payment methods) leaves its row pending
until Stripe reports it paid. A paid amount that differs from the row's, a payment on a row
that was cancelled, and a paid session on a link no row points to are reported as drift, not
absorbed silently. All reads from Stripe happen before any write; writes go in one
transaction per batch, so a failure never leaves a batch half-marked. Running it twice changes
nothing the second time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.db import PaymentLinkStatus, orders, payment_links, reconcile_cursors, utcnow
from paylinks.stripe_gateway import StripeGateway
from paylinks.tenants import Tenant

EVENT_RETENTION_S = 30 * 24 * 3600
# Start a little inside the retention window, and re-read a little before the cursor, so an
# event created in the same second as the cursor (or delivered late) is never missed.
RETENTION_MARGIN_S = 3600
CURSOR_OVERLAP_S = 60
PAID_EVENT_TYPES = ["checkout.session.completed", "checkout.session.async_payment_succeeded"]
MARK_BATCH_SIZE = 200


@dataclass(frozen=True)
class PaidSession:
    """One completed checkout session on a payment link, as Stripe reported it."""

    session_id: str
    payment_link_id: str
    payment_status: str  # "paid", "unpaid" or "no_payment_required"
    amount_total: int | None
    paid_at: int  # unix seconds, Stripe's time (the event's, or the session's)
    source: str  # "event evt_..." or "session scan"

    @property
    def is_paid(self) -> bool:
        return self.payment_status in ("paid", "no_payment_required")


@dataclass(frozen=True)
class Drift:
    kind: str
    payment_link_id: str
    detail: str
    row_id: int | None = None


@dataclass
class StripeNews:
    """What Stripe said since the cursor: sessions, skipped events, and where the cursor goes."""

    source: str  # "events" or "session scan"
    sessions: list[PaidSession] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    events_read: int = 0
    next_cursor: int | None = None
    next_cursor_event_id: str | None = None


@dataclass
class ReconcileReport:
    tenant: str
    source: str = ""
    events_read: int = 0
    sessions_seen: int = 0
    marked_paid: list[int] = field(default_factory=list)
    orders_paid: list[int] = field(default_factory=list)
    already_paid: int = 0
    awaiting_payment: list[int] = field(default_factory=list)
    other_tenant: int = 0
    drift: list[Drift] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "source": self.source,
            "events read": self.events_read,
            "paid sessions seen": self.sessions_seen,
            "links marked paid": len(self.marked_paid),
            "orders marked paid": len(self.orders_paid),
            "already paid": self.already_paid,
            "awaiting payment (unpaid sessions)": len(self.awaiting_payment),
            "drift": len(self.drift),
            "events skipped": len(self.skipped),
        }


# -- reading from Stripe ------------------------------------------------------------------------
def read_cursor(engine: Engine, tenant: Tenant) -> int | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(reconcile_cursors.c.last_event_created).where(
                reconcile_cursors.c.tenant_id == tenant.id
            )
        ).scalar_one_or_none()


def fetch_stripe_news(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, cursor: int | None, now: float | None = None
) -> StripeNews:
    """Completed sessions since the cursor: from events if the cursor is recent, else by scanning."""
    now = int(now if now is not None else time.time())
    if cursor is not None and cursor > now - EVENT_RETENTION_S + RETENTION_MARGIN_S:
        return _news_from_events(gateway, since=cursor - CURSOR_OVERLAP_S, cursor=cursor)
    return _news_from_session_scan(engine, gateway, tenant, started_at=now)


def _news_from_events(gateway: StripeGateway, *, since: int, cursor: int) -> StripeNews:
    news = StripeNews(source="events", next_cursor=cursor)
    for event in gateway.iter_events(types=PAID_EVENT_TYPES, created_gte=since):
        news.events_read += 1
        raw = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        session = session_from_event(raw)
        if isinstance(session, str):
            news.skipped.append(session)
        elif session is not None:
            news.sessions.append(session)
        created = raw.get("created")
        if isinstance(created, int) and created >= (news.next_cursor or 0):
            news.next_cursor, news.next_cursor_event_id = created, raw.get("id")
    return news


def session_from_event(event: Mapping[str, Any]) -> PaidSession | str | None:
    """The session an event reports; a string says why the event was skipped; None: not a link's."""
    event_id = event.get("id", "(no id)")
    if event.get("account"):
        return f"{event_id}: event of another Stripe account ({event['account']})"
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, Mapping) or obj.get("object") != "checkout.session" or not obj.get("id"):
        return f"{event_id}: malformed event (no checkout session in data.object)"
    if not obj.get("payment_link"):
        return None  # a checkout session paylinks did not create through a link
    if obj.get("status") != "complete":
        return f"{event_id}: session {obj['id']} is not complete ({obj.get('status')})"
    created = event.get("created")
    if not isinstance(created, int):
        return f"{event_id}: malformed event (no created time)"
    return PaidSession(
        session_id=obj["id"],
        payment_link_id=str(obj["payment_link"]),
        payment_status=str(obj.get("payment_status")),
        amount_total=obj.get("amount_total"),
        paid_at=created,
        source=f"event {event_id}",
    )


def _news_from_session_scan(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, started_at: int
) -> StripeNews:
    with engine.connect() as connection:
        link_ids = (
            connection.execute(
                sa.select(payment_links.c.stripe_payment_link_id)
                .where(
                    payment_links.c.tenant_id == tenant.id,
                    payment_links.c.status != PaymentLinkStatus.paid,
                    payment_links.c.stripe_payment_link_id.is_not(None),
                )
                .order_by(payment_links.c.id)
            )
            .scalars()
            .all()
        )
    # Events from now on are read next time; the overlap re-reads any that raced with the scan.
    news = StripeNews(source="session scan", next_cursor=started_at)
    for link_id in link_ids:
        for session in gateway.iter_checkout_sessions(link_id):
            if session.status != "complete":
                continue
            news.sessions.append(
                PaidSession(
                    session_id=session.id,
                    payment_link_id=link_id,
                    payment_status=str(session.payment_status),
                    amount_total=session.amount_total,
                    paid_at=int(session.created),
                    source="session scan",
                )
            )
    return news


# -- writing what was learned ------------------------------------------------------------------
def apply_news(engine: Engine, tenant: Tenant, news: StripeNews) -> ReconcileReport:
    """Mark rows and orders paid, one transaction per batch; then move the cursor."""
    report = ReconcileReport(
        tenant=tenant.slug, source=news.source, events_read=news.events_read, skipped=list(news.skipped)
    )
    sessions = _latest_per_session(news.sessions)
    report.sessions_seen = sum(1 for s in sessions if s.is_paid)
    for start in range(0, len(sessions), MARK_BATCH_SIZE):
        with engine.begin() as connection:
            for session in sessions[start : start + MARK_BATCH_SIZE]:
                _apply_session(connection, tenant, session, report)
    if news.next_cursor is not None:
        _save_cursor(engine, tenant, news.next_cursor, news.next_cursor_event_id)
    return report


def _latest_per_session(sessions: Iterable[PaidSession]) -> list[PaidSession]:
    """One entry per session: a later 'paid' beats an earlier 'unpaid' for the same session."""
    latest: dict[str, PaidSession] = {}
    for session in sorted(sessions, key=lambda s: (s.paid_at, s.is_paid)):
        if session.session_id not in latest or session.is_paid or not latest[session.session_id].is_paid:
            latest[session.session_id] = session
    return list(latest.values())


def _apply_session(
    connection: sa.Connection, tenant: Tenant, session: PaidSession, report: ReconcileReport
) -> None:
    row = (
        connection.execute(
            sa.select(payment_links).where(payment_links.c.stripe_payment_link_id == session.payment_link_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        if session.is_paid:
            report.drift.append(
                Drift(
                    "paid link with no row",
                    session.payment_link_id,
                    f"session {session.session_id} paid {session.amount_total} cents",
                )
            )
        return
    if row["tenant_id"] != tenant.id:
        report.other_tenant += 1
        return
    if not session.is_paid:
        if row["status"] == PaymentLinkStatus.pending:
            report.awaiting_payment.append(row["id"])
        return
    if row["status"] == PaymentLinkStatus.paid:
        report.already_paid += 1
        return
    if session.amount_total is not None and session.amount_total != row["amount_cents"]:
        report.drift.append(
            Drift(
                "amount differs",
                session.payment_link_id,
                f"row {row['id']} bills {row['amount_cents']} cents; Stripe took "
                f"{session.amount_total} cents (session {session.session_id})",
                row["id"],
            )
        )
    if row["status"] == PaymentLinkStatus.cancelled:
        report.drift.append(
            Drift(
                "paid after cancellation",
                session.payment_link_id,
                f"row {row['id']} was cancelled, then paid (session {session.session_id}); "
                "a refund may be due",
                row["id"],
            )
        )
    paid_at = datetime.fromtimestamp(session.paid_at, tz=UTC)
    connection.execute(
        sa.update(payment_links)
        .where(payment_links.c.id == row["id"])
        .values(
            status=PaymentLinkStatus.paid,
            paid_at=paid_at,
            paid_amount_cents=session.amount_total,
            stripe_checkout_session_id=session.session_id,
            updated_at=utcnow(),
        )
    )
    report.marked_paid.append(row["id"])
    if row["order_id"] is not None:
        updated = connection.execute(
            sa.update(orders)
            .where(orders.c.id == row["order_id"], orders.c.status == "pending")
            .values(status="paid", paid_at=paid_at)
        ).rowcount
        if updated:
            report.orders_paid.append(row["order_id"])


def _save_cursor(engine: Engine, tenant: Tenant, created: int, event_id: str | None) -> None:
    with engine.begin() as connection:
        updated = connection.execute(
            sa.update(reconcile_cursors)
            .where(reconcile_cursors.c.tenant_id == tenant.id)
            .values(last_event_created=created, last_event_id=event_id, updated_at=utcnow())
        ).rowcount
        if not updated:
            connection.execute(
                sa.insert(reconcile_cursors).values(
                    tenant_id=tenant.id, last_event_created=created, last_event_id=event_id
                )
            )
