"""A bill a family checkout paid (or holds, a bank debit settling) cannot be paid again through
its own link: that link is deactivated at Stripe right after the ledger records the family's
money (by the webhook receiver, or reconcile), and its page then says the bill is paid.

The ledger marks what to close (`payment_allocations.stripe_payment_link_id`, `link_closed_at`
NULL) in the same transaction as the payment, so nothing is forgotten: whatever the caller could
not close (Stripe out of reach) the next reconcile closes. A payment through the link in the
moment before is a second payment, owed back (`transitions.on_money`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.club.tenants import Tenant, tenant_from_row
from paylinks.errors import PaylinksError
from paylinks.payments.offline import INACTIVE_MESSAGE
from paylinks.store.tables import payment_allocations, tenants, utcnow
from paylinks.stripe_api.gateway import StripeGateway, StripeNotFoundError

logger = logging.getLogger("paylinks.payments")


def links_to_close(
    engine: Engine, *, allocation_ids: Iterable[int] | None = None, tenant_id: int | None = None
) -> list[sa.Row]:
    """(allocation id, tenant id, link id) of own links still to deactivate: those named, or a
    tenant's, or every tenant's."""
    where: list[sa.ColumnElement[bool]] = [
        payment_allocations.c.stripe_payment_link_id.is_not(None),
        payment_allocations.c.link_closed_at.is_(None),
    ]
    if allocation_ids is not None:
        where.append(payment_allocations.c.id.in_(sorted(set(allocation_ids))))
    if tenant_id is not None:
        where.append(payment_allocations.c.tenant_id == tenant_id)
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(
                    payment_allocations.c.id,
                    payment_allocations.c.tenant_id,
                    payment_allocations.c.stripe_payment_link_id,
                )
                .where(*where)
                .order_by(payment_allocations.c.id)
            )
        )


def close_own_links(
    engine: Engine,
    gateway_for: Callable[[Tenant], StripeGateway],
    *,
    allocation_ids: Iterable[int] | None = None,
    tenant_id: int | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Deactivate at Stripe the own links of bills a family checkout took, then record it.
    Returns (links closed, [(link, error)]); one link's trouble never stops the others."""
    todo = links_to_close(engine, allocation_ids=allocation_ids, tenant_id=tenant_id)
    if not todo:
        return [], []
    with engine.connect() as connection:
        clubs = {
            row["id"]: tenant_from_row(row)
            for row in connection.execute(
                sa.select(tenants).where(tenants.c.id.in_({t.tenant_id for t in todo}))
            ).mappings()
        }
    gateways: dict[int, StripeGateway] = {}
    closed: list[str] = []
    errors: list[tuple[str, str]] = []
    for _allocation_id, owner, link_id in todo:
        gateway = gateways.get(owner) or gateways.setdefault(owner, gateway_for(clubs[owner]))
        try:
            gateway.deactivate_payment_link(link_id, INACTIVE_MESSAGE)
        except StripeNotFoundError:
            pass  # Stripe has no such link (any more): nothing can be paid through it
        except PaylinksError as error:
            errors.append((link_id, str(error)))
            continue
        # Every allocation that names this link: one deactivation closes it for all of them.
        with engine.begin() as connection:
            connection.execute(
                sa.update(payment_allocations)
                .where(
                    payment_allocations.c.stripe_payment_link_id == link_id,
                    payment_allocations.c.link_closed_at.is_(None),
                )
                .values(link_closed_at=utcnow())
            )
        closed.append(link_id)
    for link_id, why in errors:
        logger.warning("payment link %s is still active: %s (reconcile tries again)", link_id, why)
    return closed, errors
