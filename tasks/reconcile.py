"""Prefect tasks of reconcile: read the cursor, ask Stripe what happened, apply it, replace
links spent by failed slow payments."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks import backfill, reconcile
from paylinks.reconcile import ReconcileReport, StripeNews
from paylinks.runtime import engine_for
from paylinks.settings import Settings
from paylinks.stripe_gateway import StripeGateway
from paylinks.tenants import Tenant
from tasks.backfill import STRIPE_RETRIES


@task(cache_policy=NO_CACHE, task_run_name="read-reconcile-cursor-{tenant.slug}")
def read_reconcile_cursor(settings: Settings, tenant: Tenant) -> int | None:
    """Stripe time of the newest event already applied (None: never reconciled)."""
    return reconcile.read_cursor(engine_for(settings.database_url), tenant)


@task(cache_policy=NO_CACHE, task_run_name="fetch-stripe-news-{tenant.slug}", **STRIPE_RETRIES)
def fetch_stripe_news(settings: Settings, tenant: Tenant, cursor: int | None) -> StripeNews:
    """Events since the cursor (sessions, slow payments, refunds, disputes), or a session scan."""
    return reconcile.fetch_stripe_news(
        engine_for(settings.database_url), StripeGateway(settings, account=tenant.stripe_account), tenant, cursor
    )


@task(cache_policy=NO_CACHE, task_run_name="apply-stripe-news-{tenant.slug}")
def apply_stripe_news(settings: Settings, tenant: Tenant, news: StripeNews) -> ReconcileReport:
    """Apply each event once (the webhook receiver's code), then move the cursor."""
    return reconcile.apply_stripe_news(engine_for(settings.database_url), tenant, news)


@task(cache_policy=NO_CACHE, task_run_name="replace-spent-links-{tenant.slug}", **STRIPE_RETRIES)
def replace_spent_links(settings: Settings, tenant: Tenant, row_ids: list[int]) -> tuple[list[int], list]:
    """Fresh links for rows whose slow payment failed (the spent link can never take payment)."""
    engine = engine_for(settings.database_url)
    gateway = StripeGateway(settings, account=tenant.stripe_account)
    where = backfill.stripe_where(engine, gateway, settings)
    return backfill.mint_replacements(engine, gateway, tenant, where, row_ids)
