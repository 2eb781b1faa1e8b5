"""Prefect tasks of the reminders: where the club's links were minted (as remembered, or as
Stripe says now), the club's plan (who is due), the stop tokens and the digests, the summary."""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks.club.tenants import Tenant
from paylinks.family.links import family_links, family_preview_url
from paylinks.messaging import reminders
from paylinks.messaging.prepare import PreparedEmail
from paylinks.messaging.reminders import ReminderReport, TenantReminders
from paylinks.present.reminders import quiet_tables, reminder_tables
from paylinks.runtime import engine_for
from paylinks.settings import Settings
from paylinks.store.tables import utcnow
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.stripe_api.where import remembered_where
from tasks.artifacts import publish_tables


@task(cache_policy=NO_CACHE, task_run_name="read-remembered-stripe-account-{tenant.slug}")
def read_remembered_context(settings: Settings, tenant: Tenant) -> StripeContext:
    """Where the club's links are minted, as the last run that asked Stripe was told: deciding
    who is due costs no Stripe request (the send asks Stripe, once someone is)."""
    gateway = StripeGateway(settings, account=tenant.stripe_account)
    return remembered_where(engine_for(settings.database_url), gateway, settings)


@task(cache_policy=NO_CACHE)
def find_clubs_near_a_step(settings: Settings, clubs: list[Tenant], as_of: datetime | None) -> set[str]:
    """Of the clubs with reminders on, those with an open bill whose cadence step is today or
    yesterday (one query for all): the others have nobody due, so they cost no task run and no
    Stripe request."""
    with engine_for(settings.database_url).connect() as connection:
        return reminders.clubs_near_a_step(connection, clubs, as_of, settings.club_timezone, utcnow())


@task(cache_policy=NO_CACHE)
def publish_quiet_clubs(reports: list[ReminderReport]) -> None:
    """One summary for every club with nothing near a step (rather than one per club)."""
    publish_tables("reminders", "nothing-due", quiet_tables(reports))


@task(cache_policy=NO_CACHE, task_run_name="plan-reminders-{tenant.slug}")
def plan_tenant_reminders(
    settings: Settings, tenant: Tenant, context: StripeContext, as_of: datetime | None
) -> TenantReminders:
    """The club's bills with their due dates, what is known of each parent, and who is due now.
    A setting or date that does not parse is an error naming the club and the field."""
    return reminders.plan_tenant(
        engine_for(settings.database_url),
        tenant,
        context,
        as_of,
        default_zone=settings.club_timezone,
        transport=settings.email_transport,
        hold=reminders.reminder_hold(tenant, settings.recent_email_hold_hours),
        lease=timedelta(minutes=settings.blast_claim_lease_minutes),
    )


@task(cache_policy=NO_CACHE, task_run_name="render-reminders-{tenant.slug}")
def render_reminders(
    settings: Settings, tenant: Tenant, planned: TenantReminders, send: bool
) -> list[PreparedEmail]:
    """One digest per parent due. Sending: each with a fresh one-click "stop reminders" link
    (its token kept hashed); a dry run shows the link as a placeholder and stores nothing."""
    parent_ids = [due.parent_id for due in planned.plan.digests]
    tokens = (
        reminders.new_stop_tokens(engine_for(settings.database_url), tenant, parent_ids)
        if send
        else dict.fromkeys(parent_ids, "(made-when-sent)")
    )
    if send:
        with engine_for(settings.database_url).begin() as connection:
            family = family_links(connection, settings, tenant.id, parent_ids)
    else:  # a dry run makes no address: it shows the office's preview of each page
        family = {parent_id: family_preview_url(settings.office_url, parent_id) for parent_id in parent_ids}
    return [
        reminders.prepare_digest(
            tenant,
            planned.balance(parent_id),
            planned.dates,
            planned.plan.today,
            reminders.stop_url(settings.office_url, tokens[parent_id]),
            family_url=family.get(parent_id),
        )
        for parent_id in parent_ids
    ]


@task(cache_policy=NO_CACHE)
def publish_reminder_summary(report: ReminderReport) -> None:
    """Sent, held back and why, one row per parent with a step due: the tables the CLI prints."""
    publish_tables("reminders", report.tenant, reminder_tables(report))
