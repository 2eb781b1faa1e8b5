"""The send claim: one `email_log` row per (tenant, email type, blast key, transport, parent), so
nobody is mailed twice.

The claim is what makes a blast resumable and safe to race: the row is taken by an insert only
one run can win. A parent whose row says `sent` is never sent again; a row another run is
sending now (`sending`, claimed less than `PAYLINKS_BLAST_CLAIM_LEASE_MINUTES` ago) is left to
it; only an older claim, left by a run that died, is taken over, and the report says so.
Delivery is at least once: a process killed between the SMTP server's "250 OK" and the `sent`
record sends that one message again on the rerun (a window of milliseconds; losing a parent's
email instead would be worse).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.club.tenants import Tenant
from paylinks.messaging.prepare import PreparedEmail, message_for
from paylinks.messaging.transports import MailDeliveryError, MailTransport
from paylinks.settings import EmailTransportName, Settings
from paylinks.store.tables import dialect_insert, email_log, utcnow
from paylinks.vocabulary import EmailStatus, EmailType, StrLabelEnum

ERROR_TEXT_LIMIT = 2000


class SendResult(StrLabelEnum):
    """What became of one send attempt."""

    sent = "sent", "sent"
    already_sent = "already_sent", "already sent"
    claimed_elsewhere = "claimed_elsewhere", "being sent by another run"
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
        statement = (
            dialect_insert(connection, email_log)
            .values(**row)
            .on_conflict_do_nothing()
            .returning(email_log.c.id)
        )
        log_id = connection.execute(statement).scalar_one_or_none()
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


def record_outcome(engine: Engine, log_id: int, error: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.update(email_log)
            .where(email_log.c.id == log_id)
            .values(
                status=EmailStatus.failed if error else EmailStatus.sent,
                error=error[:ERROR_TEXT_LIMIT] if error else None,
                sent_at=None if error else utcnow(),
            )
        )


@dataclass(frozen=True)
class SendOutcome:
    parent_id: int | None
    recipient: str
    result: SendResult
    error: str | None = None
    took_over_claim_of: datetime | None = None  # a stale claim of this time was taken over


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
) -> SendOutcome:
    """Claim, deliver and record one email. Delivery errors are recorded, then raised."""
    claim = claim_send(
        engine,
        tenant,
        email_type,
        run_key,
        settings.email_transport,
        email,
        recipient,
        parent_id,
        lease=timedelta(minutes=settings.blast_claim_lease_minutes),
    )
    if claim.kind is ClaimKind.already_sent:
        return SendOutcome(parent_id, recipient, SendResult.already_sent)
    if claim.kind is ClaimKind.claimed_elsewhere:
        return SendOutcome(parent_id, recipient, SendResult.claimed_elsewhere)
    assert claim.log_id is not None
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
