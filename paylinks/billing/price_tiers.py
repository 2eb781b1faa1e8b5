"""Price tiers: the Stripe Price of every (product, amount) the backfill mints at, confirmed at
Stripe by lookup key before any link is minted at it (found again or created), and recorded in
`price_tiers`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.billing.extract import BillingRows
from paylinks.billing.plan import Step
from paylinks.club.tenants import Tenant
from paylinks.store.tables import price_tiers
from paylinks.stripe_api.gateway import StripeContext, StripeGateway, StripeRequestError


def price_lookup_key(tenant: Tenant, product_id: int, amount_cents: int) -> str:
    """Lookup keys are unique per Stripe account (and mode): the tenant, product, amount, currency."""
    return f"paylinks-{tenant.id}-{product_id}-{amount_cents}-{tenant.currency.lower()}"


def tiers_minted_at(steps: Iterable[Step]) -> set[tuple[int, int]]:
    """The (product, amount) pairs these steps mint at (a replayed reservation at its own amount,
    which is the item's: a changed amount is a re-mint)."""
    return {(s.item.product_id, s.item.amount_cents) for s in steps if s.item is not None}


@dataclass(frozen=True)
class Tiers:
    """The price of each (product, amount) some steps mint at, as Stripe has it now."""

    prices: dict[tuple[int, int], str] = field(default_factory=dict)
    created: int = 0  # tiers new to this account and mode (not found at Stripe by lookup key)


def ensure_price_tiers(
    engine: Engine,
    gateway: StripeGateway,
    tenant: Tenant,
    where: StripeContext,
    steps: Iterable[Step],
    rows: BillingRows,
    known: Tiers | None = None,
) -> Tiers:
    """Make sure a Stripe Price exists for every (product, amount) these steps mint at (those
    `known` were confirmed by this run already); returns them all.

    Every tier about to be minted at is confirmed by lookup key, ten per request, and only when
    something is to be minted (a run with nothing to mint asks nothing): a price recorded here
    that Stripe no longer has is found again or created, so no link is minted at a price Stripe
    would refuse. Found before created, so a tier created by a run that crashed before
    recording it is found, not duplicated.
    """
    known = known or Tiers()
    tiers = dict(known.prices)
    needed = sorted(tiers_minted_at(steps) - tiers.keys())
    if not needed:
        return known
    products_by_id = {int(p["product_id"]): p for p in rows.products}
    keys = {price_lookup_key(tenant, pid, amount): (pid, amount) for pid, amount in needed}
    found = gateway.find_prices(keys)
    # The Stripe product of each club product: one Stripe just listed a price of, else recorded.
    recorded = {pid: product for (pid, _amount), (_price, product) in rows.price_tiers.items() if product}
    stripe_products = {keys[key][0]: product for key, (_price, product) in found.items()}
    for lookup_key, (product_id, amount_cents) in keys.items():
        if lookup_key in found:
            price_id, stripe_product = found[lookup_key]
        else:
            price_id, stripe_product = _create_price(
                gateway,
                tenant,
                products_by_id[product_id],
                stripe_products.get(product_id) or recorded.get(product_id),
                amount_cents,
                lookup_key,
            )
            stripe_products[product_id] = stripe_product
        if rows.price_tiers.get((product_id, amount_cents)) != (price_id, stripe_product):
            with engine.begin() as connection:
                _record(connection, tenant, where, product_id, amount_cents, price_id, stripe_product)
        tiers[(product_id, amount_cents)] = price_id
    created = sum(1 for key in keys if key not in found)
    return Tiers(prices=tiers, created=known.created + created)


def _create_price(
    gateway: StripeGateway,
    tenant: Tenant,
    product: Mapping[str, Any],
    stripe_product: str | None,
    amount_cents: int,
    lookup_key: str,
) -> tuple[str, str]:
    """A new price at `amount_cents` for the club's product: on its Stripe product if Stripe still
    has it, else on one created for it. Returns (price id, Stripe product id)."""
    product_id = int(product["product_id"])
    metadata = {"tenant_id": str(tenant.id), "product_id": str(product_id)}
    if stripe_product is not None:
        try:
            return gateway.create_price(
                product_id=stripe_product,
                amount_cents=amount_cents,
                currency=tenant.currency,
                lookup_key=lookup_key,
                metadata=metadata,
            ), stripe_product
        except StripeRequestError as error:
            if not error.names_a_missing_object:
                raise
            # Stripe no longer has that product (its account was emptied): a new one, a new key.
            created = _create_product(gateway, tenant, product, suffix=f"-after-{stripe_product}")
            return gateway.create_price(
                product_id=created,
                amount_cents=amount_cents,
                currency=tenant.currency,
                lookup_key=lookup_key,
                metadata=metadata,
                idempotency_key=f"{lookup_key}-{created}",
            ), created
    created = _create_product(gateway, tenant, product)
    return gateway.create_price(
        product_id=created,
        amount_cents=amount_cents,
        currency=tenant.currency,
        lookup_key=lookup_key,
        metadata=metadata,
    ), created


def _create_product(
    gateway: StripeGateway, tenant: Tenant, product: Mapping[str, Any], suffix: str = ""
) -> str:
    product_id = int(product["product_id"])
    return gateway.create_product(
        name=f"{tenant.name}: {product['name']}",
        description=str(product["description"] or ""),
        metadata={"tenant_id": str(tenant.id), "product_id": str(product_id)},
        idempotency_key=f"paylinks-product-{tenant.id}-{product_id}{suffix}",
    )


def _record(
    connection: Connection,
    tenant: Tenant,
    where: StripeContext,
    product_id: int,
    amount_cents: int,
    price_id: str,
    stripe_product: str,
) -> None:
    """The tier's price in this account and mode: a new row, or the one Stripe no longer had."""
    place = (
        price_tiers.c.tenant_id == tenant.id,
        price_tiers.c.product_id == product_id,
        price_tiers.c.amount_cents == amount_cents,
        price_tiers.c.currency == tenant.currency,
        price_tiers.c.stripe_account == where.account,
        price_tiers.c.livemode == where.livemode,
    )
    changed = connection.execute(
        sa.update(price_tiers)
        .where(*place)
        .values(stripe_price_id=price_id, stripe_product_id=stripe_product)
    ).rowcount
    if not changed:
        connection.execute(
            sa.insert(price_tiers).values(
                tenant_id=tenant.id,
                product_id=product_id,
                amount_cents=amount_cents,
                currency=tenant.currency,
                stripe_account=where.account,
                livemode=where.livemode,
                stripe_price_id=price_id,
                stripe_product_id=stripe_product,
            )
        )
