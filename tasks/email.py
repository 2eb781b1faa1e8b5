"""Prefect tasks that read balances, render emails and send them, one task run per send."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks import emailing
from paylinks.balances import BalanceSheet, outstanding_balances, player_balance
from paylinks.db import EmailType
from paylinks.emailing import PreparedEmail, SendOutcome
from paylinks.mail import check_links_mailable
from paylinks.players import PlayerMatch, find_player
from paylinks.rendering import ParentBalance
from paylinks.runtime import engine_for, mail_transport
from paylinks.settings import Settings
from paylinks.tenants import Tenant
from tasks.prefect_support import retry_if_transient


SEND_RETRIES = dict(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=retry_if_transient)


@task(cache_policy=NO_CACHE, task_run_name="extract-outstanding-balances-{tenant.slug}")
def extract_outstanding_balances(settings: Settings, tenant: Tenant) -> BalanceSheet:
    """Every parent with pending links, their items and total (siblings together)."""
    with engine_for(settings.database_url).connect() as connection:
        return outstanding_balances(connection, tenant)


@task(cache_policy=NO_CACHE)
def render_balance_emails(tenant: Tenant, sheet: BalanceSheet) -> list[PreparedEmail]:
    """Render every parent's email (the preview shows exactly these)."""
    return emailing.prepare_balance_emails(tenant, sheet)


@task(cache_policy=NO_CACHE)
def render_test_email(tenant: Tenant, email_type: EmailType, balance: ParentBalance) -> PreparedEmail:
    """The sample email, marked as a test and naming its real recipient."""
    real = (
        f"{balance.parent_name} <{balance.email}>"
        if balance.email
        else f"{balance.parent_name} (no email on file)"
    )
    return emailing.prepare_email(tenant, email_type, balance, test_recipient_note=real)


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
def extract_sent_parents(settings: Settings, tenant: Tenant, run_key: str) -> set[int]:
    """Parents this blast already reached (a rerun skips them)."""
    return emailing.sent_parent_ids(
        engine_for(settings.database_url), tenant, EmailType.outstanding_balance, run_key
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
    return emailing.send_logged(
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
def extract_player_balance(settings: Settings, tenant: Tenant, player_id: int) -> ParentBalance | None:
    """The player's open, minted links, addressed to their parent."""
    with engine_for(settings.database_url).connect() as connection:
        balance, _unminted = player_balance(connection, tenant, player_id)
        return balance


@task(cache_policy=NO_CACHE)
def render_payment_link_email(tenant: Tenant, balance: ParentBalance) -> PreparedEmail:
    """The coach's resend: one player's open links and their total."""
    return emailing.prepare_email(tenant, EmailType.payment_link, balance)
