"""reconcile-payments: learn from Stripe what happened to the money, so nobody is chased for a
settled bill and every payment is accounted for.

for each Stripe account the tenants use (the platform's, or a club's own Connect account): find
the account → read its cursor → fetch its news once (events since the cursor, or a scan of its
checkout sessions) → apply each piece to the tenant whose link or payment it concerns (paid,
processing, failed → a fresh link, refund due, refunded, disputed) → replace spent links →
publish each tenant's summary. An account that fails fails its tenants, reported; the other
accounts still run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from prefect import flow, get_run_logger

from flows.fan_out import RECONCILE_CHILD, ChildRun, fan_out_per_tenant
from flows.run_names import from_parameters, reconcile_run_name
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.params import TenantSlug
from paylinks.payments.reconcile import ReconcileReport
from paylinks.payments.transitions import Outcome
from paylinks.settings import Settings
from tasks.common import check_configuration, find_tenants
from tasks.inputs import whole
from tasks.reconcile import (
    apply_stripe_news,
    close_paid_links,
    fetch_stripe_news,
    replace_spent_links,
    send_receipts,
)
from tasks.reports import publish_reconcile_summary
from tasks.run_settings import flow_settings


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
    tenant: TenantSlug | None = None, fan_out: bool = False, whole_account: bool = False
) -> list[ReconcileReport] | list[ChildRun]:
    """Learn from Stripe what was paid, refunded or disputed, and mark rows and orders.

    Args:
        tenant: Tenant slug; leave empty to reconcile every tenant.
        fan_out: With every tenant: one flow run per Stripe account through the deployment
            reconcile-payments/tenant, spread by the work pool over its workers (see
            docs/deploying.md). Off: every tenant runs in this process.
        whole_account: With a tenant: report on every tenant on its Stripe account too (the
            account's news is read and applied for all of them either way).
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=True)
    if fan_out and not tenant:
        # One child per Stripe account, named after its first tenant, reporting on all of them:
        # each account's events are read once, not once per tenant.
        groups = list(tenants_by_account(find_tenants(settings, None)).values())
        return fan_out_per_tenant(
            "reconcile",
            RECONCILE_CHILD,
            [group[0] for group in groups],
            {"whole_account": True},
            lambda slug: reconcile_run_name(slug, whole_account=True),
            covers={group[0].slug: [club.slug for club in group] for group in groups},
        )
    logger = get_run_logger()
    asked = find_tenants(settings, tenant)
    everyone = find_tenants(settings, None) if tenant else asked
    reports: list[ReconcileReport] = []
    failed: dict[str, str] = {}
    for on_account in tenants_by_account(everyone, asked).values():
        wanted = [club.slug for club in on_account if whole_account or club in asked]
        try:
            reports += reconcile_account(settings, on_account, report_on=wanted)
        except Exception as error:  # this account's trouble fails its tenants; the others still run
            why = _first_line(error)
            for slug in wanted:
                failed[slug] = why
            logger.error("reconcile of %s failed: %s", ", ".join(wanted), why)
    if failed:
        raise ReconcileIncompleteError(
            f"reconcile failed for {len(failed)} tenant(s): "
            + "; ".join(f"{slug}: {why}" for slug, why in failed.items())
            + (f" (the other {len(reports)} finished)" if reports else ""),
            reports,
            failed,
        )
    return reports


def tenants_by_account(
    everyone: Iterable[Tenant], asked: Iterable[Tenant] | None = None
) -> dict[str | None, list[Tenant]]:
    """Every tenant on each Stripe account (None: the platform's) one of `asked` uses, in the
    order of `asked`: an account's news is read once and applied for all its tenants."""
    everyone = list(everyone)
    groups: dict[str | None, list[Tenant]] = {}
    for club in everyone if asked is None else asked:
        groups.setdefault(club.stripe_account or None, [])
    for club in everyone:
        if (club.stripe_account or None) in groups:
            groups[club.stripe_account or None].append(club)
    return groups


def reconcile_account(
    settings: Settings, tenants_of_one_account: list[Tenant], report_on: Collection[str] | None = None
) -> list[ReconcileReport]:
    """Reconcile one Stripe account: one read of its news, applied to every tenant on it.

    `tenants_of_one_account` should be every tenant whose `stripe_account` is that account (a
    first run scans sessions since the oldest open bill among them). Reports (published, logged,
    returned) are for the slugs in `report_on` (default: all of them); the others' changes are
    logged. Raises if the account could not be read (nothing was applied then) or a fresh link
    could not be minted after its news was applied (the row then waits for the next backfill).
    """
    if not tenants_of_one_account:
        return []
    accounts = {club.stripe_account or None for club in tenants_of_one_account}
    if len(accounts) != 1:
        raise ValueError(f"reconcile_account takes the tenants of one Stripe account, not of {len(accounts)}")
    (stripe_account,) = accounts
    logger = get_run_logger()
    news = fetch_stripe_news(settings, stripe_account, tenants_of_one_account)
    by_tenant = apply_stripe_news(settings, stripe_account, tenants_of_one_account, news)
    where = news.where
    assert where is not None  # the fetch_stripe_news task always sets it
    clubs = {club.id: club for club in tenants_of_one_account}
    if set(by_tenant) - set(clubs):  # news for a tenant that has moved to another account since
        clubs |= {club.id: club for club in find_tenants(settings, None)}
    for tenant_id, report in by_tenant.items():
        if report.result.remint:
            report.replaced_links, report.replacement_errors = replace_spent_links(
                settings, clubs[tenant_id], report.result.remint
            )
        # Bills a family checkout took: their own links stop taking payment (those a webhook
        # could not close too).
        report.closed_links, report.close_errors = close_paid_links(settings, clubs[tenant_id])
    for outcome in send_receipts(settings, [clubs[tenant_id] for tenant_id in by_tenant]):
        if outcome.error:
            logger.warning(
                "receipt %s not sent yet: %s (the next reconcile tries again)", outcome.key, outcome.error
            )
    logger.info(
        "reconcile of Stripe account %s (%s mode): %s, %d Stripe requests, %d events, for %d tenant(s)",
        where.account,
        "live" if where.livemode else "test",
        news.source.label,
        news.stripe_requests,
        len(news.events),
        len(tenants_of_one_account),
    )
    wanted = set(report_on) if report_on is not None else {club.slug for club in tenants_of_one_account}
    reports = []
    for report in by_tenant.values():
        if report.tenant in wanted:
            publish_reconcile_summary(whole(report))
            reports.append(report)
        elif report.result.applied or report.replacement_errors:
            logger.info(
                "reconcile of %s's account also applied news for %s", ", ".join(sorted(wanted)), report.tenant
            )
        _log_report(report)
    return reports


def _log_report(report: ReconcileReport) -> None:
    get_run_logger().info(
        "reconcile %s: %d paid, %d processing, %d refund due, %d refunded, %d failed slow payments "
        "(fresh links: %d); %d events the webhooks had missed",
        report.tenant,
        len(report.rows(Outcome.marked_paid)),
        len(report.rows(Outcome.processing)),
        len(report.rows(Outcome.refund_due)),
        len(report.rows(Outcome.refunded)),
        len(report.rows(Outcome.slow_payment_failed)),
        len(report.replaced_links),
        report.newly_applied,
    )
    for row_id, error in report.replacement_errors:
        get_run_logger().warning(
            "reconcile %s: row %s has no fresh link yet: %s", report.tenant, row_id, error
        )


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
