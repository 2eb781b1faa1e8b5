"""What the office's routes depend on: the Office (settings, engine, cookie signer, templates,
login limits), built once by the app and handed to every route through `request.app.state`; who
is asking (a signed-in person, their role in the tenant a URL names, an API token's admin); the
checked form; and the page helpers every route answers with.

Routes import this module, never the app, so the app can import its routes without a circle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, cast
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from starlette.datastructures import FormData

from office.security import CSRF_FIELD, SessionSigner, SessionState, client_address
from paylinks.access import accounts
from paylinks.access.accounts import ThrottleLimits, TokenHolder, User
from paylinks.access.audit import Actor
from paylinks.club.tenants import Tenant, tenant_from_row
from paylinks.errors import ConfigurationError, PaylinksError, StripeKeyRejectedError
from paylinks.messaging.transports import MailDeliveryError
from paylinks.settings import EmailTransportName, Settings
from paylinks.store.tables import tenants
from paylinks.stripe_api.failures import StripeTransientError, StripeUnreachableError
from paylinks.stripe_api.keys import has_stripe_key
from paylinks.vocabulary import Role

EXPIRED_FORM = "This form has expired or did not come from the office: reload the page and try again."
NOT_FOUND = "There is nothing here, or it is not yours to see."
ADMINS_ONLY = "Only a club admin can do that."
BEARER_CHALLENGE = {"www-authenticate": "Bearer"}

# Row ids are INTEGER columns: PostgreSQL's range is the narrower of the two databases'. An id in a
# URL outside it (or not a number) names no row, and answers 404 like an unknown one (`names_nothing`).
DB_ID_MAX = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]
DoneId = Annotated[int | None, Query(ge=1, le=DB_ID_MAX)]
ID_QUERY_PLACES = {("query", "done")}


@dataclass(frozen=True)
class Office:
    """What every route needs, built once per app."""

    settings: Settings
    engine: Engine
    signer: SessionSigner
    templates: Jinja2Templates
    throttle: ThrottleLimits


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PasswordChangeRequired(Exception):
    pass


@dataclass(frozen=True)
class Visitor:
    user: User
    actor: Actor


@dataclass(frozen=True)
class Access:
    """A signed-in person in one of their tenants."""

    visitor: Visitor
    tenant: Tenant
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    def require_admin(self) -> None:
        if not self.is_admin:
            raise HTTPException(403, ADMINS_ONLY)


@dataclass(frozen=True)
class ApiAdmin:
    """An API token's holder, an admin of the tenant the request acts for."""

    token_id: int
    actor: Actor
    tenant: Tenant


def office_of(request: Request) -> Office:
    return request.app.state.office


def session_of(request: Request) -> SessionState:
    return request.scope["state"]["office_session"]


def visitor_address(request: Request) -> str:
    """The caller's address (from X-Forwarded-For only behind a proxy the settings name)."""
    return client_address(request, office_of(request).settings.office_behind_proxy)


def names_nothing(error: RequestValidationError) -> bool:
    """Whether the request was refused for a path segment, or an id in the query, that names no row."""
    places = [tuple(problem.get("loc", ()))[:2] for problem in error.errors()]
    return any(place[:1] == ("path",) or place in ID_QUERY_PLACES for place in places)


# -- a person, by their session cookie ---------------------------------------------------------


def current_user(request: Request) -> User | None:
    state = session_of(request)
    if state.session.user_id is None:
        return None
    with office_of(request).engine.connect() as connection:
        user = accounts.user_by_id(connection, state.session.user_id)
    if user is None or user.session_epoch != state.session.epoch:
        return None  # logged out elsewhere, password changed, or account disabled
    return user


def signed_in_any(request: Request) -> Visitor:
    """The signed-in person, even one who still has to replace a one-time password."""
    user = current_user(request)
    if user is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return Visitor(user, Actor(user.id, user.email, visitor_address(request)))


def signed_in(request: Request) -> Visitor:
    visitor = signed_in_any(request)
    if visitor.user.password_is_temporary:
        raise PasswordChangeRequired()
    return visitor


def tenant_access(slug: str, request: Request, visitor: Visitor = Depends(signed_in)) -> Access:
    with office_of(request).engine.connect() as connection:
        row = connection.execute(sa.select(tenants).where(tenants.c.slug == slug)).mappings().first()
    role = visitor.user.role_in(row["id"]) if row is not None else None
    if row is None or role is None:
        raise HTTPException(404, NOT_FOUND)  # not 403: whether the tenant exists is not said
    return Access(visitor, tenant_from_row(row), role)


async def checked_form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token matches the session's."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not office_of(request).signer.csrf_ok(
        session_of(request).session, token if isinstance(token, str) else None
    ):
        raise HTTPException(403, EXPIRED_FORM)
    return form


def field(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


# -- a machine, by its API token ---------------------------------------------------------------


def api_token_holder(request: Request) -> TokenHolder:
    """Who the request's Bearer token speaks for; 401 with a Bearer challenge without a valid one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "an API token is required: Authorization: Bearer <token>", headers=BEARER_CHALLENGE
        )
    with office_of(request).engine.begin() as connection:  # the lookup stamps the token's last use
        holder = accounts.token_holder(connection, token.strip())
    if holder is None:
        raise HTTPException(401, "this API token is not valid (unknown or revoked)", headers=BEARER_CHALLENGE)
    return holder


def api_admin(request: Request, holder: TokenHolder = Depends(api_token_holder)) -> ApiAdmin:
    """The tenant the token acts for (`tenant=SLUG`, or the token's only one), once its holder is
    an admin there: 422 when a token of several tenants names none, 404 for a tenant the token does
    not hold, 403 for a coach."""
    slug = request.query_params.get("tenant")
    with office_of(request).engine.connect() as connection:
        if slug:
            row = connection.execute(sa.select(tenants).where(tenants.c.slug == slug)).mappings().first()
        elif len(holder.tenant_ids) == 1:
            (only,) = holder.tenant_ids
            row = connection.execute(sa.select(tenants).where(tenants.c.id == only)).mappings().first()
        else:
            raise HTTPException(422, "this token acts for several tenants: name one with tenant=SLUG")
    if row is None or row["id"] not in holder.tenant_ids or holder.user.role_in(row["id"]) is None:
        raise HTTPException(404, "no such tenant for this token")
    tenant = tenant_from_row(row)
    if holder.user.role_in(tenant.id) != Role.admin:
        raise HTTPException(403, f"the token's holder is not an admin of {tenant.slug}")
    actor = Actor(holder.user.id, holder.user.email, visitor_address(request))
    return ApiAdmin(holder.token_id, actor, tenant)


# -- what went wrong, for a person ---------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Something a person can fix, in words: the page's status, its title and what to do."""

    status: int
    title: str
    detail: str


STRIPE_NOT_SET_UP = (
    "Stripe is not set up for this office: set PAYLINKS_STRIPE_API_KEY to the club's Stripe secret key "
    "(or PAYLINKS_STRIPE_API_BASE to a local Stripe emulator's address), then restart the office. "
    "On one machine, `make office` starts the local club with its own emulator."
)


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


def prefect_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value).rstrip("/") if value else None


def is_prefect_unreachable(error: BaseException) -> bool:
    """Whether `error` is the Prefect API not answering (the office's only other HTTP peer)."""
    import httpx

    if not isinstance(error, httpx.TransportError):
        return False
    try:
        url = str(error.request.url)
    except RuntimeError:  # an error raised before its request was made
        return True
    api = prefect_api_url()
    return api is None or url.startswith(api)


def failure_of(settings: Settings, error: BaseException) -> Failure | None:
    """What a person reads when `error` stops what they asked for; None for a fault of the office
    itself (a bug: the engineer's to read in the office's log)."""
    if isinstance(error, ConfigurationError):
        if not has_stripe_key(settings):
            return Failure(503, "Stripe is not set up", STRIPE_NOT_SET_UP)
        return Failure(503, "Something is not set up", _sentence(str(error)))
    if isinstance(error, StripeUnreachableError):
        return Failure(
            503,
            "Stripe cannot be reached",
            _sentence(str(error))
            + " Nothing was changed. Try again in a minute; if it persists, check this machine's "
            "connection or PAYLINKS_STRIPE_API_BASE (`make office` starts the local emulator).",
        )
    if isinstance(error, StripeTransientError):
        return Failure(
            503,
            "Stripe is not answering",
            _sentence(str(error)) + " Nothing was changed. Try again in a minute.",
        )
    if isinstance(error, StripeKeyRejectedError):
        return Failure(503, "Stripe refused the office's key", _sentence(str(error)))
    if isinstance(error, MailDeliveryError):
        where = (
            f"the mail server at {settings.smtp_host}:{settings.smtp_port}"
            if settings.email_transport == EmailTransportName.smtp
            else "the mail transport"
        )
        fix = (
            " Check that it runs, or PAYLINKS_SMTP_HOST and PAYLINKS_SMTP_PORT (PAYLINKS_EMAIL_TRANSPORT=outbox "
            "writes emails to files instead)."
            if not error.permanent
            else ""
        )
        return Failure(503, "The email was not sent", f"Not sent by {where}: {error.detail}.{fix}")
    if is_prefect_unreachable(error):
        api = prefect_api_url()
        where = f"at {api} (PREFECT_API_URL)" if api else "(the temporary one this office starts)"
        return Failure(
            503,
            "Prefect is not answering",
            f"The Prefect server {where} does not answer, and the office runs every job through it. "
            "Start it (`make ui`), or point PREFECT_API_URL at one that runs; nothing was started.",
        )
    if isinstance(error, PaylinksError):
        return Failure(422, "That could not be done", _sentence(str(error)))
    return None


# Run ids and Stripe's object ids, in a detail written for the engineer too: a page shows them apart,
# behind a "details" disclosure, so a coach or treasurer reads only words.
_MACHINE_ID = re.compile(
    r"(?:\b[Rr]un\s+)?\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b(?:cs|plink|pi|ch|re|price|prod|evt|acct|cus|dp|pm)_(?:test_|live_)?[A-Za-z0-9]{6,}\b"
)


def ids_apart(text: str | None) -> tuple[str, list[str]]:
    """`text` without its run and Stripe ids, and those ids: ("Sent 2 items.", ["Run 5f0c…"])."""
    text = text or ""
    ids = [match.group(0) for match in _MACHINE_ID.finditer(text)]
    words = _MACHINE_ID.sub("", text)
    words = re.sub(r"\s+([.,;:)])", r"\1", words)
    words = re.sub(r"\(\s*\)|\s{2,}", " ", words)
    words = re.sub(r"([.,;:])[.,;:]+", r"\1", words).strip()
    return words.rstrip(":,; ") if ids else words, ids


# -- answers -----------------------------------------------------------------------------------


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    office = office_of(request)
    user = context.pop("user", None)
    access: Access | None = context.get("access")
    if user is None and access is not None:
        user = access.visitor.user
    your_tenants: list[Tenant] = []
    if user is not None and not template.startswith("_"):  # a fragment has no navigation bar
        with office.engine.connect() as connection:
            your_tenants = accounts.tenants_of(connection, user)
    return office.templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "tenants": your_tenants,
            "csrf_token": office.signer.csrf_token(session_of(request).session),
            **context,
        },
        status_code=status_code,
    )


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# Typed for any exception, as Starlette's add_exception_handler expects; registered only for LoginRequired.
def login_redirect(request: Request, error: Exception) -> Response:
    return see_other(f"/login?next={quote(cast(LoginRequired, error).next_path, safe='/')}")


# Registered only for PasswordChangeRequired (typed for any exception, as for login_redirect).
def password_redirect(request: Request, error: Exception) -> Response:
    return see_other("/password")
