"""News about a charge, applied: a refund (Stripe's running total) or a dispute (opened, won,
lost). When money goes back, the bills it was allocated to are no longer paid by it.

A refund is allocated as `transitions.split_refund` decides: whole items (money owed back
first), part of a one-item payment, or kept on the payment (`unallocated_refund_cents`) and
listed for the admin to pick. A lost dispute takes back every item's money.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.payments import transitions
from paylinks.payments.news import DisputeNews, RefundNews
from paylinks.payments.transitions import Applied, ApplyResult, Outcome, Portion
from paylinks.store.tables import payment_allocations, payment_links, payments, utcnow
from paylinks.stripe_api.words import DISPUTE_CLOSED
from paylinks.vocabulary import (
    PAID_OFFLINE,
    AllocationStatus,
    PaymentLinkStatus,
    RefundResolution,
)


def allocations_of(connection: Connection, payment_id: int) -> list[sa.RowMapping]:
    return list(
        connection.execute(
            sa.select(payment_allocations)
            .where(payment_allocations.c.payment_id == payment_id)
            .order_by(payment_allocations.c.id)
        ).mappings()
    )


def apply_refund(connection: Connection, record: Mapping[Any, Any], news: RefundNews) -> ApplyResult:
    refunded = max(int(record["refunded_cents"]), news.refunded_cents)
    tenant_id, session_id = record["tenant_id"], record["checkout_session_id"]
    if refunded == record["refunded_cents"]:
        return ApplyResult(
            [Applied(Outcome.already_known, record["payment_link_row_id"], tenant_id, session_id)]
        )
    in_full = refunded >= int(record["amount_cents"])
    allocations = allocations_of(connection, int(record["id"]))
    split = transitions.split_refund(
        refunded - int(record["refunded_cents"]),
        [
            Portion(
                int(a["id"]), int(a["amount_cents"]), int(a["refunded_cents"]), AllocationStatus(a["status"])
            )
            for a in allocations
        ],
        in_full=in_full,
    )
    by_id = {int(a["id"]): a for a in allocations}
    result = ApplyResult()
    for allocation_id in split.whole:
        allocation = by_id[allocation_id]
        connection.execute(
            sa.update(payment_allocations)
            .where(payment_allocations.c.id == allocation_id)
            .values(
                status=AllocationStatus.refunded,
                refunded_cents=allocation["amount_cents"],
                updated_at=utcnow(),
            )
        )
        _money_gone(connection, allocation)
        result.applied.append(
            Applied(
                Outcome.refunded,
                allocation["payment_link_row_id"],
                tenant_id,
                session_id,
                int(allocation["amount_cents"]) - int(allocation["refunded_cents"]),
            )
        )
    for allocation_id, cents in split.partial:
        connection.execute(
            sa.update(payment_allocations)
            .where(payment_allocations.c.id == allocation_id)
            .values(refunded_cents=payment_allocations.c.refunded_cents + cents, updated_at=utcnow())
        )
        result.applied.append(
            Applied(
                Outcome.partially_refunded,
                by_id[allocation_id]["payment_link_row_id"],
                tenant_id,
                session_id,
                refunded,
            )
        )
    values: dict[str, Any] = dict(refunded_cents=refunded, updated_at=utcnow())
    if in_full:
        values["unallocated_refund_cents"] = 0  # every item's money went back: all on the items
    elif split.unmatched_cents:
        values |= dict(
            unallocated_refund_cents=int(record["unallocated_refund_cents"]) + split.unmatched_cents,
            refund_due=True,
            refund_due_reason=transitions.REFUND_NOT_MATCHED,
            resolved_at=None,
            resolution=None,
        )
        result.applied.append(
            Applied(
                Outcome.partially_refunded,
                None,
                tenant_id,
                session_id,
                split.unmatched_cents,
                detail=("matches several sets of items: " if split.ambiguous else "")
                + transitions.REFUND_NOT_MATCHED,
            )
        )
    connection.execute(sa.update(payments).where(payments.c.id == record["id"]).values(**values))
    settle_if_nothing_owed(connection, int(record["id"]), RefundResolution.refunded_at_stripe)
    if not result.applied:
        result.applied.append(
            Applied(
                transitions.refund_outcome(refunded, int(record["amount_cents"])),
                None,
                tenant_id,
                session_id,
                refunded,
            )
        )
    return result


def apply_dispute(connection: Connection, record: Mapping[Any, Any], news: DisputeNews) -> ApplyResult:
    known = record["dispute_status"]
    allocations = allocations_of(connection, int(record["id"]))
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
        # The cardholder's bank took the payment back: every item's money is gone.
        for allocation in allocations:
            if AllocationStatus(allocation["status"]) in transitions.REFUNDABLE:
                connection.execute(
                    sa.update(payment_allocations)
                    .where(payment_allocations.c.id == allocation["id"])
                    .values(status=AllocationStatus.refunded, updated_at=utcnow())
                )
                _money_gone(connection, allocation)
        settle_if_nothing_owed(connection, int(record["id"]), RefundResolution.refunded_at_stripe)
    rows = [a["payment_link_row_id"] for a in allocations] or [record["payment_link_row_id"]]
    return ApplyResult(
        [
            Applied(outcome, row_id, record["tenant_id"], record["checkout_session_id"], news.amount_cents)
            for row_id in rows
        ]
    )


def settle_if_nothing_owed(
    connection: Connection, payment_id: int, resolution: RefundResolution, *, by: str | None = None
) -> None:
    """A payment listed as owing money back leaves the list once none of its items' money is
    owed back and no refunded money waits to be matched."""
    record = connection.execute(sa.select(payments).where(payments.c.id == payment_id)).mappings().one()
    if not record["refund_due"] or record["resolved_at"] is not None:
        return
    owed = connection.execute(
        sa.select(sa.func.count())
        .select_from(payment_allocations)
        .where(
            payment_allocations.c.payment_id == payment_id,
            payment_allocations.c.status == AllocationStatus.refund_due,
        )
    ).scalar_one()
    if owed or record["unallocated_refund_cents"]:
        return
    connection.execute(
        sa.update(payments)
        .where(payments.c.id == payment_id)
        .values(resolved_at=utcnow(), resolved_by=by, resolution=resolution, updated_at=utcnow())
    )


def row_standing(connection: Connection, row_id: int) -> tuple[bool, bool]:
    """(some money still pays the bill — a payment's or an offline one; some money is still owed
    back on it)."""
    statuses = list(
        connection.execute(
            sa.select(payment_allocations.c.status).where(payment_allocations.c.payment_link_row_id == row_id)
        ).scalars()
    )
    paid_offline = (
        connection.execute(
            sa.select(payment_links.c.paid_method).where(payment_links.c.id == row_id)
        ).scalar_one_or_none()
        in PAID_OFFLINE
    )
    paying = paid_offline or AllocationStatus.paid in statuses
    return paying, AllocationStatus.refund_due in statuses


def _money_gone(connection: Connection, allocation: Mapping[Any, Any]) -> None:
    """An item's money went back (a refund, a lost dispute): its bill is no longer paid by it.
    A bill another payment still pays stays paid; one with money still owed back stays
    `refund_due`; else it is refunded."""
    restate_rows(connection, [int(allocation["payment_link_row_id"])])


def restate_rows(connection: Connection, row_ids: Iterable[int]) -> None:
    for row_id in row_ids:
        row = (
            connection.execute(sa.select(payment_links).where(payment_links.c.id == row_id))
            .mappings()
            .first()
        )
        if row is None:
            continue
        paying, still_due = row_standing(connection, row_id)
        status = transitions.on_money_gone(
            PaymentLinkStatus(row["status"]), others_paying=paying, refund_still_due=still_due
        )
        if status is None or status == row["status"]:
            continue
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row_id)
            .values(status=status, updated_at=utcnow())
        )
