"""Tasks that leave each run's summary as Prefect artifacts, visible in the UI."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paylinks.backfill import BackfillReport
from paylinks.emailing import BlastReport, ResendReport
from tasks.prefect_support import artifact_key, markdown_table, publish_markdown, publish_table
from paylinks.reconcile import ReconcileReport
from paylinks.rendering import format_money

MONEY_METRICS = {"amount owed", "total owed"}


def _metric_rows(summary: dict, currency: str) -> list[dict]:
    """A summary as metric/value rows, amounts of money shown as money ($1,234.50), not cents."""
    return [
        {"metric": k, "value": format_money(v, currency) if k in MONEY_METRICS else v}
        for k, v in summary.items()
    ]


@task(cache_policy=NO_CACHE)
def publish_backfill_summary(report: BackfillReport) -> None:
    """A summary table, and a markdown page with every step and every skipped row."""
    mode = "commit" if report.commit else "dry run"
    publish_table(
        artifact_key("backfill", report.tenant, "summary"),
        _metric_rows(report.summary(), report.currency),
        description=f"Backfill of {report.tenant} ({mode})",
    )
    errors = [{"row": row_id, "error": error} for row_id, error in report.mint_errors]
    if report.aborted:
        errors.append({"row": None, "error": report.aborted})
    steps = [
        {key: value for key, value in row.items() if key != "amount_cents"}
        | {"amount": format_money(row["amount_cents"] or 0, report.currency)}
        for row in report.step_rows()
        if row["action"] != "already there"
    ]
    publish_markdown(
        artifact_key("backfill", report.tenant, "details"),
        "\n\n".join(
            [
                f"# Backfill of {report.tenant} ({mode})",
                "## Steps\n" + markdown_table(steps, empty="_nothing to do: every item has its link_"),
                "## Skipped\n" + markdown_table(report.skipped_rows()),
                "## Failed\n" + markdown_table(errors),
            ]
        ),
        description=f"Backfill steps, skips and failures for {report.tenant}",
    )


@task(cache_policy=NO_CACHE)
def publish_blast_summary(report: BlastReport) -> None:
    """Totals, then one row per parent: items, total, and whether they were sent, skipped or failed."""
    publish_table(
        artifact_key("blast", report.tenant, "summary"),
        _metric_rows(report.summary(), report.currency),
        description=f"Outstanding-balance email for {report.tenant} ({report.mode}, key {report.run_key})",
    )
    publish_table(
        artifact_key("blast", report.tenant, "recipients"),
        report.recipient_rows(),
        description=f"Recipients of blast {report.run_key} ({report.mode})",
    )


@task(cache_policy=NO_CACHE)
def publish_resend_summary(report: ResendReport) -> None:
    """Who was asked for, what was owed, where it went."""
    email = report.email
    publish_table(
        artifact_key("resend", report.tenant, "summary"),
        [
            {
                "player": report.player.describe(),
                "recipient": report.recipient or "(none)",
                "items": email.item_count if email else 0,
                "total_cents": email.total_cents if email else 0,
                "outcome": report.outcome,
            }
        ],
        description=f"Payment links resent for {report.player.name}",
    )


@task(cache_policy=NO_CACHE)
def publish_reconcile_summary(report: ReconcileReport) -> None:
    """Totals, and every drift and skipped event for a person to look at."""
    publish_table(
        artifact_key("reconcile", report.tenant, "summary"),
        [{"metric": k, "value": v} for k, v in report.summary().items()],
        description=f"Reconcile of {report.tenant} from Stripe ({report.source})",
    )
    drift = [
        {"kind": d.kind, "row": d.row_id, "payment link": d.payment_link_id, "detail": d.detail}
        for d in report.drift
    ]
    skipped = [{"event": why} for why in report.skipped]
    publish_markdown(
        artifact_key("reconcile", report.tenant, "drift"),
        "\n\n".join(
            [
                f"# Reconcile of {report.tenant}",
                "## Drift (paid at Stripe, but not as billed)\n" + markdown_table(drift),
                "## Events skipped\n" + markdown_table(skipped),
            ]
        ),
        description=f"Drift and skipped events for {report.tenant}",
    )
