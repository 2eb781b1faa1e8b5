"""The admin's reminders page: the club's cadence, sending hours and on/off, and who the next
hourly run within the sending hours is expected to remind (a dry run of the same decision,
asking Stripe nothing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from office.deps import Access, checked_form, field, office_of, render, tenant_access
from paylinks.club.clock import now_utc
from paylinks.club.tenants import tenant_by_slug
from paylinks.errors import PaylinksError
from paylinks.messaging.cadence import days_words, parse_days, parse_hours
from paylinks.messaging.reminders import (
    ReminderSettingsError,
    cadence_of,
    plan_lines,
    plan_tenant,
    reminder_hold,
    set_reminders,
)
from paylinks.present.reminders import step_words
from paylinks.store.tables import as_utc, email_log
from paylinks.vocabulary import EmailStatus, EmailType

router = APIRouter()


def _expected(request: Request, access: Access) -> dict:
    """The next hourly run's decision (at the top of the next hour), as a dry run would say it."""
    from paylinks.stripe_api.gateway import StripeGateway
    from paylinks.stripe_api.where import remembered_where

    office = office_of(request)
    settings = office.settings
    tenant = access.tenant
    at = (now_utc() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    try:
        cadence = cadence_of(tenant, settings.club_timezone)
        for _ in range(24):  # the next hourly run within the sending hours
            if cadence.in_hours(at):
                break
            at += timedelta(hours=1)
        context = remembered_where(
            office.engine, StripeGateway(settings, account=tenant.stripe_account), settings
        )
        planned = plan_tenant(
            office.engine,
            tenant,
            context,
            at,
            default_zone=settings.club_timezone,
            transport=settings.email_transport,
            hold=reminder_hold(tenant, settings.recent_email_hold_hours),
            lease=timedelta(minutes=settings.blast_claim_lease_minutes),
        )
    except PaylinksError as error:
        return {"at": at, "error": str(error), "digests": [], "held": []}
    names = {b.parent_id: (b.parent_name, b.email) for b in planned.sheet.balances}
    digests = [
        {"parent": names[d.parent_id][0], "email": names[d.parent_id][1], "step": step_words(d.step)}
        for d in planned.plan.digests
    ]
    held = [
        {
            "parent": line.parent_name,
            "email": line.recipient,
            "step": step_words(line.due.step),
            "why": line.hold,
        }
        for line in plan_lines(planned)
    ]
    return {"at": at, "error": None, "digests": digests, "held": held}


def _last_sent(request: Request, access: Access) -> dict:
    """When the latest reminder went out, and how many parents were reminded in the day before it."""
    with office_of(request).engine.connect() as connection:
        latest = connection.execute(
            sa.select(sa.func.max(email_log.c.sent_at)).where(
                email_log.c.tenant_id == access.tenant.id,
                email_log.c.email_type == EmailType.reminder,
                email_log.c.status == EmailStatus.sent,
            )
        ).scalar_one_or_none()
        if latest is None:
            return {"at": None, "parents": 0}
        parents = connection.execute(
            sa.select(sa.func.count(sa.distinct(email_log.c.parent_id))).where(
                email_log.c.tenant_id == access.tenant.id,
                email_log.c.email_type == EmailType.reminder,
                email_log.c.status == EmailStatus.sent,
                email_log.c.sent_at >= as_utc(latest) - timedelta(hours=1),
            )
        ).scalar_one()
    return {"at": as_utc(latest), "parents": parents}


def _page(request: Request, access: Access, notice: str | None = None, error: str | None = None,
          status_code: int = 200) -> HTMLResponse:  # fmt: skip
    tenant = access.tenant
    try:
        days, hours = days_words(parse_days(tenant.reminder_days)), parse_hours(tenant.reminder_hours)
        hours_text = f"{hours[0]}-{hours[1]}"
    except ValueError:
        days, hours_text = tenant.reminder_days or "", tenant.reminder_hours or ""
    return render(
        request,
        "reminders.html",
        status_code=status_code,
        access=access,
        enabled=tenant.reminders_enabled,
        days=days,
        hours=hours_text,
        expected=_expected(request, access),
        last=_last_sent(request, access),
        notice=notice,
        error=error,
    )


@router.get("/t/{slug}/reminders", response_class=HTMLResponse)
def reminders_page(request: Request, access: Access = Depends(tenant_access)) -> HTMLResponse:
    access.require_admin()
    return _page(request, access)


@router.post("/t/{slug}/reminders")
def save_reminders(
    request: Request, form: FormData = Depends(checked_form), access: Access = Depends(tenant_access)
) -> Response:
    access.require_admin()
    engine = office_of(request).engine
    try:
        set_reminders(
            engine,
            access.tenant.slug,
            days=field(form, "days", 200),
            hours=field(form, "hours", 20),
            enabled=field(form, "enabled") == "on",
        )
    except ReminderSettingsError as error:
        return _page(request, access, error=str(error), status_code=422)
    with engine.connect() as connection:
        saved = replace(access, tenant=tenant_by_slug(connection, access.tenant.slug))
    return _page(request, saved, notice="Saved.")
