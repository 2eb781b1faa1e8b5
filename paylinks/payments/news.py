"""Stripe's news about money, read as plain facts: pure, no database.

Stripe reports a payment's life in pieces, late, twice or out of order: a checkout session
completes (paid now, or awaiting a slow bank debit), the debit settles or fails, a charge is
refunded in part or whole, a dispute opens and is won or lost. Each event (or a session found by
listing a link's sessions) becomes one `News` fact, or a `Skipped` saying why it tells paylinks
nothing. `ledger` applies the facts.

Imports only Stripe's words (`stripe_api.words`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paylinks.stripe_api.words import MONEY_ARRIVED, SessionStatus

SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
CHARGE_EVENTS = (
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
)
EVENT_TYPES = SESSION_EVENTS + CHARGE_EVENTS


# -- the facts ---------------------------------------------------------------------------------
class SessionState(enum.StrEnum):
    awaiting = "awaiting"  # complete, the money not settled yet (a bank debit)
    paid = "paid"
    failed = "failed"  # the slow payment did not settle


@dataclass(frozen=True)
class SessionNews:
    """A checkout session on one of our links, as Stripe last described it."""

    session_id: str
    payment_link_id: str
    payment_intent_id: str | None
    state: SessionState
    amount_cents: int | None
    currency: str | None
    at: int  # Stripe's time (unix seconds)


@dataclass(frozen=True)
class RefundNews:
    payment_intent_id: str
    refunded_cents: int  # Stripe's running total for the charge
    at: int


@dataclass(frozen=True)
class DisputeNews:
    payment_intent_id: str
    dispute_status: str  # Stripe's: needs_response, under_review, won, lost, ...
    amount_cents: int
    at: int


News = SessionNews | RefundNews | DisputeNews


class SkippedEvent(enum.StrEnum):
    other_account = "other_account"
    malformed = "malformed"
    not_ours = "not_ours"  # a checkout session not on a payment link
    open_session = "open_session"
    unhandled_type = "unhandled_type"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Skipped:
    event_id: str
    reason: SkippedEvent


# -- reading Stripe's objects -------------------------------------------------------------------
def news_from_event(event: Mapping[str, Any], *, account: str | None = None) -> News | Skipped:
    """The fact an event reports, or why it says nothing to paylinks.

    `account` is the connected account this run reads for (None: the platform's own); an event
    of another account is skipped, never applied here.
    """
    event_id = str(event.get("id") or "(no id)")
    if (event.get("account") or None) != account:
        return Skipped(event_id, SkippedEvent.other_account)
    obj = (event.get("data") or {}).get("object")
    created = event.get("created")
    if not isinstance(obj, Mapping) or not isinstance(created, int):
        return Skipped(event_id, SkippedEvent.malformed)
    kind = event.get("type")
    if kind in SESSION_EVENTS:
        if obj.get("object") != "checkout.session" or not obj.get("id"):
            return Skipped(event_id, SkippedEvent.malformed)
        if not obj.get("payment_link"):
            return Skipped(event_id, SkippedEvent.not_ours)
        if obj.get("status") != SessionStatus.complete:
            return Skipped(event_id, SkippedEvent.open_session)
        if kind == "checkout.session.async_payment_failed":
            state = SessionState.failed
        elif obj.get("payment_status") in MONEY_ARRIVED:
            state = SessionState.paid
        else:
            state = SessionState.awaiting
        return session_news(obj, state, created)
    if kind == "charge.refunded":
        intent = obj.get("payment_intent")
        if not intent or not isinstance(obj.get("amount_refunded"), int):
            return Skipped(event_id, SkippedEvent.malformed)
        return RefundNews(str(intent), int(obj["amount_refunded"]), created)
    if kind in ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"):
        intent = obj.get("payment_intent")
        if not intent or not obj.get("status"):
            return Skipped(event_id, SkippedEvent.malformed)
        return DisputeNews(str(intent), str(obj["status"]), int(obj.get("amount") or 0), created)
    return Skipped(event_id, SkippedEvent.unhandled_type)


def session_news(session: Mapping[str, Any], state: SessionState, at: int) -> SessionNews:
    intent = session.get("payment_intent")
    if isinstance(intent, Mapping):
        intent = intent.get("id")
    return SessionNews(
        session_id=str(session["id"]),
        payment_link_id=str(session["payment_link"]),
        payment_intent_id=str(intent) if intent else None,
        state=state,
        amount_cents=session.get("amount_total"),
        currency=session.get("currency"),
        at=at,
    )


def news_from_scanned_session(session: Mapping[str, Any]) -> SessionNews | None:
    """A session found by listing a link's sessions (no event): paid, or still awaiting."""
    if session.get("status") != SessionStatus.complete or not session.get("payment_link"):
        return None
    paid = session.get("payment_status") in MONEY_ARRIVED
    return session_news(
        session, SessionState.paid if paid else SessionState.awaiting, int(session["created"])
    )
