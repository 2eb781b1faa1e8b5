"""The admin's People page: everyone with a role in the club, their role and whether they can log
in; disable or enable an account, reset a password (a one-time password, shown once on the page
that answers), revoke someone's API tokens. Every action is audited (`paylinks.access.people`)
and takes effect at the person's next request."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData

from office.deps import NOT_FOUND, Access, RowId, checked_form, office_of, render, tenant_access
from paylinks.access import people
from paylinks.access.accounts import AccountError

router = APIRouter()


def people_page(
    request: Request,
    access: Access,
    *,
    notice: str | None = None,
    error: str | None = None,
    one_time_password: tuple[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with office_of(request).engine.connect() as connection:
        listed = people.people_of(connection, access.tenant)
    response = render(
        request,
        "people.html",
        status_code=status_code,
        access=access,
        people=listed,
        notice=notice,
        error=error,
        one_time_password=one_time_password,
    )
    response.headers["cache-control"] = "no-store"  # a one-time password must not stay in a cache
    return response


@router.get("/t/{slug}/people", response_class=HTMLResponse)
def people_list(request: Request, access: Access = Depends(tenant_access)) -> HTMLResponse:
    access.require_admin()
    return people_page(request, access)


def _act(
    request: Request, access: Access, user_id: int, change: Callable[[Connection, people.Person], str]
) -> HTMLResponse:
    """Do `change` to one of the tenant's people (404 for anyone else); the page again, saying what
    was done, or why it was not."""
    access.require_admin()
    try:
        with office_of(request).engine.begin() as connection:
            person = people.person_in(connection, access.tenant, user_id)
            if person is None:
                raise HTTPException(404, NOT_FOUND)
            notice = change(connection, person)
    except AccountError as refusal:
        return people_page(request, access, error=f"Nothing was changed: {refusal}.", status_code=409)
    return people_page(request, access, notice=notice)


@router.post("/t/{slug}/people/{user_id}/disable", response_class=HTMLResponse)
def disable(
    request: Request,
    user_id: RowId,
    _: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> HTMLResponse:
    visitor = access.visitor

    def change(connection: Connection, person: people.Person) -> str:
        people.disable_user(connection, person.user_id, actor=visitor.actor, acting=visitor.user)
        return f"{person.email} can no longer log in: they were logged out and their API tokens stopped."

    return _act(request, access, user_id, change)


@router.post("/t/{slug}/people/{user_id}/enable", response_class=HTMLResponse)
def enable(
    request: Request,
    user_id: RowId,
    _: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> HTMLResponse:
    visitor = access.visitor

    def change(connection: Connection, person: people.Person) -> str:
        people.enable_user(connection, person.user_id, actor=visitor.actor, acting=visitor.user)
        return f"{person.email} can log in again."

    return _act(request, access, user_id, change)


@router.post("/t/{slug}/people/{user_id}/revoke-tokens", response_class=HTMLResponse)
def revoke_tokens(
    request: Request,
    user_id: RowId,
    _: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> HTMLResponse:
    def change(connection: Connection, person: people.Person) -> str:
        count = people.revoke_tokens_in(connection, person.user_id, access.tenant, actor=access.visitor.actor)
        if count == 0:
            return f"{person.email} had no API token for this club."
        return (
            f"{count} API token{'s' if count != 1 else ''} of {person.email} revoked: they stop working now."
        )

    return _act(request, access, user_id, change)


@router.post("/t/{slug}/people/{user_id}/reset-password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    user_id: RowId,
    _: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> HTMLResponse:
    access.require_admin()
    visitor = access.visitor
    try:
        with office_of(request).engine.begin() as connection:
            person = people.person_in(connection, access.tenant, user_id)
            if person is None:
                raise HTTPException(404, NOT_FOUND)
            issued = people.reset_password(
                connection, person.user_id, actor=visitor.actor, acting=visitor.user
            )
    except AccountError as refusal:
        return people_page(request, access, error=f"Nothing was changed: {refusal}.", status_code=409)
    return people_page(
        request,
        access,
        notice=f"{issued[0]} was logged out; their first login with this password asks for a new one.",
        one_time_password=issued,
    )
