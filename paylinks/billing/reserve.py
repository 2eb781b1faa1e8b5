"""Reserve: commit a `payment_links` row for every link about to be minted, before it is minted.

Deciding what each row is written with is pure (`decide_reservations`); writing it is one
transaction (`write_reservations`) that returns the mint jobs. New items get a new row;
re-minted and reactivated rows get the item's values and the next `mint_version`, so their mint
uses a fresh idempotency key. A row reserved earlier and not minted keeps its reservation as it
was, so its mint replays the same request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.billing.mint import MintJob, link_metadata
from paylinks.billing.plan import Action, Step
from paylinks.club.tenants import Tenant
from paylinks.store.tables import payment_links, utcnow
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import PaymentLinkStatus


@dataclass(frozen=True)
class Reservation:
    """One row to commit before its link is minted."""

    # mint: keep the earlier reservation; reserve_and_mint: a new row; else: re-reserve the row
    action: Action
    row_id: int | None  # None: a new row (its id is known once it is written)
    mint_version: int
    price_id: str
    link_fields: Mapping[str, Any]  # the player, product and order the link's metadata names
    row_values: dict[str, Any] = field(default_factory=dict)  # what the row is written with
    # A reservation older than Stripe's idempotency memory: look for its link first.
    reserved_before: datetime | None = None
    checkout_text: str | None = None  # what the link's checkout and receipt say it is for


def reserve_payment_links(
    engine: Engine,
    tenant: Tenant,
    where: StripeContext,
    steps: Iterable[Step],
    tiers: Mapping[tuple[int, int], str],
    now: datetime | None = None,
) -> list[MintJob]:
    """Write (commit) a row for every link about to be minted, and return the mint jobs.

    New items get a new row; re-minted and reactivated rows get the item's values and the next
    `mint_version`, so their mint uses a fresh idempotency key. A row reserved earlier and not
    minted keeps its reservation as it was, so its mint replays the same request.
    """
    reservations = decide_reservations(where, steps, tiers, now or utcnow())
    return write_reservations(engine, tenant, where, reservations)


def decide_reservations(
    where: StripeContext, steps: Iterable[Step], tiers: Mapping[tuple[int, int], str], now: datetime
) -> list[Reservation]:
    """What each mint step's row is written with (pure)."""
    reservations: list[Reservation] = []
    for step in steps:
        item = step.item
        assert item is not None
        if step.action is Action.mint:
            assert step.row is not None
            row = step.row
            same_place = row.get("stripe_account") in (None, where.account)
            price_id = (
                row["stripe_price_id"]
                if same_place and row["stripe_price_id"]
                else tiers[(item.product_id, int(row["amount_cents"]))]
            )
            stale_since = row.get("reserved_at") if step.stale_reservation else None
            reservations.append(
                Reservation(
                    step.action,
                    cast(int, step.row_id),
                    int(row["mint_version"]),
                    price_id,
                    row,
                    reserved_before=stale_since,
                    # As reserved: a replay sends what the first attempt sent.
                    checkout_text=row.get("checkout_text"),
                )
            )
            continue
        price_id = tiers[(item.product_id, item.amount_cents)]
        values = dict(
            parent_id=item.parent_id,
            order_id=item.order_id,
            description=item.description,
            amount_cents=item.amount_cents,
            stripe_price_id=price_id,
            stripe_account=where.account,
            livemode=where.livemode,
            checkout_text=step.checkout_text or None,
            reserved_at=now,
            updated_at=now,
        )
        reserved = {"player_id": item.player_id, "product_id": item.product_id, "order_id": item.order_id}
        if step.action is Action.reserve_and_mint:
            version = 1
            row_values = dict(
                player_id=item.player_id,
                product_id=item.product_id,
                status=PaymentLinkStatus.pending,
                mint_version=version,
                created_at=now,
                **values,
            )
            reservations.append(
                Reservation(
                    step.action,
                    None,
                    version,
                    price_id,
                    reserved,
                    row_values,
                    checkout_text=step.checkout_text or None,
                )
            )
        else:
            assert step.row is not None and step.row_id is not None
            version = int(step.row["mint_version"]) + 1
            row_values = dict(
                status=PaymentLinkStatus.pending,
                mint_version=version,
                stripe_payment_link_id=None,
                stripe_payment_link_url=None,
                **values,
            )
            reservations.append(
                Reservation(
                    step.action,
                    step.row_id,
                    version,
                    price_id,
                    reserved,
                    row_values,
                    checkout_text=step.checkout_text or None,
                )
            )
    return reservations


def write_reservations(
    engine: Engine, tenant: Tenant, where: StripeContext, reservations: Iterable[Reservation]
) -> list[MintJob]:
    """Commit every reservation in one transaction; the mint jobs, in the same order."""
    jobs: list[MintJob] = []
    with engine.begin() as connection:
        for reservation in reservations:
            row_id = reservation.row_id
            if reservation.action is Action.mint:
                connection.execute(
                    sa.update(payment_links)
                    .where(payment_links.c.id == row_id, payment_links.c.stripe_account.is_(None))
                    .values(stripe_account=where.account, livemode=where.livemode)
                )
            elif row_id is None:
                row_id = connection.execute(
                    sa.insert(payment_links)
                    .values(tenant_id=tenant.id, **reservation.row_values)
                    .returning(payment_links.c.id)
                ).scalar_one()
            else:
                settled = [PaymentLinkStatus(s) for s in ("processing", "paid", "refund_due", "refunded")]
                connection.execute(
                    sa.update(payment_links)
                    .where(payment_links.c.id == row_id, payment_links.c.status.not_in(settled))
                    .values(**reservation.row_values)
                )
            version = reservation.mint_version
            jobs.append(
                MintJob(
                    cast(int, row_id),
                    version,
                    reservation.price_id,
                    link_metadata(tenant.id, reservation.link_fields, cast(int, row_id), version),
                    reserved_before=reservation.reserved_before,
                    checkout_text=reservation.checkout_text,
                )
            )
    return jobs
