"""What one tenant's backfill did (or, in a dry run, would do): the report, the outcome of
retiring stale links, and the findings a person should read. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from paylinks.billing.plan import Plan, Step
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import StrLabelEnum


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
