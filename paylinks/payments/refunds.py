"""Money owed back, settled by a person: refunded by hand, or kept as credit.

The one resolver (the office's refunds page and anything else call it): the payment is marked
resolved, how it ended and the person's note kept apart, every item of it whose money was owed
back is settled, and each such bill leaves `refund_due` once nothing more is owed back on it
(see `transitions.on_refund_resolved`). A refund made at Stripe is resolved by the ledger when
the news arrives; one it could not match to whole items is matched here by the admin's pick
(`pick_refunded_items`).
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.payments import charges, transitions
from paylinks.store.tables import payment_allocations, payment_links, payments, utcnow
from paylinks.vocabulary import AllocationStatus, PaymentLinkStatus, RefundResolution

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
        .returning(payments.c.id)
    ).first()
    if resolved is None:
        return False
    owed = list(
        connection.execute(
            sa.update(payment_allocations)
            .where(
                payment_allocations.c.payment_id == payment_id,
                payment_allocations.c.status == AllocationStatus.refund_due,
            )
            .values(status=AllocationStatus.resolved, updated_at=now)
            .returning(payment_allocations.c.payment_link_row_id)
        ).scalars()
    )
    if not owed and not charges.allocations_of(connection, payment_id):
        # A record from before payments were allocated: its one bill.
        owed = [
            connection.execute(
                sa.select(payments.c.payment_link_row_id).where(payments.c.id == payment_id)
            ).scalar_one()
        ]
    for row_id in owed:
        if row_id is not None:
            _restate_resolved(connection, row_id)
    return True


def _restate_resolved(connection: Connection, row_id: int) -> None:
    row = connection.execute(sa.select(payment_links).where(payment_links.c.id == row_id)).mappings().first()
    if row is None:
        return
    paying, still_due = charges.row_standing(connection, row_id)
    status = transitions.on_refund_resolved(
        PaymentLinkStatus(row["status"]), refund_still_due=still_due, paid_once=paying
    )
    if status is not None:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(status=status, updated_at=utcnow())
        )


def pick_refunded_items(
    connection: Connection, tenant_id: int, payment_id: int, row_ids: Collection[int]
) -> bool:
    """The admin says which items money refunded at Stripe (and not matched to items) was for:
    those items' money went back, in full. False (nothing written) when the payment is not this
    tenant's, or the items' open amounts do not fit in the unmatched refund."""
    record = (
        connection.execute(
            sa.select(payments)
            .where(payments.c.id == payment_id, payments.c.tenant_id == tenant_id)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    if record is None or not row_ids:
        return False
    chosen = [
        a
        for a in charges.allocations_of(connection, payment_id)
        if a["payment_link_row_id"] in set(row_ids)
        and AllocationStatus(a["status"]) in transitions.REFUNDABLE
    ]
    cents = sum(int(a["amount_cents"]) - int(a["refunded_cents"]) for a in chosen)
    if len(chosen) != len(set(row_ids)) or cents == 0 or cents > int(record["unallocated_refund_cents"]):
        return False
    for allocation in chosen:
        connection.execute(
            sa.update(payment_allocations)
            .where(payment_allocations.c.id == allocation["id"])
            .values(
                status=AllocationStatus.refunded,
                refunded_cents=allocation["amount_cents"],
                updated_at=utcnow(),
            )
        )
        charges.restate_rows(connection, [int(allocation["payment_link_row_id"])])
    connection.execute(
        sa.update(payments)
        .where(payments.c.id == payment_id)
        .values(unallocated_refund_cents=payments.c.unallocated_refund_cents - cents, updated_at=utcnow())
    )
    charges.settle_if_nothing_owed(connection, payment_id, RefundResolution.refunded_at_stripe)
    return True
