"""Stripe's news about money, read as plain facts: pure, no database.

Stripe reports a payment's life in pieces, late, twice or out of order: a checkout session
completes (paid now, or awaiting a slow bank debit), the debit settles or fails, a charge is
refunded in part or whole, a dispute opens and is won or lost. Each event (or a session found by
listing a link's sessions) becomes one `News` fact, or a `Skipped` saying why it tells paylinks
nothing. `ledger` applies the facts.

How a payment was paid is read here too: a session paid when it completed was paid by card; one
that completed unpaid (awaiting, then settled by `checkout.session.async_payment_succeeded`, or
failed) by bank debit, Stripe's only delayed method on the clubs' checkouts. Stripe's events carry
the session, not its PaymentIntent, so this costs no request.

Imports only Stripe's words (`stripe_api.words`) and the vocabulary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paylinks.stripe_api.words import MONEY_ARRIVED, SessionStatus
from paylinks.vocabulary import PaidMethod

SESSION_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",  # only a family checkout's expiry says anything to paylinks
)
# A family's "Pay all" checkout names its `family_checkouts` row and tenant in its metadata.
FAMILY_CHECKOUT_KEY = "paylinks_family_checkout"
FAMILY_TENANT_KEY = "paylinks_tenant"
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
    expired = "expired"  # never paid: a family checkout that can no longer take payment


@dataclass(frozen=True)
class SessionNews:
    """A checkout session on one of our links, or a family's "Pay all" checkout (no link; its
    `family_checkouts` row and tenant as its metadata names them), as Stripe last described it."""

    session_id: str
    payment_link_id: str | None
    payment_intent_id: str | None
    state: SessionState
    amount_cents: int | None
    currency: str | None
    at: int  # Stripe's time (unix seconds)
    family_checkout_id: int | None = None
    family_tenant_id: int | None = None
    # How it was paid (card, bank debit); None: an expiry, which took no payment.
    method: PaidMethod | None = None

    @property
    def is_family(self) -> bool:
        return self.payment_link_id is None


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
        family = family_of(obj)
        if not obj.get("payment_link") and family is None:
            return Skipped(event_id, SkippedEvent.not_ours)
        if kind == "checkout.session.expired" or obj.get("status") == SessionStatus.expired:
            if family is None or obj.get("status") != SessionStatus.expired:
                return Skipped(event_id, SkippedEvent.open_session)
            return session_news(obj, SessionState.expired, created)
        if obj.get("status") != SessionStatus.complete:
            return Skipped(event_id, SkippedEvent.open_session)
        if kind == "checkout.session.async_payment_failed":
            state = SessionState.failed
        elif obj.get("payment_status") in MONEY_ARRIVED:
            state = SessionState.paid
        else:
            state = SessionState.awaiting
        settled_later = kind == "checkout.session.async_payment_succeeded"
        return session_news(obj, state, created, method_of(state, settled_later=settled_later))
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


def family_of(session: Mapping[str, Any]) -> tuple[int, int | None] | None:
    """(family checkout id, tenant id) a session without a payment link names in its metadata;
    None when it names none (not ours), or names it in a shape paylinks never writes."""
    if session.get("payment_link"):
        return None
    metadata = session.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    checkout, tenant = metadata.get(FAMILY_CHECKOUT_KEY), metadata.get(FAMILY_TENANT_KEY)
    if not isinstance(checkout, str) or not checkout.isdigit():
        return None
    return int(checkout), int(tenant) if isinstance(tenant, str) and tenant.isdigit() else None


def method_of(state: SessionState, *, settled_later: bool) -> PaidMethod | None:
    """How a session was paid: paid when it completed, by card; completed unpaid (awaiting, then
    settled later or failed), by bank debit; an expired one took no payment."""
    if state is SessionState.expired:
        return None
    if state is SessionState.paid and not settled_later:
        return PaidMethod.card
    return PaidMethod.bank_debit


def session_news(
    session: Mapping[str, Any], state: SessionState, at: int, method: PaidMethod | None = None
) -> SessionNews:
    intent = session.get("payment_intent")
    if isinstance(intent, Mapping):
        intent = intent.get("id")
    family = family_of(session)
    return SessionNews(
        session_id=str(session["id"]),
        payment_link_id=str(session["payment_link"]) if session.get("payment_link") else None,
        payment_intent_id=str(intent) if intent else None,
        state=state,
        amount_cents=session.get("amount_total"),
        currency=session.get("currency"),
        at=at,
        family_checkout_id=family[0] if family else None,
        family_tenant_id=family[1] if family else None,
        method=method,
    )


def news_from_scanned_session(
    session: Mapping[str, Any], *, settled_later: bool = False
) -> SessionNews | None:
    """A session found by listing the account's sessions (no event): paid, or still awaiting;
    on one of our links or a family checkout. A settled bank debit reads paid like a card's:
    `settled_later` says Stripe still keeps its `checkout.session.async_payment_succeeded`."""
    if session.get("status") != SessionStatus.complete:
        return None
    if not session.get("payment_link") and family_of(session) is None:
        return None
    state = SessionState.paid if session.get("payment_status") in MONEY_ARRIVED else SessionState.awaiting
    return session_news(
        session, state, int(session["created"]), method_of(state, settled_later=settled_later)
    )
