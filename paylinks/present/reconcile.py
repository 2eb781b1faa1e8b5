"""A reconcile's report as tables: figures, money owed back, findings, events skipped."""

from __future__ import annotations

from paylinks.payments.reconcile import ReconcileReport
from paylinks.payments.transitions import Outcome
from paylinks.present.tables import Table, facts, money, table


def reconcile_tables(report: ReconcileReport) -> list[Table]:
    """A reconcile report: figures, money owed back, findings."""
    currency = report.currency

    def count(*outcomes: Outcome) -> int:
        return len(report.result.of(*outcomes))

    summary = facts(
        "summary",
        f"Reconcile of {report.tenant}",
        [
            ("read from", report.source),
            ("events read", report.events_read),
            ("events already applied (by webhooks or an earlier run)", report.already_applied),
            ("events applied by this run (webhooks had not)", report.newly_applied),
            ("links marked paid", count(Outcome.marked_paid)),
            ("orders marked paid", len(report.result.orders_paid)),
            ("slow payments awaiting settlement", count(Outcome.processing)),
            (
                "slow payments failed (fresh link minted)",
                f"{count(Outcome.slow_payment_failed)} ({len(report.replaced_links)})",
            ),
            ("refund due", count(Outcome.refund_due)),
            ("refunded", count(Outcome.refunded)),
            ("partially refunded", count(Outcome.partially_refunded)),
            (
                "disputes opened / won / lost",
                f"{count(Outcome.dispute_opened)} / {count(Outcome.dispute_won)} / {count(Outcome.dispute_lost)}",
            ),
            ("events skipped", len(report.skipped)),
        ],
    )
    due = table(
        "refund-due",
        "Refund due (money to give back)",
        ("row", "checkout session", "amount", "why"),
        (
            (a.row_id, a.session_id, money(a.amount_cents, currency), a.detail)
            for a in report.result.of(Outcome.refund_due)
        ),
    )
    findings = table(
        "findings",
        "Findings (paid at Stripe, but not as billed; money returned)",
        ("what", "row", "checkout session", "amount", "detail"),
        (
            (a.outcome, a.row_id, a.session_id, money(a.amount_cents, currency), a.detail)
            for a in report.result.of(
                Outcome.amount_differs,
                Outcome.unknown_link,
                Outcome.unknown_payment,
                Outcome.refunded,
                Outcome.partially_refunded,
                Outcome.dispute_opened,
                Outcome.dispute_won,
                Outcome.dispute_lost,
            )
        ),
    )
    problems = table(
        "skipped",
        "Events skipped, and links that could not be replaced",
        ("event or row", "why"),
        [(s.event_id, s.reason) for s in report.skipped]
        + [(f"row {row_id}", error) for row_id, error in report.replacement_errors],
    )
    return [summary, due, findings, problems]
