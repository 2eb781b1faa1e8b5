"""Sending club emails: render per parent, claim the send in `email_log`, deliver, record.

The claim is what makes a blast resumable and safe to race: one `email_log` row per (tenant,
email type, blast key, transport, parent), taken by an insert only one run can win. A parent
whose row says `sent` is never sent again; a row another run is sending now (`sending`, claimed
less than `PAYLINKS_BLAST_CLAIM_LEASE_MINUTES` ago) is left to it; only an older claim, left by
a run that died, is taken over, and the report says so. Delivery is at least once: a process
killed between the SMTP server's "250 OK" and the `sent` record sends that one message again on
the rerun (a window of milliseconds; losing a parent's email instead would be worse).

A blast is a row of `blasts` (tenant, key, transport). Without a key, a send resumes the
tenant's unfinished blast on the same transport, whatever its date, or starts a new one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.club.balances import BalanceSheet, HeldBackItem, brand_of
from paylinks.club.players import PlayerMatch
from paylinks.club.tenants import Tenant
from paylinks.messaging.render import ParentBalance, RenderedEmail, build_message, render_email
from paylinks.messaging.transports import MailDeliveryError, MailTransport
from paylinks.settings import EmailTransportName, Settings
from paylinks.store.tables import blasts, email_log, utcnow
from paylinks.vocabulary import BlastStatus, EmailStatus, EmailType

ERROR_TEXT_LIMIT = 2000


class BlastMode(enum.StrEnum):
    preview = "preview"  # render everything, send nothing
    test = "test"  # one sample to a test address, its buttons not payable
    send = "send"  # every parent with a balance


class SendResult(enum.StrEnum):
    """What became of one send attempt."""

    sent = "sent"
    already_sent = "already sent"
    claimed_elsewhere = "being sent by another run"
    failed = "failed"


class SkipReason(enum.StrEnum):
    """Why a parent with a balance got no email from this run."""

    no_address = "no email address on file (unreachable)"
    invalid_address = "the email address on file is not a valid address; fix it in the club's records"
    already_sent = "already sent in this blast"
    claimed_elsewhere = "another run of this blast is sending it now"


class ResendOutcome(enum.StrEnum):
    sent = "sent"
    dry_run = "dry run"
    unreachable = "unreachable: no email on file"
    failed = "failed"


@dataclass(frozen=True)
class PreparedEmail:
    """One rendered email for one parent, ready to send (or to show in a preview)."""

    parent_id: int
    parent_name: str
    address: str | None
    rendered: RenderedEmail
    item_count: int
    total_cents: int
    urls: tuple[str, ...]


def prepare_email(
    tenant: Tenant,
    email_type: EmailType,
    balance: ParentBalance,
    test_recipient_note: str | None = None,
    forwarded_for: str | None = None,
) -> PreparedEmail:
    rendered = render_email(
        email_type,
        brand=brand_of(tenant),
        balance=balance,
        test_recipient_note=test_recipient_note,
        forwarded_for=forwarded_for,
    )
    return PreparedEmail(
        parent_id=balance.parent_id,
        parent_name=balance.parent_name,
        address=balance.email,
        rendered=rendered,
        item_count=len(balance.items),
        total_cents=balance.total_cents,
        urls=tuple(item.url for item in balance.items),
    )


def prepare_balance_emails(tenant: Tenant, sheet: BalanceSheet) -> list[PreparedEmail]:
    return [prepare_email(tenant, EmailType.outstanding_balance, balance) for balance in sheet.balances]


def preview_link(office_url: str, payment_link_id: int | None) -> str:
    """The office's non-payable preview of one row's link: what a test email's buttons open."""
    return f"{office_url.rstrip('/')}/preview/payment-links/{payment_link_id}"


def prepare_test_email(
    tenant: Tenant, email_type: EmailType, balance: ParentBalance, office_url: str
) -> PreparedEmail:
    """The sample of a blast: the real layout, names and amounts, but every Pay Now button leads
    to a preview that takes no payment, so a tester's click cannot settle a family's bill."""
    real = (
        f"{balance.parent_name} <{balance.email}>"
        if balance.email
        else f"{balance.parent_name} (no email on file)"
    )
    harmless = replace(
        balance,
        items=tuple(
            replace(item, url=preview_link(office_url, item.payment_link_id)) for item in balance.items
        ),
    )
    return prepare_email(tenant, email_type, harmless, test_recipient_note=real)


def message_for(
    settings: Settings, tenant: Tenant, email: PreparedEmail, to_address: str, to_name: str | None = None
) -> EmailMessage:
    return build_message(
        email.rendered,
        sender=settings.email_from,
        to_name=to_name or email.parent_name,
        to_address=to_address,
        reply_to=tenant.reply_to_email,
    )


# -- blasts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlastRun:
    """The blast a run belongs to (or, for a preview, the one a send would use)."""

    run_key: str
    transport: EmailTransportName
    started_at: datetime | None  # None: not started yet (a preview of a new blast)
    resumed: bool  # an existing blast picked up again, rather than a new one


def _dialect_insert(connection: Connection, table: sa.Table) -> Any:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        # Either dialect's insert() is called the same way; the result is returned as Any.
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(table)


def _blast_row(connection: Connection, tenant: Tenant, run_key: str, transport: EmailTransportName):
    return connection.execute(
        sa.select(blasts.c.run_key, blasts.c.status, blasts.c.started_at).where(
            blasts.c.tenant_id == tenant.id,
            blasts.c.run_key == run_key,
            blasts.c.transport == transport.value,
        )
    ).first()


def _unfinished_blast(connection: Connection, tenant: Tenant, transport: EmailTransportName):
    return connection.execute(
        sa.select(blasts.c.run_key, blasts.c.status, blasts.c.started_at)
        .where(
            blasts.c.tenant_id == tenant.id,
            blasts.c.transport == transport.value,
            blasts.c.status == BlastStatus.running,
        )
        .order_by(blasts.c.started_at.desc(), blasts.c.id.desc())
        .limit(1)
    ).first()


def _try_start(engine: Engine, tenant: Tenant, run_key: str, transport: EmailTransportName) -> bool:
    """Insert the blast row; False when a row with this key (and transport) already exists."""
    with engine.begin() as connection:
        statement = (
            _dialect_insert(connection, blasts)
            .values(
                tenant_id=tenant.id,
                run_key=run_key,
                transport=transport.value,
                status=BlastStatus.running,
                started_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(blasts.c.id)
        )
        # RETURNING, not rowcount: a row comes back only when this insert made it.
        return connection.execute(statement).scalar_one_or_none() is not None


def find_blast(
    engine: Engine, tenant: Tenant, transport: EmailTransportName, blast_key: str | None
) -> BlastRun | None:
    """The blast a send would use now, without starting it; None when a send would start a new one."""
    with engine.connect() as connection:
        row = (
            _blast_row(connection, tenant, blast_key, transport)
            if blast_key
            else _unfinished_blast(connection, tenant, transport)
        )
    if row is None:
        return BlastRun(blast_key, transport, None, resumed=False) if blast_key else None
    return BlastRun(row.run_key, transport, row.started_at, resumed=True)


def start_blast(
    engine: Engine, tenant: Tenant, transport: EmailTransportName, blast_key: str | None, today: date
) -> BlastRun:
    """The blast this send belongs to: the named one, else the tenant's unfinished one, else a new one.

    Starting is an insert only one run wins, so two keyless sends started together share one
    blast (the loser resumes the winner's) instead of each mailing every parent.
    """
    if blast_key:
        created = _try_start(engine, tenant, blast_key, transport)
        with engine.begin() as connection:
            if not created:
                # A named blast run again (to reach parents added since) is running until it ends.
                connection.execute(
                    sa.update(blasts)
                    .where(
                        blasts.c.tenant_id == tenant.id,
                        blasts.c.run_key == blast_key,
                        blasts.c.transport == transport.value,
                    )
                    .values(status=BlastStatus.running, finished_at=None)
                )
            row = _blast_row(connection, tenant, blast_key, transport)
        return BlastRun(blast_key, transport, row.started_at, resumed=not created)
    with engine.connect() as connection:
        unfinished = _unfinished_blast(connection, tenant, transport)
    if unfinished is not None:
        return BlastRun(unfinished.run_key, transport, unfinished.started_at, resumed=True)
    base = f"{tenant.slug}-{today.isoformat()}"
    for attempt in range(1, 1000):
        run_key = base if attempt == 1 else f"{base}-{attempt}"
        created = _try_start(engine, tenant, run_key, transport)
        with engine.connect() as connection:
            row = _blast_row(connection, tenant, run_key, transport)
        if created:
            return BlastRun(run_key, transport, row.started_at, resumed=False)
        if row.status == BlastStatus.running:
            # Another send started this very blast a moment ago: share it.
            return BlastRun(run_key, transport, row.started_at, resumed=True)
    raise RuntimeError(f"no free blast key left for {base}")  # pragma: no cover - 999 blasts in a day


def finish_blast(engine: Engine, tenant: Tenant, blast: BlastRun) -> None:
    """Every reachable parent has their email: a keyless send no longer resumes this blast."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(blasts)
            .where(
                blasts.c.tenant_id == tenant.id,
                blasts.c.run_key == blast.run_key,
                blasts.c.transport == blast.transport.value,
            )
            .values(status=BlastStatus.finished, finished_at=utcnow())
        )


# -- claims ------------------------------------------------------------------------------------


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
    values = dict(
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
    with engine.begin() as connection:
        statement = (
            _dialect_insert(connection, email_log)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(email_log.c.id)
        )
        log_id = connection.execute(statement).scalar_one_or_none()
    if log_id is not None:
        return Claim(ClaimKind.new, log_id)
    # Only a parent's claim can conflict (NULL parents never collide), so this names one row.
    this_send = sa.and_(
        email_log.c.tenant_id == tenant.id,
        email_log.c.email_type == email_type,
        email_log.c.run_key == run_key,
        email_log.c.transport == transport.value,
        email_log.c.parent_id == parent_id,
    )
    claim_values = {
        k: v for k, v in values.items() if k not in ("tenant_id", "email_type", "run_key", "transport")
    }
    with engine.begin() as connection:
        retried = connection.execute(
            sa.update(email_log)
            .where(this_send, email_log.c.status == EmailStatus.failed)
            .values(**claim_values)
            .returning(email_log.c.id)
        ).scalar_one_or_none()
    if retried is not None:
        return Claim(ClaimKind.retry, retried)
    with engine.connect() as connection:
        seen = connection.execute(
            sa.select(email_log.c.status, email_log.c.claimed_at).where(this_send)
        ).first()
    if seen is None or seen.status == EmailStatus.sent:
        return Claim(ClaimKind.already_sent)
    if seen.status == EmailStatus.failed:
        return Claim(ClaimKind.claimed_elsewhere)  # failed again just now: another run is on it
    stale = sa.or_(email_log.c.claimed_at.is_(None), email_log.c.claimed_at < now - lease)
    with engine.begin() as connection:
        taken = connection.execute(
            sa.update(email_log)
            .where(this_send, email_log.c.status == EmailStatus.sending, stale)
            .values(**claim_values)
            .returning(email_log.c.id)
        ).scalar_one_or_none()
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


# -- reports -----------------------------------------------------------------------------------


@dataclass
class BlastReport:
    """Who a blast (or its preview, or its test send) reached, skipped and failed."""

    tenant: str
    mode: BlastMode
    currency: str
    transport: EmailTransportName
    blast: BlastRun | None  # for a preview: the blast a send would resume (None: a new one)
    emails: list[PreparedEmail]
    held_back: tuple[HeldBackItem, ...] = ()
    sent: list[SendOutcome] = field(default_factory=list)
    skipped: dict[int, SkipReason] = field(default_factory=dict)  # parent id → why no email
    failed: list[SendOutcome] = field(default_factory=list)
    outbox_dir: str | None = None  # set when the transport is the outbox folder
    test_recipient: str | None = None
    sample: PreparedEmail | None = None  # the test send's email (its buttons lead to previews)

    @property
    def run_key(self) -> str | None:
        return self.blast.run_key if self.blast else None

    @property
    def total_cents(self) -> int:
        return sum(email.total_cents for email in self.emails)

    @property
    def item_count(self) -> int:
        return sum(email.item_count for email in self.emails)

    def skipped_for(self, reason: SkipReason) -> int:
        return sum(1 for why in self.skipped.values() if why is reason)

    @property
    def claims_taken_over(self) -> list[SendOutcome]:
        return [outcome for outcome in self.sent if outcome.took_over_claim_of is not None]


@dataclass(frozen=True)
class ResendToParent:
    """One parent's email in a coach's resend, and what became of it."""

    parent_id: int
    parent_name: str
    recipient: str | None
    email: PreparedEmail
    outcome: ResendOutcome
    error: str | None = None


@dataclass
class ResendReport:
    """What the coach's resend found and did: one email per parent who owes something for the player."""

    tenant: str
    currency: str
    player: PlayerMatch
    to: str | None  # the address every email went to instead of each parent's
    dry_run: bool
    parents: list[ResendToParent] = field(default_factory=list)
    held_back: tuple[HeldBackItem, ...] = ()

    @property
    def nothing_owed(self) -> bool:
        return not self.parents

    def count(self, outcome: ResendOutcome) -> int:
        return sum(1 for parent in self.parents if parent.outcome is outcome)
