"""Stripe's webhook receiver: `POST /stripe/webhook` checks Stripe's signature, answers at once,
and applies the event after the answer, through the same code reconcile uses."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextlib import closing
from typing import Any

import stripe
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from office.deps import office_of
from paylinks.billing.mint import replace_spent_links
from paylinks.messaging.receipts import family_page_url, send_due_receipts
from paylinks.payments.ledger import apply_event
from paylinks.payments.own_links import close_own_links
from paylinks.payments.transitions import ApplyResult
from paylinks.runtime import mail_transport
from paylinks.settings import Settings
from paylinks.stripe_api.gateway import StripeGateway

logger = logging.getLogger("paylinks.office")
router = APIRouter()

# Stripe's own default: a signature older than this is refused, so a captured request cannot be replayed
# later; one dated further ahead is refused too (a clock that far off, or a signature made to outlive it).
WEBHOOK_TOLERANCE_S = 300
STALE_OR_WRONG = (
    "the signature does not match this payload, or is dated more than five minutes from now (before or after)"
)


def _refuse(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


@router.post("/stripe/webhook")
async def stripe_webhook(request: Request, background: BackgroundTasks) -> JSONResponse:
    """Stripe's news: checked, answered at once, applied after the answer.

    The secret and the signature header are checked before a byte of the body is read; the body
    itself is capped by the office's BodyLimitMiddleware (413 past 1 MiB)."""
    office = office_of(request)
    secret = office.settings.stripe_webhook_secret
    if secret is None:
        # 503 rather than 2xx: Stripe keeps the event and retries once the secret is set.
        return _refuse(503, "webhooks are not configured here: set PAYLINKS_STRIPE_WEBHOOK_SECRET")
    signature = request.headers.get("stripe-signature")
    if not signature:
        return _refuse(400, "no Stripe-Signature header")
    payload = await request.body()
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret.get_secret_value(), tolerance=WEBHOOK_TOLERANCE_S
        )
    except (stripe.SignatureVerificationError, ValueError):  # ValueError: a body that is not UTF-8
        return _refuse(400, STALE_OR_WRONG)
    if abs(time.time() - signed_at(signature)) > WEBHOOK_TOLERANCE_S:  # dated in the future
        return _refuse(400, STALE_OR_WRONG)
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: arrays nested beyond what the parser follows
        return _refuse(400, "the body is not JSON: not a Stripe event")
    if not (
        isinstance(event, dict) and isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
    ):
        return _refuse(400, "not a Stripe event: a JSON object with an id and a type is expected")
    background.add_task(apply_webhook_event, office.engine, office.settings, event)
    return JSONResponse({"received": event["id"]})


def signed_at(signature: str) -> int:
    """The `t=` of a Stripe-Signature header Stripe's SDK has verified (so it has one, a number)."""
    stamps = [part.partition("=")[2] for part in signature.split(",") if part.partition("=")[0] == "t"]
    return int(stamps[0])


def apply_webhook_event(engine: Engine, settings: Settings, event: Mapping[str, Any]) -> None:
    """Apply one verified event with reconcile's own code; never raises (the answer has gone)."""
    try:
        # Idempotent on the event id: a retried delivery, or reconcile seeing it too, changes nothing.
        result = apply_event(engine, event, source="webhook", account=event.get("account"))
    except Exception as error:  # a malformed event must not take the office down; reconcile is the net
        logger.warning(
            "webhook event %s (%s) not applied: %s", event.get("id"), event.get("type"), type(error).__name__
        )
        return
    if isinstance(result, ApplyResult):
        follow_up(engine, settings, result, str(event.get("id")))


def send_receipts(engine: Engine, settings: Settings, payment_ids: list[int]) -> None:
    with closing(mail_transport(settings)) as transport:
        send_due_receipts(
            engine, settings, transport, payment_ids=payment_ids, family_url=family_page_url(settings)
        )


def follow_up(engine: Engine, settings: Settings, result: ApplyResult, event_id: str) -> None:
    """What an applied payment asks of Stripe and the mail, each on its own: whatever fails here
    (Stripe or the mail server out of reach) is left for the next reconcile, never lost."""
    steps = [
        # A family checkout took these bills: their own links stop taking payment now.
        lambda: (
            close_own_links(
                engine,
                lambda club: StripeGateway(settings, account=club.stripe_account),
                allocation_ids=result.close_links,
            )
            if result.close_links
            else None
        ),
        # A slow payment failed: its spent link is replaced now, so the next email can be paid.
        lambda: replace_spent_links(engine, settings, result.remint) if result.remint else None,
        # The parent's receipt, once (claimed in email_log; a failure stays due for reconcile).
        lambda: send_receipts(engine, settings, result.receipts) if result.receipts else None,
    ]
    for step in steps:
        try:
            step()
        except Exception as error:  # the event is applied; reconcile finishes what is left
            logger.warning(
                "after webhook event %s: %s (reconcile finishes it)", event_id, type(error).__name__
            )
