"""Reconcile: learn from Stripe what happened to the money, the safety net under webhooks.

Reconcile works per Stripe account (and mode), not per tenant: several clubs may share one
account (the platform's), and each account's news is read once per run, then handed to the
tenant whose link (or payment) it concerns.

Where the news comes from:
- the account's events (sessions completed, slow payments settled or failed, refunds, disputes)
  since the account's cursor, while the cursor is younger than Stripe's 30-day event retention;
- otherwise (first run, or a cursor too old to trust) the account's checkout sessions created
  since the oldest bill that could still have been paid (100 per request, whatever the number of
  links), keeping those on our links, then the follow-up events Stripe still keeps (how slow
  payments ended, refunds, disputes).

Which tenant a piece of news belongs to is decided by the payment link it was paid through, as
`minted_links` remembers every link each row was ever given (never by the link's metadata), and
for refunds and disputes by the payment intent in the `payments` ledger.

A run for one tenant on a shared account reconciles the whole account: the account's news is
read anyway, so it is applied for every tenant on the account (as the webhook receiver would have
applied it), and the account's cursor moves. Applying only the one tenant's news would leave the
cursor where it was, and every single-tenant run would then read the same, growing, stretch of
events again. The run reports the tenants it was asked for; the others' changes are logged.

Every piece of news is applied by `paylinks.payments.ledger`, the same code the webhook receiver uses,
once per event id: an event a webhook already applied is counted, not applied again, so the
report says how many the webhooks had missed (expect zero). All reads from Stripe happen before
any write. A slow payment that failed gets its fresh link minted right away, so the next email
carries a link that can take payment.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.club.tenants import Tenant, all_tenants
from paylinks.payments import ledger
from paylinks.payments.news import (
    CHARGE_EVENTS,
    EVENT_TYPES,
    SESSION_EVENTS,
    SessionNews,
    SessionState,
    Skipped,
    SkippedEvent,
    family_of,
    news_from_scanned_session,
)
from paylinks.payments.transitions import ApplyResult, Outcome
from paylinks.store.tables import (
    as_utc,
    family_checkouts,
    minted_links,
    payment_links,
    payments,
    reconcile_cursors,
    utcnow,
)
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.vocabulary import PaymentLinkStatus

EVENT_RETENTION_S = 30 * 24 * 3600
# Start a little inside the retention window, and re-read a little before the cursor, so an
# event created in the same second as the cursor (or delivered late) is never missed. Events
# are applied once by id, so re-reading costs nothing but the read.
RETENTION_MARGIN_S = 3600
CURSOR_OVERLAP_S = 60
# A first run lists sessions created since the oldest open bill, less this much: our clock and
# Stripe's may disagree, and a link is minted after its row (so its sessions come later still).
SCAN_MARGIN_S = 24 * 3600
APPLY_BATCH_SIZE = 200
# What a scanned session cannot show: how its slow payment ended, and refunds and disputes.
SCAN_FOLLOW_UP_EVENTS = (
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    *CHARGE_EVENTS,
)
# Rows whose link may have been paid: everything but a row nobody can pay any more.
SCANNED_STATUSES = (PaymentLinkStatus.pending, PaymentLinkStatus.processing, PaymentLinkStatus.cancelled)


class NewsSource(enum.StrEnum):
    events = "events"
    session_scan = "session_scan"

    @property
    def label(self) -> str:
        return {
            NewsSource.events: "events since the last run",
            NewsSource.session_scan: "a scan of the account's checkout sessions",
        }[self]


@dataclass
class StripeNews:
    """What one Stripe account said since its cursor: raw events (applied once by id) or
    scanned sessions (with the follow-up events Stripe still keeps)."""

    source: NewsSource
    account: str | None = None  # the `Stripe-Account` it was read with (None: the key's own account)
    events: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[SessionNews] = field(default_factory=list)
    next_cursor: int | None = None
    next_cursor_event_id: str | None = None
    where: StripeContext | None = None  # the account and mode read: whose cursor moves
    stripe_requests: int = 0  # requests made to read it (pages of sessions and of events)


@dataclass
class ReconcileReport:
    tenant: str
    currency: str = "usd"
    source: NewsSource = NewsSource.events
    events_read: int = 0  # the account's events about this tenant's links and payments
    already_applied: int = 0  # by a webhook, or an earlier run
    newly_applied: int = 0  # events no webhook had applied: what webhooks missed
    result: ApplyResult = field(default_factory=ApplyResult)
    skipped: list[Skipped] = field(default_factory=list)
    replaced_links: list[int] = field(default_factory=list)  # fresh links after failed payments
    replacement_errors: list[tuple[int, str]] = field(default_factory=list)
    # Own links of bills a family checkout took, deactivated by this run; and those still active.
    closed_links: list[str] = field(default_factory=list)
    close_errors: list[tuple[str, str]] = field(default_factory=list)
    stripe_account: str | None = None  # the account read (shared with the other tenants on it)
    stripe_requests: int = 0  # requests the account's read took, for all its tenants together

    def rows(self, *outcomes: Outcome) -> list[int]:
        return [a.row_id for a in self.result.of(*outcomes) if a.row_id is not None]


# -- the account's cursor ---------------------------------------------------------------------
def read_cursor(engine: Engine, where: StripeContext) -> int | None:
    """Stripe time of the newest event of this account and mode already applied (None: never)."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(reconcile_cursors.c.last_event_created).where(
                reconcile_cursors.c.stripe_account == where.account,
                reconcile_cursors.c.livemode == where.livemode,
            )
        ).scalar_one_or_none()


def _save_cursor(engine: Engine, where: StripeContext, created: int, event_id: str | None) -> None:
    with engine.begin() as connection:
        updated = connection.execute(
            sa.update(reconcile_cursors)
            .where(
                reconcile_cursors.c.stripe_account == where.account,
                reconcile_cursors.c.livemode == where.livemode,
            )
            .values(last_event_created=created, last_event_id=event_id, updated_at=utcnow())
        ).rowcount
        if not updated:
            connection.execute(
                sa.insert(reconcile_cursors).values(
                    stripe_account=where.account,
                    livemode=where.livemode,
                    last_event_created=created,
                    last_event_id=event_id,
                )
            )


# -- reading from Stripe ------------------------------------------------------------------------
def fetch_stripe_news(
    engine: Engine,
    gateway: StripeGateway,
    tenants: list[Tenant],
    cursor: int | None,
    now: float | None = None,
) -> StripeNews:
    """The news of the gateway's account since the cursor: its events if the cursor is recent,
    else a scan of its checkout sessions since the oldest open bill of these tenants."""
    now = int(now if now is not None else time.time())
    calls_before = gateway.calls
    if cursor is not None and cursor > now - EVENT_RETENTION_S + RETENTION_MARGIN_S:
        news = _news_from_events(gateway, since=cursor - CURSOR_OVERLAP_S, cursor=cursor)
    else:
        news = _news_from_session_scan(engine, gateway, tenants, started_at=now)
    news.account = gateway.account
    news.stripe_requests = gateway.calls - calls_before
    return news


def _raw(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _news_from_events(gateway: StripeGateway, *, since: int, cursor: int) -> StripeNews:
    news = StripeNews(source=NewsSource.events, next_cursor=cursor)
    for event in gateway.iter_events(types=list(EVENT_TYPES), created_gte=since):
        raw = _raw(event)
        news.events.append(raw)
        created = raw.get("created")
        if isinstance(created, int) and created >= (news.next_cursor or 0):
            news.next_cursor, news.next_cursor_event_id = created, raw.get("id")
    # Within one second Stripe's order is unknown: a payment's sessions before its refunds and
    # disputes (a stable sort keeps the rest in order).
    news.events.sort(key=lambda raw: (raw.get("created") or 0, raw.get("type") not in SESSION_EVENTS))
    return news


def oldest_open_bill(engine: Engine, tenants: Iterable[Tenant]) -> int | None:
    """Unix time the oldest bill of these tenants that could still have been paid was made."""
    with engine.connect() as connection:
        oldest = connection.execute(
            sa.select(sa.func.min(payment_links.c.created_at)).where(
                payment_links.c.tenant_id.in_([t.id for t in tenants]),
                payment_links.c.status.in_(SCANNED_STATUSES),
            )
        ).scalar_one_or_none()
    if oldest is None:
        return None
    if isinstance(oldest, str):  # SQLite without type affinity hands back text
        oldest = datetime.fromisoformat(oldest)
    oldest = as_utc(oldest)
    return int(oldest.timestamp())


def iter_account_sessions(gateway: StripeGateway, created_gte: int) -> Iterator[dict[str, Any]]:
    """The account's checkout sessions created since `created_gte`, 100 per request."""
    for session in gateway.iter_checkout_sessions(created_gte=created_gte):
        yield _raw(session)


def _news_from_session_scan(
    engine: Engine, gateway: StripeGateway, tenants: list[Tenant], started_at: int
) -> StripeNews:
    # Events from now on are read next time; the overlap re-reads any that raced with the scan.
    news = StripeNews(source=NewsSource.session_scan, next_cursor=started_at)
    oldest = oldest_open_bill(engine, tenants)
    ours: list[dict[str, Any]] = []
    if oldest is not None:
        with engine.connect() as connection:
            owners = link_owners(connection)
        for session in iter_account_sessions(gateway, oldest - SCAN_MARGIN_S):
            family = family_of(session)
            if family is not None:
                with engine.connect() as connection:
                    if family_owner(connection, family[0]) is None:
                        continue  # names no family checkout of ours
            elif session.get("payment_link") not in owners:
                continue  # not a link of ours (another app on the same account)
            ours.append(session)
    # A scan sees payments but not what happened to them since: a slow payment that settled or
    # failed (its session still reads complete and unpaid), refunds and disputes are read from
    # the events Stripe still keeps, and applied after the sessions they concern.
    since = started_at - EVENT_RETENTION_S + RETENTION_MARGIN_S
    for event in gateway.iter_events(types=list(SCAN_FOLLOW_UP_EVENTS), created_gte=since):
        news.events.append(_raw(event))
    # A settled bank debit's session reads paid, as a card's does: its settlement event says which.
    settled_later = {
        str(((event.get("data") or {}).get("object") or {}).get("id"))
        for event in news.events
        if event.get("type") == "checkout.session.async_payment_succeeded"
    }
    for session in ours:
        found = news_from_scanned_session(session, settled_later=str(session.get("id")) in settled_later)
        if found is not None:
            news.sessions.append(found)
    return news


# -- whose news it is -------------------------------------------------------------------------
def link_owners(connection: Connection) -> dict[str, int]:
    """Tenant id by Stripe payment link id: every link a row was ever given (`minted_links`),
    and rows' current links minted before links were remembered."""
    owners = {
        link_id: tenant_id
        for link_id, tenant_id in connection.execute(
            sa.select(payment_links.c.stripe_payment_link_id, payment_links.c.tenant_id).where(
                payment_links.c.stripe_payment_link_id.is_not(None)
            )
        )
    }
    owners.update(
        connection.execute(sa.select(minted_links.c.stripe_payment_link_id, minted_links.c.tenant_id)).all()
    )
    return owners


def family_owner(connection: Connection, family_checkout_id: int) -> int | None:
    """The tenant whose family checkout this is (None: no such checkout of ours)."""
    return connection.execute(
        sa.select(family_checkouts.c.tenant_id).where(family_checkouts.c.id == family_checkout_id)
    ).scalar_one_or_none()


def _owner_of_session(connection: Connection, owners: Mapping[str, int], session: SessionNews) -> int | None:
    if session.family_checkout_id is not None:
        return family_owner(connection, session.family_checkout_id)
    return owners.get(str(session.payment_link_id))


def _owner_of_event(
    connection: Connection, owners: Mapping[str, int], event: Mapping[str, Any]
) -> int | None:
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, Mapping):
        return None
    if event.get("type") in SESSION_EVENTS:
        family = family_of(obj)
        if family is not None:
            return family_owner(connection, family[0])
        return owners.get(str(obj.get("payment_link")))
    intent = obj.get("payment_intent")
    if not intent:
        return None
    return connection.execute(
        sa.select(payments.c.tenant_id).where(payments.c.payment_intent_id == str(intent)).limit(1)
    ).scalar_one_or_none()


# -- writing what was learned ------------------------------------------------------------------
def apply_stripe_news(engine: Engine, tenants: list[Tenant], news: StripeNews) -> dict[int, ReconcileReport]:
    """Apply the account's news, each piece to the tenant whose link or payment it concerns,
    every event once (by id); then move the account's cursor. A report per tenant by id: one
    for each of `tenants` (the tenants on the account) and any other tenant the news was about.

    What belongs to no tenant (a paid link no row was ever given, a refund of a payment never
    seen, an event that could not be read) is the account's: it is in each tenant's report."""
    where = news.where
    if where is None:
        raise ValueError("news without the account it was read from cannot move a cursor")
    known: dict[int, Tenant] = {t.id: t for t in tenants}
    reports: dict[int, ReconcileReport] = {t.id: _report(t, news, where) for t in tenants}
    account_wide = ReconcileReport(tenant="", source=news.source)

    def report_of(tenant_id: int | None) -> ReconcileReport:
        if tenant_id is None:
            return account_wide
        if tenant_id not in reports:  # a link minted here for a tenant since moved to another account
            if tenant_id not in known:
                with engine.connect() as connection:
                    known.update({t.id: t for t in all_tenants(connection)})
            reports[tenant_id] = _report(known[tenant_id], news, where)
        return reports[tenant_id]

    with engine.connect() as connection:
        owners = link_owners(connection)
    # Scanned sessions first: a refund or dispute event is about a payment they record.
    sessions = _latest_per_session(news.sessions)
    for start in range(0, len(sessions), APPLY_BATCH_SIZE):
        with engine.begin() as connection:
            for session in sessions[start : start + APPLY_BATCH_SIZE]:
                owner = _owner_of_session(connection, owners, session)
                result = ledger.apply_news(connection, session, tenant_id=owner, account=news.account)
                report_of(owner).result.extend(_without_other_tenants(result))
    for event in news.events:
        with engine.connect() as connection:
            owner = _owner_of_event(connection, owners, event)
        report = report_of(owner)
        report.events_read += 1
        outcome = ledger.apply_event(engine, event, source="reconcile", tenant_id=owner, account=news.account)
        if outcome is None:
            report.already_applied += 1
        elif isinstance(outcome, Skipped):
            if outcome.reason is not SkippedEvent.not_ours:
                report.skipped.append(outcome)
        else:
            if not outcome.of(Outcome.other_tenant):
                report.newly_applied += 1
            report.result.extend(_without_other_tenants(outcome))
    for tenant_id in [t.id for t in tenants]:
        report = reports[tenant_id]
        report.events_read += account_wide.events_read
        report.already_applied += account_wide.already_applied
        report.newly_applied += account_wide.newly_applied
        report.skipped += account_wide.skipped
        report.result.applied += account_wide.result.applied
    if news.next_cursor is not None:
        _save_cursor(engine, where, news.next_cursor, news.next_cursor_event_id)
    return reports


def _report(tenant: Tenant, news: StripeNews, where: StripeContext) -> ReconcileReport:
    return ReconcileReport(
        tenant=tenant.slug,
        currency=tenant.currency,
        source=news.source,
        stripe_account=where.account,
        stripe_requests=news.stripe_requests,
    )


def _without_other_tenants(result: ApplyResult) -> ApplyResult:
    return ApplyResult(
        [a for a in result.applied if a.outcome is not Outcome.other_tenant],
        result.remint,
        result.orders_paid,
        result.close_links,
        result.receipts,
    )


def _latest_per_session(sessions: Iterable[SessionNews]) -> list[SessionNews]:
    """One entry per session, the furthest along (paid beats awaiting)."""
    latest: dict[str, SessionNews] = {}
    for session in sorted(sessions, key=lambda s: (s.at, s.state == SessionState.paid)):
        latest[session.session_id] = session
    return list(latest.values())
