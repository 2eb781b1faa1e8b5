"""Fan a run over every tenant out as separate flow runs that the work pool spreads over its workers.

A parent run with no tenant (the nightly backfill, the scheduled reconcile) starts one flow run per
tenant through a child deployment (`backfill-payment-links/tenant`, `reconcile-payments/tenant`)
with `prefect.deployments.run_deployment`, waits for all of them, and publishes one table artifact
that gathers every child: its tenant, final state, key figures and flow run. A child that fails
stops nothing: the others run to their end, and the parent then fails naming the tenants at fault.

Each child's figures are read back from the summary table artifact it published: artifacts live
in the Prefect API, so this works across machines without shared result storage. Each child is
created with the idempotency key `<parent flow run id>:<tenant>`, so a retried parent finds the
children it already started instead of starting them twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from prefect import get_run_logger
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.context import FlowRunContext
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled

from paylinks.club.tenants import Tenant
from paylinks.errors import ConfigurationError, PaylinksError
from tasks.artifacts import artifact_key, publish_table
from tasks.prefect_api import prefect_client

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

BACKFILL_CHILD = "backfill-payment-links/tenant"
RECONCILE_CHILD = "reconcile-payments/tenant"
REMIND_CHILD = "remind-outstanding-balances/tenant"

# The figures of each child's summary table the parent's table shows, by subject.
KEY_FIGURES: dict[str, tuple[str, ...]] = {
    "backfill": ("owed now", "already paid", "links minted", "links retired", "rows skipped", "failed"),
    "reconcile": ("events read", "links marked paid", "orders marked paid", "refund due", "events skipped"),
    "reminders": ("sent", "failed"),
}

POLL_SECONDS = 3.0  # how often the parent asks the API whether its children have finished
# How long a parent waits for its children, by subject. A parent that waited for ever would hold
# its deployment's one-at-a-time slot, and every later scheduled run would be cancelled.
WAIT_LIMIT_SECONDS: dict[str, float] = {"backfill": 5 * 3600, "reconcile": 30 * 60, "reminders": 50 * 60}
WORKER_LABEL = "prefect.worker.name"  # the label a worker gives each flow run it starts


@dataclass
class ChildRun:
    """One tenant's flow run, as the parent saw it end."""

    tenant: str
    flow_run_id: str | None = None
    flow_run_name: str | None = None
    state: str = "NOT STARTED"  # the state type: COMPLETED, FAILED, CRASHED, CANCELLED, ...
    message: str = ""
    worker: str | None = None
    figures: dict[str, str] = field(default_factory=dict)
    # Every tenant the run reports on: the tenant alone, or (a reconcile of one Stripe account)
    # every tenant on its account, each with its own summary and row in the parent's table.
    covers: list[str] = field(default_factory=list)

    def for_each_tenant(self) -> list[ChildRun]:
        """This run as seen by each tenant it covers (same run, each tenant's own figures)."""
        if not self.covers or self.covers == [self.tenant]:
            return [self]
        return [replace(self, tenant=slug, figures={}, covers=[slug]) for slug in self.covers]

    @property
    def completed(self) -> bool:
        return self.state == "COMPLETED"


class FanOutIncompleteError(PaylinksError):
    """Some tenants' flow runs did not complete; the others did. Carries every child."""

    def __init__(self, message: str, children: list[ChildRun]) -> None:
        super().__init__(message)
        self.children = children


def fan_out_per_tenant(
    subject: str,
    deployment: str,
    tenants: Sequence[Tenant],
    parameters: dict[str, Any],
    run_name: Callable[[str], str],
    *,
    covers: Mapping[str, Sequence[str]] | None = None,
) -> list[ChildRun]:
    """One flow run of `deployment` per tenant (`tenant` set, plus `parameters`), run by the pool.

    `run_name(slug)` names each child. `covers[slug]`: every tenant that child reports on (a
    reconcile child reconciles one Stripe account, for every tenant on it). Waits for every child
    to end, publishes the parent's summary artifact (`<subject>-all-tenants`, a row per tenant),
    and raises FanOutIncompleteError when any did not complete. Returns the children.
    """
    logger = get_run_logger()
    _require_deployment(deployment)
    parent_id = _parent_flow_run_id()
    children = [
        ChildRun(tenant=club.slug, covers=list((covers or {}).get(club.slug, [club.slug])))
        for club in tenants
    ]
    for child in children:
        try:
            flow_run = run_deployment(
                deployment,
                parameters={"tenant": child.tenant, **parameters},
                flow_run_name=run_name(child.tenant),
                idempotency_key=f"{parent_id}:{child.tenant}",
                tags=[f"tenant:{child.tenant}"],
                timeout=0,  # start them all, then wait for all
            )
        except Exception as error:  # this tenant's run could not be created; the others still start
            child.message = _first_line(error)
            logger.error("could not start %s for %s: %s", deployment, child.tenant, child.message)
            continue
        flow_run = cast("FlowRun", flow_run)  # called from sync code, run_deployment returns the FlowRun
        child.flow_run_id, child.flow_run_name = str(flow_run.id), flow_run.name
    logger.info(
        "started %d %s run(s) of %s; waiting for them",
        sum(bool(c.flow_run_id) for c in children),
        subject,
        deployment,
    )

    _wait_for(children, WAIT_LIMIT_SECONDS.get(subject, 3600))
    per_tenant = [seen for child in children for seen in child.for_each_tenant()]
    for seen in per_tenant:
        if seen.flow_run_id:
            try:
                seen.figures = _summary_figures(subject, seen)
            except Exception as error:  # the table still lists the tenant, without its figures
                logger.warning("could not read the summary of %s: %s", seen.tenant, _first_line(error))
    publish_table(
        artifact_key(subject, "all-tenants"),
        [_row(subject, seen) for seen in per_tenant],
        description=f"{subject.capitalize()} of every tenant: one flow run each",
    )
    failed = [child for child in children if not child.completed]
    for child in failed:
        logger.error(
            "%s of %s did not complete (%s): %s",
            subject,
            child.tenant,
            child.state,
            child.message or "no message",
        )
    if failed:
        raise FanOutIncompleteError(
            f"{subject} incomplete for {len(failed)} of {len(children)} tenants: "
            + "; ".join(
                f"{', '.join(c.covers or [c.tenant])} ({c.state.lower()}: {c.message or 'no message'})"
                for c in failed
            )
            + f"; see the artifact {artifact_key(subject, 'all-tenants')}",
            children,
        )
    logger.info("%s of %d tenants completed", subject, len(children))
    return children


def _require_deployment(name: str) -> None:
    client = prefect_client()
    try:
        client.read_deployment_by_name(name)
    except ObjectNotFound:
        raise ConfigurationError(
            f"fan_out needs the deployment {name!r}, which the Prefect API does not have; "
            "deploy prefect.yaml (`prefect --no-prompt deploy --all`) or run without fan_out"
        ) from None


def _parent_flow_run_id() -> str:
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("fan_out runs inside a flow run")
    return str(context.flow_run.id)


def _wait_for(children: list[ChildRun], limit_seconds: float) -> None:
    """Poll the API until every started child is in a final state; record state, message, worker.

    After `limit_seconds`, a child no worker has taken yet is cancelled (the next scheduled run
    starts that tenant afresh) and one already taken is left to finish, reported as not ended.
    """
    pending = {UUID(c.flow_run_id): c for c in children if c.flow_run_id}
    deadline = time.monotonic() + limit_seconds
    client = prefect_client()
    while pending:
        for run in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending)))
        ):
            child = pending[run.id]
            child.flow_run_name = run.name
            child.worker = cast("str | None", (run.labels or {}).get(WORKER_LABEL)) or child.worker
            if run.state is not None:
                child.state = run.state.type.value
                child.message = "" if run.state.is_completed() else _first_line(run.state.message or "")
                if run.state.is_final():
                    del pending[run.id]
        if not pending:
            return
        if time.monotonic() >= deadline:
            for flow_run_id, child in pending.items():
                if child.state == "SCHEDULED":
                    child.message = f"no worker started it within {limit_seconds:.0f} s; cancelled"
                    client.set_flow_run_state(flow_run_id, Cancelled(message=child.message), force=True)
                    child.state = "CANCELLED"
                else:
                    child.message = (
                        f"still {child.state.lower()} when the parent stopped waiting ({limit_seconds:.0f} s)"
                    )
            return
        time.sleep(POLL_SECONDS)


def _summary_figures(subject: str, child: ChildRun) -> dict[str, str]:
    """The figures of the child's summary table artifact (`<subject>-<tenant>-summary`), if any."""
    key = artifact_key(subject, child.tenant, "summary")
    client = prefect_client()
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(child.flow_run_id)]),
            key=ArtifactFilterKey(any_=[key]),
        )
    )
    if not artifacts:
        return {}
    data = artifacts[-1].data
    rows = json.loads(data) if isinstance(data, str) else data
    return {str(row.get("figure")): str(row.get("value")) for row in rows or [] if isinstance(row, dict)}


def _row(subject: str, child: ChildRun) -> dict[str, Any]:
    row: dict[str, Any] = {"tenant": child.tenant, "state": child.state}
    row.update({figure: child.figures.get(figure, "") for figure in KEY_FIGURES.get(subject, ())})
    row.update(
        {
            "flow run": child.flow_run_name or "",
            "flow run id": child.flow_run_id or "",
            "worker": child.worker or "",
            "message": child.message,
        }
    )
    return row


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
