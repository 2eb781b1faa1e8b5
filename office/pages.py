"""The office's pages: log in, the coach's search and player card, the admin's page, the blast
panel, runs. Every form POST carries the session's CSRF token; every tenant URL checks the
person's role there (none: 404; coach where an admin is needed: 403)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from office.deps import Office
from office.runs import recent_runs, run_flow_in_process, start_blast, tenant_run
from office.security import CSRF_FIELD, SessionState, client_address
from paylinks.access import accounts, audit
from paylinks.access.accounts import LoginThrottled, User
from paylinks.access.audit import Actor
from paylinks.club import office as club_office
from paylinks.club.tenants import Tenant, tenant_from_row
from paylinks.errors import PaylinksError
from paylinks.money import format_money
from paylinks.params import normalized_email
from paylinks.store.tables import tenants
from paylinks.vocabulary import AuditAction, PaidMethod, Role

router = APIRouter()

EXPIRED_FORM = "This form has expired or did not come from the office: reload the page and try again."
NOT_FOUND = "There is nothing here, or it is not yours to see."
ADMINS_ONLY = "Only a club admin can do that."


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


def office_of(request: Request) -> Office:
    return request.app.state.office


def session_of(request: Request) -> SessionState:
    return request.scope["state"]["office_session"]


def _address(request: Request) -> str:
    return client_address(request, office_of(request).settings.office_behind_proxy)


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
    return Visitor(user, Actor(user.id, user.email, _address(request)))


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


def _safe_next(value: str) -> str:
    # Only a path on this site: never //evil.example or a full URL.
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


# -- logging in ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), email="", error=None)


@router.post("/login")
def login(request: Request, form: FormData = Depends(checked_form)) -> Response:
    office = office_of(request)
    email = field(form, "email", 320)
    password = field(form, "password", 1000)
    next_path = _safe_next(field(form, "next") or "/")
    with office.engine.begin() as connection:
        outcome = accounts.authenticate(connection, email, password, _address(request), office.throttle)
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
    from office.security import Session

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


@router.get("/")
def home(request: Request, visitor: Visitor = Depends(signed_in)) -> Response:
    with office_of(request).engine.connect() as connection:
        yours = accounts.tenants_of(connection, visitor.user)
    if len(yours) == 1:
        return see_other(f"/t/{yours[0].slug}")
    return render(request, "home.html", user=visitor.user)


# -- the coach's page ------------------------------------------------------------------------


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
    request: Request, player_id: int, done: int | None = None, access: Access = Depends(tenant_access)
) -> HTMLResponse:
    notice = None
    if done is not None:
        with office_of(request).engine.connect() as connection:
            entry = audit.entry(connection, access.tenant.id, done)
        notice = entry.detail if entry is not None else None
    return _player_response(request, access, player_id, notice=notice)


def _player_response(
    request: Request,
    access: Access,
    player_id: int,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    to: str = "",
) -> HTMLResponse:
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
    player_id: int,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    from flows.resend_payment_link import resend_payment_link

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
            return _player_response(
                request, access, player_id, error=str(error), status_code=422, to=to_typed
            )
    parameters = {"tenant": access.tenant.slug, "player": str(player_id), "to": to, "dry_run": False}
    try:
        run_id, report = run_flow_in_process(office.settings, resend_payment_link, parameters)
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


def describe_resend(report: Any, currency: str) -> str:
    """The resend's report in words: what was sent, to whom, and when (one clause per parent)."""
    from datetime import UTC, datetime

    from paylinks.messaging.reports import ResendOutcome

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
            + "; ".join(f"{item.description} ({item.reason.value})" for item in report.held_back)
            + "."
        )
    return sentence


# -- the admin's page ------------------------------------------------------------------------


@router.get("/t/{slug}/admin", response_class=HTMLResponse)
def admin_page(
    request: Request, done: int | None = None, access: Access = Depends(tenant_access)
) -> HTMLResponse:
    access.require_admin()
    office = office_of(request)
    with office.engine.connect() as connection:
        balances = club_office.team_balances(connection, access.tenant)
        refunds = club_office.refunds_due(connection, access.tenant)
        history = audit.recent_entries(connection, [access.tenant.id], limit=20)
        notice_entry = audit.entry(connection, access.tenant.id, done) if done is not None else None
    try:
        runs = recent_runs(office.settings, access.tenant.slug)
        runs_error = None
    except Exception as error:  # Prefect's API is down: the rest of the page still helps
        runs, runs_error = {}, f"The Prefect API could not be read ({type(error).__name__})."
    return render(
        request,
        "admin.html",
        access=access,
        balances=balances,
        totals=_totals(balances),
        refunds=refunds,
        runs=runs,
        runs_error=runs_error,
        history=history,
        notice=notice_entry.detail if notice_entry else None,
        currency=access.tenant.currency,
    )


def _totals(balances: list[club_office.TeamBalance]) -> dict[str, int]:
    return {
        name: sum(getattr(b, name) for b in balances)
        for name in ("owed_cents", "processing_cents", "paid_cents", "refund_due_cents", "open_items")
    }


@router.get("/t/{slug}/admin/open-items.csv")
def open_items_csv(request: Request, access: Access = Depends(tenant_access)) -> Response:
    access.require_admin()
    with office_of(request).engine.connect() as connection:
        items = club_office.open_items(connection, access.tenant)
    body = club_office.open_items_csv(items, access.tenant.currency)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{access.tenant.slug}-open-items.csv"'},
    )


@router.post("/t/{slug}/refunds/{payment_id}/resolve")
def resolve_refund(
    request: Request,
    payment_id: int,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    access.require_admin()
    try:
        resolution = club_office.RefundResolution(field(form, "resolution"))
    except ValueError:
        raise HTTPException(422, "Choose how it was resolved: refunded by hand, or kept as credit.") from None
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


@router.post("/t/{slug}/rows/{row_id}/paid-offline")
def mark_paid_offline(
    request: Request,
    row_id: int,
    form: FormData = Depends(checked_form),
    access: Access = Depends(tenant_access),
) -> Response:
    from paylinks.payments import offline as offline_payments
    from paylinks.stripe_api.gateway import StripeGateway

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
        return _player_response(
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
        return _player_response(
            request, access, player_id, error=f"Not marked paid: {error}", status_code=409
        )
    return see_other(f"/t/{access.tenant.slug}/players/{player_id}?done={done.audit_id}")


# -- the blast panel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BlastPreview:
    parents: int  # parents with a balance
    reachable: int  # of them, with an email address: the number a send mails
    items: int
    total_cents: int
    unminted_items: int
    sample_html: str | None
    sample_subject: str | None
    sample_parent: str | None


def blast_preview(office: Office, tenant: Tenant) -> BlastPreview:
    from paylinks.club.balances import outstanding_balances
    from paylinks.messaging.prepare import prepare_balance_emails
    from paylinks.stripe_api.gateway import StripeGateway

    # Only links minted in the tenant's account and mode are offered (as the blast does).
    context = StripeGateway(office.settings, account=tenant.stripe_account).context()
    with office.engine.connect() as connection:
        sheet = outstanding_balances(connection, tenant, context)
    emails = prepare_balance_emails(tenant, sheet)
    sample = sheet.sample()
    shown = next((e for e in emails if sample is not None and e.parent_id == sample.parent_id), None)
    return BlastPreview(
        parents=len(emails),
        reachable=sum(1 for e in emails if e.address),
        items=sum(e.item_count for e in emails),
        total_cents=sum(e.total_cents for e in emails),
        unminted_items=sum(1 for item in sheet.held_back if not item.reason.no_longer_owed),
        sample_html=shown.rendered.html if shown else None,
        sample_subject=shown.rendered.subject if shown else None,
        sample_parent=shown.parent_name if shown else None,
    )


@router.get("/t/{slug}/blast", response_class=HTMLResponse)
def blast_page(request: Request, access: Access = Depends(tenant_access)) -> HTMLResponse:
    access.require_admin()
    return render(
        request,
        "blast.html",
        access=access,
        preview=blast_preview(office_of(request), access.tenant),
        step=1,
        test_result=None,
        error=None,
        test_email="",
        currency=access.tenant.currency,
    )


@router.post("/t/{slug}/blast/test", response_class=HTMLResponse)
def blast_test(
    request: Request, form: FormData = Depends(checked_form), access: Access = Depends(tenant_access)
) -> HTMLResponse:
    from flows.outstanding_balance_email import outstanding_balance_email

    access.require_admin()
    office = office_of(request)
    preview = blast_preview(office, access.tenant)
    typed = field(form, "test_email", 320)
    context: dict[str, Any] = {
        "access": access,
        "preview": preview,
        "currency": access.tenant.currency,
        "test_email": typed,
    }
    try:
        address = normalized_email(typed)
    except ValueError as error:
        return render(request, "blast.html", 422, step=1, test_result=None, error=str(error), **context)
    parameters = {"tenant": access.tenant.slug, "test_email": address, "send": False, "blast_key": None}
    try:
        run_id, report = run_flow_in_process(office.settings, outstanding_balance_email, parameters)
    except PaylinksError as error:
        return render(
            request, "blast.html", 422, step=1, test_result=None, error=f"Not sent: {error}", **context
        )
    except Exception as error:
        return render(
            request,
            "blast.html",
            502,
            step=1,
            test_result=None,
            error=f"Not sent: the run failed ({type(error).__name__}).",
            **context,
        )
    sent = bool(report.sent)
    result = f"Test email sent to {address}." if sent else "Nothing to test: no parent owes anything."
    with office.engine.begin() as connection:
        audit.record(
            connection,
            access.visitor.actor,
            AuditAction.blast_test,
            access.tenant.id,
            f"{result} Run {run_id}.",
        )
    return render(request, "blast.html", step=2 if sent else 1, test_result=result, error=None, **context)


@router.post("/t/{slug}/blast/send")
def blast_send(
    request: Request, form: FormData = Depends(checked_form), access: Access = Depends(tenant_access)
) -> Response:
    access.require_admin()
    office = office_of(request)
    preview = blast_preview(office, access.tenant)
    confirmed = field(form, "parents")
    if confirmed != str(preview.reachable):
        return render(
            request,
            "blast.html",
            409,
            access=access,
            preview=preview,
            step=1,
            test_result=None,
            test_email="",
            currency=access.tenant.currency,
            error=(
                f"The number of parents changed since you looked (now {preview.reachable}, you confirmed "
                f"{confirmed or 'none'}). Check the preview again before sending."
            ),
        )
    blast_key = field(form, "blast_key", 150) or None
    started = start_blast(
        office.settings, tenant=access.tenant.slug, test_email=None, send=True, blast_key=blast_key
    )
    with office.engine.begin() as connection:
        audit.record(
            connection,
            access.visitor.actor,
            AuditAction.blast_send,
            access.tenant.id,
            f"blast to {preview.reachable} parents ({format_money(preview.total_cents, access.tenant.currency)} owed) "
            f"started: run {started.flow_run_id}",
        )
    return see_other(f"/t/{access.tenant.slug}/runs/{started.flow_run_id}")


# -- runs ------------------------------------------------------------------------------------


@router.get("/t/{slug}/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, access: Access = Depends(tenant_access)) -> HTMLResponse:
    try:
        flow_run_id = uuid.UUID(run_id)
    except ValueError:
        raise HTTPException(404, NOT_FOUND) from None
    run = tenant_run(office_of(request).settings, flow_run_id, access.tenant.slug)
    if run is None:
        raise HTTPException(404, NOT_FOUND)
    final = run.state in ("Completed", "Failed", "Crashed", "Cancelled")
    return render(request, "run.html", access=access, run=run, final=final)


@router.get("/preview/payment-links/{row_id}", response_class=HTMLResponse)
def link_preview_page(request: Request, row_id: int, visitor: Visitor = Depends(signed_in)) -> HTMLResponse:
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


# Typed for any exception, as Starlette's add_exception_handler expects; registered only for LoginRequired.
def login_redirect(request: Request, error: Exception) -> Response:
    return see_other(f"/login?next={quote(cast(LoginRequired, error).next_path, safe='/')}")


# Registered only for PasswordChangeRequired (typed for any exception, as for login_redirect).
def password_redirect(request: Request, error: Exception) -> Response:
    return see_other("/password")
