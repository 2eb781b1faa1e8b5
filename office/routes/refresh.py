"""The admin's "Refresh from Stripe": a reconcile of the tenant as a flow run, started here and
audited, leading to the run's page. The balances and player cards say how fresh they are
("as of", from the reconcile cursor and the newest webhook news)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from office.deps import Access, checked_form, office_of, see_other, tenant_access
from office.runs import start_reconcile
from paylinks.access import audit
from paylinks.stripe_api.failures import check_stripe_reachable
from paylinks.stripe_api.keys import check_stripe_settings
from paylinks.vocabulary import AuditAction

router = APIRouter()


@router.post("/t/{slug}/admin/refresh")
def refresh_from_stripe(
    request: Request, form: FormData = Depends(checked_form), access: Access = Depends(tenant_access)
) -> Response:
    access.require_admin()
    office = office_of(request)
    # Before a run starts: no key, or Stripe out of reach, is a page naming what to set.
    check_stripe_settings(office.settings)
    check_stripe_reachable(office.settings)
    started = start_reconcile(office.settings, tenant=access.tenant.slug, started_by=access.visitor.user.id)
    with office.engine.begin() as connection:
        audit.record(
            connection,
            access.visitor.actor,
            AuditAction.stripe_refresh,
            access.tenant.id,
            f"payments refreshed from Stripe: run {started.flow_run_id}",
        )
    return see_other(f"/t/{access.tenant.slug}/runs/{started.flow_run_id}")
