"""prefect.yaml deployed for real, the way docs/deploying.md tells an operator to: a Prefect server
with basic auth on loopback, `prefect deploy --all`, a run of the blast with `test_email`, and a
process worker that runs it from this checkout and mails the test address only.
"""

from __future__ import annotations

import re
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from flows.backfill_payment_links import backfill_payment_links
from paylinks.settings import PROJECT_ROOT
from tests.browser import PREFECT, PrefectServer, prefect_cli, prefect_server, stop

DEPLOYMENTS = {
    "backfill-payment-links/nightly",
    "outstanding-balance-email/manual",
    "resend-payment-link/coach",
    "reconcile-payments/every-15-minutes",
    "backfill-payment-links/tenant",
    "reconcile-payments/tenant",
    "remind-outstanding-balances/hourly",
    "remind-outstanding-balances/tenant",
}


def run_id(output: str) -> str:
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, f"no flow run id in:\n{output}"
    return match.group(1)


def read_deployments(server: PrefectServer) -> dict[str, dict]:
    with server.api() as api:
        flows = {f["id"]: f["name"] for f in api.post("/flows/filter", json={}).raise_for_status().json()}
        deployments = api.post("/deployments/filter", json={}).raise_for_status().json()
    return {f"{flows[d['flow_id']]}/{d['name']}": d for d in deployments}


def read_flow_run(server: PrefectServer, flow_run_id: str) -> tuple[dict, list[dict], list[str]]:
    """The flow run, its task runs and its artifact keys, as the API has them."""
    with server.api() as api:
        flow_run = api.get(f"/flow_runs/{flow_run_id}").raise_for_status().json()
        by_run = {"flow_runs": {"id": {"any_": [flow_run_id]}}}
        task_runs = api.post("/task_runs/filter", json=by_run).raise_for_status().json()
        artifacts = api.post("/artifacts/filter", json=by_run).raise_for_status().json()
    return flow_run, task_runs, [a["key"] for a in artifacts if a.get("key")]


def cli_output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one backend keeps CI time down
def test_deployed_blast_runs_on_a_worker_and_mails_only_the_test_address(settings, demo_club, tmp_path: Path):
    backfill_payment_links(commit=True)  # in-process, on the session's test API: every item gets its link
    outbox = tmp_path / "worker-outbox"

    with prefect_server(tmp_path / "server-home", auth=True) as server:
        # The API refuses anyone without the password.
        assert httpx.post(f"{server.api_url}/deployments/filter", json={}, timeout=10).status_code == 401
        assert (
            httpx.post(
                f"{server.api_url}/deployments/filter", json={}, auth=("admin", "wrong"), timeout=10
            ).status_code
            == 401
        )
        with server.api() as api:
            assert api.post("/deployments/filter", json={}).status_code == 200

        env = server.client_env(tmp_path / "cli-home")
        pool = prefect_cli(["work-pool", "create", "paylinks", "--type", "process"], env)
        assert pool.returncode == 0, cli_output(pool)
        deploy = prefect_cli(["deploy", "--all"], env, timeout=120)
        assert deploy.returncode == 0, cli_output(deploy)

        deployed = read_deployments(server)
        assert set(deployed) == DEPLOYMENTS
        assert all(
            d["enforce_parameter_schema"] and d["work_pool_name"] == "paylinks" for d in deployed.values()
        )
        nightly = deployed["backfill-payment-links/nightly"]
        assert nightly["parameters"] == {"commit": True, "fan_out": True}
        assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in nightly["schedules"]] == [
            ("0 2 * * *", "America/New_York")
        ]
        assert deployed["outstanding-balance-email/manual"]["parameters"] == {}
        assert deployed["outstanding-balance-email/manual"]["schedules"] == []

        def run_blast(*params: str):
            """`prefect deployment run` of the blast deployment, each param as `-p name=value`."""
            flags = [flag for param in params for flag in ("-p", param)]
            return prefect_cli(["deployment", "run", "outstanding-balance-email/manual", *flags], env)

        test_send = run_blast("tenant=riverside-hoops", "test_email=coach@example.com")
        assert test_send.returncode == 0, cli_output(test_send)
        test_send_id = run_id(test_send.stdout)

        # The address's shape is a pattern in the parameter schema, so the server refuses the run.
        bad_address = run_blast("tenant=riverside-hoops", "test_email=not-an-email")
        assert bad_address.returncode != 0, cli_output(bad_address)
        assert "Validation failed for field 'test_email'" in bad_address.stdout + bad_address.stderr

        unknown = run_blast("tenant=riverside-hoops", "tset_email=coach@example.com")
        assert unknown.returncode != 0, cli_output(unknown)
        assert "tset_email" in unknown.stdout + unknown.stderr, cli_output(unknown)

        not_a_slug = run_blast("tenant=Riverside Hoops", "test_email=coach@example.com")
        assert not_a_slug.returncode != 0, cli_output(not_a_slug)
        assert "Validation failed for field 'tenant'" in not_a_slug.stdout + not_a_slug.stderr, cli_output(
            not_a_slug
        )

        worker_env = server.client_env(
            tmp_path / "worker-home", PAYLINKS_PROJECT_DIR=str(PROJECT_ROOT), PAYLINKS_OUTBOX_DIR=str(outbox)
        )
        worker_log = tmp_path / "worker.log"
        with open(worker_log, "wb") as log:
            worker = subprocess.Popen(
                PREFECT + ["--no-prompt", "worker", "start", "--pool", "paylinks", "--run-once"],
                env=worker_env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            worker.wait(timeout=120)  # --run-once: takes what is due, waits for those runs, exits
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the worker did not finish in 120 s:\n{worker_log.read_text(errors='replace')[-6000:]}"
            )
        finally:
            stop(worker)
        worker_output = worker_log.read_text(errors="replace")[-6000:]

        flow_run, task_runs, artifacts = read_flow_run(server, test_send_id)
        assert flow_run["state_type"] == "COMPLETED", worker_output
        assert flow_run["parameters"] == {"tenant": "riverside-hoops", "test_email": "coach@example.com"}
        assert task_runs and all(t["state_type"] == "COMPLETED" for t in task_runs)
        assert "blast-riverside-hoops-summary" in artifacts

    messages = [message_from_bytes(path.read_bytes(), policy=policy.default) for path in outbox.glob("*.eml")]
    assert len(messages) == 1, [m["To"] for m in messages]
    (message,) = messages
    assert message["To"].addresses[0].addr_spec == "coach@example.com"
    assert message["Subject"].startswith("[TEST]")
    assert "riverside" in message["Subject"].lower()
