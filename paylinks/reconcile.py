"""Reconcile: learn from Stripe what happened to the money, the safety net under webhooks.

Where the news comes from:
- Stripe's events (sessions completed, slow payments settled or failed, refunds, disputes) since
  the tenant's cursor, while the cursor is younger than Stripe's 30-day event retention;
- otherwise (first run, or a cursor too old to trust) the checkout sessions of every link that
  could have been paid, read with `GET /v1/checkout/sessions?payment_link=`.

Every piece of news is applied by `paylinks.payments`, the same code the webhook receiver uses,
once per event id: an event a webhook already applied is counted, not applied again, so the
report says how many the webhooks had missed (expect zero). All reads from Stripe happen before
any write. A slow payment that failed gets its fresh link minted here, right away, so the next
email carries a link that can take payment.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks import payments as ledger
from paylinks.db import PaymentLinkStatus, payment_links, reconcile_cursors, utcnow
from paylinks.payments import ApplyResult, News, Outcome, Skipped, SkippedEvent
from paylinks.stripe_gateway import StripeGateway
from paylinks.tenants import Tenant

EVENT_RETENTION_S = 30 * 24 * 3600
# Start a little inside the retention window, and re-read a little before the cursor, so an
# event created in the same second as the cursor (or delivered late) is never missed. Events
# are applied once by id, so re-reading costs nothing but the read.
RETENTION_MARGIN_S = 3600
CURSOR_OVERLAP_S = 60
APPLY_BATCH_SIZE = 200
# Rows whose link may have been paid: everything but a row nobody can pay any more.
# What a scanned session cannot show: how its slow payment ended, and refunds and disputes.
SCAN_FOLLOW_UP_EVENTS = (
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    *ledger.CHARGE_EVENTS,
)
SCANNED_STATUSES = (PaymentLinkStatus.pending, PaymentLinkStatus.processing, PaymentLinkStatus.cancelled)


class NewsSource(enum.StrEnum):
    events = "events"
    session_scan = "session_scan"

    @property
    def label(self) -> str:
        return {NewsSource.events: "events since the last run", NewsSource.session_scan: "a scan of every link's sessions"}[self]


@dataclass
class StripeNews:
    """What Stripe said since the cursor: raw events (applied once by id) or scanned sessions."""

    source: NewsSource
    events: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[News] = field(default_factory=list)
    next_cursor: int | None = None
    next_cursor_event_id: str | None = None


@dataclass
class ReconcileReport:
    tenant: str
    currency: str = "usd"
    source: NewsSource = NewsSource.events
    events_read: int = 0
    already_applied: int = 0  # by a webhook, or an earlier run
    newly_applied: int = 0  # events no webhook had applied: what webhooks missed
    result: ApplyResult = field(default_factory=ApplyResult)
    skipped: list[Skipped] = field(default_factory=list)
    replaced_links: list[int] = field(default_factory=list)  # fresh links after failed payments
    replacement_errors: list[tuple[int, str]] = field(default_factory=list)

    def rows(self, *outcomes: Outcome) -> list[int]:
        return [a.row_id for a in self.result.of(*outcomes) if a.row_id is not None]


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
    """News since the cursor: from events if the cursor is recent, else by scanning sessions."""
    now = int(now if now is not None else time.time())
    if cursor is not None and cursor > now - EVENT_RETENTION_S + RETENTION_MARGIN_S:
        return _news_from_events(gateway, since=cursor - CURSOR_OVERLAP_S, cursor=cursor)
    return _news_from_session_scan(engine, gateway, tenant, started_at=now)


def _news_from_events(gateway: StripeGateway, *, since: int, cursor: int) -> StripeNews:
    news = StripeNews(source=NewsSource.events, next_cursor=cursor)
    for event in gateway.iter_events(types=list(ledger.EVENT_TYPES), created_gte=since):
        raw = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        news.events.append(raw)
        created = raw.get("created")
        if isinstance(created, int) and created >= (news.next_cursor or 0):
            news.next_cursor, news.next_cursor_event_id = created, raw.get("id")
    # Within one second Stripe's order is unknown: a payment's sessions before its refunds and
    # disputes (a stable sort keeps the rest in order).
    news.events.sort(key=lambda raw: (raw.get("created") or 0, raw.get("type") not in ledger.SESSION_EVENTS))
    return news


def _news_from_session_scan(engine: Engine, gateway: StripeGateway, tenant: Tenant, started_at: int) -> StripeNews:
    with engine.connect() as connection:
        link_ids = (
            connection.execute(
                sa.select(payment_links.c.stripe_payment_link_id)
                .where(
                    payment_links.c.tenant_id == tenant.id,
                    payment_links.c.status.in_(SCANNED_STATUSES),
                    payment_links.c.stripe_payment_link_id.is_not(None),
                )
                .order_by(payment_links.c.id)
            )
            .scalars()
            .all()
        )
    # Events from now on are read next time; the overlap re-reads any that raced with the scan.
    news = StripeNews(source=NewsSource.session_scan, next_cursor=started_at)
    for link_id in link_ids:
        for session in gateway.iter_checkout_sessions(link_id):
            raw = session.to_dict() if hasattr(session, "to_dict") else dict(session)
            found = ledger.news_from_scanned_session(raw)
            if found is not None:
                news.sessions.append(found)
    # A scan sees payments but not what happened to them since: a slow payment that settled or
    # failed (its session still reads complete and unpaid), refunds and disputes are read from
    # the events Stripe still keeps, and applied after the sessions they concern.
    since = started_at - EVENT_RETENTION_S + RETENTION_MARGIN_S
    for event in gateway.iter_events(types=list(SCAN_FOLLOW_UP_EVENTS), created_gte=since):
        news.events.append(event.to_dict() if hasattr(event, "to_dict") else dict(event))
    return news


# -- writing what was learned ------------------------------------------------------------------
def apply_stripe_news(engine: Engine, tenant: Tenant, news: StripeNews) -> ReconcileReport:
    """Apply every event once (by id) or every scanned session; then move the cursor."""
    report = ReconcileReport(tenant=tenant.slug, currency=tenant.currency, source=news.source)
    report.events_read = len(news.events)
    # Scanned sessions first: a refund or dispute event is about a payment they record.
    sessions = _latest_per_session(news.sessions)
    for start in range(0, len(sessions), APPLY_BATCH_SIZE):
        with engine.begin() as connection:
            for session in sessions[start : start + APPLY_BATCH_SIZE]:
                applied = ledger.apply_news(connection, session, tenant_id=tenant.id, account=tenant.stripe_account)
                report.result.extend(_without_other_tenants(applied))
    for event in news.events:
        outcome = ledger.apply_event(
            engine, event, source="reconcile", tenant_id=tenant.id, account=tenant.stripe_account
        )
        if outcome is None:
            report.already_applied += 1
        elif isinstance(outcome, Skipped):
            if outcome.reason is not SkippedEvent.not_ours:
                report.skipped.append(outcome)
        else:
            if not outcome.of(Outcome.other_tenant):
                report.newly_applied += 1
            report.result.extend(_without_other_tenants(outcome))
    if news.next_cursor is not None:
        _save_cursor(engine, tenant, news.next_cursor, news.next_cursor_event_id)
    return report


def _without_other_tenants(result: ApplyResult) -> ApplyResult:
    return ApplyResult(
        [a for a in result.applied if a.outcome is not Outcome.other_tenant], result.remint, result.orders_paid
    )


def _latest_per_session(sessions: Iterable[News]) -> list[News]:
    """One entry per session, the furthest along (paid beats awaiting)."""
    latest: dict[str, News] = {}
    for session in sorted(sessions, key=lambda s: (s.at, s.state == ledger.SessionState.paid)):  # type: ignore[union-attr]
        latest[session.session_id] = session  # type: ignore[union-attr]
    return list(latest.values())


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
