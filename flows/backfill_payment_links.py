"""backfill-payment-links: every bill a parent owes gets one persistent Stripe Payment Link.

find where Stripe acts (asked once per run: a remembered account Stripe contradicts is said in
one line and its links re-minted) → extract club rows → plan items → ensure price tiers → let go
of stale links → name the player on kept links' checkouts → reserve rows → mint links (batches)
→ load ids and urls → rows follow their bill → publish the summary. Dry run unless `commit`. With every tenant, each runs as its own subflow
and a tenant that fails is reported while the others go on.
"""

from __future__ import annotations

import sqlalchemy as sa
from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture

from flows.fan_out import BACKFILL_CHILD, ChildRun, fan_out_per_tenant
from flows.in_flight import in_order
from flows.run_names import backfill_run_name, from_parameters
from paylinks.billing.mint import MintJob, MintResult
from paylinks.billing.plan import Action, Plan
from paylinks.billing.report import BackfillReport, Finding, FindingKind
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.params import TenantSlug
from paylinks.settings import Settings
from paylinks.stripe_api.gateway import StripeContext, StripeRequestError
from tasks.backfill import (
    ensure_price_tiers,
    extract_billing_rows,
    find_stripe_account,
    load_payment_links,
    mint_payment_links,
    name_players_on_checkouts,
    plan_payment_links,
    relink_payment_links,
    reserve_payment_links,
    retire_stale_links,
)
from tasks.common import check_configuration, find_tenants
from tasks.inputs import whole
from tasks.reports import publish_backfill_summary
from tasks.run_settings import flow_settings


class BackfillIncompleteError(PaylinksError):
    """One or more tenants' backfills did not finish; the others did. Carries every report."""

    def __init__(self, message: str, reports: list[BackfillReport]) -> None:
        super().__init__(message)
        self.reports = reports


@flow(
    name="backfill-payment-links",
    description=__doc__.split("\n\n")[0],
    flow_run_name=from_parameters(backfill_run_name),
)
def backfill_payment_links(
    tenant: TenantSlug | None = None, commit: bool = False, fan_out: bool = False
) -> list[BackfillReport] | list[ChildRun]:
    """Make sure every bill a parent owes has its persistent Stripe Payment Link.

    Args:
        tenant: Tenant slug; leave empty to backfill every tenant (one subflow run each).
        commit: Create prices and links at Stripe and write rows. Off: a dry run that only
            shows the plan (items, tiers to create, links to mint, rows skipped and why).
        fan_out: With every tenant: one flow run per tenant through the deployment
            backfill-payment-links/tenant, spread by the work pool over its workers (see
            docs/deploying.md). Off: every tenant runs in this process.
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=commit)
    tenants = find_tenants(settings, tenant)
    if fan_out and not tenant:
        run_name = lambda slug: backfill_run_name(slug, commit)  # noqa: E731
        return fan_out_per_tenant("backfill", BACKFILL_CHILD, tenants, {"commit": commit}, run_name)
    if tenant:
        report = backfill_one_tenant(settings, tenants[0], commit)
        if report.failed:
            raise BackfillIncompleteError(f"backfill of {report.tenant} incomplete: {_why(report)}", [report])
        return [report]

    reports: list[BackfillReport] = []
    # The key's own account is asked once for every tenant that acts in it, not once each.
    platform = next((club for club in tenants if not club.stripe_account), None)
    where = find_stripe_account(settings, platform, required=commit) if platform else None
    for club in tenants:
        state = backfill_tenant(club, commit, None if club.stripe_account else where, return_state=True)
        if state.is_completed():
            reports.append(state.result())
            continue
        # This tenant's run failed; the others still run.
        error = state.result(raise_on_failure=False)
        if isinstance(error, BackfillIncompleteError):
            reports.extend(error.reports)
        else:
            reports.append(
                BackfillReport(
                    tenant=club.slug,
                    commit=commit,
                    plan=Plan((), (), ()),
                    currency=club.currency,
                    aborted=state.message or "failed",
                )
            )
    failed = [r.tenant for r in reports if r.failed]
    if failed:
        raise BackfillIncompleteError(
            f"backfill incomplete for {len(failed)} of {len(reports)} tenants: {', '.join(failed)}; "
            "the others finished (see each tenant's summary artifact)",
            reports,
        )
    return reports


@flow(name="backfill-payment-links-tenant", flow_run_name="backfill-{tenant.slug}")
def backfill_tenant(tenant: Tenant, commit: bool, where: StripeContext | None = None) -> BackfillReport:
    """One tenant's backfill, as its own subflow run when every tenant is backfilled (`where`:
    the key's account, as the parent run asked it, for a tenant without its own)."""
    # Settings are read here, not passed: subflow parameters are stored by the Prefect API.
    report = backfill_one_tenant(flow_settings(), tenant, commit, where)
    if report.failed:
        raise BackfillIncompleteError(f"backfill of {report.tenant} incomplete: {_why(report)}", [report])
    return report


def _why(report: BackfillReport) -> str:
    if report.aborted:
        return report.aborted
    return f"{len(report.mint_errors)} link(s) Stripe refused to mint; see the summary artifact"


def backfill_one_tenant(
    settings: Settings, tenant: Tenant, commit: bool, known: StripeContext | None = None
) -> BackfillReport:
    logger = get_run_logger()
    try:
        where = find_stripe_account(settings, tenant, required=commit, known=known)
    except StripeRequestError as error:
        if not tenant.stripe_account:
            raise
        # The tenant's own account refused (unknown to this key, or access revoked): this tenant
        # stops here, reported; the others go on.
        report = BackfillReport(
            tenant=tenant.slug,
            commit=commit,
            plan=Plan((), (), ()),
            currency=tenant.currency,
            aborted=f"tenant {tenant.slug}: its Stripe account {tenant.stripe_account} cannot be used: "
            f"{_first_line(error)}",
        )
        logger.error("backfill of %s stopped: %s", tenant.slug, report.aborted)
        publish_backfill_summary(whole(report))
        return report
    rows = extract_billing_rows(settings, tenant, where)
    plan = plan_payment_links(whole(rows), where)
    report = BackfillReport(
        tenant=tenant.slug, commit=commit, plan=plan, currency=tenant.currency, where=where
    )
    if not commit:
        publish_backfill_summary(whole(report))
        logger.info(
            "dry run for %s: %d items owed, %d links to mint, %d to retire, %d rows to update, %d skipped",
            tenant.slug,
            len(plan.items),
            len(plan.to_mint),
            len(plan.steps_for(Action.retire)),
            len(plan.to_relink),
            len(plan.skipped),
        )
        return report
    assert where is not None
    try:
        _commit(settings, tenant, where, rows, report)
    except (StripeRequestError, sa.exc.IntegrityError) as error:
        # Stripe refused a request for this tenant, or its data broke a constraint: this
        # tenant stops here, reported; nothing of another tenant's is affected.
        report.aborted = _first_line(error)
        logger.error("backfill of %s stopped: %s", tenant.slug, report.aborted)
    publish_backfill_summary(whole(report))
    logger.info(
        "backfill for %s: %d links minted (%d found at Stripe), %d retired, %d rows updated, %d failed",
        tenant.slug,
        report.loaded,
        report.adopted,
        len(report.retire.retired),
        len(report.relinked),
        len(report.mint_errors),
    )
    return report


def _store_minted(
    settings: Settings, report: BackfillReport, batch_number: int, minted: PrefectFuture[list[MintResult]]
) -> None:
    """Store a finished minting batch's links; a failed batch is the report's reason to stop."""
    state = minted.state
    if state.is_failed():
        report.aborted = report.aborted or f"minting batch {batch_number} failed: {state.message}"
        return
    results = minted.result()
    report.minted += sum(1 for r in results if r.link_id and not r.adopted)
    report.adopted += sum(1 for r in results if r.adopted)
    report.mint_errors += [(r.row_id, r.error) for r in results if r.error]
    report.loaded += load_payment_links(settings, whole(results), batch_number)


def _commit(settings: Settings, tenant: Tenant, where, rows, report: BackfillReport) -> None:
    plan = report.plan
    logger = get_run_logger()
    tiers = ensure_price_tiers(settings, tenant, where, whole(plan.to_mint), whole(rows))
    report.retire = retire_stale_links(
        settings,
        tenant,
        where,
        whole(plan.steps_for(Action.retire, Action.remint_amount, Action.remint_elsewhere, Action.verify)),
    )
    to_mint = [step for step in plan.to_mint if step.row_id not in report.retire.left_alone]
    remint = list(report.retire.to_remint)  # links found missing here: minted here now
    to_name = [step for step in plan.to_name if step.row_id not in report.retire.left_alone]
    if to_name:
        named = name_players_on_checkouts(settings, tenant, where, whole(to_name))
        report.retire.findings += named.findings
        remint += named.to_remint
    if remint:  # they need a tier in this account too
        tiers = ensure_price_tiers(settings, tenant, where, whole(remint), whole(rows), whole(tiers))
    report.tiers_created = tiers.created
    jobs = reserve_payment_links(settings, tenant, where, whole(to_mint + remint), whole(tiers.prices))

    # Two batches in flight: the next one mints while this one's links are stored, so the account's
    # pace (shared by both, as by every worker) never waits on the database or a task's start. A
    # failed batch stops the minting; what the other one minted is still stored.
    size = settings.stripe_mint_batch_size
    batches = list(enumerate((jobs[start : start + size] for start in range(0, len(jobs), size)), start=1))

    def mint(numbered: tuple[int, list[MintJob]]) -> PrefectFuture[list[MintResult]]:
        number, batch = numbered
        return mint_payment_links.submit(settings, whole(batch), number, tenant.stripe_account)

    def stopped() -> bool:
        return report.aborted is not None

    for (batch_number, _), minted in in_order(mint, batches, at_once=2, stop=stopped):
        _store_minted(settings, report, batch_number, minted)
    if report.aborted:
        logger.error("stopping: %s", report.aborted)
        return
    reminted = {step.row_id for step in remint}
    relink = [step for step in plan.to_relink if step.row_id not in report.retire.left_alone | reminted]
    if relink:
        report.relinked, missing = relink_payment_links(settings, tenant, whole(relink))
        report.retire.findings += [
            Finding(FindingKind.link_missing_at_stripe, row_id, link_id) for row_id, link_id in missing
        ]


def _first_line(error: BaseException) -> str:
    if isinstance(error, sa.exc.IntegrityError):
        # The database's own words, without the statement and its parameters.
        return f"a database constraint refused a write: {str(error.orig).strip().splitlines()[0]}"
    return str(error).strip().splitlines()[0]
