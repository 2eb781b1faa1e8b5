"""The admin endpoint of the original requirement, for machines: `POST
/admin/email/outstanding-balance` takes a Bearer API token whose holder is an admin of the tenant
(`office.deps.api_admin` checks it) and starts the outstanding-balance flow: 202 with the run's
id and its Prefect UI link. Its refusals are JSON `{"detail": ...}`, as the app answers any error
on an /admin/ path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from office.deps import ApiAdmin, Office, api_admin, office_of
from office.runs import SendStillRunning, start_blast, start_blast_send
from paylinks.access import audit, sends
from paylinks.params import normalized_email
from paylinks.vocabulary import AuditAction

router = APIRouter()

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no", "")
PARAMETERS = {"tenant", "test_email", "send", "blast_key", "include_recent"}


@dataclass(frozen=True)
class BlastAsked:
    """What the endpoint's query asks for: a preview, one test email, or a send to every parent."""

    test_email: str | None
    send: bool
    blast_key: str | None
    include_recent: bool = False  # also mail parents another blast emailed recently (held back otherwise)

    @property
    def action(self) -> AuditAction:
        if self.send:
            return AuditAction.blast_send
        return AuditAction.blast_test if self.test_email else AuditAction.blast_preview

    @property
    def what(self) -> str:
        if self.send:
            return "send to every parent"
        return f"test email to {self.test_email}" if self.test_email else "preview"


def blast_asked(params: Mapping[str, str]) -> BlastAsked:
    """The query's parameters, checked; HTTPException 422 saying what is wrong with them."""
    unknown = set(params) - PARAMETERS
    if unknown:
        raise HTTPException(
            422,
            f"unknown parameter(s): {', '.join(sorted(unknown))}; use test_email, send, blast_key, include_recent, tenant",
        )
    test_email: str | None = None
    if params.get("test_email"):
        try:
            test_email = normalized_email(params["test_email"])
        except ValueError as error:
            raise HTTPException(422, f"test_email: {error}") from None
    send = _yes_or_no(params, "send")
    include_recent = _yes_or_no(params, "include_recent")
    if test_email and send:
        raise HTTPException(
            422, "choose test_email (one sample to that address) or send=true (every parent), not both"
        )
    blast_key = params.get("blast_key") or None
    if blast_key is not None and len(blast_key) > 150:
        raise HTTPException(422, "blast_key must be at most 150 characters")
    return BlastAsked(test_email, send, blast_key, include_recent)


def _yes_or_no(params: Mapping[str, str], name: str) -> bool:
    word = params.get(name, "").strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise HTTPException(422, f"{name} must be true or false")
    return word in TRUE_WORDS


@router.post("/admin/email/outstanding-balance", status_code=202)
def outstanding_balance_endpoint(request: Request, admin: ApiAdmin = Depends(api_admin)) -> JSONResponse:
    """Start the outstanding-balance email for the token's tenant. Query parameters: `test_email`,
    `send` (true/false), `blast_key`, `include_recent` (true/false: also mail parents another
    blast emailed within the tenant's hold, 24 hours by default, who are otherwise held back), and
    `tenant` when the token holds several tenants. A token
    may ask for so many test emails an hour (429 after), and a tenant has one send running at a time
    (409 while it runs)."""
    asked = blast_asked(request.query_params)
    office = office_of(request)
    if asked.test_email:
        _count_test_send(office, admin)
    try:
        if asked.send:
            started = start_blast_send(
                office.settings,
                office.engine,
                admin.tenant,
                claimed_by=admin.actor.name,
                started_by=admin.actor.user_id,
                blast_key=asked.blast_key,
                include_recent=asked.include_recent,
            )
        else:
            started = start_blast(
                office.settings,
                tenant=admin.tenant.slug,
                test_email=asked.test_email,
                send=False,
                blast_key=asked.blast_key,
                include_recent=asked.include_recent,
                started_by=admin.actor.user_id,
            )
    except SendStillRunning as running:
        held = running.claim
        started_at = held.claimed_at.strftime("%Y-%m-%d %H:%M UTC")
        run = f" (run {held.flow_run_id})" if held.flow_run_id else ""
        raise HTTPException(
            409,
            f"a send to every parent of {admin.tenant.name} is still running: the one {held.claimed_by} "
            f"started at {started_at}{run}; wait for it to finish before starting another",
        ) from None
    with office.engine.begin() as connection:
        audit.record(
            connection,
            admin.actor,
            asked.action,
            admin.tenant.id,
            f"outstanding-balance {asked.what} started with API token #{admin.token_id}"
            + (f", blast key {asked.blast_key}" if asked.blast_key else "")
            + (", including parents emailed recently" if asked.include_recent else "")
            + f": run {started.flow_run_id}",
        )
    return JSONResponse({"flow_run_id": str(started.flow_run_id), "ui_url": started.ui_url}, status_code=202)


def _count_test_send(office: Office, admin: ApiAdmin) -> None:
    """Count the test email against the token's hour; 429 with Retry-After once it is used up."""
    with office.engine.begin() as connection:
        refused = sends.count_test_send(
            connection, admin.token_id, office.settings.office_test_sends_per_hour
        )
    if refused is not None:
        minutes = max(1, round(refused.retry_after_s / 60))
        raise HTTPException(
            429,
            f"this token has asked for {refused.limit} test emails in the last hour, the most it may; "
            f"try again in {minutes} minute{'s' if minutes != 1 else ''}",
            headers={"retry-after": str(refused.retry_after_s)},
        )
