"""Prefect tasks that read balances, render emails and send them: a blast one task run per batch of
parents (each over one mail connection), a single email (a test, a resend) one task run."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from paylinks.club.balances import BalanceSheet, outstanding_balances, player_balances
from paylinks.club.clock import club_zone
from paylinks.club.due import club_today
from paylinks.club.players import PlayerMatch, find_player
from paylinks.club.tenants import Tenant
from paylinks.family.links import family_links, family_preview_url
from paylinks.messaging import blasts, claims, prepare, reminders
from paylinks.messaging.blasts import BlastRun
from paylinks.messaging.claims import LastBlast, RecentEmail, SendOutcome
from paylinks.messaging.prepare import PreparedEmail
from paylinks.messaging.render import ParentBalance
from paylinks.messaging.transports import (
    check_family_links_mailable,
    check_links_mailable,
    transport_from_settings,
)
from paylinks.runtime import engine_for, mail_transport
from paylinks.settings import EmailTransportName, Settings
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.vocabulary import EmailType
from tasks.retry import retry_if_transient


@task(cache_policy=NO_CACHE)
def read_stripe_context(settings: Settings, tenant: Tenant | None = None) -> StripeContext:
    """The Stripe account and mode the tenant's links are minted in (its connected account, else
    the key's own), as Stripe answers now: only links minted there are mailed. When it is not
    where paylinks remembered, the memory follows and one line says so."""
    from paylinks.stripe_api.where import stripe_where
    from tasks.backfill import say_if_moved

    gateway = StripeGateway(settings, account=tenant.stripe_account if tenant else None)
    return say_if_moved(stripe_where(engine_for(settings.database_url), gateway, settings))


@task(cache_policy=NO_CACHE, task_run_name="extract-outstanding-balances-{tenant.slug}")
def extract_outstanding_balances(settings: Settings, tenant: Tenant, context: StripeContext) -> BalanceSheet:
    """Every parent with items offered now (checked against the club's current data), and every
    open row held back with its reason."""
    with engine_for(settings.database_url).connect() as connection:
        return outstanding_balances(connection, tenant, context)


@task(cache_policy=NO_CACHE)
def find_family_links(
    settings: Settings, tenant: Tenant, parent_ids: Sequence[int], preview: bool = False
) -> dict[int, str]:
    """Each parent's family page link, for their email: the real page (its address made on first
    need), or with `preview` the office's preview of it, which makes nothing and takes no payment."""
    if preview:
        return {parent_id: family_preview_url(settings.office_url, parent_id) for parent_id in parent_ids}
    with engine_for(settings.database_url).begin() as connection:
        return family_links(connection, settings, tenant.id, parent_ids)


@task(cache_policy=NO_CACHE)
def render_balance_emails(
    tenant: Tenant, sheet: BalanceSheet, family_urls: dict[int, str] | None = None
) -> list[PreparedEmail]:
    """Render every parent's email (the preview shows exactly these)."""
    return prepare.prepare_balance_emails(tenant, sheet, family_urls)


@task(cache_policy=NO_CACHE)
def render_test_email(
    settings: Settings, tenant: Tenant, email_type: EmailType, balance: ParentBalance
) -> PreparedEmail:
    """The sample email, marked as a test, naming its real recipient, its buttons not payable."""
    return prepare.prepare_test_email(tenant, email_type, balance, settings.office_url)


@task(cache_policy=NO_CACHE)
def check_links_can_be_mailed(settings: Settings, emails: list[PreparedEmail], to_test_address: bool) -> None:
    """Refuse, before anything is sent, to mail emulator links, or family page links only this
    machine can open, to real parents over SMTP."""
    check_links_mailable(
        (url for email in emails for url in email.urls),
        transport=mail_transport(settings),
        recipient_is_test_address=to_test_address,
        allow_test_links=settings.allow_test_links,
    )
    check_family_links_mailable(
        (email.family_url for email in emails if email.family_url),
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
    """The named blast, else the tenant's unfinished one (any date), else a new one (named for the
    club's day, not the machine's: 8 PM in New York is already tomorrow by UTC)."""
    today = club_today(datetime.now(UTC), club_zone(tenant.timezone, settings.club_timezone))
    return blasts.start_blast(
        engine_for(settings.database_url), tenant, settings.email_transport, blast_key, today
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


@task(cache_policy=NO_CACHE)
def extract_recently_emailed(
    settings: Settings, tenant: Tenant, since: datetime, other_than: str | None
) -> dict[int, RecentEmail]:
    """Parents another blast emailed since `since` (or is emailing now), with when: held back."""
    return claims.recently_emailed(
        engine_for(settings.database_url),
        tenant,
        settings.email_transport,
        since,
        timedelta(minutes=settings.blast_claim_lease_minutes),
        other_than=other_than,
    )


@task(cache_policy=NO_CACHE)
def extract_reminder_optouts(settings: Settings, tenant: Tenant, parent_ids: list[int]) -> set[int]:
    """Parents who opted out of reminders: a blast still mails them, and its summary names them."""
    with engine_for(settings.database_url).connect() as connection:
        return reminders.opted_out_parents(connection, tenant, parent_ids)


@task(cache_policy=NO_CACHE)
def read_last_blast(settings: Settings, tenant: Tenant) -> LastBlast | None:
    """The tenant's latest blast over this transport that reached anyone: when, how many parents."""
    return claims.last_blast(engine_for(settings.database_url), tenant, settings.email_transport)


def send_email(
    settings: Settings,
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    email: PreparedEmail,
    recipient: str,
    log_parent: bool = True,
    to_name: str | None = None,
    hold_since: datetime | None = None,
    return_state: bool = False,
) -> Any:
    """One email as a task run, tried again after each of `settings.mail_retry_delays_s` while the
    mail server refuses it for now (the task's own retries: each try is recorded)."""
    pauses = list(settings.mail_retry_delays_s)
    task_run = send_one_email.with_options(retries=len(pauses), retry_delay_seconds=pauses or 0)
    arguments = (settings, tenant, email_type, run_key, email, recipient)
    options: dict[str, Any] = dict(log_parent=log_parent, to_name=to_name, hold_since=hold_since)
    if return_state:
        return task_run(*arguments, **options, return_state=True)
    return task_run(*arguments, **options, return_state=False)


@task(
    cache_policy=NO_CACHE,
    task_run_name="send-{email_type.value}-to-parent-{email.parent_id}",
    retry_condition_fn=retry_if_transient,
)
def send_one_email(
    settings: Settings,
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    email: PreparedEmail,
    recipient: str,
    log_parent: bool = True,
    to_name: str | None = None,
    hold_since: datetime | None = None,
) -> SendOutcome:
    """Deliver one email and log it in email_log; a refused delivery is logged, then fails this task.
    With `hold_since`, a parent another blast emailed since then is held back instead."""
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
        hold_since=hold_since,
    )


def mail_connections(settings: Settings) -> int:
    """How many batches send at once: over SMTP `mail_connections`, each on its own connection
    (while one waits for the server's answers, the next message is built); the outbox folder
    has nothing to wait on, so one."""
    return settings.mail_connections if settings.email_transport == EmailTransportName.smtp else 1


def batch_name(first: int, last: int, total: int) -> str:
    """What a batch's task run is called: "send parents 51–100 of 2,000" (1-based, inclusive)."""
    return f"send parents {first:,}–{last:,} of {total:,}"


@task(cache_policy=NO_CACHE, task_run_name="{name}")
def send_email_batch(
    settings: Settings,
    tenant: Tenant,
    email_type: EmailType,
    run_key: str,
    sends: Sequence[tuple[PreparedEmail, str]],
    name: str,
    hold_since: datetime | None = None,
) -> list[SendOutcome]:
    """Deliver a batch of emails over one mail connection, each claimed and logged in email_log
    as a single send is, one log line per parent. A parent whose email could not be delivered
    is an outcome `failed` (with why), not an exception: the others still go."""
    logger = get_run_logger()

    def say(outcome: SendOutcome) -> None:
        why = f": {outcome.error}" if outcome.error else ""
        logger.info("parent %s: %s%s", outcome.parent_id, outcome.result.label, why)

    with closing(transport_from_settings(settings)) as transport:
        return claims.send_batch(
            engine_for(settings.database_url),
            transport,
            settings,
            tenant,
            email_type,
            run_key,
            sends,
            hold_since=hold_since,
            retry_delays_s=settings.mail_retry_delays_s,
            on_outcome=say,
        )


def start_progress(total: int) -> UUID | None:
    """The blast's progress artifact (0 %), updated as batches finish; None with nobody to send."""
    if total == 0:
        return None
    created = create_progress_artifact(
        progress=0.0, description=f"Outstanding-balance email: 0 of {total:,} parents done"
    )
    return created if isinstance(created, UUID) else None


def show_progress(artifact_id: UUID | None, done: int, total: int) -> None:
    if artifact_id is not None and total:
        update_progress_artifact(
            artifact_id,
            progress=100.0 * done / total,
            description=f"Outstanding-balance email: {done:,} of {total:,} parents done",
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
    tenant: Tenant, balance: ParentBalance, forwarded_for: str | None = None, family_url: str | None = None
) -> PreparedEmail:
    """The coach's resend: one parent's open links for the player, their total and their family page."""
    return prepare.prepare_email(
        tenant, EmailType.payment_link, balance, forwarded_for=forwarded_for, family_url=family_url
    )
