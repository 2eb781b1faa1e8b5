"""The office's machine endpoints: the admin endpoint of the original requirement, and Stripe's
webhook receiver.

`POST /admin/email/outstanding-balance` takes a Bearer API token with the admin role and starts
the outstanding-balance flow (202 with the run's id and its Prefect UI link). `POST
/stripe/webhook` checks Stripe's signature, answers at once, and applies the event after the
answer, through the same code reconcile uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import stripe
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from office.deps import Office
from office.runs import start_blast
from office.security import client_address
from paylinks.access import accounts, audit
from paylinks.access.audit import Actor
from paylinks.club.tenants import tenant_from_row
from paylinks.params import normalized_email
from paylinks.settings import Settings
from paylinks.store.tables import tenants
from paylinks.vocabulary import AuditAction, Role

logger = logging.getLogger("paylinks.office")
router = APIRouter()

# Stripe's own default: a signature older than this is refused, so a captured request cannot be replayed later.
WEBHOOK_TOLERANCE_S = 300
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no", "")


def _refuse(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


@router.post("/admin/email/outstanding-balance", status_code=202)
def outstanding_balance_endpoint(request: Request) -> JSONResponse:
    """Start the outstanding-balance email for the token's tenant. Query parameters: `test_email`,
    `send` (true/false), `blast_key`, and `tenant` when the token holds several tenants."""
    office: Office = request.app.state.office
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(
            401, "an API token is required: Authorization: Bearer <token>", **{"www-authenticate": "Bearer"}
        )
    with office.engine.begin() as connection:
        holder = accounts.token_holder(connection, token.strip())
    if holder is None:
        return _refuse(
            401, "this API token is not valid (unknown or revoked)", **{"www-authenticate": "Bearer"}
        )

    params = request.query_params
    slug = params.get("tenant")
    with office.engine.connect() as connection:
        if slug:
            row = connection.execute(sa.select(tenants).where(tenants.c.slug == slug)).mappings().first()
        elif len(holder.tenant_ids) == 1:
            (only,) = holder.tenant_ids
            row = connection.execute(sa.select(tenants).where(tenants.c.id == only)).mappings().first()
        else:
            return _refuse(422, "this token acts for several tenants: name one with tenant=SLUG")
    if row is None or row["id"] not in holder.tenant_ids or holder.user.role_in(row["id"]) is None:
        return _refuse(404, "no such tenant for this token")
    tenant = tenant_from_row(row)
    if holder.user.role_in(tenant.id) != Role.admin:
        return _refuse(403, f"the token's holder is not an admin of {tenant.slug}")

    unknown = set(params) - {"tenant", "test_email", "send", "blast_key"}
    if unknown:
        return _refuse(
            422,
            f"unknown parameter(s): {', '.join(sorted(unknown))}; use test_email, send, blast_key, tenant",
        )
    test_email: str | None = None
    if params.get("test_email"):
        try:
            test_email = normalized_email(params["test_email"])
        except ValueError as error:
            return _refuse(422, f"test_email: {error}")
    send_word = params.get("send", "").strip().lower()
    if send_word not in TRUE_WORDS + FALSE_WORDS:
        return _refuse(422, "send must be true or false")
    send = send_word in TRUE_WORDS
    if test_email and send:
        return _refuse(
            422, "choose test_email (one sample to that address) or send=true (every parent), not both"
        )
    blast_key = params.get("blast_key") or None
    if blast_key is not None and len(blast_key) > 150:
        return _refuse(422, "blast_key must be at most 150 characters")

    started = start_blast(
        office.settings, tenant=tenant.slug, test_email=test_email, send=send, blast_key=blast_key
    )
    action = (
        AuditAction.blast_send
        if send
        else AuditAction.blast_test
        if test_email
        else AuditAction.blast_preview
    )
    what = "send to every parent" if send else f"test email to {test_email}" if test_email else "preview"
    actor = Actor(
        holder.user.id, holder.user.email, client_address(request, office.settings.office_behind_proxy)
    )
    with office.engine.begin() as connection:
        audit.record(
            connection,
            actor,
            action,
            tenant.id,
            f"outstanding-balance {what} started with API token #{holder.token_id}"
            + (f", blast key {blast_key}" if blast_key else "")
            + f": run {started.flow_run_id}",
        )
    return JSONResponse({"flow_run_id": str(started.flow_run_id), "ui_url": started.ui_url}, status_code=202)


@router.post("/stripe/webhook")
async def stripe_webhook(request: Request, background: BackgroundTasks) -> JSONResponse:
    """Stripe's news: checked, answered at once, applied after the answer."""
    office: Office = request.app.state.office
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
    from paylinks.billing.mint import replace_spent_links
    from paylinks.payments.ledger import ApplyResult, apply_event

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
