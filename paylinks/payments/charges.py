"""News about a charge, applied: a refund (Stripe's running total) or a dispute (opened, won,
lost). When a payment's money goes back, its bill is no longer paid by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.payments import transitions
from paylinks.payments.news import DisputeNews, RefundNews
from paylinks.payments.transitions import Applied, ApplyResult, Outcome
from paylinks.store.tables import payment_links, payments, utcnow
from paylinks.stripe_api.words import DISPUTE_CLOSED, DisputeStatus
from paylinks.vocabulary import PaymentLinkStatus, PaymentStatus, RefundResolution


def apply_refund(connection: Connection, record: Mapping[Any, Any], news: RefundNews) -> ApplyResult:
    refunded = max(int(record["refunded_cents"]), news.refunded_cents)
    row_id = record["payment_link_row_id"]
    applied = Applied(
        transitions.refund_outcome(refunded, int(record["amount_cents"])),
        row_id,
        record["tenant_id"],
        record["checkout_session_id"],
        refunded,
    )
    if refunded == record["refunded_cents"]:
        return ApplyResult(
            [Applied(Outcome.already_known, row_id, record["tenant_id"], record["checkout_session_id"])]
        )
    values: dict[str, Any] = dict(refunded_cents=refunded, updated_at=utcnow())
    if refunded >= record["amount_cents"] and record["refund_due"] and record["resolved_at"] is None:
        values |= dict(resolved_at=utcnow(), resolution=RefundResolution.refunded_at_stripe)
    connection.execute(sa.update(payments).where(payments.c.id == record["id"]).values(**values))
    if refunded >= record["amount_cents"] and row_id is not None:
        _money_gone(connection, record)
    return ApplyResult([applied])


def apply_dispute(connection: Connection, record: Mapping[Any, Any], news: DisputeNews) -> ApplyResult:
    known = record["dispute_status"]
    if known in DISPUTE_CLOSED or known == news.dispute_status:
        return ApplyResult(
            [Applied(Outcome.already_known, record["payment_link_row_id"], record["tenant_id"])]
        )
    connection.execute(
        sa.update(payments)
        .where(payments.c.id == record["id"])
        .values(dispute_status=news.dispute_status, disputed_cents=news.amount_cents, updated_at=utcnow())
    )
    outcome = transitions.dispute_outcome(news.dispute_status)
    if outcome is Outcome.dispute_lost:
        _money_gone(connection, record)
    return ApplyResult(
        [
            Applied(
                outcome,
                record["payment_link_row_id"],
                record["tenant_id"],
                record["checkout_session_id"],
                news.amount_cents,
            )
        ]
    )


def _money_gone(connection: Connection, record: Mapping[str, Any]) -> None:
    """A payment's money went back (a full refund, a lost dispute): its row is no longer paid by
    it. A row another payment still pays stays paid; a row owed back becomes refunded."""
    row = (
        connection.execute(
            sa.select(payment_links).where(payment_links.c.id == record["payment_link_row_id"])
        )
        .mappings()
        .first()
    )
    if row is None:
        return
    others_paying = connection.execute(
        sa.select(sa.func.count())
        .select_from(payments)
        .where(
            payments.c.payment_link_row_id == row["id"],
            payments.c.id != record["id"],
            payments.c.status == PaymentStatus.succeeded,
            payments.c.refunded_cents < payments.c.amount_cents,
            sa.or_(payments.c.dispute_status.is_(None), payments.c.dispute_status != DisputeStatus.lost),
        )
    ).scalar_one()
    still_due = connection.execute(
        sa.select(sa.func.count())
        .select_from(payments)
        .where(
            payments.c.payment_link_row_id == row["id"],
            payments.c.refund_due.is_(True),
            payments.c.resolved_at.is_(None),
        )
    ).scalar_one()
    status = transitions.on_money_gone(
        PaymentLinkStatus(row["status"]), others_paying=bool(others_paying), refund_still_due=bool(still_due)
    )
    if status is None:
        return
    connection.execute(
        sa.update(payment_links)
        .where(payment_links.c.id == row["id"])
        .values(status=status, updated_at=utcnow())
    )
