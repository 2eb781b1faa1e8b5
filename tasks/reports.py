"""Tasks that leave each run's summary as Prefect artifacts, visible in the UI."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks.billing.report import BackfillReport
from paylinks.messaging.reports import BlastReport, ResendReport
from paylinks.money import format_money
from paylinks.payments.reconcile import ReconcileReport
from paylinks.present.backfill import backfill_tables
from paylinks.present.blast import blast_tables, resend_tables
from paylinks.present.reconcile import reconcile_tables
from tasks.artifacts import artifact_key, publish_table, publish_tables

MONEY_METRICS = {"amount owed", "total owed"}


def _metric_rows(summary: dict, currency: str) -> list[dict]:
    """A summary as metric/value rows, amounts of money shown as money ($1,234.50), not cents."""
    return [
        {"metric": k, "value": format_money(v, currency) if k in MONEY_METRICS else v}
        for k, v in summary.items()
    ]


@task(cache_policy=NO_CACHE)
def publish_backfill_summary(report: BackfillReport) -> None:
    """The summary table, and a page with every step, skipped row, finding and failure."""
    publish_tables("backfill", report.tenant, backfill_tables(report))


@task(cache_policy=NO_CACHE)
def publish_blast_summary(report: BlastReport) -> None:
    """The summary, one row per parent (sent, skipped or failed, and why), and every open item
    not offered: the same tables the CLI prints."""
    tables = blast_tables(report)
    publish_tables("blast", report.tenant, tables)
    recipients = next(t for t in tables if t.key == "recipients")
    publish_table(
        artifact_key("blast", report.tenant, recipients.key), recipients.records(), recipients.title
    )


@task(cache_policy=NO_CACHE)
def publish_resend_summary(report: ResendReport) -> None:
    """Who was asked for, each parent who owes something for them, and where each email went."""
    publish_tables("resend", report.tenant, resend_tables(report))


@task(cache_policy=NO_CACHE)
def publish_reconcile_summary(report: ReconcileReport) -> None:
    """Figures, money owed back, and every finding and skipped event for a person to look at."""
    publish_tables("reconcile", report.tenant, reconcile_tables(report))
