"""An outstanding-balance blast's report and a coach's resend as tables: summary, one row per
parent, and the open items not offered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from paylinks.club.balances import HeldBackItem
from paylinks.club.clock import club_zone, when_words
from paylinks.messaging.claims import LastBlast, RecentEmail
from paylinks.messaging.prepare import SkipReason
from paylinks.messaging.reports import BlastMode, BlastReport, ResendOutcome, ResendReport
from paylinks.present.tables import Table, facts, label, money, table
from paylinks.settings import EmailTransportName

# Opting out is of reminders only: a blast the admin sends still mails them, and says so.
OPTED_OUT_WORDS = "opted out of reminders (a blast still mails them)"


def blast_tables(report: BlastReport) -> list[Table]:
    """An outstanding-balance blast: summary, recipients, held back."""
    recipients = table(
        "recipients",
        f"Recipients ({label(report.mode)})",
        ("parent", "email", "items", "total", "outcome", "detail"),
        _recipient_rows(report),
        empty="nobody owes anything right now",
    )
    return [_blast_summary(report), recipients, _held_back_table(report.held_back, report.currency)]


def _blast_summary(report: BlastReport) -> Table:
    currency = report.currency
    figures: list[tuple[str, Any]] = [
        ("blast", _blast_words(report)),
        ("delivery", _delivery_words(report)),
        ("parents with a balance", len(report.emails)),
        ("items", report.item_count),
        ("total owed", money(report.total_cents, currency)),
    ]
    if report.mode is BlastMode.test:
        figures.append(
            ("test email sent to", report.test_recipient if report.sent else "nobody (nothing owed)")
        )
    elif report.mode is BlastMode.send:
        figures += [
            ("sent", len(report.sent)),
            ("skipped", len(report.skipped)),
            ("failed", len(report.failed)),
        ]
        figures += [
            (f"skipped: {label(reason)}", report.skipped_for(reason))
            for reason in SkipReason
            if report.skipped_for(reason)
        ]
        if report.claims_taken_over:
            figures.append(("stale claims taken over (older than the lease)", len(report.claims_taken_over)))
    if report.mode is BlastMode.preview and report.held_back_parents:
        figures.append(
            (f"a send would hold back (emailed in the last {_hours(report)})", len(report.held_back_parents))
        )
    if report.mode is not BlastMode.test and report.opted_out:
        figures.append((OPTED_OUT_WORDS, len(report.opted_out)))
    figures.append(("last blast", last_blast_words(report)))
    figures.append(("recently emailed parents", _hold_words(report)))
    figures += _held_back_facts(report.held_back)
    key = f", blast {report.run_key}" if report.run_key else ""
    return facts(
        "summary", f"Outstanding-balance email for {report.tenant} ({label(report.mode)}{key})", figures
    )


def _recipient_rows(report: BlastReport) -> list[tuple[Any, ...]]:
    """One row per parent: what became of their email (or, for a test, the one sample sent)."""
    currency = report.currency
    sent = {o.parent_id: o for o in report.sent}
    failed = {o.parent_id: o for o in report.failed}
    rows: list[tuple[Any, ...]] = []
    outcome: Enum | str
    if report.mode is BlastMode.test:
        sample = report.sample
        for sent_outcome in report.sent:
            rows.append(
                (
                    f"sample: {sample.parent_name}" if sample else "sample",
                    sent_outcome.recipient,
                    sample.item_count if sample else "",
                    money(sample.total_cents, currency) if sample else "",
                    "test sent",
                    "Pay Now buttons open a preview; no payment possible",
                )
            )
    else:
        for email in report.emails:
            detail = ""
            if email.parent_id in sent:
                outcome = sent[email.parent_id].result
                since = sent[email.parent_id].took_over_claim_of
                if since is not None:
                    detail = f"took over a claim from {_when(since, report.timezone)}"
            elif email.parent_id in failed:
                outcome, detail = failed[email.parent_id].result, failed[email.parent_id].error or ""
            elif email.parent_id in report.skipped:
                outcome = report.skipped[email.parent_id]
                if outcome is SkipReason.recently_emailed:
                    detail = _emailed_words(report, email.parent_id)
            elif not email.address:
                outcome = SkipReason.no_address
            elif email.parent_id in report.recently_emailed:
                outcome, detail = "would hold back", _emailed_words(report, email.parent_id)
            else:
                outcome = "would send"
            if email.parent_id in report.opted_out:
                detail = "; ".join(filter(None, (detail, "opted out of reminders")))
            rows.append(
                (
                    email.parent_name,
                    email.address or "(none)",
                    email.item_count,
                    money(email.total_cents, currency),
                    outcome,
                    detail,
                )
            )
    return rows


def resend_tables(report: ResendReport) -> list[Table]:
    """A coach's resend: summary, one row per parent, held back."""
    currency = report.currency
    figures: list[tuple[str, Any]] = [
        ("player", report.player.describe()),
        ("mode", "dry run" if report.dry_run else "send"),
        (
            "sent to",
            f"{report.to} (each email labelled with its parent)"
            if report.to
            else "each parent's own address",
        ),
        ("parents who owe something", len(report.parents) if report.parents else "none: nothing owed"),
        ("items", sum(p.email.item_count for p in report.parents)),
        ("total owed", money(sum(p.email.total_cents for p in report.parents), currency)),
    ]
    figures += [(label(outcome), report.count(outcome)) for outcome in ResendOutcome if report.count(outcome)]
    figures += _held_back_facts(report.held_back)
    summary = facts("summary", f"Payment links resent for {report.player.name} ({report.tenant})", figures)
    parents = table(
        "parents",
        "One email per parent",
        ("parent", "to", "items", "total", "outcome", "detail"),
        (
            (
                p.parent_name,
                p.recipient or "(none)",
                p.email.item_count,
                money(p.email.total_cents, currency),
                p.outcome,
                p.error or "",
            )
            for p in report.parents
        ),
        empty="nothing owed",
    )
    return [summary, parents, _held_back_table(report.held_back, currency)]


def _when(moment: datetime, zone: str) -> str:
    """A stored time as words in the club's zone ("Dec 3, 2026, 12:14 PM EST")."""
    return when_words(moment, club_zone(zone, "UTC"))


def _hours(report: BlastReport) -> str:
    return f"{report.hold_hours} hour{'s' if report.hold_hours != 1 else ''}"


def _emailed_words(report: BlastReport, parent_id: int) -> str:
    return emailed_words(report.recently_emailed.get(parent_id), report.timezone)


def emailed_words(recent: RecentEmail | None, zone: str) -> str:
    """Why a parent is held back: "emailed Dec 3, 2026, 12:14 PM EST" (in the club's zone)."""
    if recent is None:
        return "emailed recently"
    when = _when(recent.at, zone)
    return f"emailed {when}" if recent.sent else f"another blast was emailing them at {when}"


def last_blast_words(report: BlastReport) -> str:
    """ "Dec 3, 2026, 12:14 PM EST, 7 parents", or that there was none."""
    return last_blast_text(report.last_blast, report.timezone) or "none yet"


def last_blast_text(last: LastBlast | None, zone: str) -> str | None:
    """When the latest blast's last email went, and to how many parents; None: no blast yet."""
    if last is None:
        return None
    return f"{_when(last.sent_at, zone)}, {last.parents} parent{'s' if last.parents != 1 else ''}"


def _hold_words(report: BlastReport) -> str:
    if report.mode is BlastMode.test:
        return "a test email is never held back"
    if report.hold_hours == 0:
        return "never held back (the hold is set to 0 hours)"
    if report.include_recent:
        return f"included on request (otherwise held back for {_hours(report)})"
    return f"held back for {_hours(report)} after another blast's email"


def nothing_sent_line(report: BlastReport, how_to_include: str) -> str:
    """Why a send mailed nobody, in one line, when every parent it could reach was emailed
    recently: "Nothing sent: ...; <how_to_include> sends to them again."."""
    held = len(report.held_back_parents)
    return (
        f"Nothing sent: {'the one parent' if held == 1 else f'all {held} parents'} who could be emailed "
        f"{'was' if held == 1 else 'were'} emailed in the last {_hours(report)} "
        f"(last blast: {last_blast_words(report)}); {how_to_include} sends to them again."
    )


def _blast_words(report: BlastReport) -> str:
    blast = report.blast
    if report.mode is BlastMode.send:
        assert blast is not None, "a send always runs in a blast"
        if blast.resumed:
            assert blast.started_at is not None, "a resumed blast has started"
            return f"resumed blast {blast.run_key} started {_when(blast.started_at, report.timezone)}"
        return f"new blast {blast.run_key}"
    if blast is None:
        return "a send would start a new blast"
    if blast.started_at is None:
        return f"a send would start new blast {blast.run_key}"
    return f"a send would resume blast {blast.run_key} started {_when(blast.started_at, report.timezone)}"


def _delivery_words(report: BlastReport) -> str:
    if report.mode is BlastMode.preview:
        return "nothing sent (a preview)"
    if report.transport is EmailTransportName.outbox:
        return f"written to the outbox folder {report.outbox_dir}, not emailed"
    return "emailed over SMTP"


def _held_back_table(held_back: Sequence[HeldBackItem], currency: str) -> Table:
    return table(
        "held-back",
        "Open items not offered",
        ("player", "item", "amount", "owed by", "why"),
        (
            (
                item.player_name,
                item.description,
                money(item.amount_cents, currency),
                item.parent_name or "",
                item.reason,
            )
            for item in held_back
        ),
    )


def _held_back_facts(held_back: Sequence[HeldBackItem]) -> list[tuple[str, int]]:
    counts = Counter(item.reason for item in held_back)
    return [(f"items not offered: {label(reason)}", count) for reason, count in counts.items()]
