"""Prefect tasks of reconcile, one Stripe account at a time: ask Stripe what happened since the
account's cursor, apply it to the tenants on the account, replace links spent by failed slow
payments."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks.billing import mint
from paylinks.club.tenants import Tenant
from paylinks.messaging import receipts
from paylinks.payments import own_links, reconcile
from paylinks.payments.reconcile import ReconcileReport, StripeNews
from paylinks.runtime import engine_for, mail_transport
from paylinks.settings import Settings
from paylinks.stripe_api.where import remembered_where, stripe_where
from tasks.backfill import STRIPE_RETRIES
from tasks.pacing import stripe_gateway


def _per_account(prefix: str) -> Callable[[], str]:
    """A task run name naming the account: `fetch-stripe-news-platform`, `…-acct_123`."""

    def name() -> str:
        from prefect.runtime import task_run

        return f"{prefix}-{task_run.parameters.get('stripe_account') or 'platform'}"

    return name


@task(cache_policy=NO_CACHE, task_run_name=_per_account("fetch-stripe-news"), **STRIPE_RETRIES)
def fetch_stripe_news(settings: Settings, stripe_account: str | None, tenants: list[Tenant]) -> StripeNews:
    """The account's events since its cursor (sessions, slow payments, refunds, disputes), or a
    scan of its checkout sessions: one read for every tenant on the account (`stripe_account`
    None: the platform's own)."""
    engine = engine_for(settings.database_url)
    gateway = stripe_gateway(settings, account=stripe_account)
    calls_before = gateway.calls
    # Remembered, not asked: reading news costs no extra request; the backfill, the blast and the
    # lookup confirm it with Stripe, and a remembered account that was wrong only delays news.
    where = remembered_where(engine, gateway, settings)
    news = reconcile.fetch_stripe_news(engine, gateway, tenants, reconcile.read_cursor(engine, where))
    news.where = where
    news.stripe_requests = gateway.calls - calls_before
    return news


@task(cache_policy=NO_CACHE, task_run_name=_per_account("apply-stripe-news"))
def apply_stripe_news(
    settings: Settings, stripe_account: str | None, tenants: list[Tenant], news: StripeNews
) -> dict[int, ReconcileReport]:
    """Apply each event once (the webhook receiver's code) to the tenant it concerns, then move
    the account's cursor."""
    return reconcile.apply_stripe_news(engine_for(settings.database_url), tenants, news)


@task(cache_policy=NO_CACHE, task_run_name="replace-spent-links-{tenant.slug}", **STRIPE_RETRIES)
def replace_spent_links(settings: Settings, tenant: Tenant, row_ids: list[int]) -> tuple[list[int], list]:
    """Fresh links for rows whose slow payment failed (the spent link can never take payment)."""
    engine = engine_for(settings.database_url)
    gateway = stripe_gateway(settings, account=tenant.stripe_account)
    where = stripe_where(engine, gateway, settings)
    return mint.mint_replacements(engine, gateway, tenant, where, row_ids)


@task(cache_policy=NO_CACHE, task_run_name="close-paid-links-{tenant.slug}", **STRIPE_RETRIES)
def close_paid_links(settings: Settings, tenant: Tenant) -> tuple[list[str], list[tuple[str, str]]]:
    """Deactivate the own links of bills a family checkout took that are still active (the
    webhook receiver closes them at once; this is the net)."""
    return own_links.close_own_links(
        engine_for(settings.database_url),
        lambda club: stripe_gateway(settings, account=club.stripe_account),
        tenant_id=tenant.id,
    )


@task(cache_policy=NO_CACHE, task_run_name="send-receipts")
def send_receipts(settings: Settings, tenants: list[Tenant]) -> list[receipts.ReceiptOutcome]:
    """Every receipt still due on these tenants' payments (mail that was down is tried again).
    Never fails the run: a receipt that cannot go now stays due."""
    with closing(mail_transport(settings)) as transport:
        return receipts.send_due_receipts(
            engine_for(settings.database_url),
            settings,
            transport,
            tenant_ids=[club.id for club in tenants],
            family_url=receipts.family_page_url(settings),
        )
