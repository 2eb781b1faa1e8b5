"""The nightly backfill and the scheduled reconcile fanned out over a work pool, for real: one Prefect
server on PostgreSQL, prefect.yaml deployed, two process workers, and the parent deployments run
for four tenants, one of which has no currency (Stripe refuses its prices).

Each tenant runs once, as its own flow run of the per-tenant deployment, on whichever worker takes
it; the broken tenant fails alone; the parent's artifact gathers every child.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from flows import fan_out
from flows.backfill_payment_links import backfill_payment_links
from paylinks.demo.data import DemoTenant, SeedReport, _seed_tenant, demo_today
from paylinks.errors import ConfigurationError
from paylinks.settings import PROJECT_ROOT
from paylinks.store.tables import payment_links, tenants
from tests.browser import PREFECT, PrefectServer, prefect_cli, prefect_server, stop
from tests.helpers import TENANT

GOOD = ["riverside-hoops", "northside-eagles", "westside-wolves"]
BROKEN = "eastside-ghosts"  # no currency: Stripe refuses its prices, so its backfill fails
CONNECTED = "acct_fanOutNorthside"  # GOOD[1]'s own Stripe account
WORKERS = ("fan-out-worker-a", "fan-out-worker-b")


def add_tenant(settings, engine: sa.Engine, slug: str, offset: int, currency: str = "usd") -> None:
    demo = DemoTenant(
        slug, slug.replace("-", " ").title(), f"treasurer@{slug}.example", "#123456", None, 9, ("U11", "U13")
    )
    with engine.begin() as connection:
        _seed_tenant(
            connection,
            demo,
            offset,
            SeedReport(tenants=[], skipped_tenants=[]),
            demo_today(settings.club_timezone),
        )
        connection.execute(sa.update(tenants).where(tenants.c.slug == slug).values(currency=currency))


@contextmanager
def prefect_database(database_url: str) -> Iterator[str]:
    """A throwaway database for the Prefect server, on the PostgreSQL server the test's club uses."""
    url = sa.make_url(database_url)
    name = f"prefect_fan_out_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_worker(server: PrefectServer, home: Path, name: str, log: Path) -> subprocess.Popen:
    env = server.client_env(home, PAYLINKS_PROJECT_DIR=str(PROJECT_ROOT), PREFECT_WORKER_QUERY_SECONDS="2")
    with open(log, "wb") as out:
        # --limit 3: a worker runs at most three flow runs at once, so four children and their
        # parent cannot all land on one worker.
        command = ["--no-prompt", "worker", "start", "--pool", "paylinks", "--name", name, "--limit", "3"]
        return subprocess.Popen(
            PREFECT + command,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def deployment_ids(server: PrefectServer) -> dict[str, str]:
    with server.api() as api:
        flows = {f["id"]: f["name"] for f in api.post("/flows/filter", json={}).raise_for_status().json()}
        deployments = api.post("/deployments/filter", json={}).raise_for_status().json()
    return {f"{flows[d['flow_id']]}/{d['name']}": d["id"] for d in deployments}


def run_deployment(server: PrefectServer, env: dict[str, str], name: str) -> str:
    result = prefect_cli(["deployment", "run", name], env)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    match = re.search(r"UUID: ([0-9a-f-]{36})", result.stdout)
    assert match, result.stdout
    return match.group(1)


def wait_final(server: PrefectServer, flow_run_id: str, logs: list[Path], timeout: float = 420) -> dict:
    deadline = time.monotonic() + timeout
    with server.api() as api:
        while time.monotonic() < deadline:
            flow_run = api.get(f"/flow_runs/{flow_run_id}").raise_for_status().json()
            if flow_run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return flow_run
            time.sleep(2)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
    pytest.fail(f"flow run {flow_run_id} did not end in {timeout} s:\n{tails}")


def children_of(server: PrefectServer, deployment_id: str) -> list[dict]:
    with server.api() as api:
        by_deployment = {"deployments": {"id": {"any_": [deployment_id]}}}
        return (
            api.post("/flow_runs/filter", json={"flow_runs": {}, **by_deployment}).raise_for_status().json()
        )


def parent_artifact(server: PrefectServer, flow_run_id: str, key: str, runs: int = 1) -> list[dict]:
    """The rows of the run's latest `key` table; `runs`: how many times the run published it."""
    with server.api() as api:
        found = (
            api.post(
                "/artifacts/filter",
                json={
                    "artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}},
                    "sort": "CREATED_DESC",
                },
            )
            .raise_for_status()
            .json()
        )
    assert len(found) == runs, f"{key}: {found}"
    data = found[0]["data"]
    return json.loads(data) if isinstance(data, str) else data


def links_by_tenant(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """(rows, rows with their Stripe link) per tenant."""
    query = (
        sa.select(
            tenants.c.slug,
            sa.func.count(payment_links.c.id),
            sa.func.count(payment_links.c.stripe_payment_link_id),
        )
        .select_from(tenants.outerjoin(payment_links, payment_links.c.tenant_id == tenants.c.id))
        .group_by(tenants.c.slug)
    )
    with engine.connect() as connection:
        return {slug: (total, linked) for slug, total, linked in connection.execute(query)}


def assert_children(
    children: list[dict], parent: dict, artifact: list[dict], failing: frozenset[str] | set[str] = frozenset()
) -> dict[str, dict]:
    """One child per tenant, each ended; the `failing` ones alone failed; the artifact lists them all."""
    by_tenant: dict[str, list[dict]] = {}
    for child in children:
        by_tenant.setdefault(child["parameters"]["tenant"], []).append(child)
    assert {slug: len(runs) for slug, runs in by_tenant.items()} == dict.fromkeys([*GOOD, BROKEN], 1)
    states = {slug: runs[0]["state_type"] for slug, runs in by_tenant.items()}
    assert states == {slug: "FAILED" if slug in failing else "COMPLETED" for slug in [*GOOD, BROKEN]}
    if failing:  # the parent fails naming the tenants at fault, and only those
        message = parent["state"]["message"]
        assert parent["state_type"] == "FAILED", message
        assert [slug for slug in [*GOOD, BROKEN] if slug in message] == sorted(failing), message
    else:
        assert parent["state_type"] == "COMPLETED", parent["state"]["message"]
    rows = {row["tenant"]: row for row in artifact}
    assert set(rows) == {*GOOD, BROKEN}
    for slug, (child,) in by_tenant.items():
        assert rows[slug]["state"] == child["state_type"]
        assert rows[slug]["flow run id"] == child["id"] and rows[slug]["flow run"] == child["name"]
        assert rows[slug]["worker"] == child["labels"].get("prefect.worker.name")
        assert child["labels"].get("prefect.worker.name") in WORKERS
    assert all(rows[slug]["message"] for slug in failing), "why each child failed, for the person reading it"
    return {slug: runs[0] for slug, runs in by_tenant.items()}


def seconds(run: dict) -> float:
    return float(run.get("total_run_time") or 0)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # children write at once
def test_nightly_and_reconcile_fan_out_one_run_per_tenant_over_two_workers(
    settings, engine, emulator, demo_club, tmp_path
):
    add_tenant(settings, engine, GOOD[2], offset=2)
    add_tenant(settings, engine, BROKEN, offset=3, currency="")
    # One club is paid into its own Stripe (Connect) account: reconcile fans out per account.
    httpx.post(f"{emulator.url}/_emulator/accounts", data={"id": CONNECTED}).raise_for_status()
    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == GOOD[1]).values(stripe_account=CONNECTED)
        )
    logs = [tmp_path / f"{name}.log" for name in WORKERS]

    with ExitStack() as stack:
        prefect_db = stack.enter_context(prefect_database(settings.database_url))
        home = tmp_path / "server-home"
        home.mkdir()
        # The server runs in `home`, so it reads this prefect.toml: its database is PostgreSQL.
        (home / "prefect.toml").write_text(f'[server.database]\nconnection_url = "{prefect_db}"\n')
        server = stack.enter_context(prefect_server(home, auth=False))
        with sa.create_engine(sa.make_url(prefect_db).set(drivername="postgresql+psycopg")).connect() as pg:
            assert pg.execute(sa.text("SELECT to_regclass('flow_run')")).scalar_one() is not None

        env = server.client_env(tmp_path / "cli-home")
        for args in (["work-pool", "create", "paylinks", "--type", "process"], ["deploy", "--all"]):
            result = prefect_cli(args, env, timeout=180)
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        ids = deployment_ids(server)

        workers = [
            start_worker(server, tmp_path / f"{n}-home", n, log) for n, log in zip(WORKERS, logs, strict=True)
        ]
        for worker in workers:
            stack.callback(stop, worker)

        started = time.monotonic()
        parent_id = run_deployment(server, env, "backfill-payment-links/nightly")
        parent = wait_final(server, parent_id, logs)
        backfill_seconds = time.monotonic() - started
        children = children_of(server, ids["backfill-payment-links/tenant"])
        artifact = parent_artifact(server, parent_id, "backfill-all-tenants")
        by_tenant = assert_children(children, parent, artifact, failing=frozenset({BROKEN}))
        artifact = {row["tenant"]: row for row in artifact}
        assert "currency" in artifact[BROKEN]["message"], artifact[BROKEN]
        assert all(artifact[slug]["links minted"] not in ("", "0") for slug in GOOD), artifact
        # The children are the parent's subflows: the API links each to a task run of the parent.
        with server.api() as api:
            parent_tasks = (
                api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [parent_id]}}})
                .raise_for_status()
                .json()
            )
        assert {c["parent_task_run_id"] for c in children} <= {t["id"] for t in parent_tasks}

        counts = links_by_tenant(engine)
        for slug in GOOD:
            total, linked = counts[slug]
            assert total > 0 and linked == total, (slug, counts[slug])
        assert counts[BROKEN][1] == 0
        assert emulator.emulator.counts()["payment_links"] + emulator.emulator.counts(CONNECTED)[
            "payment_links"
        ] == sum(linked for _, linked in counts.values())
        assert emulator.emulator.counts(CONNECTED)["payment_links"] == counts[GOOD[1]][1]
        backfill_workers = {slug: run["labels"]["prefect.worker.name"] for slug, run in by_tenant.items()}
        assert set(backfill_workers.values()) == set(WORKERS), backfill_workers

        # The parent, run again (as a retry does: the same flow run): the idempotency key of each
        # child gives back the run it already has, so no tenant is started twice.
        assert {slug: run["idempotency_key"] for slug, run in by_tenant.items()} == {
            slug: f"{parent_id}:{slug}" for slug in by_tenant
        }
        with server.api() as api:
            retry = {"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True}
            api.post(f"/flow_runs/{parent_id}/set_state", json=retry).raise_for_status()
        parent = wait_final(server, parent_id, logs)
        assert parent["run_count"] == 2
        children_again = children_of(server, ids["backfill-payment-links/tenant"])
        assert sorted(c["id"] for c in children_again) == sorted(c["id"] for c in children)
        assert_children(
            children_again,
            parent,
            parent_artifact(server, parent_id, "backfill-all-tenants", runs=2),
            {BROKEN},
        )
        assert emulator.emulator.counts()["payment_links"] + emulator.emulator.counts(CONNECTED)[
            "payment_links"
        ] == sum(linked for _, linked in links_by_tenant(engine).values())

        started = time.monotonic()
        parent_id = run_deployment(server, env, "reconcile-payments/every-15-minutes")
        parent = wait_final(server, parent_id, logs)
        reconcile_seconds = time.monotonic() - started
        children = children_of(server, ids["reconcile-payments/tenant"])
        # One child per Stripe account, each reading its account once and reporting on every
        # tenant on it: the platform's three clubs share one, the connected club has its own.
        assert parent["state_type"] == "COMPLETED", parent["state"]["message"]
        covered = {BROKEN: [BROKEN, GOOD[0], GOOD[2]], GOOD[1]: [GOOD[1]]}  # named after the first by slug
        assert sorted(c["parameters"]["tenant"] for c in children) == sorted(covered)
        assert all(c["parameters"]["whole_account"] is True for c in children)
        assert all(c["state_type"] == "COMPLETED" for c in children), [c["state"] for c in children]
        by_first = {c["parameters"]["tenant"]: c for c in children}
        rows = {row["tenant"]: row for row in parent_artifact(server, parent_id, "reconcile-all-tenants")}
        assert set(rows) == {*GOOD, BROKEN}
        for first, slugs in covered.items():
            for slug in slugs:  # each tenant's row: its account's run, its own figures
                assert rows[slug]["flow run id"] == by_first[first]["id"], rows[slug]
                assert rows[slug]["state"] == "COMPLETED"
                assert rows[slug]["events read"] != "", rows[slug]
        reconciled = by_first

    print(
        f"\nfan-out backfill: {backfill_seconds:.0f} s for the parent; children "
        + ", ".join(f"{s} {seconds(r):.1f} s on {backfill_workers[s]}" for s, r in by_tenant.items())
        + f"\nfan-out reconcile: {reconcile_seconds:.0f} s for the parent; children "
        + ", ".join(
            f"{s} {seconds(r):.1f} s on {r['labels']['prefect.worker.name']}" for s, r in reconciled.items()
        )
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_fan_out_without_the_per_tenant_deployment_names_it_and_starts_nothing(settings, demo_club):
    with pytest.raises(
        ConfigurationError, match=r"backfill-payment-links/tenant.*prefect --no-prompt deploy --all"
    ):
        backfill_payment_links(commit=False, fan_out=True)


@pytest.fixture
def child_deployment_without_a_worker() -> Iterator[str]:
    """backfill-payment-links/tenant on the session's test API, on no work pool: no worker takes its runs."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("backfill-payment-links")
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name="tenant",
            entrypoint="flows/backfill_payment_links.py:backfill_payment_links",
        )
    try:
        yield str(deployment_id)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_children_no_worker_starts_are_cancelled_when_the_parent_stops_waiting(
    settings, demo_club, child_deployment_without_a_worker, monkeypatch
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    monkeypatch.setitem(fan_out.WAIT_LIMIT_SECONDS, "backfill", 2)
    monkeypatch.setattr(fan_out, "POLL_SECONDS", 0.5)
    with pytest.raises(fan_out.FanOutIncompleteError) as failure:
        backfill_payment_links(commit=False, fan_out=True)

    children = {child.tenant: child for child in failure.value.children}
    assert set(children) == {TENANT, "northside-eagles"}
    assert all(
        c.state == "CANCELLED" and "no worker started it within 2 s" in c.message for c in children.values()
    )
    assert "backfill incomplete for 2 of 2 tenants" in str(failure.value)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[child_deployment_without_a_worker])
            )
        )
    # Cancelled at the API, so no worker runs them later, beside the next night's children.
    assert sorted((r.parameters["tenant"], r.state.type.value) for r in runs) == [
        ("northside-eagles", "CANCELLED"),
        (TENANT, "CANCELLED"),
    ]
    assert all(r.parameters["commit"] is False for r in runs)
