"""The words of paylinks' domain: every status and kind it stores, as enums.

Imports nothing of paylinks: the tables, the rules and the screens import these. Status groups
are built here from the enums, never spelled again as strings elsewhere.

One convention for words: an enum's value is a short code (what is stored, logged and matched);
what a person reads is its `label`. `StrLabelEnum` members are declared `name = "code", "Label"`.
"""

from __future__ import annotations

import enum


class StrLabelEnum(enum.StrEnum):
    """A code (the value) with the words a person reads (`label`); declared `x = "x", "Words"`."""

    label: str

    # `label` has a default only for the type checker: `Status("code")` looks a member up by its
    # code (it never calls this); every member is declared with both.
    def __new__(cls, value: str, label: str = "") -> StrLabelEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class PlayerStatus(StrLabelEnum):
    """A player in the club's own records. Only `signed` players are billed the default fees."""

    registered = "registered", "Registered"
    signed = "signed", "Signed"
    withdrawn = "withdrawn", "Withdrawn"


class OrderStatus(enum.StrEnum):
    """An order in the club's own records (a bill the club raised by hand)."""

    pending = "pending"
    paid = "paid"
    cancelled = "cancelled"


class PaymentLinkStatus(StrLabelEnum):
    """Where a bill stands. Only `pending` is chased; `refund_due` waits for a person."""

    pending = "pending", "Pending"  # owed; the link takes payment
    processing = "processing", "Processing"  # paid by a slow method, awaiting settlement
    paid = "paid", "Paid"
    cancelled = "cancelled", "Cancelled"  # the bill went away; the link is deactivated
    refund_due = "refund_due", "Refund due"  # money arrived for a cancelled or already-paid bill
    refunded = "refunded", "Refunded"  # the payment was returned at Stripe


class PaymentStatus(enum.StrEnum):
    """One payment at Stripe (a completed checkout session), as the ledger keeps it."""

    processing = "processing"  # complete, the money not yet settled (bank debit)
    succeeded = "succeeded"
    failed = "failed"  # a slow payment that did not settle: no money moved


class AllocationStatus(StrLabelEnum):
    """What one payment's money does for one bill (a family checkout pays several; a link one)."""

    processing = "processing", "Processing"  # complete, the money not settled yet (bank debit)
    paid = "paid", "Paid"  # this money pays the bill
    refund_due = "refund_due", "Refund due"  # the bill was already paid, went away or changed
    refunded = "refunded", "Refunded"  # the money went back at Stripe (a refund, a dispute lost)
    resolved = "resolved", "Settled by a person"  # owed back, then refunded by hand or kept as credit
    failed = "failed", "Failed"  # the slow payment did not settle: no money moved


# Allocations whose money the club holds for the bill (or holds and owes back).
MONEY_HELD = frozenset({AllocationStatus.paid, AllocationStatus.refund_due})


class PaidMethod(StrLabelEnum):
    """How a bill (or a payment at Stripe) was paid."""

    stripe = "stripe", "Stripe"  # at Stripe, before paylinks recorded how (migration 0018)
    cash = "cash", "Cash"
    cheque = "cheque", "Cheque"
    other = "other", "Other"
    card = "card", "Card"  # at Stripe, paid when its checkout completed
    bank_debit = "bank_debit", "Bank debit"  # at Stripe, its checkout completed unpaid, settled later


# A bill paid outside Stripe, by a person's word.
PAID_OFFLINE = frozenset({PaidMethod.cash, PaidMethod.cheque, PaidMethod.other})
# A bill paid at Stripe: by a method paylinks recorded, or before it recorded one.
PAID_AT_STRIPE = frozenset({PaidMethod.card, PaidMethod.bank_debit, PaidMethod.stripe})


class BlastStatus(enum.StrEnum):
    running = "running"  # started, not every parent reached yet
    finished = "finished"


class FamilyCheckoutStatus(StrLabelEnum):
    """A family's "Pay all" checkout session, as paylinks keeps it (Stripe's session status apart)."""

    reserved = "reserved", "Starting"  # the row exists, the session not yet created at Stripe
    open = "open", "Open"  # created at Stripe, not yet paid or expired
    complete = "complete", "Paid"  # completed at Stripe (its money may still be settling)
    expired = "expired", "Expired"
    refused = "refused", "Refused"  # a bill changed before payment: never opened, or expired by paylinks


class EmailType(StrLabelEnum):
    outstanding_balance = "outstanding_balance", "Balance email"
    payment_link = "payment_link", "Payment links"
    reminder = "reminder", "Reminder"  # the scheduled digest of everything owed, by the cadence
    receipt = "receipt", "Receipt"  # after a payment: what it paid, and what is still open


# The emails that tell a parent their balance: at most one of them a day reaches a parent.
BALANCE_EMAIL_TYPES = (EmailType.outstanding_balance, EmailType.reminder)


class OptOutHow(StrLabelEnum):
    """How a parent came to get no reminders (they still get blasts, resends and receipts)."""

    one_click = "one_click", "one click in their mail program"
    page = "page", "the stop reminders page"
    admin = "admin", "an admin, in the office"


class EmailStatus(StrLabelEnum):
    sending = "sending", "Sending"  # claimed by a run; a crash leaves it here and the rerun sends it
    sent = "sent", "Sent"
    failed = "failed", "Failed"


class Role(StrLabelEnum):
    """What a person may do in one tenant. A coach looks up and resends; an admin does the rest."""

    admin = "admin", "Admin"
    coach = "coach", "Coach"


class RefundResolution(StrLabelEnum):
    """How money owed back was settled: at Stripe (reconcile saw the refund) or by a person."""

    refunded_at_stripe = "refunded_at_stripe", "refunded at Stripe"
    refunded_by_hand = "refunded_by_hand", "refunded by hand"
    kept_as_credit = "kept_as_credit", "kept as credit"


class AuditAction(StrLabelEnum):
    """Every state-changing thing the office (or its command line) does, as the audit log names it."""

    user_added = "user_added", "Person added"
    password_changed = "password_changed", "Password changed"
    token_created = "token_created", "API token created"
    resend = "resend", "Links resent"  # a player's links to the parent on file
    send_to_address = "send_to_address", "Links sent to an address"  # a player's links to another address
    blast_test = "blast_test", "Test email"
    blast_send = "blast_send", "Email to every parent"
    # Started from the admin endpoint: a run, even if it sends nothing.
    blast_preview = "blast_preview", "Balance email preview"
    mark_paid_offline = "mark_paid_offline", "Marked paid offline"
    refund_resolved = "refund_resolved", "Refund resolved"
    # The account can no longer log in; its sessions and tokens stop.
    user_disabled = "user_disabled", "Person disabled"
    user_enabled = "user_enabled", "Person enabled"
    role_removed = "role_removed", "Role removed"  # the person no longer works for this tenant
    # A one-time password issued by an admin; their sessions end.
    password_reset = "password_reset", "Password reset"
    token_revoked = "token_revoked", "API tokens revoked"
    stripe_refresh = (
        "stripe_refresh",
        "Refreshed from Stripe",
    )  # a reconcile of the tenant, started in the office
    # A parent's family page got a new address; the old one stopped opening.
    family_link_reset = "family_link_reset", "Family page address changed"
