"""The blast panel's three steps (preview, a test email, the send naming how many parents it
mails) and a run's page, which the blast's send leads to."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from office.deps import (
    NOT_FOUND,
    Access,
    Office,
    checked_form,
    field,
    office_of,
    render,
    see_other,
    tenant_access,
)
from office.runs import (
    Reach,
    SendStillRunning,
    blast_figures,
    prefect_link,
    run_flow_in_process,
    start_blast_send,
    tenant_run,
)
from paylinks.access import audit
from paylinks.club.balances import outstanding_balances
from paylinks.club.clock import club_zone, now_utc, when_words
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.family.links import family_preview_url
from paylinks.messaging import blasts, claims
from paylinks.messaging.prepare import prepare_balance_emails
from paylinks.money import format_money
from paylinks.params import normalized_email
from paylinks.present.blast import emailed_words, last_blast_text
from paylinks.stripe_api.gateway import StripeGateway
from paylinks.vocabulary import AuditAction

router = APIRouter()


# -- the blast panel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldBackParent:
    name: str
    emailed: str  # "emailed Dec 3, 2026, 12:14 PM EST", in the club's time


@dataclass(frozen=True)
class BlastPreview:
    parents: int  # parents with a balance
    reachable: int  # of them, with an email address: the number a send mails with the box ticked
    items: int
    total_cents: int
    unminted_items: int
    sample_html: str | None
    sample_subject: str | None
    sample_parent: str | None
    last_blast: str | None = None  # "Dec 3, 2026, 12:14 PM EST, 7 parents"; None: no blast yet
    hold_hours: int = 0  # parents another blast emailed this many hours ago or less are held back
    held_back: tuple[HeldBackParent, ...] = ()  # reachable parents a send holds back

    @property
    def to_send(self) -> int:
        """The parents a send mails unless asked to include the recently emailed."""
        return self.reachable - len(self.held_back)


def blast_preview(office: Office, tenant: Tenant) -> BlastPreview:
    # Only links minted in the tenant's account and mode are offered (as the blast does).
    settings = office.settings
    # As Stripe answers now; when that is not where paylinks remembered, the memory follows.
    from paylinks.stripe_api.where import stripe_where

    context = stripe_where(office.engine, StripeGateway(settings, account=tenant.stripe_account), settings)
    if context.moved_words:
        logging.getLogger(__name__).warning(context.moved_words)
    with office.engine.connect() as connection:
        sheet = outstanding_balances(connection, tenant, context)
    # The preview makes no family page address: each email links to the preview of the page.
    previews = {b.parent_id: family_preview_url(settings.office_url, b.parent_id) for b in sheet.balances}
    emails = prepare_balance_emails(tenant, sheet, previews)
    sample = sheet.sample()
    shown = next((e for e in emails if sample is not None and e.parent_id == sample.parent_id), None)
    zone = club_zone(tenant.timezone, settings.club_timezone).key
    transport = settings.email_transport
    last = claims.last_blast(office.engine, tenant, transport)
    since = blasts.hold_since(tenant, settings.recent_email_hold_hours, now_utc())
    recent: dict[int, claims.RecentEmail] = {}
    if since is not None:
        resumed = blasts.find_blast(office.engine, tenant, transport, None)
        recent = claims.recently_emailed(
            office.engine,
            tenant,
            transport,
            since,
            timedelta(minutes=settings.blast_claim_lease_minutes),
            other_than=resumed.run_key if resumed else None,
        )
    return BlastPreview(
        parents=len(emails),
        reachable=sum(1 for e in emails if e.address),
        items=sum(e.item_count for e in emails),
        total_cents=sum(e.total_cents for e in emails),
        unminted_items=sum(1 for item in sheet.held_back if not item.reason.no_longer_owed),
        sample_html=shown.rendered.html if shown else None,
        sample_subject=shown.rendered.subject if shown else None,
        sample_parent=shown.parent_name if shown else None,
        last_blast=last_blast_text(last, zone),
        hold_hours=blasts.hold_window_hours(tenant, settings.recent_email_hold_hours),
        held_back=tuple(
            HeldBackParent(e.parent_name, emailed_words(recent[e.parent_id], zone))
            for e in emails
            if e.address and e.parent_id in recent
        ),
    )


@router.get("/t/{slug}/blast", response_class=HTMLResponse)
def blast_page(request: Request, access: Access = Depends(tenant_access)) -> HTMLResponse:
    access.require_admin()
    return render(
        request,
        "blast.html",
        access=access,
        preview=blast_preview(office_of(request), access.tenant),
        step=1,
        test_result=None,
        error=None,
        test_email="",
        currency=access.tenant.currency,
    )


@router.post("/t/{slug}/blast/test", response_class=HTMLResponse)
def blast_test(
    request: Request, form: FormData = Depends(checked_form), access: Access = Depends(tenant_access)
) -> HTMLResponse:
    from flows.outstanding_balance_email import outstanding_balance_email  # loads Prefect: on first use only

    access.require_admin()
    office = office_of(request)
    preview = blast_preview(office, access.tenant)
    typed = field(form, "test_email", 320)
    context: dict[str, Any] = {
        "access": access,
        "preview": preview,
        "currency": access.tenant.currency,
        "test_email": typed,
    }
    try:
        address = normalized_email(typed)
    except ValueError as error:
        return render(request, "blast.html", 422, step=1, test_result=None, error=str(error), **context)
    parameters = {"tenant": access.tenant.slug, "test_email": address, "send": False, "blast_key": None}
    try:
        run_id, report = run_flow_in_process(
            office.settings, outstanding_balance_email, parameters, started_by=access.visitor.user.id
        )
    except PaylinksError as error:
        return render(
            request, "blast.html", 422, step=1, test_result=None, error=f"Not sent: {error}", **context
        )
    except Exception as error:
        return render(
            request,
            "blast.html",
            502,
            step=1,
            test_result=None,
            error=f"Not sent: the run failed ({type(error).__name__}).",
            **context,
        )
    sent = bool(report.sent)
    result = f"Test email sent to {address}." if sent else "Nothing to test: no parent owes anything."
    with office.engine.begin() as connection:
        audit.record(
            connection,
            access.visitor.actor,
            AuditAction.blast_test,
            access.tenant.id,
            f"{result} Run {run_id}.",
        )
    return render(request, "blast.html", step=2 if sent else 1, test_result=result, error=None, **context)


@router.post("/t/{slug}/blast/send")
def blast_send(
    request: Request, form: FormData = Depends(checked_form), access: Access = Depends(tenant_access)
) -> Response:
    access.require_admin()
    office = office_of(request)
    preview = blast_preview(office, access.tenant)
    confirmed = field(form, "parents")
    if confirmed != str(preview.reachable):
        return _send_refused(
            request,
            access,
            preview,
            f"The number of parents changed since you looked (now {preview.reachable}, you confirmed "
            f"{confirmed or 'none'}). Check the preview again before sending.",
        )
    blast_key = field(form, "blast_key", 150) or None
    include_recent = field(form, "include_recent") == "yes"
    try:
        started = start_blast_send(
            office.settings,
            office.engine,
            access.tenant,
            claimed_by=access.visitor.actor.name,
            started_by=access.visitor.user.id,
            blast_key=blast_key,
            include_recent=include_recent,
        )
    except SendStillRunning as running:
        held = running.claim
        zone = club_zone(access.tenant.timezone, office.settings.club_timezone)
        return _send_refused(
            request,
            access,
            preview,
            f"A send to every parent is still running: the one {held.claimed_by} started "
            f"{when_words(held.claimed_at, zone)}. Wait for it to finish (Recent runs shows how far it "
            "got) before sending again.",
        )
    with office.engine.begin() as connection:
        audit.record(
            connection,
            access.visitor.actor,
            AuditAction.blast_send,
            access.tenant.id,
            f"blast to {preview.reachable if include_recent else preview.to_send} parents "
            f"({format_money(preview.total_cents, access.tenant.currency)} owed"
            + (
                f"; {len(preview.held_back)} emailed in the last {preview.hold_hours} hours "
                + ("included on request" if include_recent else "held back")
                if preview.held_back
                else ""
            )
            + f") started: run {started.flow_run_id}",
        )
    return see_other(f"/t/{access.tenant.slug}/runs/{started.flow_run_id}")


def _send_refused(request: Request, access: Access, preview: BlastPreview, error: str) -> HTMLResponse:
    """The panel again, at its first step, saying why nothing was sent (409)."""
    return render(
        request,
        "blast.html",
        409,
        access=access,
        preview=preview,
        step=1,
        test_result=None,
        test_email="",
        currency=access.tenant.currency,
        error=error,
    )


# -- runs ------------------------------------------------------------------------------------


@router.get("/t/{slug}/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, access: Access = Depends(tenant_access)) -> HTMLResponse:
    try:
        flow_run_id = uuid.UUID(run_id)
    except ValueError:
        raise HTTPException(404, NOT_FOUND) from None
    run = tenant_run(office_of(request).settings, flow_run_id, access.tenant.slug)
    # A coach sees the runs they started (their resends); an admin, every run of the tenant.
    if run is None or not (access.is_admin or run.started_by == access.visitor.user.id):
        raise HTTPException(404, NOT_FOUND)
    settings = office_of(request).settings
    sent_to_parents = run.kind == "blast" and run.final and bool(run.parameters.get("send"))
    figures = blast_figures(flow_run_id, access.tenant.slug) if sent_to_parents else None
    return render(
        request,
        "run.html",
        access=access,
        run=run,
        final=run.final,
        figures=figures,
        reach=Reach,
        failure=_failure_words(run.message) if run.failed else None,
        prefect=prefect_link(settings, flow_run_id),
        hold_hours=blasts.hold_window_hours(access.tenant, settings.recent_email_hold_hours),
    )


def _failure_words(message: str | None) -> str:
    """Why a run failed, from its final state's message, without Prefect's prefix or the
    exception's class name ("Flow run encountered an exception: BlastFailedError: 2 email(s)…")."""
    text = (message or "").removeprefix("Flow run encountered an exception:").strip()
    name, colon, rest = text.partition(": ")
    if colon and name.isidentifier() and name[:1].isupper():
        text = rest
    return text or "the run stopped before it finished"
