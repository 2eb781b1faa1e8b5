"""The admin's page: team balances, refunds due, recent runs and history; the open-items CSV.
The blast panel and a run's page are in `blast`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from office.deps import (
    Access,
    DoneId,
    failure_of,
    office_of,
    render,
    tenant_access,
)
from office.runs import RunView, recent_runs
from paylinks.access import audit
from paylinks.club import office as club_office
from paylinks.store.tables import as_utc

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
        news = club_office.stripe_news_age(connection, access.tenant)
    try:
        runs = in_time_order(recent_runs(office.settings, access.tenant.slug))
        runs_error = None
    except Exception as error:  # Prefect's API is down: the rest of the page still helps
        failure = failure_of(office.settings, error)
        runs = []
        runs_error = (
            failure.detail
            if failure is not None
            else f"The recent runs could not be read from Prefect ({type(error).__name__})."
        )
    return render(
        request,
        "admin.html",
        access=access,
        balances=balances,
        totals=_totals(balances),
        refunds=refunds,
        runs=runs,
        run_kinds=RUN_KINDS,
        runs_error=runs_error,
        news=news,
        history=history,
        notice=notice_entry.detail if notice_entry else None,
        currency=access.tenant.currency,
    )


# The jobs whose runs the admin page lists, in words.
RUN_KINDS = {"backfill": "Backfill", "blast": "Balance email", "reconcile": "Refresh from Stripe"}


def in_time_order(runs: Mapping[str, list[RunView]] | Iterable[RunView]) -> list[RunView]:
    """Recent runs of every kind, newest first (a run not started yet by when it is expected)."""
    flat = [run for kind in runs.values() for run in kind] if isinstance(runs, Mapping) else list(runs)
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(flat, key=lambda run: as_utc(run.started_at) if run.started_at else never, reverse=True)


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
