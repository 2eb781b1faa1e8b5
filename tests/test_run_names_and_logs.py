"""What the engineer finds in the Prefect API after a `paylinks` command: a run named after what
it did, and its log lines, from "Beginning flow run" to "Finished", none lost at process exit."""

from __future__ import annotations

import logging
import sqlite3

import pytest
import sqlalchemy as sa

from flows.run_names import (
    backfill_run_name,
    blast_run_name,
    reconcile_run_name,
    remind_run_name,
    resend_run_name,
)
from paylinks.demo.data import seed_demo
from tests.helpers import cli_env, run_cli

TENANT = "riverside-hoops"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (backfill_run_name(TENANT, commit=True), "backfill-riverside-hoops-commit"),
        (backfill_run_name(None, commit=False), "backfill-all-dry-run"),
        (blast_run_name(TENANT, send=True), "blast-riverside-hoops-send"),
        (blast_run_name(TENANT, test_email="me@club.example"), "blast-riverside-hoops-test"),
        (blast_run_name(TENANT), "blast-riverside-hoops-preview"),
        (resend_run_name(TENANT, "12"), "resend-riverside-hoops-player-12"),
        (resend_run_name(TENANT, "#12"), "resend-riverside-hoops-player-12"),
        (resend_run_name(TENANT, "١٢"), "resend-riverside-hoops-١٢"),  # not an id: searched in names
        (resend_run_name(TENANT, " Maya O'Neil "), "resend-riverside-hoops-maya-o-neil"),
        (resend_run_name(TENANT, "12", dry_run=True), "resend-riverside-hoops-player-12-dry-run"),
        (resend_run_name(TENANT, "%_"), "resend-riverside-hoops-player"),
        (resend_run_name(TENANT, "  "), "resend-riverside-hoops-player"),
        (reconcile_run_name(None), "reconcile-all"),
        (reconcile_run_name(TENANT), "reconcile-riverside-hoops"),
        (reconcile_run_name(TENANT, whole_account=True), "reconcile-riverside-hoops-account"),
        (remind_run_name(None, send=True), "remind-all-send"),
        (remind_run_name(TENANT), "remind-riverside-hoops-dry-run"),
    ],
)
def test_run_names_say_what_the_run_does(name, expected):
    assert name == expected


def _first_player_id(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT p.id FROM players p JOIN tenants t ON t.id = p.tenant_id "
                "WHERE t.slug = :slug AND p.parent_id IS NOT NULL ORDER BY p.id LIMIT 1"
            ),
            {"slug": TENANT},
        ).scalar_one()


def _flow_runs_named(client, name: str) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    return client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


COMMANDS = {
    "backfill dry run": (["backfill", "--tenant", TENANT], "backfill-riverside-hoops-dry-run"),
    "blast preview": (["blast", "--tenant", TENANT], "blast-riverside-hoops-preview"),
    "resend dry run": (["resend", "--tenant", TENANT, "{player}", "--dry-run"], None),
    "reconcile every tenant": (["reconcile"], "reconcile-all"),
}


# One backend: what is checked here is the Prefect API, not the club database.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_cli_run_is_named_after_what_it_does_and_its_logs_reach_the_api(
    command, settings, engine, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    seed_demo(engine, settings.club_timezone)
    player_id = _first_player_id(engine)
    args, expected = COMMANDS[command]
    args = [arg.format(player=player_id) for arg in args]
    expected = expected or f"resend-riverside-hoops-player-{player_id}-dry-run"

    with get_client(sync_client=True) as client:
        # Flows run in this test process get the same names; count only the CLI's new run.
        before = {run.id for run in _flow_runs_named(client, expected)}
        result = run_cli(args, cli_env(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        (flow_run,) = [run for run in _flow_runs_named(client, expected) if run.id not in before]
        assert flow_run.state.is_completed()
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))

    run_lines = [log.message for log in logs if log.task_run_id is None and log.level == logging.INFO]
    assert run_lines[0] == f"Beginning flow run {expected!r} for flow {_flow_name(args)!r}"
    # The run's own report, between Prefect's first and last line.
    assert any(not line.startswith(("Beginning flow run", "Finished in state")) for line in run_lines), (
        run_lines
    )
    # Logged last, just before the process exits: nothing was lost at exit.
    assert run_lines[-1] == "Finished in state Completed()"


def _flow_name(args: list[str]) -> str:
    return {
        "backfill": "backfill-payment-links",
        "blast": "outstanding-balance-email",
        "resend": "resend-payment-link",
        "reconcile": "reconcile-payments",
    }[args[0]]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_logs_survive_the_exit_of_the_ephemeral_api(settings, engine, tmp_path):
    seed_demo(engine, settings.club_timezone)
    result = run_cli(["reconcile", "--tenant", TENANT], cli_env(tmp_path, ephemeral_api=True))
    assert result.returncode == 0, result.stdout + result.stderr

    # The ephemeral API stopped with the process; what it kept is in its own database.
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as prefect_db:
        (flow_run_id,) = prefect_db.execute(
            "SELECT id FROM flow_run WHERE name = 'reconcile-riverside-hoops'"
        ).fetchone()
        run_lines = [
            message
            for (message,) in prefect_db.execute(
                "SELECT message FROM log WHERE flow_run_id = ? AND task_run_id IS NULL AND level = ? "
                "ORDER BY timestamp",
                (flow_run_id, logging.INFO),
            )
        ]
        task_lines = prefect_db.execute(
            "SELECT count(*) FROM log WHERE flow_run_id = ? AND task_run_id IS NOT NULL", (flow_run_id,)
        ).fetchone()[0]
    assert run_lines[0] == "Beginning flow run 'reconcile-riverside-hoops' for flow 'reconcile-payments'"
    assert any(not line.startswith(("Beginning flow run", "Finished in state")) for line in run_lines), (
        run_lines
    )
    assert run_lines[-1] == "Finished in state Completed()"
    assert task_lines > 0
