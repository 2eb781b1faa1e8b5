"""A parent's "stop reminders" link, reached without logging in: the token in the url (random per
email, kept hashed) is the only key. GET shows a page asking (a mail scanner opening the link
changes nothing); POST stops reminders: the one click a mail program makes from the reminder's
`List-Unsubscribe` header (RFC 8058), or the page's button. The confirmation page can undo it.
Blasts the admin sends, resends a coach asks for and receipts still reach the parent."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from office.deps import NOT_FOUND, office_of
from paylinks.club.clock import club_zone, when_words
from paylinks.messaging.reminders import StopPage, set_opted_out, stop_page
from paylinks.vocabulary import OptOutHow

router = APIRouter()
ONE_CLICK = b"List-Unsubscribe=One-Click"


def _page(request: Request, token: str) -> StopPage:
    found = stop_page(office_of(request).engine, token)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


def _answer(request: Request, token: str, page: StopPage, just: str | None) -> Response:
    office = office_of(request)
    zone = club_zone(page.tenant.timezone, office.settings.club_timezone)
    return office.templates.TemplateResponse(
        request,
        "stop_reminders.html",
        {
            "user": None,
            "tenants": [],
            "club": page.tenant.name,
            "parent": page.parent_name,
            "stopped": page.opted_out_at is not None,
            "since": when_words(page.opted_out_at, zone) if page.opted_out_at else "",
            "just": just,
            "action": f"/r/{token}",
        },
    )


@router.get("/r/{token}")
def ask(request: Request, token: str) -> Response:
    return _answer(request, token, _page(request, token), None)


@router.post("/r/{token}")
async def stop(request: Request, token: str) -> Response:
    page = _page(request, token)
    body = await request.body()
    how = OptOutHow.one_click if ONE_CLICK in body else OptOutHow.page
    set_opted_out(office_of(request).engine, page.tenant, page.parent_id, how)
    return _answer(request, token, _page(request, token), "stopped")


@router.post("/r/{token}/resume")
def resume(request: Request, token: str) -> Response:
    page = _page(request, token)
    set_opted_out(office_of(request).engine, page.tenant, page.parent_id, None)
    return _answer(request, token, _page(request, token), "resumed")
