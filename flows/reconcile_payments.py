"""reconcile-payments: learn from Stripe what happened to the money, so nobody is chased for a
settled bill and every payment is accounted for.

for each tenant: read the cursor → fetch news (events since the cursor, or a scan of every
link's sessions) → apply it (paid, processing, failed → a fresh link, refund due, refunded,
disputed) → replace spent links → publish the summary. A tenant that fails is reported; the
others still run.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.fan_out import RECONCILE_CHILD, ChildRun, fan_out_per_tenant
from flows.run_names import from_parameters, reconcile_run_name
from paylinks.errors import PaylinksError
from paylinks.params import TenantSlug
from paylinks.payments import Outcome
from paylinks.reconcile import ReconcileReport
from paylinks.settings import Settings
from paylinks.tenants import Tenant
from tasks.common import check_configuration, find_tenants
from tasks.prefect_support import flow_settings
from tasks.reconcile import apply_stripe_news, fetch_stripe_news, read_reconcile_cursor, replace_spent_links
from tasks.reports import publish_reconcile_summary


class ReconcileIncompleteError(PaylinksError):
    """Some tenants could not be reconciled; the others were. Carries every report."""

    def __init__(self, message: str, reports: list[ReconcileReport], failed: dict[str, str]) -> None:
        super().__init__(message)
        self.reports = reports
        self.failed = failed


@flow(
    name="reconcile-payments",
    description=__doc__.split("\n\n")[0],
    flow_run_name=from_parameters(reconcile_run_name),
)
def reconcile_payments(
    tenant: TenantSlug | None = None, fan_out: bool = False
) -> list[ReconcileReport] | list[ChildRun]:
    """Learn from Stripe what was paid, refunded or disputed, and mark rows and orders.

    Args:
        tenant: Tenant slug; leave empty to reconcile every tenant.
        fan_out: With every tenant: one flow run per tenant through the deployment
            reconcile-payments/tenant, spread by the work pool over its workers (see
            docs/deploying.md). Off: every tenant runs in this process.
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=True)
    if fan_out and not tenant:
        tenants = find_tenants(settings, None)
        return fan_out_per_tenant("reconcile", RECONCILE_CHILD, tenants, {}, reconcile_run_name)
    logger = get_run_logger()
    reports: list[ReconcileReport] = []
    failed: dict[str, str] = {}
    for club in find_tenants(settings, tenant):
        try:
            reports.append(reconcile_one_tenant(settings, club))
        except Exception as error:  # this tenant's trouble is reported; the others still run
            failed[club.slug] = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            logger.error("reconcile of %s failed: %s", club.slug, failed[club.slug])
    if failed:
        raise ReconcileIncompleteError(
            f"reconcile failed for {len(failed)} tenant(s): "
            + "; ".join(f"{slug}: {why}" for slug, why in failed.items())
            + (f" (the other {len(reports)} finished)" if reports else ""),
            reports,
            failed,
        )
    return reports


def reconcile_one_tenant(settings: Settings, club: Tenant) -> ReconcileReport:
    cursor = read_reconcile_cursor(settings, club)
    news = fetch_stripe_news(settings, club, cursor)
    report = apply_stripe_news(settings, club, news)
    if report.result.remint:
        report.replaced_links, report.replacement_errors = replace_spent_links(settings, club, report.result.remint)
    publish_reconcile_summary(report)
    get_run_logger().info(
        "reconcile %s: %d paid, %d processing, %d refund due, %d refunded, %d failed slow payments "
        "(fresh links: %d); %d events the webhooks had missed",
        club.slug,
        len(report.rows(Outcome.marked_paid)),
        len(report.rows(Outcome.processing)),
        len(report.rows(Outcome.refund_due)),
        len(report.rows(Outcome.refunded)),
        len(report.rows(Outcome.slow_payment_failed)),
        len(report.replaced_links),
        report.newly_applied,
    )
    return report
