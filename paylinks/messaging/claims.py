"""The send claim: one `email_log` row per (tenant, email type, blast key, transport, parent), so
nobody is mailed twice.

The claim is what makes a blast resumable and safe to race: the row is taken by an insert only
one run can win. A parent whose row says `sent` is never sent again; a row another run is
sending now (`sending`, claimed less than `PAYLINKS_BLAST_CLAIM_LEASE_MINUTES` ago) is left to
it; only an older claim, left by a run that died, is taken over, and the report says so.
Delivery is at least once: a process killed between the SMTP server's "250 OK" and the `sent`
record sends that one message again on the rerun (a window of milliseconds; losing a parent's
email instead would be worse).

Across blasts, a parent another blast emailed recently (`recently_emailed`) is held back; a send
checks again once its claim is taken, so two blasts with different keys racing for one parent
never both mail them (when each sees the other's claim, both step back: nobody is mailed twice,
and the next run reaches them).
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.club.tenants import Tenant
from paylinks.messaging.prepare import PreparedEmail, message_for
from paylinks.messaging.transports import MailDeliveryError, MailTransport
from paylinks.settings import EmailTransportName, Settings
from paylinks.store.tables import as_utc, dialect_insert, email_log, utcnow
from paylinks.vocabulary import BALANCE_EMAIL_TYPES, EmailStatus, EmailType, StrLabelEnum

ERROR_TEXT_LIMIT = 2000


class SendResult(StrLabelEnum):
    """What became of one send attempt."""

    sent = "sent", "sent"
    already_sent = "already_sent", "already sent"
    claimed_elsewhere = "claimed_elsewhere", "being sent by another run"
    held_back = "held_back", "held back: emailed recently"
    failed = "failed", "failed"


class ClaimKind(enum.Enum):
    new = "new"  # nobody had claimed this send
    retry = "retry"  # an earlier attempt failed: this run tries again
    taken_over = "taken over"  # an earlier run's claim outlived the lease
    already_sent = "already sent"
    claimed_elsewhere = "claimed elsewhere"  # another run holds a live claim


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    log_id: int | None = None
    stale_since: datetime | None = None  # when the claim taken over had been taken

    @property
    def owned(self) -> bool:
        return self.kind in (ClaimKind.new, ClaimKind.retry, ClaimKind.taken_over)


def sent_parent_ids(
    engine: Engine, tenant: Tenant, email_type: EmailType, run_key: str, transport: EmailTransportName
) -> set[int]:
    """Parents this blast already reached over this transport (an outbox "send" reached nobody)."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                sa.select(email_log.c.parent_id).where(
                    email_log.c.tenant_id == tenant.id,
                    email_log.c.email_type == email_type,
                    email_log.c.run_key == run_key,
                    email_log.c.transport == transport.value,
                    email_log.c.status == EmailStatus.sent,
                    email_log.c.parent_id.is_not(None),
                )
            ).scalars()
        )


@dataclass(frozen=True)
class LastBlast:
    """The tenant's latest blast that reached anyone: when its last email went, and to how many."""

    run_key: str
    sent_at: datetime
    parents: int


def _parents_emailed(
    tenant: Tenant,
    transport: EmailTransportName,
    types: Sequence[EmailType] = (EmailType.outstanding_balance,),
) -> list[sa.ColumnElement[bool]]:
    # A parent's email of these types over this transport (test sends have no parent).
    return [
        email_log.c.tenant_id == tenant.id,
        email_log.c.email_type.in_(types),
        email_log.c.transport == transport.value,
        email_log.c.parent_id.is_not(None),
    ]


@dataclass(frozen=True)
class RecentEmail:
    """Another blast's email to a parent: when it was sent, or (not yet `sent`) when that blast
    claimed it and is sending it now."""

    at: datetime
    sent: bool


def recently_emailed(
    engine: Engine,
    tenant: Tenant,
    transport: EmailTransportName,
    since: datetime,
    lease: timedelta,
    other_than: str | None,
    parent_id: int | None = None,
) -> dict[int, RecentEmail]:
    """Parents another blast or reminder (any key but `other_than`) emailed a balance since
    `since` over this transport, or is emailing now (a claim younger than the lease): a new
    blast or reminder holds them back (one balance email a day, whichever sends it)."""
    since = as_utc(since).astimezone(UTC)  # stored times are UTC (SQLite compares them as text)
    values = {
        "tenant_id": tenant.id,
        "transport": transport.value,
        "since": since,
        "live_since": max(since, utcnow() - lease),
        "other_than": other_than,
        "parent_id": parent_id,
    }
    with engine.connect() as connection:
        rows = connection.execute(_recent_select(other_than is not None, parent_id is not None), values).all()
    emailed: dict[int, RecentEmail] = {}
    for row in rows:
        was_sent = row.status == EmailStatus.sent
        found = RecentEmail(as_utc(row.sent_at if was_sent else row.claimed_at), was_sent)
        known = emailed.get(row.parent_id)
        # The latest sent email speaks for the parent; a send under way only when none was sent.
        if known is None or (found.sent, found.at) > (known.sent, known.at):
            emailed[row.parent_id] = found
    return emailed


@functools.cache  # built once per shape: a blast asks it for every parent it sends to
def _recent_select(other_runs_only: bool, one_parent: bool) -> sa.Select:
    """`recently_emailed`'s statement; its values are bound at execution (see there)."""
    since = sa.bindparam("since", type_=email_log.c.sent_at.type)
    live_since = sa.bindparam("live_since", type_=email_log.c.claimed_at.type)
    where = [
        email_log.c.tenant_id == sa.bindparam("tenant_id"),
        email_log.c.email_type.in_(BALANCE_EMAIL_TYPES),
        email_log.c.transport == sa.bindparam("transport"),
        email_log.c.parent_id.is_not(None),
        sa.or_(
            sa.and_(email_log.c.status == EmailStatus.sent, email_log.c.sent_at >= since),
            sa.and_(email_log.c.status == EmailStatus.sending, email_log.c.claimed_at >= live_since),
        ),
    ]
    if other_runs_only:
        where.append(email_log.c.run_key != sa.bindparam("other_than"))
    if one_parent:
        where.append(email_log.c.parent_id == sa.bindparam("parent_id"))
    return sa.select(
        email_log.c.parent_id, email_log.c.status, email_log.c.sent_at, email_log.c.claimed_at
    ).where(*where)


def last_blast(engine: Engine, tenant: Tenant, transport: EmailTransportName) -> LastBlast | None:
    """The latest blast over this transport that reached at least one parent (test sends aside)."""
    latest = sa.func.max(email_log.c.sent_at)
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(email_log.c.run_key, latest, sa.func.count(sa.distinct(email_log.c.parent_id)))
            .where(*_parents_emailed(tenant, transport), email_log.c.status == EmailStatus.sent)
            .group_by(email_log.c.run_key)
            .order_by(latest.desc())
            .limit(1)
        ).first()
    return None if row is None else LastBlast(row[0], as_utc(row[1]), row[2])


# -- deciding a claim (no database) ------------------------------------------------------------

_SEND_KEY = ("tenant_id", "email_type", "run_key", "transport")  # with parent_id: which send


def claim_row(
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    transport: EmailTransportName,
    email: PreparedEmail,
    recipient: str,
    parent_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The `email_log` row of a send claimed now: `sending`, no error, not yet sent."""
    return dict(
        tenant_id=tenant.id,
        email_type=email_type,
        run_key=run_key,
        transport=transport.value,
        parent_id=parent_id,
        recipient=recipient,
        subject=email.rendered.subject,
        item_count=email.item_count,
        total_cents=email.total_cents,
        status=EmailStatus.sending,
        error=None,
        claimed_at=now,
        sent_at=None,
    )


def reclaim_values(row: dict[str, Any]) -> dict[str, Any]:
    """What retaking an existing row of the same send writes: the claim, not the send's key."""
    return {k: v for k, v in row.items() if k not in _SEND_KEY}


def unclaimable(status: str | None) -> ClaimKind | None:
    """A row this run could neither insert nor retry: already sent, failed again just now (another
    run is on it), or None for a `sending` row, which is taken over only once its lease is out."""
    if status is None or status == EmailStatus.sent:
        return ClaimKind.already_sent
    if status == EmailStatus.failed:
        return ClaimKind.claimed_elsewhere
    return None


# -- taking a claim ----------------------------------------------------------------------------


def _this_send(row: dict[str, Any]) -> sa.ColumnElement[bool]:
    # Only a parent's claim can conflict (NULL parents never collide), so this names one row.
    return sa.and_(
        *(email_log.c[column] == row[column] for column in _SEND_KEY),
        email_log.c.parent_id == row["parent_id"],
    )


def _reclaim(engine: Engine, row: dict[str, Any], *where: sa.ColumnElement[bool]) -> int | None:
    """Retake this send's row where it matches `where`; its id, or None when no row matched."""
    with engine.begin() as connection:
        return connection.execute(
            sa.update(email_log)
            .where(_this_send(row), *where)
            .values(**reclaim_values(row))
            .returning(email_log.c.id)
        ).scalar_one_or_none()


def claim_send(
    engine: Engine,
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    transport: EmailTransportName,
    email: PreparedEmail,
    recipient: str,
    parent_id: int | None,
    lease: timedelta,
) -> Claim:
    """Claim this send in `email_log`, atomically: of two runs claiming the same parent, one wins.

    Each step is one conditional statement in its own transaction, so the database decides who
    wins (an insert that does nothing on conflict; updates that match only a failed or stale row).
    """
    now = utcnow()
    row = claim_row(tenant, email_type, run_key, transport, email, recipient, parent_id, now)
    with engine.begin() as connection:
        log_id = connection.execute(_claim_insert(connection), row).scalar_one_or_none()
    if log_id is not None:
        return Claim(ClaimKind.new, log_id)
    retried = _reclaim(engine, row, email_log.c.status == EmailStatus.failed)
    if retried is not None:
        return Claim(ClaimKind.retry, retried)
    with engine.connect() as connection:
        seen = connection.execute(
            sa.select(email_log.c.status, email_log.c.claimed_at).where(_this_send(row))
        ).first()
    settled = unclaimable(seen.status if seen is not None else None)
    if settled is not None:
        return Claim(settled)
    assert seen is not None  # a missing row is settled above (already sent)
    stale = sa.or_(email_log.c.claimed_at.is_(None), email_log.c.claimed_at < now - lease)
    taken = _reclaim(engine, row, email_log.c.status == EmailStatus.sending, stale)
    if taken is not None:
        return Claim(ClaimKind.taken_over, taken, stale_since=seen.claimed_at)
    return Claim(ClaimKind.claimed_elsewhere)


def release_claim(engine: Engine, log_id: int) -> None:
    """Give up a claim this run took and will not send: the parent has no email in this blast."""
    with engine.begin() as connection:
        connection.execute(sa.delete(email_log).where(email_log.c.id == log_id))


def record_outcome(engine: Engine, log_id: int, error: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            _OUTCOME_UPDATE,
            {
                "log_id": log_id,
                "new_status": EmailStatus.failed if error else EmailStatus.sent,
                "new_error": error[:ERROR_TEXT_LIMIT] if error else None,
                "new_sent_at": None if error else utcnow(),
            },
        )


# Built once, not for every parent of a blast (building them cost more than running them).
_claim_inserts: dict[str, Any] = {}


def _claim_insert(connection: Connection) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, for this dialect; the row is its parameters."""
    dialect = connection.dialect.name
    if dialect not in _claim_inserts:
        _claim_inserts[dialect] = (
            dialect_insert(connection, email_log).on_conflict_do_nothing().returning(email_log.c.id)
        )
    return _claim_inserts[dialect]


_OUTCOME_UPDATE = (
    sa.update(email_log)
    .where(email_log.c.id == sa.bindparam("log_id"))
    .values(
        status=sa.bindparam("new_status", type_=email_log.c.status.type),
        error=sa.bindparam("new_error", type_=email_log.c.error.type),
        sent_at=sa.bindparam("new_sent_at", type_=email_log.c.sent_at.type),
    )
)


@dataclass(frozen=True)
class SendOutcome:
    parent_id: int | None
    recipient: str
    result: SendResult
    error: str | None = None
    took_over_claim_of: datetime | None = None  # a stale claim of this time was taken over
    emailed: RecentEmail | None = None  # held back: another blast's email to this parent


def send_logged(
    engine: Engine,
    transport: MailTransport,
    settings: Settings,
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    email: PreparedEmail,
    recipient: str,
    parent_id: int | None,
    to_name: str | None = None,
    hold_since: datetime | None = None,
) -> SendOutcome:
    """Claim, deliver and record one email. Delivery errors are recorded, then raised.

    With `hold_since`, a parent another blast emailed since then (or is emailing now) is held
    back: checked after the claim is taken, so of two blasts racing for one parent at most one
    mails them."""
    lease = timedelta(minutes=settings.blast_claim_lease_minutes)
    claim = claim_send(
        engine, tenant, email_type, run_key, settings.email_transport, email, recipient, parent_id, lease
    )
    if claim.kind is ClaimKind.already_sent:
        return SendOutcome(parent_id, recipient, SendResult.already_sent)
    if claim.kind is ClaimKind.claimed_elsewhere:
        return SendOutcome(parent_id, recipient, SendResult.claimed_elsewhere)
    assert claim.log_id is not None
    if hold_since is not None and parent_id is not None:
        emailed = recently_emailed(
            engine,
            tenant,
            settings.email_transport,
            hold_since,
            lease,
            other_than=run_key,
            parent_id=parent_id,
        )
        if emailed:
            release_claim(engine, claim.log_id)
            return SendOutcome(parent_id, recipient, SendResult.held_back, emailed=emailed[parent_id])
    try:
        transport.send(message_for(settings, tenant, email, recipient, to_name))
    except MailDeliveryError as error:
        record_outcome(engine, claim.log_id, str(error))
        raise
    except Exception as error:  # unexpected: still leave a trace in the log before failing
        record_outcome(engine, claim.log_id, f"{type(error).__name__}: {error}")
        raise
    record_outcome(engine, claim.log_id, None)
    return SendOutcome(parent_id, recipient, SendResult.sent, took_over_claim_of=claim.stale_since)


def send_batch(
    engine: Engine,
    transport: MailTransport,
    settings: Settings,
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    sends: Sequence[tuple[PreparedEmail, str]],
    *,
    hold_since: datetime | None = None,
    retry_delays_s: Sequence[float] = (5, 30),
    on_outcome: Callable[[SendOutcome], None] | None = None,
) -> list[SendOutcome]:
    """Claim, deliver and record each (email, recipient) over one transport, in order.

    Each parent keeps its own claim (taken before its send, as `send_logged` does), so a batch
    gives the same exactly-once, resume and race guarantees as one send at a time. One parent's
    failure never stops the others: a temporary failure is tried again after the rest of the
    batch (after each of `retry_delays_s`), a permanent one is recorded at once. Every outcome,
    failed ones included, is returned in the order given and passed to `on_outcome` as it happens.
    """
    outcomes: dict[int, SendOutcome] = {}
    pending = list(enumerate(sends))
    for attempt, delay in enumerate((None, *retry_delays_s)):
        if delay:
            time.sleep(delay)
        last_try = attempt == len(retry_delays_s)
        again: list[tuple[int, tuple[PreparedEmail, str]]] = []
        for index, (email, recipient) in pending:
            try:
                outcome = send_logged(
                    engine,
                    transport,
                    settings,
                    tenant,
                    email_type,
                    run_key,
                    email,
                    recipient,
                    parent_id=email.parent_id,
                    hold_since=hold_since,
                )
            except MailDeliveryError as error:
                if not error.permanent and not last_try:
                    again.append((index, (email, recipient)))
                    continue
                outcome = SendOutcome(email.parent_id, recipient, SendResult.failed, str(error))
            except Exception as error:  # one bad row never stops the others; it is reported
                outcome = SendOutcome(
                    email.parent_id, recipient, SendResult.failed, f"{type(error).__name__}: {error}"
                )
            outcomes[index] = outcome
            if on_outcome is not None:
                on_outcome(outcome)
        pending = again
        if not pending:
            break
    return [outcomes[index] for index in sorted(outcomes)]
