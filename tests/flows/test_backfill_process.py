"""The backfill as an operator runs it: `paylinks backfill` in its own process, on Prefect's
ephemeral API, killed mid-run, and fed bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest
import sqlalchemy as sa
import stripe

from paylinks.settings import PROJECT_ROOT
from paylinks.store.tables import payment_links
from tests.helpers import PAYLINKS, cli_env, run_cli

# The test marked `storage` runs on PostgreSQL too (a process killed mid-run: what the database kept
# of its transactions, and the rerun on top); the rest on SQLite.


def assert_one_link_per_row(engine: sa.Engine, emulator) -> None:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(payment_links)).mappings().all()
    client = stripe.StripeClient("sk_test_paylinks_tests", base_addresses={"api": emulator.url})
    links = [link.id for link in client.v1.payment_links.list(params={"limit": 100}).auto_paging_iter()]
    assert all(row["stripe_payment_link_id"] for row in rows), "every row has its link"
    assert len(links) == len(set(links)) == len(rows)
    assert {row["stripe_payment_link_id"] for row in rows} == set(links), "no link that no row points to"


@pytest.mark.storage  # a process killed mid-transaction; the rerun resumes its reservations
@pytest.mark.slow
def test_killed_mid_mint_then_rerun_ends_with_one_link_per_row(
    settings, engine, emulator, demo_club, tmp_path
):
    emulator.emulator.faults.latency_ms = 40  # slow enough to kill it in the middle of minting
    env = cli_env(tmp_path, PAYLINKS_STRIPE_MAX_RPS="10", PAYLINKS_STRIPE_MINT_BATCH_SIZE="10")
    process = subprocess.Popen(
        PAYLINKS + ["backfill", "--commit"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while emulator.emulator.counts()["payment_links"] < 15:
        assert process.poll() is None, "the backfill ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    with engine.connect() as connection:
        unloaded = connection.execute(
            sa.select(sa.func.count()).where(payment_links.c.stripe_payment_link_id.is_(None))
        ).scalar_one()
    assert unloaded > 0, "the kill left rows reserved but not loaded"

    emulator.emulator.faults.latency_ms = 0
    rerun = run_cli(["backfill", "--commit"], {**env, "PAYLINKS_STRIPE_MAX_RPS": "100"})
    assert rerun.returncode == 0, rerun.stderr
    assert_one_link_per_row(engine, emulator)


@pytest.mark.slow
def test_every_task_run_is_recorded_by_the_ephemeral_api_at_exit(settings, demo_club, tmp_path):
    env = cli_env(tmp_path, ephemeral_api=True)
    result = run_cli(["backfill", "--tenant", "riverside-hoops", "--commit"], env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    database = tmp_path / "prefect-home" / "prefect.db"
    with sqlite3.connect(database) as prefect_db:
        (flow_run_id,) = prefect_db.execute(
            "SELECT fr.id FROM flow_run fr JOIN flow f ON f.id = fr.flow_id WHERE f.name = 'backfill-payment-links'"
        ).fetchone()
        task_runs = prefect_db.execute(
            "SELECT name, state_type FROM task_run WHERE flow_run_id = ?", (flow_run_id,)
        ).fetchall()
        artifacts = [
            key
            for (key,) in prefect_db.execute("SELECT key FROM artifact WHERE flow_run_id = ?", (flow_run_id,))
        ]
    names = sorted(name for name, _ in task_runs)
    batches = sum(1 for name in names if name.startswith("mint-payment-links-batch"))
    assert batches >= 1
    # check, find tenants, find the Stripe account, extract, plan, tiers, retire, reserve, summary
    # + mint and load per batch
    assert len(task_runs) == 9 + 2 * batches, names
    assert all(state == "COMPLETED" for _, state in task_runs)
    assert "backfill-riverside-hoops-summary" in artifacts


def test_unknown_tenant_is_one_clear_message_and_exit_2(settings, engine, demo_club, tmp_path):
    before = engine.connect().execute(sa.select(sa.func.count()).select_from(payment_links)).scalar_one()
    result = run_cli(["backfill", "--tenant", "no-such-club", "--commit"], cli_env(tmp_path))
    assert result.returncode == 2
    assert "unknown tenant 'no-such-club'" in result.stderr
    assert "riverside-hoops" in result.stderr  # names the tenants that do exist
    assert "Traceback" not in result.stderr
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(payment_links)).scalar_one() == before
        )


def test_missing_stripe_key_for_real_stripe_is_refused_before_any_work(settings, demo_club, tmp_path):
    env = cli_env(tmp_path)
    env.pop("PAYLINKS_STRIPE_API_KEY")
    env.pop("PAYLINKS_STRIPE_API_BASE")
    result = run_cli(["backfill", "--commit"], env)
    assert result.returncode == 2
    assert "PAYLINKS_STRIPE_API_KEY is not set" in result.stderr


def test_unreachable_database_is_one_clear_message(settings, tmp_path):
    env = cli_env(tmp_path, PAYLINKS_DATABASE_URL="postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none")
    result = run_cli(["backfill"], env)
    assert result.returncode == 2
    assert "cannot reach the database" in result.stderr
    assert "s3cret" not in result.stderr


def test_rejected_stripe_key_stops_the_run_without_printing_the_key(settings, engine, demo_club, tmp_path):
    from stripe_emulator import EmulatorServer

    with EmulatorServer(host="127.0.0.1", port=0, api_key="sk_test_the_right_one") as strict:
        env = cli_env(
            tmp_path,
            PAYLINKS_STRIPE_API_BASE=strict.url,
            PAYLINKS_STRIPE_API_KEY="sk_test_wrong_key_0123456789",
        )
        result = run_cli(["backfill", "--tenant", "riverside-hoops", "--commit"], env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Stripe rejected the API key" in output
    assert "sk_test_wrong_key_0123456789" not in output


def test_the_stripe_key_can_come_from_a_prefect_secret_block(settings, engine, demo_club, use_settings):
    from prefect.blocks.system import Secret

    from flows.backfill_payment_links import backfill_payment_links
    from stripe_emulator import EmulatorServer

    Secret(value="sk_test_from_a_block_4242").save("paylinks-stripe-key", overwrite=True)
    with EmulatorServer(host="127.0.0.1", port=0, api_key="sk_test_from_a_block_4242") as strict:
        use_settings(
            stripe_api_base=strict.url, stripe_api_key=None, stripe_api_key_block="paylinks-stripe-key"
        )
        (report,) = backfill_payment_links(tenant="riverside-hoops", commit=True)
        assert report.loaded == len(report.plan.items) == strict.emulator.counts()["payment_links"]

        use_settings(stripe_api_key_block="no-such-block")
        state = backfill_payment_links(tenant="riverside-hoops", commit=True, return_state=True)
        assert state.is_failed()
        assert "no Prefect Secret block named 'no-such-block'" in str(state.result(raise_on_failure=False))
