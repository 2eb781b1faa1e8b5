"""The coach's pages: the home page, search (answered as they type), the player card, resending a
player's links (to the parents, or to one address typed in), and where a test email's Pay Now
buttons lead. A coach and an admin of the tenant both see them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from office.deps import (
    NOT_FOUND,
    Access,
    DoneId,
    RowId,
    Visitor,
    checked_form,
    field,
    office_of,
    render,
    see_other,
    signed_in,
    tenant_access,
)
from office.runs import run_flow_in_process
from paylinks.access import accounts, audit
from paylinks.club import office as club_office
from paylinks.errors import PaylinksError
from paylinks.messaging.reports import ResendOutcome, ResendReport
from paylinks.money import format_money
from paylinks.params import normalized_email
from paylinks.vocabulary import AuditAction, PaidMethod, Role

router = APIRouter()


@router.get("/")
def home(request: Request, visitor: Visitor = Depends(signed_in)) -> Response:
    with office_of(request).engine.connect() as connection:
        yours = accounts.tenants_of(connection, visitor.user)
    if len(yours) == 1:
        return see_other(f"/t/{yours[0].slug}")
    return render(request, "home.html", user=visitor.user)


@router.get("/t/{slug}", response_class=HTMLResponse)
def tenant_home(request: Request, q: str = "", access: Access = Depends(tenant_access)) -> HTMLResponse:
    return render(request, "search.html", access=access, result=_search(request, access, q))


@router.get("/t/{slug}/players", response_class=HTMLResponse)
def search(
    request: Request, q: str = "", fragment: bool = False, access: Access = Depends(tenant_access)
) -> Response:
    result = _search(request, access, q)
    if fragment:  # answered as they type: only the list, swapped in by office.js
        return render(request, "_results.html", access=access, result=result)
    return render(request, "search.html", access=access, result=result)


def _search(request: Request, access: Access, q: str) -> club_office.SearchResult:
    with office_of(request).engine.connect() as connection:
        return club_office.search_players(connection, access.tenant, q)


@router.get("/t/{slug}/players/{player_id}", response_class=HTMLResponse)
def player_page(
    request: Request, player_id: RowId, done: DoneId = None, access: Access = Depends(tenant_access)
) -> HTMLResponse:
    notice = None
    if done is not None:
        with office_of(request).engine.connect() as connection:
            # Only the viewer's own action: another person's entry (a one-time password issued, a
            # test send) is not theirs to read.
            entry = audit.entry(connection, access.tenant.id, done, by_user_id=access.visitor.user.id)
        notice = entry.detail if entry is not None else None
    return player_response(request, access, player_id, notice=notice)


def player_response(
    request: Request,
    access: Access,
    player_id: int,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    to: str = "",
) -> HTMLResponse:
    """The player card, with a notice or an error above it (the player's forms answer with it)."""
    with office_of(request).engine.connect() as connection:
        card = club_office.player_card(connection, access.tenant, player_id)
    if card is None:
        raise HTTPException(404, NOT_FOUND)
    return render(
        request,
        "player.html",
        status_code=status_code,
        access=access,
        card=card,
        notice=notice,
        error=error,
        to=to,
        currency=access.tenant.currency,
        methods=[PaidMethod.cash, PaidMethod.cheque, PaidMethod.other],
    )


@router.post("/t/{slug}/players/{player_id}/resend")
def resend(
    request: Request,
    player_id: RowId,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    from flows.resend_payment_link import resend_payment_link  # loads Prefect: on first use only

    office = office_of(request)
    with office.engine.connect() as connection:
        card = club_office.player_card(connection, access.tenant, player_id)
    if card is None:
        raise HTTPException(404, NOT_FOUND)
    to_typed = field(form, "to", 320)
    to: str | None = None
    if to_typed:
        try:
            to = normalized_email(to_typed)
        except ValueError as error:
            return player_response(request, access, player_id, error=str(error), status_code=422, to=to_typed)
    parameters = {"tenant": access.tenant.slug, "player": str(player_id), "to": to, "dry_run": False}
    try:
        run_id, report = run_flow_in_process(
            office.settings, resend_payment_link, parameters, started_by=access.visitor.user.id
        )
        sentence = describe_resend(report, access.tenant.currency)
    except PaylinksError as error:
        run_id, sentence = None, f"Nothing sent: {error}"
    except Exception as error:  # the run failed; Prefect recorded it
        run_id, sentence = (
            None,
            f"Nothing sent: the run failed ({type(error).__name__}); the engineer can see why in Prefect.",
        )
    detail = f"{card.name} (player #{player_id}): {sentence}" + (f" Run {run_id}." if run_id else "")
    with office.engine.begin() as connection:
        entry_id = audit.record(
            connection,
            access.visitor.actor,
            AuditAction.send_to_address if to else AuditAction.resend,
            access.tenant.id,
            detail,
        )
    return see_other(f"/t/{access.tenant.slug}/players/{player_id}?done={entry_id}")


def describe_resend(report: ResendReport, currency: str) -> str:
    """The resend's report in words: what was sent, to whom, and when (one clause per parent)."""
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if report.nothing_owed:
        return "Nothing sent: nothing is owed for this player right now."
    clauses = []
    for parent in report.parents:
        count = parent.email.item_count
        items = f"{count} open item{'s' if count != 1 else ''} ({format_money(parent.email.total_cents, currency)} in all)"
        if parent.outcome is ResendOutcome.sent:
            clauses.append(f"Sent {items} to {parent.recipient}")
        elif parent.outcome is ResendOutcome.unreachable:
            clauses.append(
                f"Nothing sent to {parent.parent_name}: no email on file (use “Send to another address”)"
            )
        elif parent.outcome is ResendOutcome.failed:
            clauses.append(f"Not sent to {parent.recipient}: {parent.error or 'the mail server refused it'}")
        else:
            clauses.append(f"{parent.outcome.label.capitalize()}: {items} for {parent.parent_name}")
    sentence = "; ".join(clauses) + f" at {at}."
    if report.held_back:
        sentence += (
            f" {len(report.held_back)} item(s) held back: "
            + "; ".join(f"{item.description} ({item.reason.label})" for item in report.held_back)
            + "."
        )
    return sentence


@router.get("/preview/payment-links/{row_id}", response_class=HTMLResponse)
def link_preview_page(request: Request, row_id: RowId, visitor: Visitor = Depends(signed_in)) -> HTMLResponse:
    """Where a test email's Pay Now buttons lead: the bill it names, and no way to pay it.

    Only someone with a role in the row's tenant sees it; anyone else gets 404."""
    with office_of(request).engine.connect() as connection:
        for tenant in accounts.tenants_of(connection, visitor.user):
            preview = club_office.link_preview(connection, tenant, row_id)
            if preview is not None:
                # tenants_of gives only tenants the user holds a role in.
                access = Access(visitor, tenant, cast(Role, visitor.user.role_in(tenant.id)))
                return render(request, "preview.html", access=access, preview=preview)
    raise HTTPException(404, NOT_FOUND)
