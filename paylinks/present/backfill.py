"""A backfill's report as tables: summary (what is owed now apart from what was already paid,
then what the run did), steps, skipped rows, findings and failures."""

from __future__ import annotations

from typing import Any

from paylinks.billing.plan import Action, Step
from paylinks.billing.report import BackfillReport, Tally
from paylinks.present.tables import Table, facts, label, money, table


def backfill_tables(report: BackfillReport) -> list[Table]:
    """A backfill report: summary, steps, skips, findings."""
    plan, currency = report.plan, report.currency
    done = report.commit
    steps = table(
        "steps",
        "What the backfill did" if done else "What the backfill would do",
        ("action", "row", "player", "product", "order", "amount", "note"),
        (_step_row(step, currency) for step in plan.steps if step.action is not Action.up_to_date),
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
    return [_summary(report), steps, skipped, problems]


def _summary(report: BackfillReport) -> Table:
    plan = report.plan
    counts = plan.counts()
    done = report.commit
    mode = "commit" if done else "dry run"
    return facts(
        "summary",
        f"Backfill of {report.tenant} ({mode})",
        [
            ("Stripe account", report.where.account + (" (live)" if report.where.livemode else " (test)"))
            if report.where
            else ("Stripe account", "not asked (dry run without a key)"),
            *_owed_and_paid(report),
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


def _owed_and_paid(report: BackfillReport) -> list[tuple[str, str]]:
    """Still owed apart from already paid, in money: what a treasurer asks first."""
    split, currency = report.owed_and_paid, report.currency

    def said(tally: Tally, none: str) -> str:
        if not tally.items:
            return none
        return f"{money(tally.cents, currency)} for {tally.items} item{'' if tally.items == 1 else 's'}"

    lines = [
        ("owed now", said(split.owed_now, "nothing")),
        ("already paid", said(split.paid, "nothing yet")),
    ]
    if split.under_way.items:
        lines.append(("payment under way", said(split.under_way, "")))
    if split.refunds.items:
        lines.append(("paid, then refunded or owed back", said(split.refunds, "")))
    return lines


def _step_row(step: Step, currency: str) -> tuple[Any, ...]:
    return (
        step.action,
        step.row_id,
        _player_cell(step),
        step.item.description if step.item else (step.row or {}).get("description"),
        step.item.order_id if step.item else (step.row or {}).get("order_id"),
        money(step.item.amount_cents if step.item else (step.row or {}).get("amount_cents"), currency),
        step.note
        + (" (then update parent/order)" if step.relink and step.action is not Action.relink else ""),
    )


def _player_cell(step: Step) -> str:
    if step.item is not None:
        return (
            f"{step.item.player_name} (#{step.item.player_id})"
            if step.item.player_name
            else f"#{step.item.player_id}"
        )
    return f"#{(step.row or {}).get('player_id')}"
