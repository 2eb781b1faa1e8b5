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

from office.deps import ApiAdmin, api_admin, office_of
from office.runs import start_blast
from paylinks.access import audit
from paylinks.params import normalized_email
from paylinks.vocabulary import AuditAction

router = APIRouter()

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no", "")
PARAMETERS = {"tenant", "test_email", "send", "blast_key"}


@dataclass(frozen=True)
class BlastAsked:
    """What the endpoint's query asks for: a preview, one test email, or a send to every parent."""

    test_email: str | None
    send: bool
    blast_key: str | None

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
            f"unknown parameter(s): {', '.join(sorted(unknown))}; use test_email, send, blast_key, tenant",
        )
    test_email: str | None = None
    if params.get("test_email"):
        try:
            test_email = normalized_email(params["test_email"])
        except ValueError as error:
            raise HTTPException(422, f"test_email: {error}") from None
    send_word = params.get("send", "").strip().lower()
    if send_word not in TRUE_WORDS + FALSE_WORDS:
        raise HTTPException(422, "send must be true or false")
    send = send_word in TRUE_WORDS
    if test_email and send:
        raise HTTPException(
            422, "choose test_email (one sample to that address) or send=true (every parent), not both"
        )
    blast_key = params.get("blast_key") or None
    if blast_key is not None and len(blast_key) > 150:
        raise HTTPException(422, "blast_key must be at most 150 characters")
    return BlastAsked(test_email, send, blast_key)


@router.post("/admin/email/outstanding-balance", status_code=202)
def outstanding_balance_endpoint(request: Request, admin: ApiAdmin = Depends(api_admin)) -> JSONResponse:
    """Start the outstanding-balance email for the token's tenant. Query parameters: `test_email`,
    `send` (true/false), `blast_key`, and `tenant` when the token holds several tenants."""
    asked = blast_asked(request.query_params)
    office = office_of(request)
    started = start_blast(
        office.settings,
        tenant=admin.tenant.slug,
        test_email=asked.test_email,
        send=asked.send,
        blast_key=asked.blast_key,
        started_by=admin.actor.user_id,
    )
    with office.engine.begin() as connection:
        audit.record(
            connection,
            admin.actor,
            asked.action,
            admin.tenant.id,
            f"outstanding-balance {asked.what} started with API token #{admin.token_id}"
            + (f", blast key {asked.blast_key}" if asked.blast_key else "")
            + f": run {started.flow_run_id}",
        )
    return JSONResponse({"flow_run_id": str(started.flow_run_id), "ui_url": started.ui_url}, status_code=202)
