"""The backfill's units of work, as plain functions over a connection and a Stripe gateway.

Tasks in `tasks/backfill.py` wrap these one to one; keeping them free of Prefect makes them easy
to read and to test. Crash safety comes from the order of writes: a row is reserved (committed)
before its link is minted, and the mint carries an idempotency key derived from that row and its
`mint_version`, so a run killed at any instant and run again gets back the same link.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.db import PaymentLinkStatus, payment_links, price_tiers, products, utcnow
from paylinks.planning import Action, Plan, Step, plan_backfill
from paylinks.queries import fetch_all
from paylinks.stripe_gateway import StripeGateway, StripeRequestError, StripeTransientError
from paylinks.tenants import Tenant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BillingRows:
    """A consistent snapshot of one tenant's club rows and paylinks rows."""

    players: list[dict[str, Any]]
    products: list[dict[str, Any]]
    pending_orders: list[dict[str, Any]]
    payment_links: list[dict[str, Any]]
    price_tiers: dict[tuple[int, int], str]


@dataclass(frozen=True)
class MintJob:
    row_id: int
    mint_version: int
    price_id: str
    metadata: dict[str, str]

    @property
    def idempotency_key(self) -> str:
        return f"paylinks-plink-{self.metadata['tenant_id']}-{self.row_id}-v{self.mint_version}"


@dataclass(frozen=True)
class MintResult:
    row_id: int
    mint_version: int
    link_id: str | None = None
    url: str | None = None
    error: str | None = None


@dataclass
class RetireOutcome:
    retired: list[int] = field(default_factory=list)  # rows cancelled
    replaced: list[int] = field(default_factory=list)  # rows whose old link was deactivated for a re-mint
    left_alone: list[tuple[int, str]] = field(default_factory=list)  # (row id, why)


def extract_billing_rows(engine: Engine, tenant: Tenant) -> BillingRows:
    with engine.connect() as connection:
        params = {"tenant_id": tenant.id}
        tiers = fetch_all(connection, "extract_price_tiers", **params)
        return BillingRows(
            players=[dict(r) for r in fetch_all(connection, "extract_players", **params)],
            products=[dict(r) for r in fetch_all(connection, "extract_products", **params)],
            pending_orders=[dict(r) for r in fetch_all(connection, "extract_pending_orders", **params)],
            payment_links=[_row_dict(r) for r in fetch_all(connection, "extract_payment_links", **params)],
            price_tiers={(int(t["product_id"]), int(t["amount_cents"])): t["stripe_price_id"] for t in tiers},
        )


def _row_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(row)
    status = values["status"]
    values["status"] = status.value if isinstance(status, PaymentLinkStatus) else str(status)
    return values


def plan(rows: BillingRows) -> Plan:
    return plan_backfill(
        rows.players, rows.products, rows.pending_orders, rows.payment_links, rows.price_tiers
    )


def price_lookup_key(tenant: Tenant, product_id: int, amount_cents: int) -> str:
    return f"paylinks-{tenant.id}-{product_id}-{amount_cents}"


def ensure_price_tiers(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, plan: Plan, rows: BillingRows
) -> dict[tuple[int, int], str]:
    """Make sure a Stripe Price exists for every (product, amount) the plan mints at.

    Finds prices by lookup key before creating any, so a tier created by a run that crashed
    before recording it is found, not duplicated. Returns (product id, amount) → price id.
    """
    tiers = dict(rows.price_tiers)
    needed = sorted(plan.tiers_needed - tiers.keys())
    if not needed:
        return tiers
    products_by_id = {int(p["product_id"]): p for p in rows.products}
    stripe_products = {
        pid: p["stripe_product_id"] for pid, p in products_by_id.items() if p["stripe_product_id"]
    }
    for product_id in sorted({product_id for product_id, _ in needed} - stripe_products.keys()):
        product = products_by_id[product_id]
        stripe_products[product_id] = gateway.create_product(
            name=f"{tenant.name}: {product['name']}",
            description=str(product["description"] or ""),
            metadata={"tenant_id": str(tenant.id), "product_id": str(product_id)},
            idempotency_key=f"paylinks-product-{tenant.id}-{product_id}",
        )
        with engine.begin() as connection:
            connection.execute(
                sa.update(products)
                .where(products.c.id == product_id, products.c.tenant_id == tenant.id)
                .values(stripe_product_id=stripe_products[product_id])
            )
    keys = {price_lookup_key(tenant, pid, amount): (pid, amount) for pid, amount in needed}
    found = gateway.find_prices(keys)
    for lookup_key, (product_id, amount_cents) in keys.items():
        price_id = found.get(lookup_key) or gateway.create_price(
            product_id=stripe_products[product_id],
            amount_cents=amount_cents,
            currency=tenant.currency,
            lookup_key=lookup_key,
            metadata={"tenant_id": str(tenant.id), "product_id": str(product_id)},
        )
        with engine.begin() as connection:
            connection.execute(
                sa.insert(price_tiers).values(
                    tenant_id=tenant.id,
                    product_id=product_id,
                    amount_cents=amount_cents,
                    stripe_price_id=price_id,
                )
            )
        tiers[(product_id, amount_cents)] = price_id
    return tiers


def retire_stale_links(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, steps: Iterable[Step]
) -> RetireOutcome:
    """Deactivate links whose bill went away (row → cancelled) or changed amount (before re-mint).

    A link that Stripe shows as already paid is left alone: reconcile will mark it paid.
    """
    outcome = RetireOutcome()
    for step in steps:
        row = step.row
        assert row is not None
        link_id = row["stripe_payment_link_id"]
        if link_id:
            link = gateway.retrieve_payment_link(link_id)
            if link.completed_sessions > 0:
                outcome.left_alone.append((step.row_id, "paid at Stripe; run reconcile"))
                continue
            if link.active:
                gateway.deactivate_payment_link(link_id, inactive_message=_inactive_message(tenant, step))
        with engine.begin() as connection:
            if step.action is Action.retire:
                connection.execute(
                    sa.update(payment_links)
                    .where(
                        payment_links.c.id == step.row_id, payment_links.c.status == PaymentLinkStatus.pending
                    )
                    .values(status=PaymentLinkStatus.cancelled, updated_at=utcnow())
                )
                outcome.retired.append(step.row_id)
            else:  # re-mint: the row forgets the old link and waits for the new one
                connection.execute(
                    sa.update(payment_links)
                    .where(
                        payment_links.c.id == step.row_id, payment_links.c.status == PaymentLinkStatus.pending
                    )
                    .values(stripe_payment_link_id=None, stripe_payment_link_url=None, updated_at=utcnow())
                )
                outcome.replaced.append(step.row_id)
    return outcome


def _inactive_message(tenant: Tenant, step: Step) -> str:
    if step.action is Action.retire:
        return f"This bill was cancelled by {tenant.name}. Questions? Write to {tenant.reply_to_email}."
    return f"This bill was updated by {tenant.name}; please use the newest link we sent you."


def reserve_payment_links(
    engine: Engine, tenant: Tenant, steps: Iterable[Step], tiers: Mapping[tuple[int, int], str]
) -> list[MintJob]:
    """Write (commit) a row for every link about to be minted, and return the mint jobs.

    New items get a new row; re-minted and reactivated rows get the new amount and the next
    `mint_version`, so their mint uses a fresh idempotency key.
    """
    jobs: list[MintJob] = []
    now = utcnow()
    with engine.begin() as connection:
        for step in steps:
            item = step.item
            assert item is not None
            price_id = tiers[(item.product_id, item.amount_cents)]
            values = dict(
                parent_id=item.parent_id,
                order_id=item.order_id,
                description=item.description,
                amount_cents=item.amount_cents,
                stripe_price_id=price_id,
                updated_at=now,
            )
            if step.action is Action.reserve_and_mint:
                row_id = connection.execute(
                    sa.insert(payment_links)
                    .values(
                        tenant_id=tenant.id,
                        player_id=item.player_id,
                        product_id=item.product_id,
                        status=PaymentLinkStatus.pending,
                        mint_version=1,
                        created_at=now,
                        **values,
                    )
                    .returning(payment_links.c.id)
                ).scalar_one()
                version = 1
            else:
                assert step.row is not None
                row_id = step.row_id
                same_link = step.action is Action.mint and int(step.row["amount_cents"]) == item.amount_cents
                version = int(step.row["mint_version"]) + (0 if same_link else 1)
                connection.execute(
                    sa.update(payment_links)
                    .where(payment_links.c.id == row_id, payment_links.c.status != PaymentLinkStatus.paid)
                    .values(
                        status=PaymentLinkStatus.pending,
                        mint_version=version,
                        stripe_payment_link_id=None,
                        stripe_payment_link_url=None,
                        **values,
                    )
                )
            metadata = {
                "tenant_id": str(tenant.id),
                "player_id": str(item.player_id),
                "product_id": str(item.product_id),
                "payment_link_row_id": str(row_id),
            }
            if item.order_id is not None:
                metadata["order_id"] = str(item.order_id)
            jobs.append(MintJob(row_id=row_id, mint_version=version, price_id=price_id, metadata=metadata))
    return jobs


def mint_payment_links(gateway: StripeGateway, jobs: list[MintJob], concurrency: int) -> list[MintResult]:
    """Mint one link per job, `concurrency` at a time (the gateway paces the rate).

    A request Stripe refuses (4xx) is returned as that row's error; a transient failure that
    outlived the gateway's retries is raised so the task retries the whole batch (safe: every
    mint replays under its idempotency key).
    """

    def mint(job: MintJob) -> MintResult:
        try:
            link = gateway.create_payment_link(
                price_id=job.price_id, metadata=job.metadata, idempotency_key=job.idempotency_key
            )
        except StripeRequestError as error:
            return MintResult(job.row_id, job.mint_version, error=str(error))
        return MintResult(job.row_id, job.mint_version, link_id=link.id, url=link.url)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="mint") as pool:
        futures = [pool.submit(mint, job) for job in jobs]
        results, transient = [], []
        for future in futures:
            try:
                results.append(future.result())
            except StripeTransientError as error:
                transient.append(error)
    if transient:
        raise StripeTransientError(f"{len(transient)} of {len(jobs)} mints failed: {transient[0]}")
    return results


def load_payment_links(engine: Engine, results: Iterable[MintResult]) -> int:
    """Store each minted link's id and url in its row (only if the row still waits for it)."""
    loaded = 0
    with engine.begin() as connection:
        for result in results:
            if result.link_id is None:
                continue
            loaded += connection.execute(
                sa.update(payment_links)
                .where(
                    payment_links.c.id == result.row_id,
                    payment_links.c.mint_version == result.mint_version,
                    payment_links.c.stripe_payment_link_id.is_(None),
                )
                .values(
                    stripe_payment_link_id=result.link_id,
                    stripe_payment_link_url=result.url,
                    updated_at=utcnow(),
                )
            ).rowcount
    return loaded


@dataclass
class BackfillReport:
    """What one tenant's backfill did (or, in a dry run, would do)."""

    tenant: str
    commit: bool
    plan: Plan
    tiers_created: int = 0
    retire: RetireOutcome = field(default_factory=RetireOutcome)
    minted: int = 0
    loaded: int = 0
    mint_errors: list[tuple[int, str]] = field(default_factory=list)
    aborted: str | None = None
    currency: str = "usd"

    @property
    def failed(self) -> bool:
        return bool(self.mint_errors) or self.aborted is not None

    def summary(self) -> dict[str, Any]:
        counts = self.plan.counts()
        return {
            "tenant": self.tenant,
            "mode": "commit" if self.commit else "dry run",
            "items owed": len(self.plan.items),
            "amount owed": sum(item.amount_cents for item in self.plan.items),
            "tiers to create" if not self.commit else "tiers created": (
                len(self.plan.tiers_needed) if not self.commit else self.tiers_created
            ),
            "links to mint" if not self.commit else "links minted": (
                len(self.plan.to_mint) if not self.commit else self.loaded
            ),
            "rows already there": counts[Action.up_to_date.value],
            "links to retire" if not self.commit else "links retired": (
                counts[Action.retire.value] if not self.commit else len(self.retire.retired)
            ),
            "skipped": len(self.plan.skipped),
            "failed": len(self.mint_errors) + (1 if self.aborted else 0),
        }

    def step_rows(self) -> list[dict[str, Any]]:
        rows = []
        for step in self.plan.steps:
            item, row = step.item, step.row or {}
            rows.append(
                {
                    "action": step.action.value,
                    "row": step.row_id,
                    "player": item.player_id if item else row.get("player_id"),
                    "player_name": item.player_name if item else "",
                    "product": item.description if item else row.get("description"),
                    "order": item.order_id if item else row.get("order_id"),
                    "amount_cents": item.amount_cents if item else row.get("amount_cents"),
                    "note": step.reason,
                }
            )
        return rows

    def skipped_rows(self) -> list[dict[str, Any]]:
        return [
            {"player": s.player_id, "product": s.product_id, "order": s.order_id, "reason": s.reason}
            for s in self.plan.skipped
        ] + [
            {"player": None, "product": None, "order": None, "reason": f"row {row_id}: {why}"}
            for row_id, why in self.retire.left_alone
        ]
