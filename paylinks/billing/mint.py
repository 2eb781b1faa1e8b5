"""Mint, load, relink: the links of reserved rows minted at Stripe, stored in their rows, and
rows (and their links' metadata) following their bill; fresh links for spent ones.

Crash safety comes from the order of writes: a row is reserved (committed, `paylinks.billing.reserve`)
before its link is minted, and the mint carries an idempotency key derived from that row and its
`mint_version`, with parameters that never change for a version, so a run killed at any instant
and run again gets back the same link. A reservation older than Stripe's idempotency memory
(about a day) first looks for a link Stripe already holds for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.billing.plan import Step
from paylinks.club.tenants import Tenant
from paylinks.settings import Settings
from paylinks.store.tables import minted_links, payment_links, price_tiers, tenants, utcnow
from paylinks.stripe_api.gateway import (
    StripeContext,
    StripeGateway,
    StripeNotFoundError,
    StripeRequestError,
    StripeTransientError,
)
from paylinks.stripe_api.where import stripe_where
from paylinks.vocabulary import PaymentLinkStatus

# How far before the oldest stale reservation to start looking for its link (clock skew).
ADOPTION_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class MintJob:
    row_id: int
    mint_version: int
    price_id: str
    metadata: dict[str, str]
    # A reservation older than Stripe's idempotency memory: look for its link first.
    reserved_before: datetime | None = None
    checkout_text: str | None = None  # what the checkout and receipt say (None: minted without)

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
    adopted: bool = False  # found at Stripe (minted before a crash), not minted again
    # Stripe has no such price in this account and mode: the row is minted afresh next run.
    missing_price: str | None = None


def link_metadata(tenant_id: int, row: Mapping[Any, Any], row_id: int, mint_version: int) -> dict[str, str]:
    """What a link says about itself at Stripe (reconcile never trusts it alone)."""
    metadata = {
        "tenant_id": str(tenant_id),
        "player_id": str(row["player_id"]),
        "product_id": str(row["product_id"]),
        "payment_link_row_id": str(row_id),
        "mint_version": str(mint_version),
    }
    if row.get("order_id") is not None:
        metadata["order_id"] = str(row["order_id"])
    return metadata


def adopt_links_minted_before(gateway: StripeGateway, jobs: list[MintJob]) -> dict[int, MintResult]:
    """Links Stripe already holds for stale reservations, by row id.

    Stripe may have forgotten the idempotency key of a mint that reached it before a crash more
    than a day ago; replaying it would mint a second link. Payment links cannot be searched, so
    this reads the account's `payment_link.created` events since the oldest stale reservation:
    one request per 100 links minted since then, once per run (not per row).
    """
    stale = {(job.row_id, job.mint_version): job for job in jobs if job.reserved_before is not None}
    reserved = [job.reserved_before for job in stale.values() if job.reserved_before is not None]
    if not reserved:
        return {}
    oldest = min(reserved)
    since = int((oldest - ADOPTION_MARGIN).timestamp())
    adopted: dict[int, MintResult] = {}
    for link, metadata in gateway.iter_payment_links_since(since):
        try:
            key = (int(metadata.get("payment_link_row_id", "")), int(metadata.get("mint_version", "")))
        except ValueError:
            continue
        job = stale.get(key)
        if job is not None and job.row_id not in adopted:
            adopted[job.row_id] = MintResult(job.row_id, job.mint_version, link.id, link.url, adopted=True)
    return adopted


def mint_payment_links(gateway: StripeGateway, jobs: list[MintJob], concurrency: int) -> list[MintResult]:
    """Mint one link per job, `concurrency` at a time (the gateway paces the rate).

    A request Stripe refuses (4xx) is returned as that row's error; a transient failure that
    outlived the gateway's retries is raised so the task retries the whole batch (safe: every
    mint replays under its idempotency key).
    """
    adopted = adopt_links_minted_before(gateway, jobs)

    def mint(job: MintJob) -> MintResult:
        if job.row_id in adopted:
            return adopted[job.row_id]
        try:
            link = gateway.create_payment_link(
                price_id=job.price_id,
                metadata=job.metadata,
                idempotency_key=job.idempotency_key,
                checkout_text=job.checkout_text,
            )
        except StripeRequestError as error:
            missing = error.names_a_missing_object and (error.param or "").startswith("line_items")
            return MintResult(
                job.row_id,
                job.mint_version,
                error=str(error),
                missing_price=job.price_id if missing else None,
            )
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
    """Store each minted link's id and url in its row (only if the row still waits for it), and
    remember every link a row was given. A row whose price Stripe no longer has lets go of it
    (and the tier of it), so the next run mints it at a price found again or created."""
    loaded = 0
    with engine.begin() as connection:
        for result in results:
            if result.missing_price is not None:
                connection.execute(
                    sa.delete(price_tiers).where(price_tiers.c.stripe_price_id == result.missing_price)
                )
                forget_link(connection, result.row_id, mint_version=result.mint_version)
                continue
            if result.link_id is None:
                continue
            known = connection.execute(
                sa.select(minted_links.c.stripe_payment_link_id).where(
                    minted_links.c.stripe_payment_link_id == result.link_id
                )
            ).first()
            if known is None:
                tenant_id = connection.execute(
                    sa.select(payment_links.c.tenant_id).where(payment_links.c.id == result.row_id)
                ).scalar_one()
                connection.execute(
                    sa.insert(minted_links).values(
                        stripe_payment_link_id=result.link_id,
                        tenant_id=tenant_id,
                        payment_link_row_id=result.row_id,
                        mint_version=result.mint_version,
                    )
                )
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


def forget_link(
    connection: Connection, row_id: int, *, link_id: str | None = None, mint_version: int | None = None
) -> bool:
    """The row was never really minted in this account: Stripe answered that its link (or the
    price it was reserved at) does not exist. It lets go of both and takes the next
    `mint_version`, so it reads as not minted (the blast holds it back, the coach's lookup says
    so) and the next backfill mints it afresh, at a fresh idempotency key and a confirmed price."""
    condition = [payment_links.c.id == row_id, payment_links.c.status == PaymentLinkStatus.pending]
    if link_id is not None:
        condition.append(payment_links.c.stripe_payment_link_id == link_id)
    if mint_version is not None:
        condition.append(payment_links.c.mint_version == mint_version)
        condition.append(payment_links.c.stripe_payment_link_id.is_(None))
    now = utcnow()
    return bool(
        connection.execute(
            sa.update(payment_links)
            .where(*condition)
            .values(
                stripe_payment_link_id=None,
                stripe_payment_link_url=None,
                stripe_price_id=None,
                mint_version=payment_links.c.mint_version + 1,
                reserved_at=now,
                updated_at=now,
            )
        ).rowcount
    )


def relink_rows(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, steps: Iterable[Step]
) -> tuple[list[int], list[tuple[int, str]]]:
    """Rows follow their bill: the item's parent, order and description, on the row and (where
    the link's metadata names the order) on the link at Stripe — no new link, no new key.
    Returns (rows relinked, (row, link) pairs whose link Stripe no longer has: let go of, so the
    next backfill mints them).

    Stripe first, then the row: a crash in between leaves the row different from its bill, so
    the next run does it again (both writes are idempotent)."""
    relinked: list[int] = []
    missing: list[tuple[int, str]] = []
    for step in steps:
        item = step.item
        assert item is not None and step.row_id is not None
        with engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(payment_links).where(
                        payment_links.c.id == step.row_id, payment_links.c.tenant_id == tenant.id
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["status"] != PaymentLinkStatus.pending:
            continue
        if row["stripe_payment_link_id"] and row["order_id"] != item.order_id:
            current = {"player_id": item.player_id, "product_id": item.product_id, "order_id": item.order_id}
            try:
                gateway.update_payment_link_metadata(
                    row["stripe_payment_link_id"],
                    link_metadata(tenant.id, current, step.row_id, int(row["mint_version"])),
                    checkout_text=row["checkout_text"],
                )
            except StripeNotFoundError:
                with engine.begin() as connection:
                    forget_link(connection, step.row_id, link_id=row["stripe_payment_link_id"])
                missing.append((step.row_id, row["stripe_payment_link_id"]))
                continue
        with engine.begin() as connection:
            connection.execute(
                sa.update(payment_links)
                .where(payment_links.c.id == step.row_id, payment_links.c.status == PaymentLinkStatus.pending)
                .values(
                    parent_id=item.parent_id,
                    order_id=item.order_id,
                    description=item.description,
                    updated_at=utcnow(),
                )
            )
        relinked.append(step.row_id)
    return relinked, missing


def mint_replacements(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, where: StripeContext, row_ids: Iterable[int]
) -> tuple[list[int], list[tuple[int, str]]]:
    """Fresh links for rows whose link was spent by a payment that then failed, minted now so
    the next email carries a link that can take payment. Returns (rows minted, errors)."""
    jobs: list[MintJob] = []
    errors: list[tuple[int, str]] = []
    with engine.connect() as connection:
        for row_id in row_ids:
            row = (
                connection.execute(
                    sa.select(payment_links).where(
                        payment_links.c.id == row_id,
                        payment_links.c.tenant_id == tenant.id,
                        payment_links.c.status == PaymentLinkStatus.pending,
                        payment_links.c.stripe_payment_link_id.is_(None),
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                continue
            price_id = connection.execute(
                sa.select(price_tiers.c.stripe_price_id).where(
                    price_tiers.c.tenant_id == tenant.id,
                    price_tiers.c.product_id == row["product_id"],
                    price_tiers.c.amount_cents == row["amount_cents"],
                    price_tiers.c.currency == tenant.currency,
                    price_tiers.c.stripe_account == where.account,
                    price_tiers.c.livemode == where.livemode,
                )
            ).scalar_one_or_none() or (
                row["stripe_price_id"] if row["stripe_account"] == where.account else None
            )
            if price_id is None:
                errors.append((row_id, "no price tier in this Stripe account; the next backfill mints it"))
                continue
            version = int(row["mint_version"])
            jobs.append(
                MintJob(
                    row_id,
                    version,
                    price_id,
                    link_metadata(tenant.id, row, row_id, version),
                    checkout_text=row["checkout_text"],
                )
            )
    results = mint_payment_links(gateway, jobs, concurrency=4) if jobs else []
    errors += [(r.row_id, r.error) for r in results if r.error]
    load_payment_links(engine, results)
    return [r.row_id for r in results if r.link_id], errors


def replace_spent_links(engine: Engine, settings: Settings, row_ids: Iterable[int]) -> list[int]:
    """Fresh links for these rows (a failed slow payment spent theirs), whatever their tenant:
    the webhook receiver's way to do at once what reconcile does for one tenant."""
    from paylinks.club.tenants import tenant_from_row

    ids = sorted(set(row_ids))
    if not ids:
        return []
    with engine.connect() as connection:
        by_tenant: dict[int, list[int]] = {}
        for row_id, tenant_id in connection.execute(
            sa.select(payment_links.c.id, payment_links.c.tenant_id).where(payment_links.c.id.in_(ids))
        ):
            by_tenant.setdefault(tenant_id, []).append(row_id)
        clubs = {
            row["id"]: tenant_from_row(row)
            for row in connection.execute(sa.select(tenants).where(tenants.c.id.in_(by_tenant))).mappings()
        }
    minted: list[int] = []
    for tenant_id, rows_of_tenant in by_tenant.items():
        club = clubs[tenant_id]
        gateway = StripeGateway(settings, account=club.stripe_account)  # in the tenant's own account
        where = stripe_where(engine, gateway, settings)
        done, _errors = mint_replacements(engine, gateway, club, where, rows_of_tenant)
        minted += done
    return minted
