"""Prefect tasks of reconcile: read the cursor, ask Stripe what was paid, mark it."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks import reconcile
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


@task(cache_policy=NO_CACHE, task_run_name="fetch-paid-sessions-{tenant.slug}", **STRIPE_RETRIES)
def fetch_paid_sessions(settings: Settings, tenant: Tenant, cursor: int | None) -> StripeNews:
    """Completed checkout sessions on payment links since the cursor (events, or a full scan)."""
    return reconcile.fetch_stripe_news(
        engine_for(settings.database_url), StripeGateway(settings), tenant, cursor
    )


@task(cache_policy=NO_CACHE, task_run_name="mark-payments-{tenant.slug}")
def mark_payments(settings: Settings, tenant: Tenant, news: StripeNews) -> ReconcileReport:
    """Mark rows and their orders paid (one transaction per batch), then move the cursor."""
    return reconcile.apply_news(engine_for(settings.database_url), tenant, news)
