"""backfill-payment-links: every bill a parent owes gets one persistent Stripe Payment Link.

extract club rows → plan items → ensure price tiers → retire stale links → reserve rows →
mint links (batches) → load ids and urls → publish the summary. Dry run unless `commit`.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.run_names import backfill_run_name, from_parameters
from paylinks.backfill import BackfillReport
from paylinks.errors import PaylinksError
from paylinks.params import TenantSlug
from paylinks.planning import Action
from tasks.prefect_support import flow_settings
from paylinks.settings import Settings
from paylinks.tenants import Tenant
from tasks.backfill import (
    ensure_price_tiers,
    extract_billing_rows,
    load_payment_links,
    mint_payment_links,
    plan_payment_links,
    reserve_payment_links,
    retire_stale_links,
)
from tasks.common import check_configuration, find_tenants
from tasks.reports import publish_backfill_summary


@flow(
    name="backfill-payment-links",
    description=__doc__.split("\n\n")[0],
    flow_run_name=from_parameters(backfill_run_name),
)
def backfill_payment_links(tenant: TenantSlug | None = None, commit: bool = False) -> list[BackfillReport]:
    """Make sure every bill a parent owes has its persistent Stripe Payment Link.

    Args:
        tenant: Tenant slug; leave empty to backfill every tenant (one subflow run each).
        commit: Create prices and links at Stripe and write rows. Off: a dry run that only
            shows the plan (items, tiers to create, links to mint, rows skipped and why).
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=commit)
    tenants = find_tenants(settings, tenant)
    if tenant:
        reports = [backfill_one_tenant(settings, tenants[0], commit)]
    else:
        reports = [backfill_tenant(t, commit) for t in tenants]
    failed = [r.tenant for r in reports if r.failed]
    if failed:
        raise PaylinksError(f"backfill incomplete for {', '.join(failed)}; see the summary artifact")
    return reports


@flow(name="backfill-payment-links-tenant", flow_run_name="backfill-{tenant.slug}")
def backfill_tenant(tenant: Tenant, commit: bool) -> BackfillReport:
    """One tenant's backfill, as its own subflow run when every tenant is backfilled."""
    # Settings are read here, not passed: subflow parameters are stored by the Prefect API.
    return backfill_one_tenant(flow_settings(), tenant, commit)


def backfill_one_tenant(settings: Settings, tenant: Tenant, commit: bool) -> BackfillReport:
    logger = get_run_logger()
    rows = extract_billing_rows(settings, tenant)
    plan = plan_payment_links(rows)
    report = BackfillReport(tenant=tenant.slug, commit=commit, plan=plan, currency=tenant.currency)
    if not commit:
        logger.info("dry run for %s: %s", tenant.slug, report.summary())
        publish_backfill_summary(report)
        return report

    tiers = ensure_price_tiers(settings, tenant, plan, rows)
    report.tiers_created = len(tiers) - len(rows.price_tiers)
    report.retire = retire_stale_links(settings, tenant, plan.steps_for(Action.retire, Action.remint))
    left_alone = {row_id for row_id, _ in report.retire.left_alone}
    to_mint = [step for step in plan.to_mint if step.row_id not in left_alone]
    jobs = reserve_payment_links(settings, tenant, to_mint, tiers)

    batch_size = settings.stripe_mint_batch_size
    for batch_number, start in enumerate(range(0, len(jobs), batch_size), start=1):
        batch = jobs[start : start + batch_size]
        minted = mint_payment_links(settings, batch, batch_number, return_state=True)
        if minted.is_failed():
            report.aborted = f"batch {batch_number}: {minted.message}"
            logger.error("stopping: minting batch %s failed: %s", batch_number, minted.message)
            break
        results = minted.result()
        report.minted += sum(1 for r in results if r.link_id)
        report.mint_errors += [(r.row_id, r.error) for r in results if r.error]
        report.loaded += load_payment_links(settings, results, batch_number)

    publish_backfill_summary(report)
    logger.info("backfill for %s: %s", tenant.slug, report.summary())
    return report
