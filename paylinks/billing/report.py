"""What one tenant's backfill did (or, in a dry run, would do): the report, the outcome of
retiring stale links, and the findings a person should read. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from paylinks.billing.plan import Plan, Step
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import PaymentLinkStatus, StrLabelEnum


class FindingKind(StrLabelEnum):
    # left alone: reconcile will account for it
    paid_at_stripe = "paid_at_stripe", "paid at Stripe; left alone (run reconcile)"
    link_missing_at_stripe = "link_missing_at_stripe", "Stripe has no such link in this account and mode"
    # its old link stays in the other account/mode
    minted_elsewhere = "minted_elsewhere", "old link left in the other Stripe account/mode"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    row_id: int
    link_id: str | None = None


@dataclass
class RetireOutcome:
    retired: list[int] = field(default_factory=list)  # rows cancelled
    replaced: list[int] = field(default_factory=list)  # rows whose old link was let go for a re-mint
    verified: list[int] = field(default_factory=list)  # rows whose link Stripe confirmed
    left_alone: set[int] = field(default_factory=set)  # rows not to mint this run
    to_remint: list[Step] = field(default_factory=list)  # verified rows whose link is not there
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Tally:
    """Some of a backfill's items: how many, and their money in cents."""

    items: int = 0
    cents: int = 0

    def add(self, cents: int) -> None:
        self.items += 1
        self.cents += cents


@dataclass
class OwedAndPaid:
    """What the club's data bills, split by what Stripe already has for each item."""

    owed_now: Tally = field(default_factory=Tally)  # no payment yet: what the parents still owe
    paid: Tally = field(default_factory=Tally)  # its link was paid (the amount paid)
    under_way: Tally = field(default_factory=Tally)  # a payment started, not settled yet
    refunds: Tally = field(default_factory=Tally)  # paid, then refunded or owed back


# A row whose money is (or was) at Stripe, by the part of the split it counts in.
_SETTLED = {
    PaymentLinkStatus.paid.value: "paid",
    PaymentLinkStatus.processing.value: "under_way",
    PaymentLinkStatus.refund_due.value: "refunds",
    PaymentLinkStatus.refunded.value: "refunds",
}


def owed_and_paid(plan: Plan) -> OwedAndPaid:
    """Each item of the plan once: owed now, or already paid (or under way, or refunded) by its row."""
    split = OwedAndPaid()
    for step in plan.steps:
        if step.item is None:
            continue  # a link to retire: nothing is billed for it
        row = step.row
        status = str(getattr(row["status"], "value", row["status"])) if row is not None else None
        if row is None or status not in _SETTLED:
            split.owed_now.add(step.item.amount_cents)
        else:
            getattr(split, _SETTLED[status]).add(int(row["amount_cents"]))  # what was paid
    return split


@dataclass
class BackfillReport:
    """What one tenant's backfill did (or, in a dry run, would do)."""

    tenant: str
    commit: bool
    plan: Plan
    currency: str = "usd"
    where: StripeContext | None = None
    tiers_created: int = 0
    retire: RetireOutcome = field(default_factory=RetireOutcome)
    minted: int = 0
    adopted: int = 0
    loaded: int = 0
    relinked: list[int] = field(default_factory=list)
    mint_errors: list[tuple[int, str]] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early (a failed batch, a refused request)

    @property
    def failed(self) -> bool:
        return bool(self.mint_errors) or self.aborted is not None

    @property
    def owed_and_paid(self) -> OwedAndPaid:
        return owed_and_paid(self.plan)
