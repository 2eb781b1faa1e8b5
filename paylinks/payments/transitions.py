"""How a bill's status moves when money news arrives: (status, fact) → new status and outcome.

Pure: the one place those decisions are made. `ledger` reads the row and the payments, asks
here, and writes the answer; `refunds` does the same when a person settles money owed back.

- money on a bill that stands (pending or processing) makes it `paid`; on a bill that went
  away, or one another payment already paid, it is `refund_due` (the club owes it back);
- complete but unsettled (a bank debit) makes a pending bill `processing`; a failed debit puts
  it back to `pending`, with a fresh link when the spent one was its current link;
- money going back (a full refund, a lost dispute) leaves no bill `paid` by it.

A payment's money is allocated to each bill it covered (one for a link, one per bill for a
family's "Pay all" checkout): each allocation moves as its bill's decision says, a family's
bill whose terms changed while its checkout was open keeps its status and its money is owed
back, and a refund of part of a family's payment is matched to whole bills where that is
unambiguous (`split_refund`), else kept on the payment and listed.

Imports only the vocabulary, the news and Stripe's words.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from paylinks.payments.news import SessionState
from paylinks.stripe_api.words import DisputeStatus
from paylinks.vocabulary import AllocationStatus, PaidMethod, PaymentLinkStatus, PaymentStatus

# Statuses of a bill that money may still settle.
OWED = frozenset({PaymentLinkStatus.pending, PaymentLinkStatus.processing})
# Statuses of a bill some payment made (or makes) paid.
PAID_BY_A_PAYMENT = frozenset({PaymentLinkStatus.paid, PaymentLinkStatus.refund_due})
SECOND_PAYMENT = "a second payment of a paid bill"
PAID_AFTER_CANCELLED = "paid after the bill was cancelled"
BILL_CHANGED = "the bill changed while the family checkout was open"
REFUND_NOT_MATCHED = "refunded at Stripe, not matched to whole items: pick the items it was for"


class Outcome(enum.StrEnum):
    """What one fact did, in the report's terms."""

    marked_paid = "marked_paid"
    processing = "processing"
    already_known = "already_known"
    slow_payment_failed = "slow_payment_failed"  # row back to pending; a fresh link is minted
    refund_due = "refund_due"
    refunded = "refunded"
    partially_refunded = "partially_refunded"
    dispute_opened = "dispute_opened"
    dispute_won = "dispute_won"
    dispute_lost = "dispute_lost"
    amount_differs = "amount_differs"
    unknown_link = "unknown_link"  # a paid link no row of ours was ever given
    unknown_payment = "unknown_payment"  # a refund or dispute of a payment we never saw
    other_tenant = "other_tenant"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Applied:
    outcome: Outcome
    row_id: int | None = None
    tenant_id: int | None = None
    session_id: str | None = None
    amount_cents: int | None = None
    detail: str = ""


@dataclass
class ApplyResult:
    """Everything a batch of facts did; `remint` lists rows whose spent link needs replacing,
    `close_links` allocations whose bill's own link must be deactivated at Stripe (a family
    checkout took its money), `receipts` payments whose parent is owed a receipt."""

    applied: list[Applied] = field(default_factory=list)
    remint: list[int] = field(default_factory=list)
    orders_paid: list[int] = field(default_factory=list)
    close_links: list[int] = field(default_factory=list)
    receipts: list[int] = field(default_factory=list)

    def extend(self, other: ApplyResult) -> None:
        self.applied += other.applied
        self.remint += other.remint
        self.orders_paid += other.orders_paid
        self.close_links += other.close_links
        self.receipts += other.receipts

    def of(self, *outcomes: Outcome) -> list[Applied]:
        return [a for a in self.applied if a.outcome in outcomes]


# -- a checkout session ----------------------------------------------------------------------------
_PAYMENT_STATUS = {
    SessionState.awaiting: PaymentStatus.processing,
    SessionState.paid: PaymentStatus.succeeded,
    SessionState.failed: PaymentStatus.failed,
}
_SESSION_ORDER = {PaymentStatus.processing: 0, PaymentStatus.succeeded: 1, PaymentStatus.failed: 1}


def payment_status(state: SessionState) -> PaymentStatus:
    return _PAYMENT_STATUS[state]


def moves_forward(known: PaymentStatus, reported: PaymentStatus) -> bool:
    """A payment's record only moves forward: awaiting, then settled or failed, never back."""
    return _SESSION_ORDER[reported] > _SESSION_ORDER[known]


def paid_method(recorded: PaidMethod | None, reported: PaidMethod | None) -> PaidMethod:
    """How a payment was paid, as the ledger keeps it: once seen awaiting settlement it was a
    bank debit, whatever later news reads (a scan sees a settled debit paid, like a card's);
    else the news's word, else what was recorded, else `stripe` (paid at Stripe, how unknown)."""
    if recorded is PaidMethod.bank_debit:
        return recorded
    return reported or recorded or PaidMethod.stripe


def on_awaiting(status: PaymentLinkStatus) -> PaymentLinkStatus | None:
    """Complete, the money not settled yet: a pending bill is processing (not chased)."""
    return PaymentLinkStatus.processing if status == PaymentLinkStatus.pending else None


@dataclass(frozen=True)
class FailedMove:
    status: PaymentLinkStatus | None  # None: the row stays as it is
    remint: bool = False  # its spent link is replaced by a fresh one


def on_failed(status: PaymentLinkStatus, *, spent: bool) -> FailedMove:
    """A slow payment failed, no money moved: the bill owes again. `spent`: the session was on
    the row's current link, which took its single completion and can never take payment."""
    if status not in OWED:
        return FailedMove(None)
    return FailedMove(PaymentLinkStatus.pending, remint=spent)


@dataclass(frozen=True)
class MoneyMove:
    outcome: Outcome  # marked_paid, refund_due, or already_known (nothing to write)
    refund_reason: str | None = None
    row_status: PaymentLinkStatus | None = None  # what the bill becomes (None: as it is)

    @property
    def allocation_status(self) -> AllocationStatus | None:
        """What this payment's money becomes for the bill (None: as it is)."""
        return {
            Outcome.marked_paid: AllocationStatus.paid,
            Outcome.refund_due: AllocationStatus.refund_due,
        }.get(self.outcome)


def terms_changed(
    *, offered_cents: int, offered_version: int, billed_cents: int, current_version: int
) -> str | None:
    """Why a family checkout's terms for a bill are not the bill's any more (None: they are):
    its amount changed, or its link was replaced (a new `mint_version`)."""
    if offered_cents != billed_cents:
        return f"{BILL_CHANGED} (offered {offered_cents}, billed {billed_cents})"
    if offered_version != current_version:
        return f"{BILL_CHANGED} (its link was replaced)"
    return None


def on_money(
    status: PaymentLinkStatus,
    *,
    row_session: str | None,
    session: str,
    bill_stands: bool,
    changed: str | None = None,
) -> MoneyMove:
    """Money arrived by `session` for a bill in `status` (`row_session`: the session that paid
    or holds it; `bill_stands`: the club's data still bills it, asked only while owed;
    `changed`: why a family checkout's terms are not the bill's any more).

    A bill still owed whose terms changed stays owed (at its new terms), and this money is owed
    back; money for a bill already paid or gone makes it `refund_due`."""
    if status == PaymentLinkStatus.paid and row_session == session:
        return MoneyMove(Outcome.already_known)
    if status in OWED and bill_stands:
        if changed is not None:
            return MoneyMove(Outcome.refund_due, changed)
        return MoneyMove(Outcome.marked_paid, row_status=PaymentLinkStatus.paid)
    if status == PaymentLinkStatus.refund_due and row_session == session:
        return MoneyMove(Outcome.already_known)
    paid_by_another = status in PAID_BY_A_PAYMENT and row_session not in (None, session)
    second = paid_by_another or status == PaymentLinkStatus.paid
    return MoneyMove(
        Outcome.refund_due,
        SECOND_PAYMENT if second else PAID_AFTER_CANCELLED,
        row_status=PaymentLinkStatus.refund_due,
    )


def on_family_failed(status: PaymentLinkStatus, *, held_by_this: bool) -> FailedMove:
    """A family checkout's bank debit failed: every bill it held (`processing` by it) owes
    again, with a fresh link, as for a link's own failed debit (its own link was deactivated
    when the checkout took it)."""
    if status != PaymentLinkStatus.processing or not held_by_this:
        return FailedMove(None)
    return FailedMove(PaymentLinkStatus.pending, remint=True)


# -- a refund of part of a payment, allocated ------------------------------------------------------
@dataclass(frozen=True)
class Portion:
    """One allocation as a refund sees it."""

    allocation_id: int
    amount_cents: int
    refunded_cents: int
    status: AllocationStatus

    @property
    def open_cents(self) -> int:
        return self.amount_cents - self.refunded_cents


# What a refund may take back: money the club holds for a bill, or owes back on one.
REFUNDABLE = frozenset({AllocationStatus.paid, AllocationStatus.refund_due, AllocationStatus.resolved})


@dataclass(frozen=True)
class RefundSplit:
    """How newly refunded money lands: whole allocations, part of the only one, or unmatched
    (kept on the payment and listed; `ambiguous` when several sets of items would match)."""

    whole: tuple[int, ...] = ()
    partial: tuple[tuple[int, int], ...] = ()  # (allocation id, cents)
    unmatched_cents: int = 0
    ambiguous: bool = False


def split_refund(new_cents: int, portions: Sequence[Portion], *, in_full: bool) -> RefundSplit:
    """Allocate `new_cents` newly refunded at Stripe. `in_full`: Stripe's running total is the
    whole payment, so every item's money went back. Otherwise money owed back is refunded first
    (the usual reason to refund), then any one set of whole items whose amounts add up to it;
    a payment of one item takes any part; anything else is not matched."""
    open_portions = [p for p in portions if p.status in REFUNDABLE and p.open_cents > 0]
    if new_cents <= 0:
        return RefundSplit()
    if in_full:
        return RefundSplit(whole=tuple(p.allocation_id for p in open_portions))
    owed_back = [p for p in open_portions if p.status == AllocationStatus.refund_due]
    for candidates in (owed_back, open_portions):
        found, count = _one_subset(new_cents, candidates)
        if count == 1:
            return RefundSplit(whole=found)
        if count > 1 and candidates is open_portions:
            return RefundSplit(unmatched_cents=new_cents, ambiguous=True)
    if len(portions) == 1 and len(open_portions) == 1:
        (only,) = open_portions
        taken = min(new_cents, only.open_cents)
        return RefundSplit(partial=((only.allocation_id, taken),), unmatched_cents=new_cents - taken)
    return RefundSplit(unmatched_cents=new_cents)


def _one_subset(target: int, portions: Sequence[Portion]) -> tuple[tuple[int, ...], int]:
    """The one set of portions whose open amounts add up to `target`, and how many sets do
    (counted up to 2): subset sums over the distinct sums reached, never over every subset."""
    # sum -> (number of ways, capped at 2; the way, when there is exactly one)
    reached: dict[int, tuple[int, tuple[int, ...]]] = {0: (1, ())}
    for portion in portions:
        for total, (ways, chosen) in list(reached.items()):
            grown = total + portion.open_cents
            if grown > target:
                continue
            known_ways, known = reached.get(grown, (0, ()))
            reached[grown] = (
                min(2, known_ways + ways),
                chosen + (portion.allocation_id,) if not known_ways else known,
            )
    ways, chosen = reached.get(target, (0, ()))
    return (chosen if ways == 1 else ()), ways


# -- a charge: refunds and disputes -----------------------------------------------------------------
def refund_outcome(refunded_cents: int, amount_cents: int) -> Outcome:
    return Outcome.refunded if refunded_cents >= amount_cents else Outcome.partially_refunded


def dispute_outcome(dispute_status: str) -> Outcome:
    closed: dict[str, Outcome] = {
        DisputeStatus.won: Outcome.dispute_won,
        DisputeStatus.lost: Outcome.dispute_lost,
    }
    return closed.get(dispute_status, Outcome.dispute_opened)


def on_money_gone(
    status: PaymentLinkStatus, *, others_paying: bool, refund_still_due: bool
) -> PaymentLinkStatus | None:
    """A payment's money went back (a full refund, a lost dispute). A bill still owed (pending:
    a family checkout's money for old terms went back) stays owed; a bill with money still owed
    back stays `refund_due`; one another payment still pays stays paid; else it is refunded."""
    if status == PaymentLinkStatus.pending:
        return None
    if refund_still_due:
        return PaymentLinkStatus.refund_due
    if others_paying and status in PAID_BY_A_PAYMENT:
        return PaymentLinkStatus.paid
    if status in PAID_BY_A_PAYMENT or status == PaymentLinkStatus.processing:
        return PaymentLinkStatus.refunded
    return None


def on_refund_resolved(
    status: PaymentLinkStatus, *, refund_still_due: bool, paid_once: bool
) -> PaymentLinkStatus | None:
    """A person settled money owed back. The bill leaves `refund_due` once nothing more is owed
    back on it: paid if a payment of its own paid it, else cancelled (the bill had gone away)."""
    if status != PaymentLinkStatus.refund_due or refund_still_due:
        return None
    return PaymentLinkStatus.paid if paid_once else PaymentLinkStatus.cancelled
