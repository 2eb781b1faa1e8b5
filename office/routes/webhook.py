"""Stripe's webhook receiver: `POST /stripe/webhook` checks Stripe's signature, answers at once,
and applies the event after the answer, through the same code reconcile uses."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import stripe
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from office.deps import office_of
from paylinks.billing.mint import replace_spent_links
from paylinks.payments.ledger import ApplyResult, apply_event
from paylinks.settings import Settings

logger = logging.getLogger("paylinks.office")
router = APIRouter()

# Stripe's own default: a signature older than this is refused, so a captured request cannot be replayed later.
WEBHOOK_TOLERANCE_S = 300


def _refuse(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


@router.post("/stripe/webhook")
async def stripe_webhook(request: Request, background: BackgroundTasks) -> JSONResponse:
    """Stripe's news: checked, answered at once, applied after the answer."""
    office = office_of(request)
    secret = office.settings.stripe_webhook_secret
    if secret is None:
        # 503 rather than 2xx: Stripe keeps the event and retries once the secret is set.
        return _refuse(503, "webhooks are not configured here: set PAYLINKS_STRIPE_WEBHOOK_SECRET")
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    if not signature:
        return _refuse(400, "no Stripe-Signature header")
    try:
        stripe.Webhook.construct_event(
            payload, signature, secret.get_secret_value(), tolerance=WEBHOOK_TOLERANCE_S
        )
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError):
        return _refuse(400, "the signature does not match this payload, or is too old")
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        return _refuse(400, "not a Stripe event")
    background.add_task(apply_webhook_event, office.engine, office.settings, event)
    return JSONResponse({"received": event["id"]})


def apply_webhook_event(engine: Engine, settings: Settings, event: Mapping[str, Any]) -> None:
    """Apply one verified event with reconcile's own code; never raises (the answer has gone)."""
    try:
        # Idempotent on the event id: a retried delivery, or reconcile seeing it too, changes nothing.
        result = apply_event(engine, event, source="webhook", account=event.get("account"))
        if isinstance(result, ApplyResult) and result.remint:
            # A slow payment failed: its spent link is replaced now, so the next email can be paid.
            replace_spent_links(engine, settings, result.remint)
    except Exception as error:  # a malformed event must not take the office down; reconcile is the net
        logger.warning(
            "webhook event %s (%s) not applied: %s", event.get("id"), event.get("type"), type(error).__name__
        )
