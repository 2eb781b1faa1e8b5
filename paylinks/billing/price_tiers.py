"""Price tiers: the Stripe Price of every (product, amount) the backfill mints at, found by lookup
key before any is created, and recorded in `price_tiers`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.billing.extract import BillingRows
from paylinks.billing.plan import Plan
from paylinks.club.tenants import Tenant
from paylinks.store.tables import price_tiers
from paylinks.stripe_api.gateway import StripeContext, StripeGateway


def price_lookup_key(tenant: Tenant, product_id: int, amount_cents: int) -> str:
    """Lookup keys are unique per Stripe account (and mode): the tenant, product, amount, currency."""
    return f"paylinks-{tenant.id}-{product_id}-{amount_cents}-{tenant.currency.lower()}"


def ensure_price_tiers(
    engine: Engine,
    gateway: StripeGateway,
    tenant: Tenant,
    where: StripeContext,
    plan: Plan,
    rows: BillingRows,
) -> dict[tuple[int, int], str]:
    """Make sure a Stripe Price exists for every (product, amount) the plan mints at.

    Finds prices by lookup key before creating any, so a tier created by a run that crashed
    before recording it is found, not duplicated. Returns (product id, amount) → price id.
    """
    tiers = {key: price_id for key, (price_id, _product) in rows.price_tiers.items()}
    needed = sorted(plan.tiers_needed - tiers.keys())
    if not needed:
        return tiers
    products_by_id = {int(p["product_id"]): p for p in rows.products}
    stripe_products = {
        product_id: stripe_product
        for (product_id, _amount), (_price, stripe_product) in rows.price_tiers.items()
        if stripe_product
    }
    keys = {price_lookup_key(tenant, pid, amount): (pid, amount) for pid, amount in needed}
    found = gateway.find_prices(keys)
    for lookup_key, (product_id, amount_cents) in keys.items():
        if lookup_key in found:
            price_id, stripe_product = found[lookup_key]
        else:
            if product_id not in stripe_products:
                product = products_by_id[product_id]
                stripe_products[product_id] = gateway.create_product(
                    name=f"{tenant.name}: {product['name']}",
                    description=str(product["description"] or ""),
                    metadata={"tenant_id": str(tenant.id), "product_id": str(product_id)},
                    idempotency_key=f"paylinks-product-{tenant.id}-{product_id}",
                )
            stripe_product = stripe_products[product_id]
            price_id = gateway.create_price(
                product_id=stripe_product,
                amount_cents=amount_cents,
                currency=tenant.currency,
                lookup_key=lookup_key,
                metadata={"tenant_id": str(tenant.id), "product_id": str(product_id)},
            )
        stripe_products.setdefault(product_id, stripe_product)
        with engine.begin() as connection:
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
        tiers[(product_id, amount_cents)] = price_id
    return tiers
