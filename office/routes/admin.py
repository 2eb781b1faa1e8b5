"""The admin's pages: team balances, refunds due, recent runs and history; the open-items CSV;
the blast panel's three steps (preview, a test email, the send naming how many parents it
mails); and a run's page, which the blast's send leads to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from office.deps import (
    NOT_FOUND,
    Access,
    DoneId,
    Office,
    checked_form,
    field,
    office_of,
    render,
    see_other,
    tenant_access,
)
from office.runs import recent_runs, run_flow_in_process, start_blast, tenant_run
from paylinks.access import audit
from paylinks.club import office as club_office
from paylinks.club.balances import outstanding_balances
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.messaging.prepare import prepare_balance_emails
from paylinks.money import format_money
from paylinks.params import normalized_email
from paylinks.stripe_api.gateway import StripeGateway
from paylinks.vocabulary import AuditAction

router = APIRouter()


@router.get("/t/{slug}/admin", response_class=HTMLResponse)
def admin_page(
    request: Request, done: DoneId = None, access: Access = Depends(tenant_access)
) -> HTMLResponse:
    access.require_admin()
    office = office_of(request)
    with office.engine.connect() as connection:
        balances = club_office.team_balances(connection, access.tenant)
        refunds = club_office.refunds_due(connection, access.tenant)
        history = audit.recent_entries(connection, [access.tenant.id], limit=20)
        notice_entry = (
            audit.entry(connection, access.tenant.id, done, by_user_id=access.visitor.user.id)
            if done is not None
            else None
        )
    try:
        runs = recent_runs(office.settings, access.tenant.slug)
        runs_error = None
    except Exception as error:  # Prefect's API is down: the rest of the page still helps
        runs, runs_error = {}, f"The Prefect API could not be read ({type(error).__name__})."
    return render(
        request,
        "admin.html",
        access=access,
        balances=balances,
        totals=_totals(balances),
        refunds=refunds,
        runs=runs,
        runs_error=runs_error,
        history=history,
        notice=notice_entry.detail if notice_entry else None,
        currency=access.tenant.currency,
    )


def _totals(balances: list[club_office.TeamBalance]) -> dict[str, int]:
    return {
        name: sum(getattr(b, name) for b in balances)
        for name in ("owed_cents", "processing_cents", "paid_cents", "refund_due_cents", "open_items")
    }


@router.get("/t/{slug}/admin/open-items.csv")
def open_items_csv(request: Request, access: Access = Depends(tenant_access)) -> Response:
    access.require_admin()
    with office_of(request).engine.connect() as connection:
        items = club_office.open_items(connection, access.tenant)
    body = club_office.open_items_csv(items, access.tenant.currency)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{access.tenant.slug}-open-items.csv"'},
    )


# -- the blast panel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BlastPreview:
    parents: int  # parents with a balance
    reachable: int  # of them, with an email address: the number a send mails
    items: int
    total_cents: int
    unminted_items: int
    sample_html: str | None
    sample_subject: str | None
    sample_parent: str | None


def blast_preview(office: Office, tenant: Tenant) -> BlastPreview:
    # Only links minted in the tenant's account and mode are offered (as the blast does).
    context = StripeGateway(office.settings, account=tenant.stripe_account).context()
    with office.engine.connect() as connection:
        sheet = outstanding_balances(connection, tenant, context)
    emails = prepare_balance_emails(tenant, sheet)
    sample = sheet.sample()
    shown = next((e for e in emails if sample is not None and e.parent_id == sample.parent_id), None)
    return BlastPreview(
        parents=len(emails),
        reachable=sum(1 for e in emails if e.address),
        items=sum(e.item_count for e in emails),
        total_cents=sum(e.total_cents for e in emails),
        unminted_items=sum(1 for item in sheet.held_back if not item.reason.no_longer_owed),
        sample_html=shown.rendered.html if shown else None,
        sample_subject=shown.rendered.subject if shown else None,
        sample_parent=shown.parent_name if shown else None,
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
            error=(
                f"The number of parents changed since you looked (now {preview.reachable}, you confirmed "
                f"{confirmed or 'none'}). Check the preview again before sending."
            ),
        )
    blast_key = field(form, "blast_key", 150) or None
    started = start_blast(
        office.settings,
        tenant=access.tenant.slug,
        test_email=None,
        send=True,
        blast_key=blast_key,
        started_by=access.visitor.user.id,
    )
    with office.engine.begin() as connection:
        audit.record(
            connection,
            access.visitor.actor,
            AuditAction.blast_send,
            access.tenant.id,
            f"blast to {preview.reachable} parents ({format_money(preview.total_cents, access.tenant.currency)} owed) "
            f"started: run {started.flow_run_id}",
        )
    return see_other(f"/t/{access.tenant.slug}/runs/{started.flow_run_id}")


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
    final = run.state in ("Completed", "Failed", "Crashed", "Cancelled")
    return render(request, "run.html", access=access, run=run, final=final)
