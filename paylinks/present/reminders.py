"""A reminder run's report as tables: the summary (sent, held back and why) and one row per parent
with a step due."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paylinks.club.clock import club_zone, when_words
from paylinks.club.due import day_words
from paylinks.messaging.cadence import Hold, Step, days_words
from paylinks.messaging.reminders import ReminderLine, ReminderReport, ReminderResult
from paylinks.present.tables import Table, facts, table


def reminder_tables(report: ReminderReport) -> list[Table]:
    """A reminder run: summary, then every parent with a step due and what became of them."""
    parents = table(
        "parents",
        f"Parents with a reminder due ({'send' if report.send else 'dry run'})",
        ("parent", "email", "step", "covers", "outcome", "detail"),
        (_parent_row(report, line) for line in report.lines),
        empty="nobody has a reminder due now",
    )
    return [_summary(report), parents]


def _when(report: ReminderReport, moment: datetime | None) -> str:
    return when_words(moment, club_zone(report.timezone, "UTC"))


def _summary(report: ReminderReport) -> Table:
    figures: list[tuple[str, Any]] = [("run", "send" if report.send else "dry run (nothing sent)")]
    if report.as_of is not None:
        figures.append(("as of", _when(report, report.as_of)))
    if report.problem:
        figures.append(("skipped", report.problem))
        return facts("summary", f"Reminders of {report.tenant}", figures)
    if report.quiet:
        figures.append(("nobody due", "no open bill has a cadence step today or yesterday"))
        return facts("summary", f"Reminders of {report.tenant}", figures)
    figures.append(("reminders", "on" if report.enabled else "off (paylinks reminders set --on)"))
    if report.enabled:
        first, last = report.hours
        figures += [
            ("cadence (days from the due date)", days_words(report.days)),
            (
                "sending hours",
                f"{first:02d}:00–{last:02d}:00" + ("" if report.in_hours else " (now outside)"),
            ),
            ("sent", len(report.of(ReminderResult.sent))),
        ]
        if not report.send:
            figures.append(("would be sent", len(report.of(ReminderResult.would_send))))
        figures += [(f"held back: {hold.label}", len(report.held(hold))) for hold in Hold]
        figures += [
            (
                "already sent by another run",
                len(report.of(ReminderResult.already_sent))
                + len(report.of(ReminderResult.claimed_elsewhere)),
            ),
            ("failed", len(report.of(ReminderResult.failed))),
            ("Stripe's news before the send", report.stripe_news or "not needed: nobody to send"),
        ]
    return facts("summary", f"Reminders of {report.tenant}", figures)


def step_words(step: Step, today: datetime | None = None) -> str:
    """ "Dec 17: 3 days overdue (due Dec 14)"."""
    base = step.on if today is None else today.date()
    return f"{day_words(step.on, base)}: {step.words} (due {day_words(step.due_on, base)})"


def _parent_row(report: ReminderReport, line: ReminderLine) -> tuple[str, ...]:
    folded = len({step.on for step in line.due.covers}) - 1
    covers = "this step" if folded <= 0 else f"this step and {folded} earlier"
    if line.hold is Hold.emailed_today and line.detail:
        detail = f"emailed {_when(report, datetime.fromisoformat(line.detail))}"
    else:
        detail = line.detail or ""
    outcome = line.hold.label if line.hold is not None else line.result.label
    return (
        line.parent_name,
        line.recipient or "",
        step_words(line.due.step),
        covers,
        f"held back: {outcome}" if line.hold is not None else outcome,
        detail,
    )


def quiet_tables(reports: list[ReminderReport]) -> list[Table]:
    """The clubs an every-club run found with no open bill's step today or yesterday."""
    run = "send" if reports and reports[0].send else "dry run (nothing sent)"
    summary = facts(
        "summary",
        "Reminders: clubs with nothing due",
        [("run", run), ("clubs with no reminder step today or yesterday", len(reports))],
    )
    clubs = table(
        "clubs",
        "Clubs with nothing due (no open bill has a cadence step today or yesterday)",
        ("tenant",),
        ((report.tenant,) for report in reports),
        empty="none",
    )
    return [summary, clubs]
