"""The club office: a small FastAPI app for admins and coaches, the admin endpoint, and the Stripe
webhook receiver. `create_app(settings)` builds it; `paylinks serve` runs it with uvicorn.

Pages are rendered on the server (Jinja2, `templates/office/`) and work without JavaScript.
Everything a person sees is scoped to the tenants they hold a role in: another tenant's player,
row or run answers 404.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.types import Receive, Scope, Send

from office.deps import (
    NOT_FOUND,
    Failure,
    LoginRequired,
    Office,
    PasswordChangeRequired,
    failure_of,
    ids_apart,
    login_redirect,
    names_nothing,
    password_redirect,
)
from office.limits import TOO_LARGE, BodyLimitMiddleware
from office.routes import (
    admin,
    api,
    blast,
    coach,
    family,
    login,
    people,
    refresh,
    refunds,
    reminders,
    stop_reminders,
    webhook,
)
from office.security import CSRF_FIELD, SessionMiddleware, SessionSigner
from paylinks.access.accounts import ThrottleLimits
from paylinks.club.clock import club_zone, when_words
from paylinks.errors import ConfigurationError, PaylinksError
from paylinks.money import format_money
from paylinks.runtime import engine_for
from paylinks.settings import PROJECT_ROOT, Settings

logger = logging.getLogger("paylinks.office")

TEMPLATES_DIR = PROJECT_ROOT / "templates" / "office"
STATIC_FILES = {"office.css": "text/css", "office.js": "text/javascript", "family.css": "text/css"}
MIN_SESSION_SECRET_LENGTH = 32

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
        "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    # No page of the office needs a device or a browser API beyond plain pages and forms.
    "permissions-policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), hid=(), "
        "midi=(), magnetometer=(), gyroscope=(), accelerometer=(), display-capture=(), browsing-topics=()"
    ),
}


def office_settings(settings: Settings) -> Settings:
    """`settings` with its secrets filled from Prefect Secret blocks where a `*_block` names one.

    The session secret, the webhook secret, the Stripe key and the SMTP password may all live in
    Secret blocks; the office reads them once, at start.
    """
    from tasks.run_settings import SECRET_BLOCKS, with_secret_blocks

    return with_secret_blocks(
        settings,
        SECRET_BLOCKS
        + (
            ("office_session_secret", "office_session_secret_block"),
            ("stripe_webhook_secret", "stripe_webhook_secret_block"),
        ),
    )


def check_office_settings(settings: Settings) -> None:
    """One clear line when the office cannot run safely with these settings."""
    secret = settings.office_session_secret
    if secret is None:
        raise ConfigurationError(
            "PAYLINKS_OFFICE_SESSION_SECRET is not set: the office signs its login cookies with it. "
            "Set it to 32 or more random characters (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`), or name a Prefect Secret block in "
            "PAYLINKS_OFFICE_SESSION_SECRET_BLOCK"
        )
    if len(secret.get_secret_value()) < MIN_SESSION_SECRET_LENGTH:
        raise ConfigurationError(
            f"PAYLINKS_OFFICE_SESSION_SECRET is too short to sign cookies safely: use at least "
            f"{MIN_SESSION_SECRET_LENGTH} random characters"
        )


def create_app(settings: Settings, *, resolve_secrets: bool = True) -> FastAPI:
    """The office for these settings. ConfigurationError (one line) when it cannot run safely."""
    if resolve_secrets:
        settings = office_settings(settings)
    check_office_settings(settings)
    assert settings.office_session_secret is not None
    signer = SessionSigner(
        settings.office_session_secret.get_secret_value(), int(settings.office_session_hours * 3600)
    )
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["money"] = lambda cents, currency="usd": format_money(int(cents or 0), currency)
    templates.env.filters["when"] = pass_context(
        lambda context, moment, never="": _when(context, moment, settings.club_timezone, never)
    )
    templates.env.filters["ids_apart"] = ids_apart
    templates.env.globals["csrf_field"] = CSRF_FIELD
    office = Office(
        settings=settings,
        engine=engine_for(settings.database_url),
        signer=signer,
        templates=templates,
        throttle=ThrottleLimits(
            failures_per_account=settings.office_login_failures_per_account,
            failures_per_address=settings.office_login_failures_per_address,
            window_s=settings.office_login_window_s,
        ),
    )

    app = FastAPI(title="paylinks club office", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.office = office

    for routes in (
        api,
        webhook,
        login,
        coach,
        family,
        admin,
        blast,
        refresh,
        refunds,
        people,
        stop_reminders,
        reminders,
    ):
        app.include_router(routes.router)
    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_exception_handler(PasswordChangeRequired, password_redirect)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404)
        return FileResponse(Path(TEMPLATES_DIR / name), media_type=STATIC_FILES[name])

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return error_response(request, error.status_code, str(error.detail), dict(error.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        if names_nothing(error):  # an id no row can have: there is nothing there, as for an unknown one
            return error_response(request, 404, NOT_FOUND)
        return await request_validation_exception_handler(request, error)

    # What a person can fix (a setting, a server that is down) is a page naming it, never a bare
    # 500; the run that failed, if any, is in Prefect. Routes are plain functions run in a thread
    # pool, so these handlers see their errors as raised.
    async def cannot_do_it(request: Request, error: Exception) -> Response:
        failure = failure_of(office.settings, error)
        if failure is None:
            logger.exception("office fault on %s %s", request.method, path_for_log(request), exc_info=error)
            failure = Failure(
                500,
                "Something went wrong",
                "The office could not answer this page. Nothing you did caused it: try again, and "
                "if it happens again, tell whoever runs the office (the reason is in its log).",
            )
        else:
            logger.warning("%s %s: %s", request.method, path_for_log(request), failure.detail)
        return error_response(request, failure.status, failure.detail, title=failure.title)

    app.add_exception_handler(PaylinksError, cannot_do_it)
    app.add_exception_handler(httpx.TransportError, cannot_do_it)  # the Prefect API, out of reach
    app.add_exception_handler(Exception, cannot_do_it)  # a bug: a styled 500 (Starlette still logs it)

    async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(Request(scope), 413, TOO_LARGE)(scope, receive, send)

    # Inside the session middleware, so a refusal carries the security headers too.
    app.add_middleware(BodyLimitMiddleware, refuse=too_large)
    app.add_middleware(
        SessionMiddleware,
        signer=signer,
        behind_proxy=settings.office_behind_proxy,
        extra_headers=SECURITY_HEADERS,
    )
    return app


def path_for_log(request: Request) -> str:
    """The request's path as a log line may show it: a family page's token is never written down."""
    path = request.url.path
    if path.startswith("/f/"):
        rest = path[3:].partition("/")[2]
        return "/f/…" + (f"/{rest}" if rest else "")
    return path


def is_api_path(path: str) -> bool:
    return path.startswith(("/admin/", "/stripe/"))


def error_response(
    request: Request,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    title: str | None = None,
) -> Response:
    """JSON for the API and the webhook, a page for a person."""
    if is_api_path(request.url.path):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    office: Office = request.app.state.office
    titles = {
        400: "Bad request",
        401: "Please log in",
        403: "Not allowed",
        404: "Not found",
        413: "Too large",
        429: "Slow down",
    }
    return office.templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": title or titles.get(status, "Something went wrong"),
            "detail": detail,
            "user": None,
            "tenants": [],
        },
        status_code=status,
        headers=headers,
    )


def _when(context: Any, moment: Any, default_zone: str, never: str) -> str:
    """A moment in the zone of the club the page is about (its `access`), else the default zone."""
    access = context.get("access")
    tenant_zone = access.tenant.timezone if access is not None else None
    return when_words(moment, club_zone(tenant_zone, default_zone), never=never)
