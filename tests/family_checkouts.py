"""A family's "Pay all" checkout, opened as the family page's button does: a `family_checkouts`
row reserved with its `family_checkout_rows` (each bill at the terms offered), then the Checkout
Session created with the real SDK in the tenant's Stripe account, its metadata naming the
checkout, the tenant and every row with its mint_version."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
import stripe

from paylinks.store.tables import family_checkout_rows, family_checkouts, payment_links, tenants
from paylinks.vocabulary import FamilyCheckoutStatus

ROWS_CHUNK = 500  # Stripe's limit on a metadata value


@dataclass(frozen=True)
class FamilyCheckout:
    id: int
    session_id: str
    url: str
    row_ids: tuple[int, ...]
    amount_cents: int


def rows_metadata(terms: Sequence[tuple[int, int]]) -> dict[str, str]:
    """`paylinks_rows_1..n`: "rowid:mint_version,…" in chunks of at most 500 characters."""
    chunks: list[str] = []
    for row_id, version in terms:
        part = f"{row_id}:{version}"
        if chunks and len(chunks[-1]) + 1 + len(part) <= ROWS_CHUNK:
            chunks[-1] += "," + part
        else:
            chunks.append(part)
    return {f"paylinks_rows_{n}": chunk for n, chunk in enumerate(chunks, start=1)}


def open_family_checkout(
    engine: sa.Engine,
    api_base: str,
    api_key: str,
    row_ids: Sequence[int],
    *,
    now: float | None = None,
    key: str | None = None,
) -> FamilyCheckout:
    """Reserve a family checkout of these rows (one parent's, pending, minted) and open it at
    Stripe; `now` is Stripe's clock (the session expires 31 minutes after it)."""
    with engine.begin() as connection:
        bills = (
            connection.execute(
                sa.select(payment_links).where(payment_links.c.id.in_(row_ids)).order_by(payment_links.c.id)
            )
            .mappings()
            .all()
        )
        assert bills and len(bills) == len(set(row_ids)), "every row to pay must exist"
        tenant = (
            connection.execute(sa.select(tenants).where(tenants.c.id == bills[0]["tenant_id"]))
            .mappings()
            .one()
        )
        parent_id = bills[0]["parent_id"]
        total = sum(int(b["amount_cents"]) for b in bills)
        terms = [(int(b["id"]), int(b["mint_version"])) for b in bills]
        idempotency_key = (
            key or "paylinks-family-" + "-".join(f"{r}v{v}" for r, v in terms) + f"-{time.time_ns()}"
        )
        checkout_id = connection.execute(
            sa.insert(family_checkouts)
            .values(
                tenant_id=tenant["id"],
                parent_id=parent_id,
                idempotency_key=idempotency_key,
                status=FamilyCheckoutStatus.reserved,
                stripe_account=bills[0]["stripe_account"],
                livemode=bills[0]["livemode"],
                amount_total_cents=total,
                currency=tenant["currency"],
            )
            .returning(family_checkouts.c.id)
        ).scalar_one()
        for bill in bills:
            connection.execute(
                sa.insert(family_checkout_rows).values(
                    family_checkout_id=checkout_id,
                    payment_link_row_id=bill["id"],
                    mint_version=bill["mint_version"],
                    amount_cents=bill["amount_cents"],
                    stripe_price_id=bill["stripe_price_id"],
                )
            )
    client = stripe.StripeClient(api_key, base_addresses={"api": api_base}, max_network_retries=0)
    expires_at = int((now if now is not None else time.time()) + 31 * 60)
    options: dict = {"idempotency_key": idempotency_key}
    if tenant["stripe_account"]:
        options["stripe_account"] = tenant["stripe_account"]
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": b["stripe_price_id"], "quantity": 1} for b in bills],
            "metadata": {
                "paylinks_family_checkout": str(checkout_id),
                "paylinks_tenant": str(tenant["id"]),
                **rows_metadata(terms),
            },
            "success_url": "https://office.example/f/token?session={CHECKOUT_SESSION_ID}",
            "expires_at": expires_at,
            "client_reference_id": f"family-{parent_id}",
        },
        options=options,  # type: ignore[arg-type]
    )
    with engine.begin() as connection:
        connection.execute(
            sa.update(family_checkouts)
            .where(family_checkouts.c.id == checkout_id)
            .values(
                status=FamilyCheckoutStatus.open,
                checkout_session_id=session.id,
                url=session.url,
                expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
            )
        )
    return FamilyCheckout(checkout_id, session.id, str(session.url), tuple(r for r, _ in terms), total)
