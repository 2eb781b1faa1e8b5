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

    def __new__(cls, value: str, label: str) -> StrLabelEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class PlayerStatus(enum.StrEnum):
    """A player in the club's own records. Only `signed` players are billed the default fees."""

    registered = "registered"
    signed = "signed"
    withdrawn = "withdrawn"


class OrderStatus(enum.StrEnum):
    """An order in the club's own records (a bill the club raised by hand)."""

    pending = "pending"
    paid = "paid"
    cancelled = "cancelled"


class PaymentLinkStatus(enum.StrEnum):
    """Where a bill stands. Only `pending` is chased; `refund_due` waits for a person."""

    pending = "pending"  # owed; the link takes payment
    processing = "processing"  # paid by a slow method, awaiting settlement
    paid = "paid"
    cancelled = "cancelled"  # the bill went away; the link is deactivated
    refund_due = "refund_due"  # money arrived for a cancelled or already-paid bill
    refunded = "refunded"  # the payment was returned at Stripe


class PaymentStatus(enum.StrEnum):
    """One payment at Stripe (a completed checkout session), as the ledger keeps it."""

    processing = "processing"  # complete, the money not yet settled (bank debit)
    succeeded = "succeeded"
    failed = "failed"  # a slow payment that did not settle: no money moved


class PaidMethod(enum.StrEnum):
    stripe = "stripe"
    cash = "cash"
    cheque = "cheque"
    other = "other"


class BlastStatus(enum.StrEnum):
    running = "running"  # started, not every parent reached yet
    finished = "finished"


class EmailType(enum.StrEnum):
    outstanding_balance = "outstanding_balance"
    payment_link = "payment_link"


class EmailStatus(enum.StrEnum):
    sending = "sending"  # claimed by a run; a crash leaves it here and the rerun sends it
    sent = "sent"
    failed = "failed"


class Role(enum.StrEnum):
    """What a person may do in one tenant. A coach looks up and resends; an admin does the rest."""

    admin = "admin"
    coach = "coach"


class RefundResolution(StrLabelEnum):
    """How money owed back was settled: at Stripe (reconcile saw the refund) or by a person."""

    refunded_at_stripe = "refunded_at_stripe", "refunded at Stripe"
    refunded_by_hand = "refunded_by_hand", "refunded by hand"
    kept_as_credit = "kept_as_credit", "kept as credit"


class AuditAction(enum.StrEnum):
    """Every state-changing thing the office (or its command line) does, as the audit log names it."""

    user_added = "user_added"
    password_changed = "password_changed"
    token_created = "token_created"
    resend = "resend"  # a player's links to the parent on file
    send_to_address = "send_to_address"  # a player's links to another address
    blast_test = "blast_test"
    blast_send = "blast_send"
    blast_preview = "blast_preview"  # started from the admin endpoint: a run, even if it sends nothing
    mark_paid_offline = "mark_paid_offline"
    refund_resolved = "refund_resolved"
    user_disabled = "user_disabled"  # the account can no longer log in; its sessions and tokens stop
    user_enabled = "user_enabled"
    role_removed = "role_removed"  # the person no longer works for this tenant
    password_reset = "password_reset"  # a one-time password issued by an admin; their sessions end
    token_revoked = "token_revoked"
