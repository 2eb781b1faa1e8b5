"""Logging in and out, and changing one's password (a one-time password must be replaced first)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from office.deps import (
    Visitor,
    checked_form,
    current_user,
    field,
    office_of,
    render,
    see_other,
    session_of,
    signed_in_any,
    visitor_address,
)
from office.security import Session
from paylinks.access import accounts
from paylinks.access.accounts import LoginThrottled

router = APIRouter()


def _safe_next(value: str) -> str:
    # Only a path on this site: never //evil.example or a full URL.
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), email="", error=None)


@router.post("/login")
def login(request: Request, form: FormData = Depends(checked_form)) -> Response:
    office = office_of(request)
    email = field(form, "email", 320)
    password = field(form, "password", 1000)
    next_path = _safe_next(field(form, "next") or "/")
    outcome = accounts.authenticate(office.engine, email, password, visitor_address(request), office.throttle)
    if isinstance(outcome, LoginThrottled):
        minutes = max(1, round(outcome.retry_after_s / 60))
        response = render(
            request,
            "login.html",
            status_code=429,
            next=next_path,
            email=email,
            error=f"Too many failed logins. Try again in about {minutes} minute(s).",
        )
        response.headers["retry-after"] = str(outcome.retry_after_s)
        return response
    if outcome is None:
        return render(
            request,
            "login.html",
            status_code=401,
            next=next_path,
            email=email,
            error="Wrong email or password.",
        )
    session_of(request).replace(session_of(request).session.logged_in(outcome.id, outcome.session_epoch))
    return see_other("/password" if outcome.password_is_temporary else next_path)


@router.post("/logout")
def logout(request: Request, form: FormData = Depends(checked_form)) -> Response:
    user = current_user(request)
    if user is not None:
        with office_of(request).engine.begin() as connection:
            accounts.end_sessions(connection, user)
    session_of(request).replace(Session.anonymous())
    return see_other("/login")


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, visitor: Visitor = Depends(signed_in_any)) -> HTMLResponse:
    return render(request, "password.html", user=visitor.user, error=None)


@router.post("/password")
def change_password(
    request: Request, form: FormData = Depends(checked_form), visitor: Visitor = Depends(signed_in_any)
) -> Response:
    new = field(form, "new_password", 1000)
    if new != field(form, "confirm_password", 1000):
        return render(request, "password.html", 422, user=visitor.user, error="The two new passwords differ.")
    try:
        with office_of(request).engine.begin() as connection:
            user = accounts.change_password(
                connection, visitor.user, field(form, "current_password", 1000), new, actor=visitor.actor
            )
    except accounts.AccountError as error:
        return render(request, "password.html", 422, user=visitor.user, error=f"{str(error).capitalize()}.")
    session_of(request).replace(session_of(request).session.logged_in(user.id, user.session_epoch))
    return see_other("/")
