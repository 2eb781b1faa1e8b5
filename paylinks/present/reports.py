"""Reports into words: the one place a run's typed report becomes tables for people.

Every layer hands the next dataclasses and enums; only here are they turned into labels,
money in the tenant's currency, and sentences. The CLI prints these tables and the flows
publish the same tables as Prefect artifacts, so the terminal and the UI always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from paylinks.money import format_money


@dataclass(frozen=True)
class Table:
    """A titled table of text cells. `key` names it (the artifact key's last part)."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"

    def records(self) -> list[dict[str, str]]:
        """The rows as column → cell mappings (a Prefect table artifact)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def markdown(self) -> str:
        if not self.rows:
            return f"_{self.empty}_"

        def cell(value: str) -> str:
            return value.replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


def facts(key: str, title: str, pairs: Iterable[tuple[str, Any]]) -> Table:
    """A two-column table of labelled figures."""
    return Table(key, title, ("figure", "value"), tuple((label, text(value)) for label, value in pairs))


def table(
    key: str, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none"
) -> Table:
    return Table(key, title, tuple(columns), tuple(tuple(text(v) for v in row) for row in rows), empty)


def text(value: Any) -> str:
    """One cell: enums by their label, None as empty."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return label(value)
    return str(value)


def label(member: Enum) -> str:
    """An enum member in words: its `label` if it has one, else its value with spaces."""
    return str(getattr(member, "label", None) or str(member.value).replace("_", " "))


def money(amount_cents: int | None, currency: str) -> str:
    return "" if amount_cents is None else format_money(int(amount_cents), currency)


def labelled(mapping: Mapping[Enum, int]) -> list[tuple[str, int]]:
    return [(label(member), count) for member, count in mapping.items()]


# -- backfill ----------------------------------------------------------------------------------
def backfill_tables(report: Any) -> list[Table]:
    """A backfill report (`paylinks.billing.report.BackfillReport`): summary, steps, skips, findings."""
    from paylinks.billing.plan import Action

    plan, currency = report.plan, report.currency
    counts = plan.counts()
    done = report.commit
    mode = "commit" if done else "dry run"
    summary = facts(
        "summary",
        f"Backfill of {report.tenant} ({mode})",
        [
            ("Stripe account", report.where.account + (" (live)" if report.where.livemode else " (test)"))
            if report.where
            else ("Stripe account", "not asked (dry run without a key)"),
            ("items owed", len(plan.items)),
            ("amount owed", money(plan.amount_owed_cents, currency)),
            (
                "price tiers created" if done else "price tiers to create",
                report.tiers_created if done else len(plan.tiers_needed),
            ),
            ("links minted" if done else "links to mint", report.loaded if done else len(plan.to_mint)),
            ("links found at Stripe (minted before a crash)", report.adopted),
            (
                "rows updated to their bill" if done else "rows to update to their bill",
                len(report.relinked) if done else len(plan.to_relink),
            ),
            ("already there", counts[Action.up_to_date]),
            (
                "links retired" if done else "links to retire",
                len(report.retire.retired) if done else counts[Action.retire],
            ),
            ("rows skipped", len(plan.skipped)),
            ("findings", len(report.retire.findings)),
            ("failed", len(report.mint_errors) + (1 if report.aborted else 0)),
        ],
    )
    steps = table(
        "steps",
        "What the backfill did" if done else "What the backfill would do",
        ("action", "row", "player", "product", "order", "amount", "note"),
        (
            (
                step.action,
                step.row_id,
                _player_cell(step),
                step.item.description if step.item else (step.row or {}).get("description"),
                step.item.order_id if step.item else (step.row or {}).get("order_id"),
                money(
                    step.item.amount_cents if step.item else (step.row or {}).get("amount_cents"), currency
                ),
                step.note
                + (" (then update parent/order)" if step.relink and step.action is not Action.relink else ""),
            )
            for step in plan.steps
            if step.action is not Action.up_to_date
        ),
        empty="nothing to do: every item has its link",
    )
    skipped = table(
        "skipped",
        "Rows skipped",
        ("player", "product", "order", "reason"),
        (
            (s.player_id, s.product_id, s.order_id, label(s.reason) + (f" ({s.detail})" if s.detail else ""))
            for s in plan.skipped
        ),
    )
    problems = table(
        "findings",
        "Findings and failures",
        ("row", "payment link", "what"),
        [(f.row_id, f.link_id, f.kind) for f in report.retire.findings]
        + [(row_id, None, error) for row_id, error in report.mint_errors]
        + ([(None, None, f"stopped: {report.aborted}")] if report.aborted else []),
    )
    return [summary, steps, skipped, problems]


def _player_cell(step: Any) -> str:
    if step.item is not None:
        return (
            f"{step.item.player_name} (#{step.item.player_id})"
            if step.item.player_name
            else f"#{step.item.player_id}"
        )
    return f"#{(step.row or {}).get('player_id')}"


# -- outstanding-balance blast and the coach's resend ------------------------------------------
def _when(moment: Any) -> str:
    """A stored time in UTC words (SQLite hands back naive UTC, PostgreSQL the session's zone)."""
    from datetime import UTC

    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _blast_words(report: Any) -> str:
    from paylinks.messaging.reports import BlastMode

    blast = report.blast
    if report.mode is BlastMode.send:
        if blast.resumed:
            return f"resumed blast {blast.run_key} started {_when(blast.started_at)}"
        return f"new blast {blast.run_key}"
    if blast is None:
        return "a send would start a new blast"
    if blast.started_at is None:
        return f"a send would start new blast {blast.run_key}"
    return f"a send would resume blast {blast.run_key} started {_when(blast.started_at)}"


def _delivery_words(report: Any) -> str:
    from paylinks.messaging.reports import BlastMode
    from paylinks.settings import EmailTransportName

    if report.mode is BlastMode.preview:
        return "nothing sent (a preview)"
    if report.transport is EmailTransportName.outbox:
        return f"written to the outbox folder {report.outbox_dir}, not emailed"
    return "emailed over SMTP"


def _held_back_table(held_back: Sequence[Any], currency: str) -> Table:
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


def _held_back_facts(held_back: Sequence[Any]) -> list[tuple[str, int]]:
    from collections import Counter

    counts = Counter(item.reason for item in held_back)
    return [(f"items not offered: {label(reason)}", count) for reason, count in counts.items()]


def blast_tables(report: Any) -> list[Table]:
    """An outstanding-balance blast (`paylinks.messaging.reports.BlastReport`): summary, recipients, held back."""
    from paylinks.messaging.prepare import SkipReason
    from paylinks.messaging.reports import BlastMode

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
    figures += _held_back_facts(report.held_back)
    key = f", blast {report.run_key}" if report.run_key else ""
    summary = facts(
        "summary", f"Outstanding-balance email for {report.tenant} ({label(report.mode)}{key})", figures
    )

    sent = {o.parent_id: o for o in report.sent}
    failed = {o.parent_id: o for o in report.failed}
    rows = []
    outcome: Any
    if report.mode is BlastMode.test:
        sample = report.sample
        for outcome in report.sent:
            rows.append(
                (
                    f"sample: {sample.parent_name}" if sample else "sample",
                    outcome.recipient,
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
                    detail = f"took over a claim from {_when(since)}"
            elif email.parent_id in failed:
                outcome, detail = failed[email.parent_id].result, failed[email.parent_id].error or ""
            elif email.parent_id in report.skipped:
                outcome = report.skipped[email.parent_id]
            else:
                outcome = "would send" if email.address else SkipReason.no_address
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
    recipients = table(
        "recipients",
        f"Recipients ({label(report.mode)})",
        ("parent", "email", "items", "total", "outcome", "detail"),
        rows,
        empty="nobody owes anything right now",
    )
    return [summary, recipients, _held_back_table(report.held_back, currency)]


def resend_tables(report: Any) -> list[Table]:
    """A coach's resend (`paylinks.messaging.reports.ResendReport`): summary, one row per parent, held back."""
    from paylinks.messaging.reports import ResendOutcome

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


# -- reconcile ---------------------------------------------------------------------------------
def reconcile_tables(report: Any) -> list[Table]:
    """A reconcile report (`paylinks.payments.reconcile.ReconcileReport`): figures, money owed back, findings."""
    from paylinks.payments.ledger import Outcome

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
