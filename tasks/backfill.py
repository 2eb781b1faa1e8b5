"""Prefect tasks of the backfill: find the account → extract → plan → ensure tiers → retire →
name the players on kept links → reserve → mint → load → relink.

Each task is a thin, verb-named wrapper over one function of `paylinks.billing` (called as an
attribute of its module, so a test patching that attribute reaches the call); only the ones calling
Stripe retry, and only on transient failures.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from paylinks.billing import extract, mint, naming, price_tiers, reserve, retire
from paylinks.billing.extract import BillingRows
from paylinks.billing.mint import MintJob, MintResult
from paylinks.billing.naming import NamingOutcome
from paylinks.billing.plan import Plan, Step
from paylinks.billing.price_tiers import Tiers
from paylinks.billing.report import RetireOutcome
from paylinks.club.tenants import Tenant
from paylinks.runtime import engine_for
from paylinks.settings import Settings
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.stripe_api.keys import has_stripe_key
from paylinks.stripe_api.where import stripe_where
from tasks.pacing import stripe_gateway
from tasks.retry import retry_if_transient

STRIPE_RETRIES: dict[str, Any] = dict(
    retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_if_transient
)


@task(cache_policy=NO_CACHE, **STRIPE_RETRIES)
def find_stripe_account(
    settings: Settings, tenant: Tenant, required: bool, known: StripeContext | None = None
) -> StripeContext | None:
    """The Stripe account and mode the tenant's calls act in: its own connected account, else
    the key's, as Stripe answers now (one request; `known`: already asked by this run for the
    key's own account). When it is not where paylinks remembered, one line says so. A dry run
    without any key configured plans without it."""
    if not required and not has_stripe_key(settings):
        return None
    if known is not None and not tenant.stripe_account:
        return known
    trust_for = timedelta(minutes=settings.stripe_account_recheck_minutes)
    engine = engine_for(settings.database_url)
    return say_if_moved(stripe_where(engine, _gateway(settings, tenant), settings, trust_for))


def say_if_moved(where: StripeContext) -> StripeContext:
    """Log, in one line, that the key acts elsewhere than paylinks remembered (if it does)."""
    if where.moved_words:
        get_run_logger().warning(where.moved_words)
    return where


@task(cache_policy=NO_CACHE, task_run_name="extract-billing-rows-{tenant.slug}")
def extract_billing_rows(settings: Settings, tenant: Tenant, where: StripeContext | None) -> BillingRows:
    """Signed players, products, pending orders, existing rows and this account's price tiers."""
    return extract.extract_billing_rows(engine_for(settings.database_url), tenant, where)


@task(cache_policy=NO_CACHE)
def plan_payment_links(rows: BillingRows, where: StripeContext | None) -> Plan:
    """Decide each item's step (pure: the dry run and the real run plan the same)."""
    return extract.plan(rows, where)


@task(cache_policy=NO_CACHE, **STRIPE_RETRIES)
def ensure_price_tiers(
    settings: Settings,
    tenant: Tenant,
    where: StripeContext,
    steps: list[Step],
    rows: BillingRows,
    known: Tiers | None = None,
) -> Tiers:
    """Confirm, find or create the Stripe Price of every (product, amount) about to be minted."""
    return price_tiers.ensure_price_tiers(
        engine_for(settings.database_url),
        _gateway(settings, tenant, where),
        tenant,
        where,
        steps,
        rows,
        known,
    )


@task(cache_policy=NO_CACHE, **STRIPE_RETRIES)
def retire_stale_links(
    settings: Settings, tenant: Tenant, where: StripeContext, steps: list[Step]
) -> RetireOutcome:
    """Deactivate links whose bill went away or changed; let go of links minted elsewhere."""
    return retire.retire_stale_links(
        engine_for(settings.database_url), _gateway(settings, tenant, where), tenant, where, steps
    )


@task(cache_policy=NO_CACHE, **STRIPE_RETRIES)
def name_players_on_checkouts(
    settings: Settings, tenant: Tenant, where: StripeContext, steps: list[Step]
) -> NamingOutcome:
    """Links that stay say on their checkout and receipt which player and club they are for
    (updated in place); a link Stripe no longer has comes back to be re-minted."""
    return naming.name_players_on_checkouts(
        engine_for(settings.database_url), _gateway(settings, tenant, where), tenant, steps
    )


@task(cache_policy=NO_CACHE)
def reserve_payment_links(
    settings: Settings,
    tenant: Tenant,
    where: StripeContext,
    steps: list[Step],
    tiers: dict[tuple[int, int], str],
) -> list[MintJob]:
    """Commit a row for every link before it is minted (crash safety)."""
    return reserve.reserve_payment_links(engine_for(settings.database_url), tenant, where, steps, tiers)


@task(cache_policy=NO_CACHE, task_run_name="mint-payment-links-batch-{batch_number}", **STRIPE_RETRIES)
def mint_payment_links(
    settings: Settings, jobs: list[MintJob], batch_number: int, account: str | None = None
) -> list[MintResult]:
    """Mint one batch of links concurrently, paced with every worker acting in `account`
    (the tenant's connected Stripe account; None: the platform's)."""
    concurrency = min(16, max(1, int(settings.stripe_max_rps)))
    return mint.mint_payment_links(stripe_gateway(settings, account=account), jobs, concurrency)


@task(cache_policy=NO_CACHE, task_run_name="load-payment-links-batch-{batch_number}")
def load_payment_links(settings: Settings, results: list[MintResult], batch_number: int) -> int:
    """Store each minted link's id and url in its row."""
    return mint.load_payment_links(engine_for(settings.database_url), results)


@task(cache_policy=NO_CACHE, **STRIPE_RETRIES)
def relink_payment_links(
    settings: Settings, tenant: Tenant, steps: list[Step]
) -> tuple[list[int], list[tuple[int, str]]]:
    """Rows (and their links' metadata) follow their bill's new parent, order or description;
    a row whose link Stripe no longer has lets go of it (the next backfill mints it)."""
    return mint.relink_rows(engine_for(settings.database_url), _gateway(settings, tenant), tenant, steps)


def _gateway(settings: Settings, tenant: Tenant, where: StripeContext | None = None) -> StripeGateway:
    """The gateway for this tenant's calls: in its own connected account, if it has one, paced
    with every worker acting in that account."""
    return stripe_gateway(settings, account=tenant.stripe_account, where=where)
