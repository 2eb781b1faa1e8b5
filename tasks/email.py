"""Prefect tasks that read balances, render emails and send them, one task run per send."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks.club.balances import BalanceSheet, outstanding_balances, player_balances
from paylinks.club.players import PlayerMatch, find_player
from paylinks.club.tenants import Tenant
from paylinks.messaging import blasts, claims, prepare
from paylinks.messaging.blasts import BlastRun
from paylinks.messaging.claims import SendOutcome
from paylinks.messaging.prepare import PreparedEmail
from paylinks.messaging.render import ParentBalance
from paylinks.messaging.transports import check_links_mailable
from paylinks.runtime import engine_for, mail_transport
from paylinks.settings import Settings
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.vocabulary import EmailType
from tasks.retry import retry_if_transient

SEND_RETRIES: dict[str, Any] = dict(
    retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=retry_if_transient
)


@task(cache_policy=NO_CACHE)
def read_stripe_context(settings: Settings, tenant: Tenant | None = None) -> StripeContext:
    """The Stripe account and mode the tenant's links are minted in (its connected account, else
    the key's own): only links minted there are mailed."""
    return StripeGateway(settings, account=tenant.stripe_account if tenant else None).context()


@task(cache_policy=NO_CACHE, task_run_name="extract-outstanding-balances-{tenant.slug}")
def extract_outstanding_balances(settings: Settings, tenant: Tenant, context: StripeContext) -> BalanceSheet:
    """Every parent with items offered now (checked against the club's current data), and every
    open row held back with its reason."""
    with engine_for(settings.database_url).connect() as connection:
        return outstanding_balances(connection, tenant, context)


@task(cache_policy=NO_CACHE)
def render_balance_emails(tenant: Tenant, sheet: BalanceSheet) -> list[PreparedEmail]:
    """Render every parent's email (the preview shows exactly these)."""
    return prepare.prepare_balance_emails(tenant, sheet)


@task(cache_policy=NO_CACHE)
def render_test_email(
    settings: Settings, tenant: Tenant, email_type: EmailType, balance: ParentBalance
) -> PreparedEmail:
    """The sample email, marked as a test, naming its real recipient, its buttons not payable."""
    return prepare.prepare_test_email(tenant, email_type, balance, settings.office_url)


@task(cache_policy=NO_CACHE)
def check_links_can_be_mailed(settings: Settings, emails: list[PreparedEmail], to_test_address: bool) -> None:
    """Refuse, before anything is sent, to mail emulator links to real parents over SMTP."""
    check_links_mailable(
        (url for email in emails for url in email.urls),
        transport=mail_transport(settings),
        recipient_is_test_address=to_test_address,
        allow_test_links=settings.allow_test_links,
    )


@task(cache_policy=NO_CACHE)
def find_blast(settings: Settings, tenant: Tenant, blast_key: str | None) -> BlastRun | None:
    """The blast a send would use now (a preview starts nothing)."""
    return blasts.find_blast(engine_for(settings.database_url), tenant, settings.email_transport, blast_key)


@task(cache_policy=NO_CACHE)
def start_blast(settings: Settings, tenant: Tenant, blast_key: str | None) -> BlastRun:
    """The named blast, else the tenant's unfinished one (any date), else a new one."""
    return blasts.start_blast(
        engine_for(settings.database_url), tenant, settings.email_transport, blast_key, date.today()
    )


@task(cache_policy=NO_CACHE)
def finish_blast(settings: Settings, tenant: Tenant, blast: BlastRun) -> None:
    """Mark the blast finished: every reachable parent has their email."""
    blasts.finish_blast(engine_for(settings.database_url), tenant, blast)


@task(cache_policy=NO_CACHE)
def extract_sent_parents(settings: Settings, tenant: Tenant, run_key: str) -> set[int]:
    """Parents this blast already reached over this transport (a rerun skips them)."""
    return claims.sent_parent_ids(
        engine_for(settings.database_url),
        tenant,
        EmailType.outstanding_balance,
        run_key,
        settings.email_transport,
    )


@task(
    cache_policy=NO_CACHE, task_run_name="send-{email_type.value}-to-parent-{email.parent_id}", **SEND_RETRIES
)
def send_email(
    settings: Settings,
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    email: PreparedEmail,
    recipient: str,
    log_parent: bool = True,
    to_name: str | None = None,
) -> SendOutcome:
    """Deliver one email and log it in email_log; a refused delivery is logged, then fails this task."""
    return claims.send_logged(
        engine_for(settings.database_url),
        mail_transport(settings),
        settings,
        tenant,
        email_type,
        run_key,
        email,
        recipient,
        parent_id=email.parent_id if log_parent else None,
        to_name=to_name,
    )


@task(cache_policy=NO_CACHE)
def find_player_to_resend(settings: Settings, tenant: Tenant, query: str) -> PlayerMatch:
    """The one player matching an id or part of a name (several matches is an error listing them)."""
    with engine_for(settings.database_url).connect() as connection:
        return find_player(connection, tenant, query)


@task(cache_policy=NO_CACHE)
def extract_player_balances(
    settings: Settings, tenant: Tenant, player_id: int, context: StripeContext
) -> BalanceSheet:
    """The player's items offered now, one balance per parent who owes some of them."""
    with engine_for(settings.database_url).connect() as connection:
        return player_balances(connection, tenant, player_id, context)


@task(cache_policy=NO_CACHE)
def render_payment_link_email(
    tenant: Tenant, balance: ParentBalance, forwarded_for: str | None = None
) -> PreparedEmail:
    """The coach's resend: one parent's open links for the player, and their total."""
    return prepare.prepare_email(tenant, EmailType.payment_link, balance, forwarded_for=forwarded_for)
