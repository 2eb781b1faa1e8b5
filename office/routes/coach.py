"""The coach's pages: the home page, search (answered as they type), the player card, resending a
player's links (to the parents, or to one address typed in), and where a test email's Pay Now
buttons lead. A coach and an admin of the tenant both see them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from office.deps import (
    NOT_FOUND,
    Access,
    DoneId,
    Failure,
    Office,
    RowId,
    Visitor,
    checked_form,
    failure_of,
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
from paylinks.club.clock import club_zone, now_utc, when_words
from paylinks.errors import ConfigurationError
from paylinks.family.links import family_links
from paylinks.messaging.reports import ResendOutcome, ResendReport
from paylinks.money import format_money
from paylinks.params import normalized_email
from paylinks.vocabulary import AuditAction, PaidMethod, Role

router = APIRouter()


@router.get("/")
def home(request: Request, visitor: Visitor = Depends(signed_in)) -> Response:
    with office_of(request).engine.connect() as connection:
        yours = accounts.tenants_of(connection, visitor.user)
    if len(yours) == 1:  # straight to their job: an admin to the balances, a coach to the search
        (only,) = yours
        return see_other(
            f"/t/{only.slug}/admin" if visitor.user.role_in(only.id) == Role.admin else f"/t/{only.slug}"
        )
    admin_of = {t.id for t in yours if visitor.user.role_in(t.id) == Role.admin}
    return render(request, "home.html", user=visitor.user, admin_of=admin_of)


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
    from paylinks.messaging.reminders import parent_reminders, player_due_words

    office = office_of(request)
    with office.engine.connect() as connection:
        card = club_office.player_card(connection, access.tenant, player_id)
        news = club_office.stripe_news_age(connection, access.tenant)
        if card is not None:
            # Each open bill's due state, and each parent's reminders (last one, count, stopped?).
            due = player_due_words(
                connection, access.tenant, player_id, office.settings.club_timezone, now_utc()
            )
            reminders = {
                p.parent_id: parent_reminders(connection, access.tenant, p.parent_id) for p in card.parents
            }
    if card is None:
        raise HTTPException(404, NOT_FOUND)
    links, links_missing = _family_links(office, access, [p.parent_id for p in card.parents])
    return render(
        request,
        "player.html",
        status_code=status_code,
        access=access,
        card=card,
        news=news,
        notice=notice,
        error=error,
        to=to,
        currency=access.tenant.currency,
        methods=[PaidMethod.cash, PaidMethod.cheque, PaidMethod.other],
        family_links=links,
        family_links_missing=links_missing,
        due=due,
        reminders=reminders,
    )


def _family_links(office: Office, access: Access, parent_ids: list[int]) -> tuple[dict[int, str], str | None]:
    """Each parent's family page address (made on first need), or why there is none."""
    if not parent_ids:
        return {}, None
    try:
        with office.engine.begin() as connection:
            return family_links(connection, office.settings, access.tenant.id, parent_ids), None
    except ConfigurationError as error:
        return {}, str(error)


@router.post("/t/{slug}/players/{player_id}/parents/{parent_id}/reminders")
def parent_reminders_switch(
    request: Request,
    player_id: RowId,
    parent_id: RowId,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    """An admin stops a parent's reminders, or lets them resume (a parent who asked to stop)."""
    from paylinks.messaging.reminders import set_opted_out
    from paylinks.vocabulary import OptOutHow

    access.require_admin()
    office = office_of(request)
    with office.engine.connect() as connection:
        card = club_office.player_card(connection, access.tenant, player_id)
    if card is None or parent_id not in {p.parent_id for p in card.parents}:
        raise HTTPException(404, NOT_FOUND)
    stop = field(form, "action") == "stop"
    set_opted_out(office.engine, access.tenant, parent_id, OptOutHow.admin if stop else None)
    name = next(p.name for p in card.parents if p.parent_id == parent_id)
    notice = f"{name} gets no reminders now." if stop else f"{name} gets reminders again."
    return player_response(request, access, player_id, notice=notice)


@router.post("/t/{slug}/players/{player_id}/resend")
def resend(
    request: Request,
    player_id: RowId,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    # Loads Prefect: on first use only.
    from flows.resend_payment_link import ResendFailedError, resend_payment_link

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
    zone = club_zone(access.tenant.timezone, office.settings.club_timezone)
    run_id = None
    try:
        run_id, report = run_flow_in_process(
            office.settings, resend_payment_link, parameters, started_by=access.visitor.user.id
        )
        words = describe_resend(report, access.tenant.currency, zone)
    except ResendFailedError as error:  # a parent's email was not delivered: the report says why
        if error.report is None:
            raise
        words = describe_resend(error.report, access.tenant.currency, zone)
    except Exception as error:  # the run failed (Prefect recorded it), or could not start
        failure = failure_of(office.settings, error) or Failure(
            502,
            "The run failed",
            f"The run failed ({type(error).__name__}); whoever runs the office can see why in Prefect.",
        )
        words = ResendWords(done="", problems=f"Nothing sent: {failure.detail}", status=failure.status)
    detail = f"{card.name}: " + " ".join(part for part in (words.done, words.problems) if part)
    with office.engine.begin() as connection:
        entry_id = audit.record(
            connection,
            access.visitor.actor,
            AuditAction.send_to_address if to else AuditAction.resend,
            access.tenant.id,
            detail + (f" Run {run_id}." if run_id else ""),
        )
    if words.problems:  # a failure is shown as one, on the card, never in the success style
        return player_response(
            request,
            access,
            player_id,
            notice=words.done or None,
            error=words.problems,
            status_code=words.status,
            to=to_typed,
        )
    return see_other(f"/t/{access.tenant.slug}/players/{player_id}?done={entry_id}")


@dataclass(frozen=True)
class ResendWords:
    """A resend in words: what was done (a notice) and what was not (an error), and the status the
    card answers with when something was not done."""

    done: str
    problems: str
    status: int = 200


def describe_resend(report: ResendReport, currency: str, zone: ZoneInfo) -> ResendWords:
    """The resend's report in words: what was sent, to whom, and when (one clause per parent);
    what could not be sent, apart."""
    at = when_words(now_utc(), zone)
    if report.nothing_owed:
        return ResendWords("Nothing sent: nothing is owed for this player right now.", "")
    done, problems = [], []
    unreachable_only = True
    for parent in report.parents:
        count = parent.email.item_count
        items = f"{count} open item{'s' if count != 1 else ''} ({format_money(parent.email.total_cents, currency)} in all)"
        if parent.outcome is ResendOutcome.sent:
            done.append(f"Sent {items} to {parent.recipient}")
        elif parent.outcome is ResendOutcome.unreachable:
            problems.append(
                f"Nothing sent to {parent.parent_name}: no email on file (use “Send to another address”)"
            )
        elif parent.outcome is ResendOutcome.failed:
            unreachable_only = False
            problems.append(f"Not sent to {parent.recipient}: {parent.error or 'the mail server refused it'}")
        else:
            done.append(f"{parent.outcome.label.capitalize()}: {items} for {parent.parent_name}")
    sentence = "; ".join(done) + f" at {at}." if done else ""
    if report.held_back:
        sentence += (
            f" {len(report.held_back)} item(s) held back: "
            + "; ".join(f"{item.description} ({item.reason.label})" for item in report.held_back)
            + "."
        )
    problem_words = "; ".join(problems) + "." if problems else ""
    if not unreachable_only:
        problem_words += (
            " Try again later; if it keeps failing, check the mail server the office sends through"
            " (PAYLINKS_SMTP_HOST and PAYLINKS_SMTP_PORT)."
        )
    status = 200 if done else (422 if unreachable_only else 503)
    return ResendWords(sentence.strip(), problem_words, status)


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
