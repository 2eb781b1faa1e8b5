"""Sending club emails: render per parent, claim the send in `email_log`, deliver, record.

The claim is what makes a blast resumable: a parent whose row for this blast key says `sent` is
never sent again, so a blast that crashed halfway, run again, mails only the rest. Delivery is
at least once: a process killed between the SMTP server's "250 OK" and the `sent` record sends
that one message again on the rerun (a window of milliseconds; losing a parent's email instead
would be worse).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.balances import BalanceSheet, brand_of
from paylinks.db import EmailStatus, EmailType, email_log, utcnow
from paylinks.mail import MailDeliveryError, MailTransport
from paylinks.players import PlayerMatch
from paylinks.rendering import ParentBalance, RenderedEmail, build_message, format_money, render_email
from paylinks.settings import Settings
from paylinks.tenants import Tenant

ERROR_TEXT_LIMIT = 2000


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
    tenant: Tenant, email_type: EmailType, balance: ParentBalance, test_recipient_note: str | None = None
) -> PreparedEmail:
    rendered = render_email(
        email_type, brand=brand_of(tenant), balance=balance, test_recipient_note=test_recipient_note
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


def sent_parent_ids(engine: Engine, tenant: Tenant, email_type: EmailType, run_key: str) -> set[int]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                sa.select(email_log.c.parent_id).where(
                    email_log.c.tenant_id == tenant.id,
                    email_log.c.email_type == email_type,
                    email_log.c.run_key == run_key,
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
    email: PreparedEmail,
    recipient: str,
    parent_id: int | None,
) -> int | None:
    """Claim this send in `email_log`; None when this parent was already sent in this run."""
    values = dict(
        tenant_id=tenant.id,
        email_type=email_type,
        run_key=run_key,
        parent_id=parent_id,
        recipient=recipient,
        subject=email.rendered.subject,
        item_count=email.item_count,
        total_cents=email.total_cents,
        status=EmailStatus.sending,
        error=None,
    )
    with engine.begin() as connection:
        existing = None
        if parent_id is not None:
            existing = connection.execute(
                sa.select(email_log.c.id, email_log.c.status).where(
                    email_log.c.tenant_id == tenant.id,
                    email_log.c.email_type == email_type,
                    email_log.c.run_key == run_key,
                    email_log.c.parent_id == parent_id,
                )
            ).first()
        if existing is None:
            return connection.execute(
                sa.insert(email_log).values(**values).returning(email_log.c.id)
            ).scalar_one()
        if existing.status == EmailStatus.sent:
            return None
        # A failed or interrupted earlier attempt: try again under the same row.
        connection.execute(sa.update(email_log).where(email_log.c.id == existing.id).values(**values))
        return existing.id


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
    status: str  # "sent", "already sent" or "failed"
    error: str | None = None


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
    log_id = claim_send(engine, tenant, email_type, run_key, email, recipient, parent_id)
    if log_id is None:
        return SendOutcome(parent_id, recipient, "already sent")
    try:
        transport.send(message_for(settings, tenant, email, recipient, to_name))
    except MailDeliveryError as error:
        record_outcome(engine, log_id, str(error))
        raise
    except Exception as error:  # unexpected: still leave a trace in the log before failing
        record_outcome(engine, log_id, f"{type(error).__name__}: {error}")
        raise
    record_outcome(engine, log_id, None)
    return SendOutcome(parent_id, recipient, "sent")


@dataclass
class BlastReport:
    """Who a blast (or its preview, or its test send) reached, skipped and failed."""

    tenant: str
    mode: str  # "preview", "test" or "send"
    run_key: str
    emails: list[PreparedEmail]
    sent: list[SendOutcome]
    skipped: dict[int, str]  # parent id → why no email went out
    failed: list[SendOutcome]
    unminted_items: int = 0
    currency: str = "usd"

    def summary(self) -> dict[str, object]:
        return {
            "tenant": self.tenant,
            "mode": self.mode,
            "blast key": self.run_key,
            "parents with a balance": len(self.emails),
            "items": sum(e.item_count for e in self.emails),
            "total owed": sum(e.total_cents for e in self.emails),
            "sent": len(self.sent),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "items not minted yet (run the backfill)": self.unminted_items,
        }

    def recipient_rows(self) -> list[dict[str, object]]:
        sent = {o.parent_id: o for o in self.sent}
        failed = {o.parent_id: o for o in self.failed}
        rows = []
        for email in self.emails:
            outcome = (
                "sent"
                if email.parent_id in sent
                else "failed"
                if email.parent_id in failed
                else self.skipped.get(email.parent_id, "preview" if self.mode == "preview" else "")
            )
            rows.append(
                {
                    "parent": email.parent_name,
                    "email": email.address or "(none)",
                    "items": email.item_count,
                    "total_cents": email.total_cents,
                    "total": format_money(email.total_cents, self.currency),
                    "outcome": outcome,
                    "error": failed[email.parent_id].error if email.parent_id in failed else None,
                }
            )
        return rows


@dataclass
class ResendReport:
    """What the coach's resend found and did."""

    tenant: str
    player: PlayerMatch
    recipient: str | None
    email: PreparedEmail | None
    outcome: str  # "sent", "dry run", "nothing owed", "unreachable"
    sent: SendOutcome | None = None
