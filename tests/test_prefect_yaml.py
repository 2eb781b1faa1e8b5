"""prefect.yaml loads, and every deployment in it can run: its entrypoint imports, names the flow
the deployment is named after, and sets only parameters that flow takes, with valid values.

Fast: no server. tests/flows/test_deployments.py deploys the same file to a real server.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow
from prefect.deployments.steps.core import StepExecutionError, run_steps
from prefect.exceptions import ParameterTypeError, SignatureMismatchError
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import ValidationError, validate

from paylinks.settings import PROJECT_ROOT

# "<flow name>/<deployment name>", as `prefect deployment run` and the UI spell it, and the entrypoint.
DEPLOYMENTS = {
    "backfill-payment-links/nightly": "flows/backfill_payment_links.py:backfill_payment_links",
    "outstanding-balance-email/manual": "flows/outstanding_balance_email.py:outstanding_balance_email",
    "resend-payment-link/coach": "flows/resend_payment_link.py:resend_payment_link",
    "reconcile-payments/every-15-minutes": "flows/reconcile_payments.py:reconcile_payments",
    "remind-outstanding-balances/hourly": "flows/remind_outstanding_balances.py:remind_outstanding_balances",
    # One tenant each, started by the two scheduled runs above when they fan out.
    "backfill-payment-links/tenant": "flows/backfill_payment_links.py:backfill_payment_links",
    "reconcile-payments/tenant": "flows/reconcile_payments.py:reconcile_payments",
    "remind-outstanding-balances/tenant": "flows/remind_outstanding_balances.py:remind_outstanding_balances",
}
FAN_OUT = {
    "backfill-payment-links/nightly": "backfill-payment-links/tenant",
    "reconcile-payments/every-15-minutes": "reconcile-payments/tenant",
    "remind-outstanding-balances/hourly": "remind-outstanding-balances/tenant",
}


@lru_cache(maxsize=1)
def project() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())


def deployment(full_name: str) -> dict[str, Any]:
    """The deployment `<flow name>/<name>`: two flows may each have a deployment of the same name."""
    name = full_name.split("/", 1)[1]
    matches = [
        d for d in project()["deployments"] if d["name"] == name and d["entrypoint"] == DEPLOYMENTS[full_name]
    ]
    assert len(matches) == 1, f"prefect.yaml has {len(matches)} deployments named {full_name!r}"
    return matches[0]


def load_flow(entrypoint: str) -> Flow:
    path, function = entrypoint.split(":")
    assert (PROJECT_ROOT / path).is_file(), f"{path} does not exist"
    # An absolute path, so the test does not depend on pytest's working directory.
    return load_flow_from_entrypoint(f"{PROJECT_ROOT / path}:{function}")


def test_the_file_deploys_the_five_flows_and_their_per_tenant_children_and_nothing_else():
    found = sorted((d["name"], d["entrypoint"]) for d in project()["deployments"])
    assert found == sorted(
        (full_name.split("/")[1], entrypoint) for full_name, entrypoint in DEPLOYMENTS.items()
    )


def test_nothing_is_built_or_pushed_and_every_run_pulls_from_the_project_dir():
    config = project()
    assert config["build"] is None and config["push"] is None
    steps = [next(iter(step)) for step in config["pull"]]
    assert steps[-1] == "prefect.deployments.steps.set_working_directory"
    assert config["pull"] == config["definitions"]["pull_steps"]["from_project_dir"]
    assert all("pull" not in d for d in config["deployments"]), "one pull for all, from definitions"


@pytest.mark.parametrize("full_name", DEPLOYMENTS)
def test_deployment_is_described_tagged_enforced_and_on_the_pool(full_name):
    config = deployment(full_name)
    assert config["entrypoint"] == DEPLOYMENTS[full_name]
    assert config.get("description", "").strip(), "a description the UI shows"
    assert config.get("tags") and all(isinstance(tag, str) for tag in config["tags"])
    assert "paylinks" in config["tags"]
    assert config.get("enforce_parameter_schema") is True
    assert config["work_pool"] == project()["definitions"]["work_pools"]["paylinks"]
    assert config["work_pool"]["name"] == "paylinks"


@pytest.mark.parametrize("full_name", DEPLOYMENTS)
def test_entrypoint_imports_the_flow_the_deployment_is_named_after(full_name):
    flow = load_flow(DEPLOYMENTS[full_name])
    assert isinstance(flow, Flow)
    assert flow.name == full_name.split("/")[0]


@pytest.mark.parametrize("full_name", DEPLOYMENTS)
def test_deployment_sets_only_parameters_the_flow_takes_with_valid_values(full_name):
    flow = load_flow(DEPLOYMENTS[full_name])
    schema = parameter_schema(flow.fn).model_dump()
    parameters = deployment(full_name).get("parameters") or {}
    assert set(parameters) <= set(schema["properties"]), f"{flow.name} takes {sorted(schema['properties'])}"
    # The check the Prefect server makes when a run is created; required ones come from the run.
    validate(parameters, schema, raise_on_error=True, ignore_required=True)


def test_nightly_backfill_commits_for_every_tenant_at_2am_new_york():
    config = deployment("backfill-payment-links/nightly")
    assert config["parameters"] == {"commit": True, "fan_out": True}  # no tenant: every tenant
    assert [(s["cron"], s["timezone"]) for s in config["schedules"]] == [("0 2 * * *", "America/New_York")]
    flow = load_flow(DEPLOYMENTS["backfill-payment-links/nightly"])
    assert flow.validate_parameters(config["parameters"]) == {"tenant": None, "commit": True, "fan_out": True}


def test_reminders_run_every_hour_and_send_only_by_the_clubs_cadence():
    config = deployment("remind-outstanding-balances/hourly")
    assert config["parameters"] == {
        "send": True,
        "fan_out": True,
    }  # no tenant: every tenant with reminders on
    (schedule,) = config["schedules"]
    assert schedule.get("interval") == 3600 or schedule.get("cron", "").split()[1:2] == ["*"]
    flow = load_flow(DEPLOYMENTS["remind-outstanding-balances/hourly"])
    assert flow.validate_parameters({"tenant": "riverside-hoops"})["send"] is False, "a dry run by default"


def test_reconcile_runs_every_15_minutes():
    (schedule,) = deployment("reconcile-payments/every-15-minutes")["schedules"]
    assert schedule.get("interval") == 900 or schedule.get("cron") == "*/15 * * * *"


@pytest.mark.parametrize("parent", FAN_OUT)
def test_scheduled_runs_fan_out_one_at_a_time_to_children_without_schedule_or_limit(parent):
    """The parent drops a run that collides with one still going (CANCEL_NEW); its children must
    not share that limit (it would cancel every child but the first), nor a schedule, nor fan out."""
    assert deployment(parent)["parameters"]["fan_out"] is True
    assert deployment(parent)["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    child = deployment(FAN_OUT[parent])
    assert child["entrypoint"] == deployment(parent)["entrypoint"]
    assert not child.get("schedules") and not child.get("concurrency_limit")
    assert "fan_out" not in (child.get("parameters") or {}) and "tenant" not in (
        child.get("parameters") or {}
    )
    flow = load_flow(child["entrypoint"])
    assert flow.validate_parameters({"tenant": "riverside-hoops"})["fan_out"] is False


@pytest.mark.parametrize("full_name", ["outstanding-balance-email/manual", "resend-payment-link/coach"])
def test_nothing_mails_on_a_schedule_or_by_default(full_name):
    config = deployment(full_name)
    assert not config.get("schedules")
    parameters = config.get("parameters") or {}
    assert not parameters.get("send") and "test_email" not in parameters and "to" not in parameters
    assert not parameters.get("include_recent"), "a deployment never mails the recently emailed again"


def test_the_blast_rejects_a_bad_test_email_and_an_unknown_parameter():
    flow = load_flow(DEPLOYMENTS["outstanding-balance-email/manual"])
    with pytest.raises(ParameterTypeError, match="test_email"):
        flow.validate_parameters({"tenant": "riverside-hoops", "test_email": "not-an-email"})
    with pytest.raises(SignatureMismatchError, match="bogus"):
        flow.validate_parameters({"tenant": "riverside-hoops", "bogus": 1})
    # The server-side check (the deployment's JSON schema) refuses a malformed tenant slug.
    with pytest.raises(ValidationError, match="tenant"):
        validate({"tenant": "Riverside Hoops"}, parameter_schema(flow.fn).model_dump(), raise_on_error=True)
    defaults = flow.validate_parameters({"tenant": "riverside-hoops", "test_email": "coach@example.com"})
    assert defaults["send"] is False and defaults["include_recent"] is False


def run_pull_steps(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> dict[str, Any]:
    monkeypatch.chdir(workspace)  # where a process worker starts a run: a fresh temporary folder
    return asyncio.run(run_steps(project()["pull"], print_function=lambda *args, **kwargs: None))


def test_pull_steps_move_a_run_into_the_checkout_named_by_paylinks_project_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PAYLINKS_PROJECT_DIR", str(PROJECT_ROOT))
    outputs = run_pull_steps(monkeypatch, tmp_path)
    assert Path(outputs["directory"]).resolve() == PROJECT_ROOT
    assert Path.cwd().resolve() == PROJECT_ROOT


def test_pull_steps_without_paylinks_project_dir_fail_naming_it(monkeypatch, tmp_path):
    monkeypatch.delenv("PAYLINKS_PROJECT_DIR", raising=False)
    with pytest.raises(StepExecutionError) as failure:
        run_pull_steps(monkeypatch, tmp_path)
    assert "PAYLINKS_PROJECT_DIR: is not set" in str(failure.value.__cause__)
    assert Path.cwd().resolve() == tmp_path.resolve()
