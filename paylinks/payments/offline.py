"""Marking a bill paid offline (cash, cheque, other), so the family cannot pay it twice.

The Stripe link is deactivated first; if Stripe shows the link was paid meanwhile, the offline
payment is refused and nothing changes here. Then, in one transaction, the row becomes `paid`
with its method, who, when and note, its order is marked paid, and the audit log says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.access.audit import Actor, record
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.store.tables import orders, payment_links, utcnow
from paylinks.stripe_api.gateway import StripeGateway
from paylinks.vocabulary import AuditAction, OrderStatus, PaidMethod, PaymentLinkStatus

OFFLINE_METHODS = (PaidMethod.cash, PaidMethod.cheque, PaidMethod.other)
INACTIVE_MESSAGE = "This bill has been paid. Thank you! Nothing more is owed on this link."


class OfflinePaymentRefused(PaylinksError):
    """The bill cannot be marked paid offline; the message says why, for the admin."""


class UnknownRowError(PaylinksError):
    """No such payment-link row in this tenant."""


def row_player(engine: Engine, tenant: Tenant, row_id: int) -> int | None:
    """The player a row of this tenant bills; None when the row is not this tenant's."""
    with engine.connect() as connection:
        return connection.execute(
            sa.select(payment_links.c.player_id).where(
                payment_links.c.id == row_id, payment_links.c.tenant_id == tenant.id
            )
        ).scalar()


@dataclass(frozen=True)
class OfflinePayment:
    row_id: int
    player_id: int
    description: str
    amount_cents: int
    method: PaidMethod
    order_id: int | None
    link_deactivated: bool
    audit_id: int


def mark_paid_offline(
    engine: Engine,
    gateway_factory: Callable[[], StripeGateway],
    tenant: Tenant,
    row_id: int,
    method: PaidMethod,
    note: str,
    *,
    actor: Actor,
) -> OfflinePayment:
    """Deactivate the row's link, then record it paid by `method`. `gateway_factory()` builds the
    Stripe gateway only when the row has a link (an unminted bill needs no Stripe at all)."""
    row = _open_row(engine, tenant, row_id, method)
    link_id = row["stripe_payment_link_id"]
    if link_id:
        _close_link(gateway_factory(), row_id, link_id)
    return _record_paid(engine, tenant, row, method, note.strip(), actor, deactivated=bool(link_id))


def _open_row(engine: Engine, tenant: Tenant, row_id: int, method: PaidMethod) -> sa.RowMapping:
    """The tenant's row, if it may be marked paid offline now; else why not."""
    if method not in OFFLINE_METHODS:
        raise OfflinePaymentRefused(f"{method.value} is not an offline method; choose cash, cheque or other")
    with engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(payment_links).where(
                    payment_links.c.id == row_id, payment_links.c.tenant_id == tenant.id
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise UnknownRowError(f"no item #{row_id} in {tenant.slug}")
    status = PaymentLinkStatus(row["status"])
    if status != PaymentLinkStatus.pending:
        raise OfflinePaymentRefused(f"item #{row_id} is {status.value}, not open: nothing to mark paid")
    return row


def _close_link(gateway: StripeGateway, row_id: int, link_id: str) -> None:
    link = gateway.deactivate_payment_link(link_id, INACTIVE_MESSAGE)
    # Read after deactivating, so a payment completed a moment before is seen too.
    if link.completed_sessions > 0:
        raise OfflinePaymentRefused(
            f"item #{row_id} was paid at Stripe in the meantime, so it was not marked paid offline; "
            "reconcile will record the Stripe payment (give back the cash or cheque)"
        )


def _record_paid(
    engine: Engine,
    tenant: Tenant,
    row: sa.RowMapping,
    method: PaidMethod,
    note: str,
    actor: Actor,
    *,
    deactivated: bool,
) -> OfflinePayment:
    """In one transaction: the row paid (if still open), its order paid, the audit entry."""
    row_id, now = int(row["id"]), utcnow()
    with engine.begin() as connection:
        updated = connection.execute(
            sa.update(payment_links)
            .where(
                payment_links.c.id == row_id,
                payment_links.c.tenant_id == tenant.id,
                payment_links.c.status == PaymentLinkStatus.pending,
            )
            .values(
                status=PaymentLinkStatus.paid,
                paid_method=method,
                paid_by=actor.name,
                paid_at=now,
                paid_note=note or None,
                updated_at=now,
            )
        )
        if updated.rowcount != 1:
            raise OfflinePaymentRefused(f"item #{row_id} changed while it was being marked; look again")
        if row["order_id"] is not None:
            connection.execute(
                sa.update(orders)
                .where(
                    orders.c.id == row["order_id"],
                    orders.c.tenant_id == tenant.id,
                    orders.c.status == OrderStatus.pending,
                )
                .values(status=OrderStatus.paid, paid_at=now)
            )
        audit_id = record(
            connection,
            actor,
            AuditAction.mark_paid_offline,
            tenant.id,
            f"item #{row_id} {row['description']!r} ({row['amount_cents']} cents) paid by {method.value}"
            + (f"; link {row['stripe_payment_link_id']} deactivated" if deactivated else "")
            + (f"; note: {note}" if note else ""),
        )
    return OfflinePayment(
        row_id,
        row["player_id"],
        row["description"],
        int(row["amount_cents"]),
        method,
        row["order_id"],
        deactivated,
        audit_id,
    )
