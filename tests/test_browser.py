"""What people see, in a real browser (headless Chromium): the engineer's view of a backfill run in
the Prefect UI, and the outstanding-balance email a parent opens.

Screenshots land in tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paylinks.demo.data import seed_demo
from paylinks.messaging.render import Brand, EmailType, OpenItem, ParentBalance, render_email
from paylinks.money import format_money
from paylinks.settings import PROJECT_ROOT
from tests.browser import ARTIFACTS_DIR, Chromium, prefect_server, visible_text

SUMMARY_KEY = "backfill-riverside-hoops-summary"


@pytest.fixture
def chromium(tmp_path: Path) -> Chromium:
    return Chromium(tmp_path / "chromium-profile")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_prefect_ui_shows_the_backfill_run_and_its_summary_artifact(settings, engine, chromium, tmp_path):
    seed_demo(engine, settings.club_timezone)
    with prefect_server(tmp_path / "server-home", auth=False, ui=True) as server:
        backfill = subprocess.run(
            [sys.executable, "-m", "cli", "backfill", "--tenant", "riverside-hoops"],
            env=server.client_env(tmp_path / "cli-home"),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert backfill.returncode == 0, backfill.stderr
        with server.api() as api:
            (flow_run,) = (
                api.post("/flow_runs/filter", json={"flows": {"name": {"any_": ["backfill-payment-links"]}}})
                .raise_for_status()
                .json()
            )
            (summary,) = (
                api.post("/artifacts/filter", json={"artifacts": {"key": {"any_": [SUMMARY_KEY]}}})
                .raise_for_status()
                .json()
            )
        run_url = f"{server.url}/runs/flow-run/{flow_run['id']}"  # the link Prefect's own logs print

        page = chromium.text(run_url, expect=(flow_run["name"], "Completed"))
        assert flow_run["name"] in page
        assert "backfill-payment-links" in page and "Completed" in page
        chromium.screenshot(run_url, ARTIFACTS_DIR / "prefect-ui-flow-run.png")

        # 3.9's new UI (under /v2) has the run's artifacts as a tab.
        artifacts_url = f"{server.url}/v2/runs/flow-run/{flow_run['id']}?tab=Artifacts"
        tab = chromium.text(artifacts_url, expect=(SUMMARY_KEY,))
        assert SUMMARY_KEY in tab and "backfill-riverside-hoops-details" in tab
        chromium.screenshot(artifacts_url, ARTIFACTS_DIR / "prefect-ui-flow-run-artifacts.png")

        # The summary table itself: every figure with its value, as the engineer reads it.
        rows = json.loads(summary["data"]) if isinstance(summary["data"], str) else summary["data"]
        rows = rows[:10]  # the UI shows a table 10 rows to a page
        table = chromium.text(
            f"{server.url}/v2/artifacts/artifact/{summary['id']}",
            expect=tuple(str(row["figure"]) for row in rows),
        )
        assert rows
        for row in rows:
            assert re.search(rf"(^| ){re.escape(row['figure'])} {re.escape(row['value'])}( |$)", table), row


DEMO_RUN = "blast-riverside-hoops-send"  # the demo's real blast for one club
RUN_NAME = re.compile(r"^(backfill|blast|resend|reconcile)-[a-z0-9-]+$")


@pytest.mark.slow
@pytest.mark.xdist_group("demo-port")  # see tests/test_local_club.py
def test_prefect_ui_shows_a_demo_run_by_its_name_with_its_log_lines(chromium, tmp_path):
    with prefect_server(tmp_path / "server-home", auth=False, ui=True) as server:
        demo = subprocess.run(
            [sys.executable, "-m", "cli", "demo", "--reset-database"],
            env=server.client_env(
                tmp_path / "demo-home",
                PAYLINKS_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
                PAYLINKS_OUTBOX_DIR=str(tmp_path / "outbox"),
                COLUMNS="120",
            ),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = demo.stdout + demo.stderr
        assert demo.returncode == 0, output
        # Prefect's per-run chatter stays off the demo's console...
        assert "Finished in state" not in output and "Beginning flow run" not in output
        with server.api() as api:
            runs = api.post("/flow_runs/filter", json={}).raise_for_status().json()
            (flow_run,) = [run for run in runs if run["name"] == DEMO_RUN]
            logs = (
                api.post(
                    "/logs/filter",
                    json={"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}, "sort": "TIMESTAMP_ASC"},
                )
                .raise_for_status()
                .json()
            )
        # ...and every run is named after what it did, none by Prefect's random words.
        assert all(RUN_NAME.match(run["name"]) for run in runs), sorted(run["name"] for run in runs)
        assert {"backfill-all-dry-run", "backfill-all-commit", "reconcile-all"} <= {
            run["name"] for run in runs
        }

        # The run's own lines (Prefect's first and last, and the blast's report between them),
        # as the engineer reads them on the run's page: the link Prefect's own logs print.
        run_lines = [" ".join(log["message"].split()) for log in logs if log["task_run_id"] is None]
        assert run_lines[0] == f"Beginning flow run '{DEMO_RUN}' for flow 'outstanding-balance-email'"
        assert run_lines[-1] == "Finished in state Completed()"
        assert len(run_lines) > 2, run_lines
        run_url = f"{server.url}/runs/flow-run/{flow_run['id']}"
        page = chromium.text(run_url, expect=tuple(run_lines), size=(1400, 3000))
        assert DEMO_RUN in page and "outstanding-balance-email" in page
        assert "didn't generate logs" not in page
        for line in run_lines:
            assert line in page
        chromium.screenshot(run_url, ARTIFACTS_DIR / "prefect-ui-flow-run-logs.png", size=(1400, 3000))


BRAND = Brand(
    name="Riverside Hoops Club",
    reply_to_email="Riverside Hoops <treasurer@riversidehoops.example>",
    brand_color="#c0392b",
    logo_url=None,
)
BALANCE = ParentBalance(
    parent_id=7,
    parent_name="Dana O'Neil <Treasurer>",  # escaped in HTML, still read as written
    email="dana@example.com",
    items=(
        OpenItem("Maya O'Neil", "Season dues 2025-26", 35000, "https://buy.stripe.com/test_maya_dues"),
        OpenItem(
            "Maya O'Neil", "Tournament fee: Spring Classic", 7500, "https://buy.stripe.com/test_maya_tourney"
        ),
        OpenItem(
            "Leo O'Neil", "Season dues 2025-26 (scholarship)", 20000, "https://buy.stripe.com/test_leo_dues"
        ),
        OpenItem("Leo O'Neil", "Uniform & warm-up kit", 4550, "https://buy.stripe.com/test_leo_kit"),
    ),
)


@pytest.mark.slow
def test_outstanding_balance_email_shows_every_item_amount_and_the_total(chromium, tmp_path):
    rendered = render_email(EmailType.outstanding_balance, brand=BRAND, balance=BALANCE)
    page = tmp_path / "outstanding-balance.html"
    page.write_text(rendered.html, encoding="utf-8")

    dom = chromium.dom(page.as_uri(), budget_ms=2000)
    text = visible_text(dom)
    for item in BALANCE.items:
        assert item.description in text
        assert format_money(item.amount_cents) in text
        assert item.player_name in text
    total = format_money(BALANCE.total_cents)
    assert f"Total due: {total}" in text and total == "$670.50"
    assert "Dana O'Neil <Treasurer>" in text  # the name as written, not as markup
    pay_links = re.findall(r'<a [^>]*href="([^"]+)"[^>]*>\s*Pay Now\s*</a>', dom)
    assert pay_links == [item.url for item in BALANCE.items]
    assert "Riverside Hoops Club" in text and "treasurer@riversidehoops.example" in text
    chromium.screenshot(
        page.as_uri(), ARTIFACTS_DIR / "outstanding-balance-email.png", size=(800, 1000), budget_ms=2000
    )
    chromium.screenshot(
        page.as_uri(), ARTIFACTS_DIR / "outstanding-balance-email-phone.png", size=(390, 900), budget_ms=2000
    )

    test_send = render_email(
        EmailType.outstanding_balance,
        brand=BRAND,
        balance=BALANCE,
        test_recipient_note="Dana O'Neil <dana@example.com>",
    )
    page.write_text(test_send.html, encoding="utf-8")
    text = chromium.text(page.as_uri(), budget_ms=2000)
    assert "Test send — the real recipient would be Dana O'Neil <dana@example.com>" in text
    chromium.screenshot(
        page.as_uri(),
        ARTIFACTS_DIR / "outstanding-balance-email-test-send.png",
        size=(800, 1000),
        budget_ms=2000,
    )
