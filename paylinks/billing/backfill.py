"""The backfill's units of work, as plain functions over a connection and a Stripe gateway.

Tasks in `tasks/backfill.py` wrap these one to one; keeping them free of Prefect makes them easy
to read and to test. Crash safety comes from the order of writes: a row is reserved (committed)
before its link is minted, and the mint carries an idempotency key derived from that row and its
`mint_version`, with parameters that never change for a version, so a run killed at any instant
and run again gets back the same link. A reservation older than Stripe's idempotency memory
(about a day) first looks for a link Stripe already holds for it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.billing.plan import Action, Plan, Step, plan_backfill
from paylinks.club.tenants import Tenant
from paylinks.settings import Settings
from paylinks.store.queries import fetch_all
from paylinks.store.tables import (
    minted_links,
    payment_links,
    price_tiers,
    tenants,
    utcnow,
)
from paylinks.stripe_api.gateway import (
    StripeContext,
    StripeGateway,
    StripeNotFoundError,
    StripeRequestError,
    StripeTransientError,
)
from paylinks.stripe_api.where import stripe_where
from paylinks.vocabulary import PaymentLinkStatus

logger = logging.getLogger(__name__)

# How far before the oldest stale reservation to start looking for its link (clock skew).
ADOPTION_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class BillingRows:
    """A consistent snapshot of one tenant's club rows and paylinks rows."""

    players: list[dict[str, Any]]
    products: list[dict[str, Any]]
    pending_orders: list[dict[str, Any]]
    payment_links: list[dict[str, Any]]
    # (product, amount) → (price id, Stripe product id), in this run's currency, account, mode
    price_tiers: dict[tuple[int, int], tuple[str, str | None]]


@dataclass(frozen=True)
class MintJob:
    row_id: int
    mint_version: int
    price_id: str
    metadata: dict[str, str]
    # A reservation older than Stripe's idempotency memory: look for its link first.
    reserved_before: datetime | None = None

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


class FindingKind(enum.StrEnum):
    paid_at_stripe = "paid_at_stripe"  # left alone: reconcile will account for it
    link_missing_at_stripe = "link_missing_at_stripe"
    minted_elsewhere = "minted_elsewhere"  # its old link stays in the other account/mode

    @property
    def label(self) -> str:
        return {
            FindingKind.paid_at_stripe: "paid at Stripe; left alone (run reconcile)",
            FindingKind.link_missing_at_stripe: "Stripe has no such link in this account and mode",
            FindingKind.minted_elsewhere: "old link left in the other Stripe account/mode",
        }[self]


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    row_id: int
    link_id: str | None = None


@dataclass
class RetireOutcome:
    retired: list[int] = field(default_factory=list)  # rows cancelled
    replaced: list[int] = field(default_factory=list)  # rows whose old link was let go for a re-mint
    verified: list[int] = field(default_factory=list)  # rows whose link Stripe confirmed
    left_alone: set[int] = field(default_factory=set)  # rows not to mint this run
    to_remint: list[Step] = field(default_factory=list)  # verified rows whose link is not there
    findings: list[Finding] = field(default_factory=list)


# -- where this run acts ---------------------------------------------------------------------
# -- extract and plan -------------------------------------------------------------------------
def extract_billing_rows(engine: Engine, tenant: Tenant, where: StripeContext | None) -> BillingRows:
    with engine.connect() as connection:
        params = {"tenant_id": tenant.id}
        tiers = (
            fetch_all(
                connection,
                "extract_price_tiers",
                tenant_id=tenant.id,
                currency=tenant.currency,
                stripe_account=where.account,
                livemode=where.livemode,
            )
            if where is not None
            else []
        )
        return BillingRows(
            players=[dict(r) for r in fetch_all(connection, "extract_players", **params)],
            products=[dict(r) for r in fetch_all(connection, "extract_products", **params)],
            pending_orders=[dict(r) for r in fetch_all(connection, "extract_pending_orders", **params)],
            payment_links=[_row_dict(r) for r in fetch_all(connection, "extract_payment_links", **params)],
            price_tiers={
                (int(t["product_id"]), int(t["amount_cents"])): (t["stripe_price_id"], t["stripe_product_id"])
                for t in tiers
            },
        )


def _row_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    values = dict(row)
    status = values["status"]
    values["status"] = status.value if isinstance(status, PaymentLinkStatus) else str(status)
    reserved_at = values.get("reserved_at")
    if isinstance(reserved_at, str):  # SQLite hands timestamps of raw SQL back as text
        reserved_at = datetime.fromisoformat(reserved_at)
    if isinstance(reserved_at, datetime) and reserved_at.tzinfo is None:
        reserved_at = reserved_at.replace(tzinfo=UTC)
    values["reserved_at"] = reserved_at
    return values


def plan(rows: BillingRows, where: StripeContext | None, now: datetime | None = None) -> Plan:
    return plan_backfill(
        rows.players,
        rows.products,
        rows.pending_orders,
        rows.payment_links,
        rows.price_tiers.keys(),
        where=where,
        now=now or utcnow(),
    )


# -- price tiers ------------------------------------------------------------------------------
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


# -- links whose bill went away, changed, or moved -------------------------------------------
def retire_stale_links(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, where: StripeContext, steps: Iterable[Step]
) -> RetireOutcome:
    """Let go of links whose bill went away (row → cancelled), changed amount or was minted in
    another account or mode (before their re-mint), and confirm links minted before paylinks
    recorded the account.

    A link that Stripe shows as already paid is left alone: reconcile accounts for the payment.
    A link Stripe does not have is a finding, not a crash.
    """
    outcome = RetireOutcome()
    for step in steps:
        row = step.row
        assert row is not None and step.row_id is not None
        link_id = row["stripe_payment_link_id"]
        if step.action is Action.remint_elsewhere:
            # Another account's link cannot be reached with this key; it takes no payment here.
            outcome.findings.append(Finding(FindingKind.minted_elsewhere, step.row_id, link_id))
            outcome.replaced.append(step.row_id)
            continue
        if step.action is Action.verify:
            _verify(engine, gateway, where, step, outcome)
            continue
        if link_id:
            try:
                link = gateway.retrieve_payment_link(link_id)
            except StripeNotFoundError:
                outcome.findings.append(Finding(FindingKind.link_missing_at_stripe, step.row_id, link_id))
            else:
                if link.completed_sessions > 0:
                    outcome.findings.append(Finding(FindingKind.paid_at_stripe, step.row_id, link_id))
                    outcome.left_alone.add(step.row_id)
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


def _verify(
    engine: Engine, gateway: StripeGateway, where: StripeContext, step: Step, outcome: RetireOutcome
) -> None:
    link_id = step.row["stripe_payment_link_id"]  # type: ignore[index]
    try:
        gateway.retrieve_payment_link(link_id)
    except StripeNotFoundError:
        # Not in this account and mode: minted elsewhere, so it is re-minted here.
        outcome.findings.append(Finding(FindingKind.minted_elsewhere, step.row_id, link_id))  # type: ignore[arg-type]
        outcome.to_remint.append(Step(Action.remint_elsewhere, step.item, step.row, relink=False))
        return
    with engine.begin() as connection:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == step.row_id, payment_links.c.stripe_account.is_(None))
            .values(stripe_account=where.account, livemode=where.livemode, updated_at=utcnow())
        )
    outcome.verified.append(step.row_id)  # type: ignore[arg-type]


def _inactive_message(tenant: Tenant, step: Step) -> str:
    if step.action is Action.retire:
        return f"This bill was cancelled by {tenant.name}. Questions? Write to {tenant.reply_to_email}."
    return f"This bill was updated by {tenant.name}; please use the newest link we sent you."


# -- reserve, mint, load -----------------------------------------------------------------------
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
    jobs: list[MintJob] = []
    now = now or utcnow()
    with engine.begin() as connection:
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
                version = int(row["mint_version"])
                connection.execute(
                    sa.update(payment_links)
                    .where(payment_links.c.id == step.row_id, payment_links.c.stripe_account.is_(None))
                    .values(stripe_account=where.account, livemode=where.livemode)
                )
                stale_since = row.get("reserved_at") if step.stale_reservation else None
                jobs.append(
                    MintJob(
                        step.row_id,  # type: ignore[arg-type]
                        version,
                        price_id,
                        link_metadata(tenant.id, row, step.row_id, version),  # type: ignore[arg-type]
                        reserved_before=stale_since,
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
                reserved_at=now,
                updated_at=now,
            )
            if step.action is Action.reserve_and_mint:
                version = 1
                row_id = connection.execute(
                    sa.insert(payment_links)
                    .values(
                        tenant_id=tenant.id,
                        player_id=item.player_id,
                        product_id=item.product_id,
                        status=PaymentLinkStatus.pending,
                        mint_version=version,
                        created_at=now,
                        **values,
                    )
                    .returning(payment_links.c.id)
                ).scalar_one()
            else:
                assert step.row is not None and step.row_id is not None
                row_id = step.row_id
                version = int(step.row["mint_version"]) + 1
                settled = [PaymentLinkStatus(s) for s in ("processing", "paid", "refund_due", "refunded")]
                connection.execute(
                    sa.update(payment_links)
                    .where(payment_links.c.id == row_id, payment_links.c.status.not_in(settled))
                    .values(
                        status=PaymentLinkStatus.pending,
                        mint_version=version,
                        stripe_payment_link_id=None,
                        stripe_payment_link_url=None,
                        **values,
                    )
                )
            reserved = {"player_id": item.player_id, "product_id": item.product_id, "order_id": item.order_id}
            jobs.append(
                MintJob(row_id, version, price_id, link_metadata(tenant.id, reserved, row_id, version))
            )
    return jobs


def adopt_links_minted_before(gateway: StripeGateway, jobs: list[MintJob]) -> dict[int, MintResult]:
    """Links Stripe already holds for stale reservations, by row id.

    Stripe may have forgotten the idempotency key of a mint that reached it before a crash more
    than a day ago; replaying it would mint a second link. Payment links cannot be searched, so
    this reads the account's `payment_link.created` events since the oldest stale reservation:
    one request per 100 links minted since then, once per run (not per row).
    """
    stale = {(job.row_id, job.mint_version): job for job in jobs if job.reserved_before is not None}
    if not stale:
        return {}
    oldest = cast(datetime, min(job.reserved_before for job in stale.values()))  # type: ignore[type-var]
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
    """Store each minted link's id and url in its row (only if the row still waits for it), and
    remember every link a row was given."""
    loaded = 0
    with engine.begin() as connection:
        for result in results:
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


def relink_rows(engine: Engine, gateway: StripeGateway, tenant: Tenant, steps: Iterable[Step]) -> list[int]:
    """Rows follow their bill: the item's parent, order and description, on the row and (where
    the link's metadata names the order) on the link at Stripe — no new link, no new key.

    Stripe first, then the row: a crash in between leaves the row different from its bill, so
    the next run does it again (both writes are idempotent)."""
    relinked: list[int] = []
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
            gateway.update_payment_link_metadata(
                row["stripe_payment_link_id"],
                link_metadata(tenant.id, current, step.row_id, int(row["mint_version"])),
            )
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
    return relinked


# -- the report -------------------------------------------------------------------------------
@dataclass
class BackfillReport:
    """What one tenant's backfill did (or, in a dry run, would do)."""

    tenant: str
    commit: bool
    plan: Plan
    currency: str = "usd"
    where: StripeContext | None = None
    tiers_created: int = 0
    retire: RetireOutcome = field(default_factory=RetireOutcome)
    minted: int = 0
    adopted: int = 0
    loaded: int = 0
    relinked: list[int] = field(default_factory=list)
    mint_errors: list[tuple[int, str]] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early (a failed batch, a refused request)

    @property
    def failed(self) -> bool:
        return bool(self.mint_errors) or self.aborted is not None


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
            jobs.append(MintJob(row_id, version, price_id, link_metadata(tenant.id, row, row_id, version)))
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
