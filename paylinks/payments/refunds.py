"""Money owed back, settled by a person: refunded by hand, or kept as credit.

The one resolver (the office's refunds page and anything else call it): the payment is marked
resolved, how it ended and the person's note kept apart, and its bill leaves `refund_due` once
nothing more is owed back on it (see `transitions.on_refund_resolved`). A refund made at Stripe
is resolved by the ledger when the news arrives.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.payments import transitions
from paylinks.store.tables import payment_links, payments, utcnow
from paylinks.vocabulary import PaymentLinkStatus, RefundResolution

BY_A_PERSON = (RefundResolution.refunded_by_hand, RefundResolution.kept_as_credit)


def resolve_refund_due(
    connection: Connection,
    tenant_id: int,
    payment_id: int,
    resolution: RefundResolution,
    *,
    resolved_by: str,
    note: str = "",
) -> bool:
    """Settle one payment's refund due; False when it is not this tenant's, not owed back, or
    already resolved (nothing is written then)."""
    if resolution not in BY_A_PERSON:
        raise ValueError(f"a person resolves a refund due by hand or as credit, not {resolution.label}")
    now = utcnow()
    resolved = connection.execute(
        sa.update(payments)
        .where(
            payments.c.id == payment_id,
            payments.c.tenant_id == tenant_id,
            payments.c.refund_due.is_(True),
            payments.c.resolved_at.is_(None),
        )
        .values(
            resolved_at=now,
            resolved_by=resolved_by,
            resolution=resolution,
            resolution_note=note.strip() or None,
            updated_at=now,
        )
        .returning(payments.c.payment_link_row_id)
    ).first()
    if resolved is None:
        return False
    row = (
        connection.execute(sa.select(payment_links).where(payment_links.c.id == resolved.payment_link_row_id))
        .mappings()
        .first()
    )
    if row is None:
        return True
    still_due = connection.execute(
        sa.select(sa.func.count())
        .select_from(payments)
        .where(
            payments.c.payment_link_row_id == row["id"],
            payments.c.refund_due.is_(True),
            payments.c.resolved_at.is_(None),
        )
    ).scalar_one()
    status = transitions.on_refund_resolved(
        PaymentLinkStatus(row["status"]),
        refund_still_due=bool(still_due),
        paid_once=row["stripe_checkout_session_id"] is not None and row["paid_at"] is not None,
    )
    if status is not None:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(status=status, updated_at=utcnow())
        )
    return True
