"""The office's flow runs: the coach's resend in process, the blast on a deployment or a thread of
its own, and the recent runs of a tenant read back from the Prefect API.

Every run is a real Prefect flow run (with its task runs) on the API this process is configured
for, so the engineer sees it in the Prefect UI; nobody using the office needs Prefect credentials.
A run the office starts carries a tag naming the office user who started it (`started_by_tag`):
a coach's run page shows only the runs they started.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from paylinks.settings import Settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

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


def ui_base_url(settings: Settings) -> str | None:
    if settings.prefect_ui_url:
        return settings.prefect_ui_url.rstrip("/")
    from prefect.settings import PREFECT_UI_URL

    value = PREFECT_UI_URL.value()
    return str(value).rstrip("/") if value else None


def run_ui_url(settings: Settings, flow_run_id: uuid.UUID) -> str | None:
    base = ui_base_url(settings)
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


def run_flow_in_process(
    settings: Settings, flow: Any, parameters: dict[str, Any], *, started_by: int | None
) -> tuple[uuid.UUID, Any]:
    """Run `flow` here, now, with these settings, as office user `started_by`: (its run id, its
    result). Raises what the run raised."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from tasks.run_settings import settings_for_runs

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(flow, parameters=parameters, tags=started_by_tag(started_by))
    with settings_for_runs(settings):
        return flow_run.id, run_flow(flow, flow_run=flow_run, parameters=parameters)


def _deployment_available(name: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return False  # the ephemeral API has no workers to run a deployment
    try:
        with get_client(sync_client=True) as client:
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
    on_finish: Callable[[uuid.UUID, Any], None] | None = None,
) -> StartedRun:
    """Start the outstanding-balance flow for `tenant` as office user `started_by`, without waiting
    for it to finish.

    A run of the `outstanding-balance-email/manual` deployment when the Prefect API has it
    (a worker picks it up); otherwise a run in a background thread of this process.
    """
    from prefect.client.orchestration import get_client

    from flows.outstanding_balance_email import outstanding_balance_email
    from tasks.run_settings import settings_for_runs

    parameters: dict[str, Any] = {
        "tenant": tenant,
        "test_email": test_email,
        "send": send,
        "blast_key": blast_key,
    }
    if _deployment_available(BLAST_DEPLOYMENT):
        from prefect.deployments import run_deployment

        flow_run = cast(
            "FlowRun",
            run_deployment(
                BLAST_DEPLOYMENT, parameters=parameters, timeout=0, tags=started_by_tag(started_by)
            ),
        )
        return StartedRun(flow_run.id, run_ui_url(settings, flow_run.id), on_deployment=True)

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(
            outstanding_balance_email, parameters=parameters, tags=started_by_tag(started_by)
        )

    def run() -> None:
        from prefect.flow_engine import run_flow

        result: Any = None
        try:
            with settings_for_runs(settings):
                result = run_flow(outstanding_balance_email, flow_run=flow_run, parameters=parameters)
        except Exception as error:  # recorded as the run's failed state; the office stays up
            result = error
            logger.warning("blast run %s ended with %s", flow_run.id, type(error).__name__)
        if on_finish is not None:
            on_finish(flow_run.id, result)

    threading.Thread(target=run, name=f"blast-{flow_run.id}", daemon=True).start()
    return StartedRun(flow_run.id, run_ui_url(settings, flow_run.id), on_deployment=False)


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
    )


def recent_runs(settings: Settings, tenant: str, per_kind: int = 3) -> dict[str, list[RunView]]:
    """The newest backfill, blast and reconcile runs for `tenant` (an every-tenant run counts too)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    found: dict[str, list[RunView]] = {kind: [] for kind in RECENT_FLOWS.values()}
    with get_client(sync_client=True) as client:
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
    return found


def tenant_run(settings: Settings, flow_run_id: uuid.UUID, tenant: str) -> RunView | None:
    """The run, if it is one of `tenant`'s; None for an unknown run or another tenant's."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            flow_run = client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            return None
        flow = client.read_flow(flow_run.flow_id)
    view = _view(settings, flow_run, {flow.id: flow.name})
    return view if view.tenant == tenant else None
