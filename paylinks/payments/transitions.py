"""How a bill's status moves when money news arrives: (status, fact) → new status and outcome.

Pure: the one place those decisions are made. `ledger` reads the row and the payments, asks
here, and writes the answer; `refunds` does the same when a person settles money owed back.

- money on a bill that stands (pending or processing) makes it `paid`; on a bill that went
  away, or one another payment already paid, it is `refund_due` (the club owes it back);
- complete but unsettled (a bank debit) makes a pending bill `processing`; a failed debit puts
  it back to `pending`, with a fresh link when the spent one was its current link;
- money going back (a full refund, a lost dispute) leaves no bill `paid` by it.

Imports only the vocabulary, the news and Stripe's words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from paylinks.payments.news import SessionState
from paylinks.stripe_api.words import DisputeStatus
from paylinks.vocabulary import PaymentLinkStatus, PaymentStatus

# Statuses of a bill that money may still settle.
OWED = frozenset({PaymentLinkStatus.pending, PaymentLinkStatus.processing})
# Statuses of a bill some payment made (or makes) paid.
PAID_BY_A_PAYMENT = frozenset({PaymentLinkStatus.paid, PaymentLinkStatus.refund_due})
SECOND_PAYMENT = "a second payment of a paid bill"
PAID_AFTER_CANCELLED = "paid after the bill was cancelled"


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
    """Everything a batch of facts did; `remint` lists rows whose spent link needs replacing."""

    applied: list[Applied] = field(default_factory=list)
    remint: list[int] = field(default_factory=list)
    orders_paid: list[int] = field(default_factory=list)

    def extend(self, other: ApplyResult) -> None:
        self.applied += other.applied
        self.remint += other.remint
        self.orders_paid += other.orders_paid

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


def on_money(
    status: PaymentLinkStatus, *, row_session: str | None, session: str, bill_stands: bool
) -> MoneyMove:
    """Money arrived by `session` for a bill in `status` (`row_session`: the session that paid
    or holds it; `bill_stands`: the club's data still bills it, asked only while owed)."""
    if status == PaymentLinkStatus.paid and row_session == session:
        return MoneyMove(Outcome.already_known)
    if status in OWED and bill_stands:
        return MoneyMove(Outcome.marked_paid)
    paid_by_another = status in PAID_BY_A_PAYMENT and row_session not in (None, session)
    second = paid_by_another or status == PaymentLinkStatus.paid
    return MoneyMove(Outcome.refund_due, SECOND_PAYMENT if second else PAID_AFTER_CANCELLED)


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
    """A payment's money went back (a full refund, a lost dispute). A bill with money still owed
    back stays `refund_due`; one another payment still pays stays paid; else it is refunded."""
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
