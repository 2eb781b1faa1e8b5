"""The office's flow runs: the coach's resend in process, the blast on a deployment or a thread of
its own, and the recent runs of a tenant read back from the Prefect API.

Every run is a real Prefect flow run (with its task runs) on the API this process is configured
for, so the engineer sees it in the Prefect UI; nobody using the office needs Prefect credentials.
A run the office starts carries a tag naming the office user who started it (`started_by_tag`):
a coach's run page shows only the runs they started.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from paylinks.access import sends
from paylinks.access.sends import BlastClaim
from paylinks.club.tenants import Tenant
from paylinks.messaging.claims import SendResult
from paylinks.messaging.prepare import SkipReason
from paylinks.present.tables import label
from paylinks.settings import Settings
from paylinks.store.tables import as_utc

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from sqlalchemy.engine import Engine

logger = logging.getLogger("paylinks.office")

BLAST_DEPLOYMENT = "outstanding-balance-email/manual"
RECENT_FLOWS = {
    "backfill-payment-links": "backfill",
    "outstanding-balance-email": "blast",
    "reconcile-payments": "reconcile",
}
STARTED_BY = "paylinks-started-by-user:"


def started_by_tag(user_id: int | None) -> list[str]:
    """The tags of a run `user_id` starts (none for a run nobody in the office started)."""
    return [] if user_id is None else [f"{STARTED_BY}{user_id}"]


def starter_of(tags: list[str] | None) -> int | None:
    """The office user a run's tags name as its starter; None for a run started elsewhere."""
    for tag in tags or []:
        if tag.startswith(STARTED_BY) and tag[len(STARTED_BY) :].isdigit():
            return int(tag[len(STARTED_BY) :])
    return None


@dataclass(frozen=True)
class StartedRun:
    flow_run_id: uuid.UUID
    ui_url: str | None
    on_deployment: bool


@dataclass(frozen=True)
class RunView:
    """One flow run as the office shows it."""

    flow_run_id: uuid.UUID
    kind: str  # backfill, blast, reconcile, resend
    name: str
    state: str  # Prefect's state name: Completed, Running, Failed...
    started_at: datetime | None
    tenant: str | None
    parameters: Mapping[str, Any]
    ui_url: str | None
    started_by: int | None = None  # the office user who started it; None for a run started elsewhere
    message: str | None = None  # what Prefect's final state says (why a failed run failed)

    @property
    def failed(self) -> bool:
        return self.state in ("Failed", "Crashed")

    @property
    def final(self) -> bool:
        return self.state in ("Completed", "Failed", "Crashed", "Cancelled")


LOCAL_PREFECT_UI = "http://127.0.0.1:4200"  # where `make ui` serves it


def ui_base_url(settings: Settings) -> str | None:
    if settings.prefect_ui_url:
        return settings.prefect_ui_url.rstrip("/")
    from prefect.settings import PREFECT_UI_URL

    value = PREFECT_UI_URL.value()
    return str(value).rstrip("/") if value else None


def prefect_ui_answers(base_url: str, timeout_s: float = 0.5) -> bool:
    """Whether a Prefect UI answers at `base_url` now (any HTTP answer counts)."""
    import httpx

    try:
        httpx.get(base_url, timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True


@dataclass(frozen=True)
class PrefectLink:
    """Where a run is in the Prefect UI, and whether that UI answered just now."""

    url: str
    base_url: str
    answers: bool


def prefect_link(settings: Settings, flow_run_id: uuid.UUID) -> PrefectLink:
    """The run's page in the Prefect UI: PAYLINKS_PREFECT_UI_URL, else Prefect's PREFECT_UI_URL,
    else the local server `make ui` starts."""
    base = ui_base_url(settings) or LOCAL_PREFECT_UI
    return PrefectLink(f"{base}/runs/flow-run/{flow_run_id}", base, prefect_ui_answers(base))


def run_ui_url(settings: Settings, flow_run_id: uuid.UUID) -> str | None:
    base = ui_base_url(settings)
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


def run_flow_in_process(
    settings: Settings, flow: Any, parameters: dict[str, Any], *, started_by: int | None
) -> tuple[uuid.UUID, Any]:
    """Run `flow` here, now, with these settings, as office user `started_by`: (its run id, its
    result). Raises what the run raised."""
    from prefect.flow_engine import run_flow

    from tasks.prefect_api import prefect_client
    from tasks.run_settings import settings_for_runs

    client = prefect_client()
    flow_run = client.create_flow_run(flow, parameters=parameters, tags=started_by_tag(started_by))
    with settings_for_runs(settings):
        return flow_run.id, run_flow(flow, flow_run=flow_run, parameters=parameters)


def _deployment_available(name: str) -> bool:
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    from tasks.prefect_api import prefect_client

    if not PREFECT_API_URL.value():
        return False  # the ephemeral API has no workers to run a deployment
    try:
        client = prefect_client()
        client.read_deployment_by_name(name)
    except ObjectNotFound:
        return False
    return True


def start_blast(
    settings: Settings,
    *,
    tenant: str,
    test_email: str | None,
    send: bool,
    blast_key: str | None,
    started_by: int | None,
    include_recent: bool = False,
    on_finish: Callable[[uuid.UUID, Any], None] | None = None,
) -> StartedRun:
    """Start the outstanding-balance flow for `tenant` as office user `started_by`, without waiting
    for it to finish.

    A run of the `outstanding-balance-email/manual` deployment when the Prefect API has it
    (a worker picks it up); otherwise a run in a background thread of this process.
    """
    from flows.outstanding_balance_email import outstanding_balance_email

    parameters: dict[str, Any] = {
        "tenant": tenant,
        "test_email": test_email,
        "send": send,
        "blast_key": blast_key,
        "include_recent": include_recent,
    }
    return _start_flow(
        settings, outstanding_balance_email, BLAST_DEPLOYMENT, parameters, started_by, "blast", on_finish
    )


def _start_flow(
    settings: Settings,
    flow: Any,
    deployment: str,
    parameters: dict[str, Any],
    started_by: int | None,
    label: str,
    on_finish: Callable[[uuid.UUID, Any], None] | None = None,
) -> StartedRun:
    """A run of `deployment` when the Prefect API has it (a worker picks it up); otherwise a run of
    `flow` in a background thread of this process, `on_finish` called with its result (or the
    exception it ended with). Either way, started without waiting for it."""
    from tasks.prefect_api import prefect_client
    from tasks.run_settings import settings_for_runs

    if _deployment_available(deployment):
        from prefect.deployments import run_deployment

        flow_run = cast(
            "FlowRun",
            run_deployment(deployment, parameters=parameters, timeout=0, tags=started_by_tag(started_by)),
        )
        return StartedRun(flow_run.id, run_ui_url(settings, flow_run.id), on_deployment=True)

    flow_run = prefect_client().create_flow_run(flow, parameters=parameters, tags=started_by_tag(started_by))

    def run() -> None:
        from prefect.flow_engine import run_flow

        result: Any = None
        try:
            with settings_for_runs(settings):
                result = run_flow(flow, flow_run=flow_run, parameters=parameters)
        except Exception as error:  # recorded as the run's failed state; the office stays up
            result = error
            logger.warning("%s run %s ended with %s", label, flow_run.id, type(error).__name__)
        if on_finish is not None:
            on_finish(flow_run.id, result)

    threading.Thread(target=run, name=f"{label}-{flow_run.id}", daemon=True).start()
    return StartedRun(flow_run.id, run_ui_url(settings, flow_run.id), on_deployment=False)


class SendStillRunning(Exception):
    """The tenant's one send to every parent is still running: who started it, when, which run."""

    def __init__(self, claim: BlastClaim) -> None:
        super().__init__(f"a send to every parent is still running (run {claim.flow_run_id})")
        self.claim = claim


def start_blast_send(
    settings: Settings,
    engine: Engine,
    tenant: Tenant,
    *,
    claimed_by: str,
    started_by: int | None,
    blast_key: str | None,
    include_recent: bool,
) -> StartedRun:
    """Start a send to every parent of `tenant`, holding the tenant's one claim on such a send
    (the admin panel and the endpoint alike); `SendStillRunning` while another one runs."""
    with engine.begin() as connection:
        held = sends.claim_blast(connection, tenant.id, claimed_by, run_is_over)
    if held is not None:
        raise SendStillRunning(held)
    try:
        started = start_blast(
            settings,
            tenant=tenant.slug,
            test_email=None,
            send=True,
            blast_key=blast_key,
            include_recent=include_recent,
            started_by=started_by,
        )
    except BaseException:
        with engine.begin() as connection:
            sends.give_up_claim(connection, tenant.id)
        raise
    with engine.begin() as connection:
        sends.claimed_by_run(connection, tenant.id, str(started.flow_run_id))
    return started


def run_is_over(flow_run_id: str) -> bool:
    """Whether the Prefect run has reached a final state (or is gone)."""
    from prefect.exceptions import ObjectNotFound

    from tasks.prefect_api import prefect_client

    try:
        client = prefect_client()
        flow_run = client.read_flow_run(uuid.UUID(flow_run_id))
    except (ObjectNotFound, ValueError):
        return True
    return flow_run.state is not None and flow_run.state.is_final()


def _view(settings: Settings, flow_run: Any, flow_names: Mapping[uuid.UUID, str]) -> RunView:
    flow_name = flow_names.get(flow_run.flow_id, "")
    parameters = dict(flow_run.parameters or {})
    return RunView(
        flow_run_id=flow_run.id,
        kind=RECENT_FLOWS.get(flow_name, "resend" if flow_name == "resend-payment-link" else flow_name),
        name=flow_run.name,
        state=flow_run.state.name if flow_run.state else "Unknown",
        started_at=flow_run.start_time or flow_run.expected_start_time,
        tenant=parameters.get("tenant"),
        parameters=parameters,
        ui_url=run_ui_url(settings, flow_run.id),
        started_by=starter_of(flow_run.tags),
        message=flow_run.state.message if flow_run.state else None,
    )


_NEVER = datetime.min.replace(tzinfo=UTC)


def recent_runs(settings: Settings, tenant: str, per_kind: int = 3) -> dict[str, list[RunView]]:
    """The newest backfill, blast and reconcile runs for `tenant` (an every-tenant run counts too),
    each kind's newest first."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    from tasks.prefect_api import prefect_client

    found: dict[str, list[RunView]] = {kind: [] for kind in RECENT_FLOWS.values()}
    client = prefect_client()
    flows = client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=list(RECENT_FLOWS))))
    names = {f.id: f.name for f in flows}
    if not names:
        return found
    runs = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=list(RECENT_FLOWS))),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=200,
    )
    for flow_run in runs:
        view = _view(settings, flow_run, names)
        if view.tenant not in (tenant, None, ""):
            continue
        bucket = found.get(view.kind)
        if bucket is not None and len(bucket) < per_kind:
            bucket.append(view)
    for bucket in found.values():  # newest first by when each started (else when it is expected to)
        bucket.sort(key=lambda run: as_utc(run.started_at) if run.started_at else _NEVER, reverse=True)
    return found


class Reach(enum.Enum):
    """What became of one parent in a blast's run, read back from its recipients table."""

    sent = "sent"
    held_back = "held back"
    failed = "failed"
    unreachable = "unreachable"
    already_had_it = "already had it"
    elsewhere = "being sent by another run"


# The words the blast's recipients table uses for each outcome (paylinks.present.blast), by enum.
_REACH_BY_WORDS = {
    label(SendResult.sent): Reach.sent,
    label(SendResult.failed): Reach.failed,
    label(SkipReason.recently_emailed): Reach.held_back,
    label(SkipReason.no_address): Reach.unreachable,
    label(SkipReason.invalid_address): Reach.unreachable,
    label(SkipReason.already_sent): Reach.already_had_it,
    label(SkipReason.claimed_elsewhere): Reach.elsewhere,
}


@dataclass(frozen=True)
class ParentReach:
    parent: str
    email: str
    reach: Reach
    why: str  # in words: "no email address on file", "bounced by the mail server: …"


@dataclass(frozen=True)
class BlastFigures:
    """A blast run's own figures, from the artifacts it published: who was reached and who not."""

    parents: tuple[ParentReach, ...]
    total_owed: str | None  # "$5,490.00"
    delivery: str | None  # "emailed over SMTP", "written to the outbox folder …"
    last_blast: str | None  # the blast before this run: "Dec 3, 2026, 12:14 PM EST, 7 parents"

    def count(self, reach: Reach) -> int:
        return sum(1 for p in self.parents if p.reach is reach)

    @property
    def not_reached(self) -> list[ParentReach]:
        """Every parent this run did not email, and why (already having it is not missing it)."""
        return [p for p in self.parents if p.reach not in (Reach.sent, Reach.already_had_it)]


def plain_text(value: Any) -> str:
    """An artifact's cell back as the text it was (paylinks.present.tables.markdown_text escaped it)."""
    return re.sub(
        r"\\(.)|&(amp|lt|gt);",
        lambda m: m.group(1) or {"amp": "&", "lt": "<", "gt": ">"}[m.group(2)],
        str(value),
    )


def _why(reach: Reach, outcome: str, detail: str) -> str:
    if reach is Reach.failed:
        # "permanent delivery failure to a@b: a@b refused with 550 …" (MailDeliveryError's words)
        kind, _, said = detail.partition(" delivery failure to ")
        if kind in ("permanent", "temporary") and ": " in said:
            said = said.split(": ", 1)[1]
            return f"bounced by the mail server ({kind}): {said}"
        return f"bounced by the mail server: {detail}" if detail else "bounced by the mail server"
    if reach is Reach.held_back:
        return f"held back: {detail}" if detail else outcome
    if reach is Reach.unreachable and outcome == label(SkipReason.no_address):
        return "no email address on file"
    return outcome


def blast_figures(flow_run_id: uuid.UUID, tenant: str) -> BlastFigures | None:
    """What a blast run's artifacts say it did (None: it published none, e.g. it failed first)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from tasks.artifacts import artifact_key
    from tasks.prefect_api import prefect_client

    client = prefect_client()
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )
    tables = {a.key: _records(a.data) for a in artifacts if a.key and a.type == "table"}
    recipients = tables.get(artifact_key("blast", tenant, "recipients"))
    if recipients is None:
        return None
    summary = {
        plain_text(row.get("figure", "")): plain_text(row.get("value", ""))
        for row in tables.get(artifact_key("blast", tenant, "summary"), [])
    }
    parents = []
    for row in recipients:
        outcome, detail = plain_text(row.get("outcome", "")), plain_text(row.get("detail", ""))
        reach = _REACH_BY_WORDS.get(outcome)
        if reach is None:  # a preview's "would send", a test's "test sent": no parent was mailed
            continue
        email = plain_text(row.get("email", ""))
        parents.append(
            ParentReach(
                plain_text(row.get("parent", "")),
                "" if email == "(none)" else email,
                reach,
                _why(reach, outcome, detail),
            )
        )
    return BlastFigures(
        tuple(parents), summary.get("total owed"), summary.get("delivery"), summary.get("last blast")
    )


def _records(data: Any) -> list[dict[str, Any]]:
    """A table artifact's rows (its data is JSON text, or already rows)."""
    try:
        rows = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        return []
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def tenant_run(settings: Settings, flow_run_id: uuid.UUID, tenant: str) -> RunView | None:
    """The run, if it is one of `tenant`'s; None for an unknown run or another tenant's."""
    from prefect.exceptions import ObjectNotFound

    from tasks.prefect_api import prefect_client

    client = prefect_client()
    try:
        flow_run = client.read_flow_run(flow_run_id)
    except ObjectNotFound:
        return None
    flow = client.read_flow(flow_run.flow_id)
    view = _view(settings, flow_run, {flow.id: flow.name})
    return view if view.tenant == tenant else None


RECONCILE_DEPLOYMENT = "reconcile-payments/tenant"


def start_reconcile(settings: Settings, *, tenant: str, started_by: int | None) -> StartedRun:
    """Start reconcile-payments for `tenant` as office user `started_by` (the admin's "Refresh from
    Stripe"), without waiting for it: its account's news is read once and applied to every tenant
    on it. A run of the `reconcile-payments/tenant` deployment when the Prefect API has it;
    otherwise a run in a background thread of this process."""
    from flows.reconcile_payments import reconcile_payments

    return _start_flow(
        settings, reconcile_payments, RECONCILE_DEPLOYMENT, {"tenant": tenant}, started_by, "reconcile"
    )
