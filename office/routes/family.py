"""The family's page: `GET /f/<token>` (public, no login: the token is the key) shows a parent every
child's bills as the club's data stands now; `POST /f/<token>/checkout` pays the chosen ones in one
Stripe Checkout Session (303 to it). Also what the club's people see of it: the preview a test
email links to, and the player card's family link with its rotation (admins).

Nothing here logs, stores or repeats a token; an unknown or rotated one is a plain 404. Every
answer of a family page is `noindex`, `no-store` and `Referrer-Policy: no-referrer`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.utils import parseaddr
from typing import Any, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from office.deps import (
    NOT_FOUND,
    Access,
    Office,
    RowId,
    Visitor,
    checked_form,
    office_of,
    see_other,
    signed_in,
    tenant_access,
)
from paylinks.access import accounts
from paylinks.club.clock import club_zone, when_words
from paylinks.club.tenants import Tenant, tenant_from_row
from paylinks.errors import ConfigurationError, PaylinksError, StripeKeyRejectedError
from paylinks.family import checkout as family_checkout
from paylinks.family.page import (
    CheckoutProgress,
    FamilyItem,
    FamilyPage,
    ItemState,
    checkout_progress,
    family_page,
)
from paylinks.family.secret import family_secret
from paylinks.family.tokens import FamilyKey, family_path, find_family, rotate_family_token
from paylinks.messaging.prepare import preview_link
from paylinks.messaging.render import brand_colors
from paylinks.store.tables import parents, tenants
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.stripe_api.where import stripe_where

logger = logging.getLogger("paylinks.office.family")
router = APIRouter()

MAX_BILLS_IN_FORM = 1000  # far above any family's bills; bounds the work one request can ask for
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def family_headers(office: Office) -> dict[str, str]:
    """What every family page answer carries: not indexed, not kept, no referrer (the token is in
    the address), and a policy that lets the form go on to Stripe's checkout."""
    targets = ["'self'", STRIPE_CHECKOUT_ORIGIN]
    if office.settings.stripe_api_base:  # the local emulator's pay pages
        parts = urlsplit(office.settings.stripe_api_base)
        targets.append(f"{parts.scheme}://{parts.netloc}")
    return {
        "x-robots-tag": "noindex, nofollow",
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "content-security-policy": (
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
            f"frame-ancestors 'none'; form-action {' '.join(targets)}; base-uri 'none'; object-src 'none'"
        ),
    }


def _not_found(office: Office) -> HTMLResponse:
    """A plain 404: it says nothing of whether the page ever existed."""
    return HTMLResponse(
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name=robots content=noindex>"
        "<meta name=viewport content='width=device-width, initial-scale=1'><title>Not found</title></head>"
        "<body><h1>Not found</h1><p>There is no page at this address.</p></body></html>",
        status_code=404,
        headers=family_headers(office),
    )


def _family(office: Office, token: str) -> tuple[Tenant, FamilyKey] | None:
    secret = family_secret(office.settings)
    with office.engine.connect() as connection:
        key = find_family(connection, secret, token)
        if key is None:
            return None
        row = connection.execute(sa.select(tenants).where(tenants.c.id == key.tenant_id)).mappings().first()
    return (tenant_from_row(row), key) if row is not None else None


def _stripe(office: Office, tenant: Tenant) -> tuple[StripeGateway, StripeContext]:
    """The tenant's gateway, and where its key acts as Stripe confirmed it lately (the backfill's
    trust window, `PAYLINKS_STRIPE_ACCOUNT_RECHECK_MINUTES`): a parent's page asks Stripe nothing
    most of the time."""
    settings = office.settings
    gateway = StripeGateway(settings, account=tenant.stripe_account)
    trust = timedelta(minutes=settings.stripe_account_recheck_minutes)
    return gateway, stripe_where(office.engine, gateway, settings, trust_for=trust)


def _unavailable(
    request: Request, office: Office, tenant: Tenant, error: Exception, back: str | None = None
) -> HTMLResponse:
    """Payments cannot be shown or started now: the parent reads what to do; the office's log says why."""
    if isinstance(error, ConfigurationError | StripeKeyRejectedError):
        logger.error("family page of tenant %s: %s", tenant.slug, error)
    else:
        logger.warning("family page of tenant %s: %s", tenant.slug, error)
    status, title = 503, "Payments are not available right now"
    detail = (
        "Nothing was charged. Please try again in a few minutes; if it keeps happening, "
        f"write to {_reply_to(tenant)}."
    )
    if isinstance(error, family_checkout.StripeRefusedCheckout):
        status, title = 422, "These items cannot be paid together"
        detail = (
            "Stripe could not start one checkout for them, and nothing was charged. Please pay them "
            f"with their own Pay Now links, or write to {_reply_to(tenant)}."
        )
    return _render(
        request,
        office,
        "family_unavailable.html",
        status_code=status,
        tenant=tenant,
        title=title,
        detail=detail,
        back=back,
    )


def _reply_to(tenant: Tenant) -> str:
    return parseaddr(tenant.reply_to_email)[1] or tenant.reply_to_email


def _render(
    request: Request, office: Office, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    tenant: Tenant = context["tenant"]
    color, text_color = brand_colors(tenant.brand_color)
    logo = tenant.logo_url if (tenant.logo_url or "").startswith("https://") else None
    zone = club_zone(tenant.timezone, office.settings.club_timezone)
    return office.templates.TemplateResponse(
        request,
        template,
        {
            "brand_color": color,
            "brand_text_color": text_color,
            "logo_url": logo,
            "currency": tenant.currency,
            "reply_to_address": _reply_to(tenant),
            "when": lambda moment: when_words(moment, zone),
            "states": ItemState,
            "bill_value": family_checkout.form_value,
            **context,
        },
        status_code=status_code,
        headers=family_headers(office),
    )


def _page(
    request: Request,
    office: Office,
    token: str,
    page: FamilyPage,
    *,
    status_code: int = 200,
    progress: CheckoutProgress | None = None,
    problems: list[str] | None = None,
    error: str | None = None,
) -> HTMLResponse:
    return _render(
        request,
        office,
        "family.html",
        status_code=status_code,
        tenant=page.tenant,
        page=page,
        preview=False,
        form_action=f"{family_path(token)}/checkout",
        together_ids={item.row_id for item in page.payable_together},
        pay_now=lambda item: item.url,
        progress=progress,
        problems=problems or [],
        error=error,
    )


@router.get("/f/{token}", response_class=HTMLResponse, include_in_schema=False)
def family_home(request: Request, token: str, paid: str = "") -> Response:
    office = office_of(request)
    found = _family(office, token)
    if found is None:
        return _not_found(office)
    tenant, key = found
    try:
        _, context = _stripe(office, tenant)
        with office.engine.connect() as connection:
            page = family_page(connection, tenant, key.parent_id, context)
            progress = None
            if paid.isdigit() and len(paid) < 10:
                progress = checkout_progress(connection, tenant, key.parent_id, int(paid))
    except PaylinksError as error:
        return _unavailable(request, office, tenant, error)
    if page is None:
        return _not_found(office)
    return _page(request, office, token, page, progress=progress)


async def family_form(request: Request) -> FormData:
    """The posted form (no CSRF token: the page's address is the key, and pressing the button
    only opens a checkout the parent still has to pay)."""
    return await request.form(max_fields=MAX_BILLS_IN_FORM * 2 + 10)


@router.post("/f/{token}/checkout", include_in_schema=False)
def family_pay(request: Request, token: str, form: FormData = Depends(family_form)) -> Response:
    office = office_of(request)
    found = _family(office, token)
    if found is None:
        return _not_found(office)
    tenant, key = found
    field_name = "shown" if form.get("pay") == "all" else "bill"
    chosen = [
        bill
        for value in form.getlist(field_name)[:MAX_BILLS_IN_FORM]
        if isinstance(value, str) and (bill := family_checkout.ChosenBill.parse(value)) is not None
    ]
    page_url = office.settings.office_url.rstrip("/") + family_path(token)
    try:
        gateway, context = _stripe(office, tenant)
        outcome = family_checkout.start_checkout(
            office.engine, gateway, tenant, key.parent_id, context, chosen, page_url=page_url
        )
    except family_checkout.NothingChosen as error:
        return _again(
            request, office, token, tenant, key, error=f"{str(error).capitalize()}.", status_code=422
        )
    except PaylinksError as error:
        return _unavailable(request, office, tenant, error, back=family_path(token))
    if isinstance(outcome, family_checkout.CheckoutRefused):
        problems = [family_checkout.describe_not_offered(p, tenant.currency) for p in outcome.not_offered]
        return _again(request, office, token, tenant, key, problems=problems, status_code=409)
    if outcome.paid or not outcome.url:
        return RedirectResponse(
            f"{family_path(token)}?paid={outcome.family_checkout_id}",
            status_code=303,
            headers=family_headers(office),
        )
    return RedirectResponse(outcome.url, status_code=303, headers=family_headers(office))


def _again(
    request: Request,
    office: Office,
    token: str,
    tenant: Tenant,
    key: FamilyKey,
    *,
    status_code: int,
    problems: list[str] | None = None,
    error: str | None = None,
) -> Response:
    """The page as it stands now, saying why nothing was charged."""
    try:
        _, context = _stripe(office, tenant)
        with office.engine.connect() as connection:
            page = family_page(connection, tenant, key.parent_id, context)
    except PaylinksError as failure:
        return _unavailable(request, office, tenant, failure)
    if page is None:
        return _not_found(office)
    return _page(request, office, token, page, status_code=status_code, problems=problems, error=error)


# -- what the club's people see ------------------------------------------------------------------


@router.get("/preview/family/{parent_id}", response_class=HTMLResponse)
def family_preview(request: Request, parent_id: RowId, visitor: Visitor = Depends(signed_in)) -> Response:
    """Where a test email's family link leads: the parent's page as they would see it, nothing
    payable. Only someone with a role in the parent's tenant sees it; anyone else gets 404."""
    office = office_of(request)
    with office.engine.connect() as connection:
        tenant_id = connection.execute(
            sa.select(parents.c.tenant_id).where(parents.c.id == parent_id)
        ).scalar()
        yours = {t.id: t for t in accounts.tenants_of(connection, visitor.user)}
    if tenant_id is None or tenant_id not in yours:
        raise HTTPException(404, NOT_FOUND)
    tenant = yours[tenant_id]
    try:
        _, context = _stripe(office, tenant)
        with office.engine.connect() as connection:
            page = family_page(connection, tenant, parent_id, context)
    except PaylinksError as error:
        return _unavailable(request, office, tenant, error)
    if page is None:
        raise HTTPException(404, NOT_FOUND)
    return _render(
        request,
        office,
        "family.html",
        tenant=tenant,
        page=page,
        preview=True,
        form_action="#",
        together_ids={item.row_id for item in page.payable_together},
        pay_now=lambda item: preview_link(office.settings.office_url, cast(FamilyItem, item).row_id),
        progress=None,
        problems=[],
        error=None,
    )


@router.post("/t/{slug}/players/{player_id}/parents/{parent_id}/family-link")
def rotate_family_link(
    request: Request,
    player_id: RowId,
    parent_id: RowId,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    """A new address for the parent's family page (admins): the old one is a 404 at once."""
    access.require_admin()
    office = office_of(request)
    secret = family_secret(office.settings)
    with office.engine.begin() as connection:
        rotated = rotate_family_token(connection, secret, access.tenant.id, parent_id, access.visitor.actor)
    if rotated is None:
        raise HTTPException(404, NOT_FOUND)
    return see_other(f"/t/{access.tenant.slug}/players/{player_id}?done={rotated.audit_entry_id}")
