"""reconcile-payments: learn from Stripe which links were paid, so nobody is chased twice.

for each tenant: read the cursor → fetch paid checkout sessions (events since the cursor, or a
scan of every open link's sessions) → mark rows and orders paid → publish drift and totals.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.run_names import from_parameters, reconcile_run_name
from paylinks.params import TenantSlug
from tasks.prefect_support import flow_settings
from paylinks.reconcile import ReconcileReport
from tasks.common import check_configuration, find_tenants
from tasks.reconcile import fetch_paid_sessions, mark_payments, read_reconcile_cursor
from tasks.reports import publish_reconcile_summary


@flow(
    name="reconcile-payments",
    description=__doc__.split("\n\n")[0],
    flow_run_name=from_parameters(reconcile_run_name),
)
def reconcile_payments(tenant: TenantSlug | None = None) -> list[ReconcileReport]:
    """Mark payment links (and their orders) paid from what Stripe reports.

    Args:
        tenant: Tenant slug; leave empty to reconcile every tenant.
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=True)
    reports = []
    for club in find_tenants(settings, tenant):
        cursor = read_reconcile_cursor(settings, club)
        news = fetch_paid_sessions(settings, club, cursor)
        report = mark_payments(settings, club, news)
        publish_reconcile_summary(report)
        get_run_logger().info("reconcile %s: %s", club.slug, report.summary())
        reports.append(report)
    return reports
