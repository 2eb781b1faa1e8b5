"""Stripe's own words for the states paylinks reads, as enums (the values are Stripe's).

Imports nothing of paylinks.
"""

from __future__ import annotations

import enum


class SessionStatus(enum.StrEnum):
    """A Checkout Session's `status`."""

    open = "open"
    complete = "complete"
    expired = "expired"


class SessionPaymentStatus(enum.StrEnum):
    """A Checkout Session's `payment_status`: `unpaid` on a complete session is a slow payment."""

    paid = "paid"
    unpaid = "unpaid"
    no_payment_required = "no_payment_required"


MONEY_ARRIVED = frozenset({SessionPaymentStatus.paid, SessionPaymentStatus.no_payment_required})


class DisputeStatus(enum.StrEnum):
    """A Dispute's `status`."""

    warning_needs_response = "warning_needs_response"
    warning_under_review = "warning_under_review"
    warning_closed = "warning_closed"
    needs_response = "needs_response"
    under_review = "under_review"
    won = "won"
    lost = "lost"
    prevented = "prevented"


DISPUTE_CLOSED = frozenset({DisputeStatus.won, DisputeStatus.lost, DisputeStatus.warning_closed})
