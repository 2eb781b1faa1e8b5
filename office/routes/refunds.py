"""Money settled by a person outside Stripe, admins only: a refund due resolved (given back by
hand, or kept as credit), and a bill marked paid offline (cash, cheque or other)."""

from __future__ import annotations

import logging
from contextlib import closing

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from office.deps import NOT_FOUND, Access, RowId, checked_form, field, office_of, see_other, tenant_access
from office.routes.coach import player_response
from paylinks.club import office as club_office
from paylinks.errors import PaylinksError
from paylinks.messaging.receipts import family_page_url, send_offline_receipt
from paylinks.payments import offline as offline_payments
from paylinks.runtime import mail_transport
from paylinks.stripe_api.gateway import StripeGateway
from paylinks.vocabulary import PaidMethod, RefundResolution

logger = logging.getLogger("paylinks.office")
router = APIRouter()

# What a person may say became of a refund due; "refunded at Stripe" is reconcile's to find.
BY_A_PERSON = (RefundResolution.refunded_by_hand, RefundResolution.kept_as_credit)


def resolution_named(word: str) -> RefundResolution | None:
    """The resolution the form names, by its code or by the words a person reads; None for any other."""
    return next(
        (resolution for resolution in BY_A_PERSON if word in (resolution.value, resolution.label)), None
    )


@router.post("/t/{slug}/refunds/{payment_id}/resolve")
def resolve_refund(
    request: Request,
    payment_id: RowId,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    access.require_admin()
    resolution = resolution_named(field(form, "resolution"))
    if resolution is None:
        raise HTTPException(422, "Choose how it was resolved: refunded by hand, or kept as credit.")
    with office_of(request).engine.begin() as connection:
        entry_id = club_office.resolve_refund(
            connection,
            access.tenant,
            payment_id,
            resolution,
            field(form, "note", 1000),
            actor=access.visitor.actor,
        )
    if entry_id is None:
        raise HTTPException(404, NOT_FOUND)
    return see_other(f"/t/{access.tenant.slug}/admin?done={entry_id}#refunds")


@router.post("/t/{slug}/refunds/{payment_id}/pick")
def pick_refunded_items(
    request: Request,
    payment_id: RowId,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    """Money refunded at Stripe that matched no single set of items: the admin ticks the items
    it was for (their money went back, in full)."""
    access.require_admin()
    row_ids = sorted({int(v) for v in form.getlist("item") if isinstance(v, str) and v.isdigit()})
    if not row_ids:
        raise HTTPException(422, "Tick the items the refund was for.")
    with office_of(request).engine.begin() as connection:
        entry_id = club_office.pick_refunded_items(
            connection, access.tenant, payment_id, row_ids, actor=access.visitor.actor
        )
    if entry_id is None:
        raise HTTPException(
            422,
            "Those items do not fit the refund: tick items whose amounts add up to at most what was refunded.",
        )
    return see_other(f"/t/{access.tenant.slug}/admin?done={entry_id}#refunds")


@router.post("/t/{slug}/rows/{row_id}/paid-offline")
def mark_paid_offline(
    request: Request,
    row_id: RowId,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    office = office_of(request)
    player_id = offline_payments.row_player(office.engine, access.tenant, row_id)
    if player_id is None:
        raise HTTPException(404, NOT_FOUND)  # another tenant's row: 404 whatever the role
    access.require_admin()
    try:
        method = PaidMethod(field(form, "method"))
    except ValueError:
        method = None
    if method not in offline_payments.OFFLINE_METHODS:
        return player_response(
            request,
            access,
            player_id,
            error="Choose how it was paid: cash, cheque or other.",
            status_code=422,
        )
    try:
        done = offline_payments.mark_paid_offline(
            office.engine,
            lambda: StripeGateway(office.settings, account=access.tenant.stripe_account),
            access.tenant,
            row_id,
            method,
            field(form, "note", 1000),
            actor=access.visitor.actor,
        )
    except offline_payments.UnknownRowError:
        raise HTTPException(404, NOT_FOUND) from None
    except PaylinksError as error:
        return player_response(request, access, player_id, error=f"Not marked paid: {error}", status_code=409)
    try:  # the parent's receipt; the bill is marked paid whatever becomes of the mail
        with closing(mail_transport(office.settings)) as transport:
            send_offline_receipt(
                office.engine,
                office.settings,
                transport,
                access.tenant,
                done.row_id,
                done.audit_id,
                done.method,
                family_url=family_page_url(office.settings),
            )
    except Exception as error:
        logger.warning("receipt for item #%s not sent: %s", done.row_id, type(error).__name__)
    return see_other(f"/t/{access.tenant.slug}/players/{player_id}?done={done.audit_id}")
