"""The outstanding-balance blast against the demo club, delivered to a real SMTP server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)

from flows.outstanding_balance_email import outstanding_balance_email
from paylinks.messaging.prepare import SkipReason
from paylinks.money import format_money
from paylinks.settings import PROJECT_ROOT
from paylinks.store.tables import email_log, parents
from tests.helpers import PAYLINKS, TENANT, cli_env, run_cli

# The tests marked `storage` run on PostgreSQL too (the balance query against the tables, exactly-once
# claims and their leases); the rest on SQLite.


def expected_balances(engine: sa.Engine) -> dict[str, dict]:
    """Straight from the tables: each reachable parent's open minted items (url → amount)."""
    with engine.connect() as connection:
        rows = (
            connection.execute(
                sa.text(
                    "SELECT pa.email, pl.stripe_payment_link_url AS url, pl.amount_cents, pl.description, "
                    "       pp.first_name || ' ' || pp.last_name AS player "
                    "FROM payment_links pl JOIN parents pa ON pa.id = pl.parent_id "
                    "JOIN players pp ON pp.id = pl.player_id JOIN tenants t ON t.id = pl.tenant_id "
                    "WHERE t.slug = :slug AND pl.status = 'pending' AND pl.stripe_payment_link_url IS NOT NULL"
                ),
                {"slug": TENANT},
            )
            .mappings()
            .all()
        )
    balances: dict[str, dict] = {}
    for row in rows:
        if row["email"]:
            balances.setdefault(row["email"], {})[row["url"]] = row
    return balances


def parts(message) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


@pytest.mark.storage  # the balance query checked against the tables
def test_send_delivers_one_complete_message_per_parent_with_a_balance(
    settings, engine, minted_club, mailroom
):
    expected = expected_balances(engine)

    report = outstanding_balance_email(tenant=TENANT, send=True)

    delivered = mailroom.recipients()
    assert sorted(delivered) == sorted(expected), "exactly one message per parent with a balance"
    for rcpt_tos, message in mailroom.messages:
        (address,) = rcpt_tos
        text, html = parts(message)
        items = expected[address].values()
        for item in items:
            for body in (text, html):
                assert item["url"] in body
                assert format_money(item["amount_cents"]) in body
                assert item["description"] in body
        total = format_money(sum(item["amount_cents"] for item in items))
        assert total in text and total in html
        assert message["Reply-To"] and message["Date"] and message["Message-ID"]
    with engine.connect() as connection:
        logged = connection.execute(
            sa.select(email_log.c.recipient, email_log.c.status, email_log.c.email_type)
        ).all()
        no_email = connection.execute(
            sa.select(sa.func.count()).where(parents.c.email.is_(None))
        ).scalar_one()
    assert sorted(r.recipient for r in logged) == sorted(expected)
    assert {(r.status.value, r.email_type.value) for r in logged} == {("sent", "outstanding_balance")}
    assert no_email >= 1 and report.skipped_for(SkipReason.no_address) >= 1


@pytest.mark.storage  # the claim's unique key decides: already sent
def test_rerunning_the_same_blast_delivers_nothing(settings, engine, minted_club, mailroom):
    outstanding_balance_email(tenant=TENANT, send=True, blast_key="spring-reminder")
    first = len(mailroom.messages)

    report = outstanding_balance_email(tenant=TENANT, send=True, blast_key="spring-reminder")

    assert len(mailroom.messages) == first
    assert report.sent == [] and set(report.skipped.values()) >= {SkipReason.already_sent}


@pytest.mark.storage  # claims across processes; the lease compared with stored times
@pytest.mark.slow
def test_an_interrupted_blast_rerun_reaches_the_rest_and_nobody_twice(
    settings, engine, minted_club, mailroom, tmp_path
):
    expected = expected_balances(engine)
    mailroom.stall_after = 3
    env = cli_env(tmp_path, COLUMNS="250")
    process = subprocess.Popen(
        PAYLINKS + ["blast", "--tenant", TENANT, "--send", "--blast-key", "k1"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert mailroom.stalled.wait(timeout=120), "the blast never reached its fourth message"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert len(mailroom.messages) == 3

    mailroom.stall_after = None
    rerun = run_cli(["blast", "--tenant", TENANT, "--send", "--blast-key", "k1"], env)

    # The killed run's claim on the fourth parent is still live: left alone, and said so.
    assert rerun.returncode == 0, rerun.stderr
    assert len(mailroom.recipients()) == len(expected) - 1
    assert "another run of this blast is sending it now" in rerun.stdout
    with engine.begin() as connection:  # a quarter of an hour later: the claim outlived its lease
        connection.execute(
            sa.update(email_log)
            .where(email_log.c.status == "sending")
            .values(claimed_at=datetime.now(UTC) - timedelta(minutes=20))
        )
    late = run_cli(["blast", "--tenant", TENANT, "--send", "--blast-key", "k1"], env)

    assert late.returncode == 0, late.stderr
    assert sorted(mailroom.recipients()) == sorted(expected)
    assert "stale claims taken over" in late.stdout


def test_a_refused_recipient_is_logged_and_fails_the_run_while_the_rest_get_mail(
    settings, engine, minted_club, mailroom
):
    expected = expected_balances(engine)
    refused = sorted(expected)[1]
    mailroom.refuse = {refused}

    state = outstanding_balance_email(tenant=TENANT, send=True, return_state=True)

    assert state.is_failed()
    assert sorted(mailroom.recipients()) == sorted(set(expected) - {refused})
    with engine.connect() as connection:
        failed = (
            connection.execute(sa.select(email_log).where(email_log.c.status == "failed")).mappings().all()
        )
        parent_name = connection.execute(
            sa.select(parents.c.first_name + " " + parents.c.last_name).where(parents.c.email == refused)
        ).scalar_one()
    assert [row["recipient"] for row in failed] == [refused]
    assert "550" in failed[0]["error"]

    async def artifact_rows():
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
                )
            )
            return [a.data for a in artifacts if a.key == f"blast-{TENANT}-recipients"]

    (recipients_table,) = asyncio.run(artifact_rows())
    assert parent_name in recipients_table and "failed" in recipients_table


def test_test_email_delivers_exactly_one_sample_to_that_address_only(settings, engine, minted_club, mailroom):
    report = outstanding_balance_email(tenant=TENANT, test_email="coach@club.example")

    assert mailroom.recipients() == ["coach@club.example"]
    ((_, message),) = mailroom.messages
    assert message["Subject"].startswith("[TEST]")
    fullest = max(expected_balances(engine).values(), key=len)
    text, html = parts(message)
    for item in fullest.values():  # the real layout, names and amounts...
        assert item["description"] in text and format_money(item["amount_cents"]) in html
    # ...but not one real link: every Pay Now leads to the office's preview, which takes no payment
    decoded = text + html + str(message["Subject"])
    assert not any(url in decoded for urls in expected_balances(engine).values() for url in urls)
    assert f"{settings.office_url}/preview/payment-links/" in html
    assert "take no payment" in text and "take no payment" in html
    with engine.connect() as connection:
        logged = connection.execute(sa.select(email_log)).mappings().all()
    assert [(row["recipient"], row["parent_id"]) for row in logged] == [("coach@club.example", None)]
    assert report.mode == "test"


def test_preview_renders_everything_and_sends_nothing(settings, engine, minted_club, mailroom):
    report = outstanding_balance_email(tenant=TENANT)
    assert mailroom.messages == []
    assert len(report.emails) == len(expected_balances(engine)) + 1  # plus the parent without email
    assert report.total_cents == sum(e.total_cents for e in report.emails)


def test_outbox_writes_one_readable_eml_per_parent_and_an_index(settings, engine, minted_club):
    outstanding_balance_email(tenant=TENANT, send=True)
    expected = expected_balances(engine)
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == len(expected)
    index = (settings.outbox_dir / "index.html").read_text()
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text, html = parts(message)
        address = message["To"].addresses[0].addr_spec
        assert all(url in text and url in html for url in expected[address])
        assert path.name in index


def test_every_batch_of_sends_is_a_recorded_task_run_with_a_log_line_per_parent(
    settings, minted_club, mailroom, use_settings
):
    use_settings(blast_batch_size=4)
    state = outstanding_balance_email(tenant=TENANT, send=True, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    sent = len(mailroom.messages)
    batches = -(-sent // 4)

    async def send_task_runs_and_logs():
        async with get_client() as client:
            flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            for _ in range(100):
                runs = await client.read_task_runs(flow_run_filter=flow_runs)
                sends = [r for r in runs if r.name.startswith("send parents ")]
                logs = await client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
                )
                per_parent = [log for log in logs if log.message.startswith("parent ")]
                # The server records each task run's states as they arrive: wait for the last.
                completed = all(run.state is not None and run.state.is_completed() for run in sends)
                if len(sends) >= batches and completed and len(per_parent) >= sent:
                    return sends, per_parent
                await asyncio.sleep(0.1)
            return sends, per_parent

    sends, per_parent = asyncio.run(send_task_runs_and_logs())
    assert sent > 4
    expected_names = {
        f"send parents {first}–{min(first + 3, sent)} of {sent}" for first in range(1, sent + 1, 4)
    }
    assert {run.name for run in sends} == expected_names
    assert all(run.state.is_completed() for run in sends)
    assert len(per_parent) == sent
    assert all(log.message.endswith(": sent") for log in per_parent)
    # Each batch over a connection of its own, reused for its every parent (two batches at once).
    assert len(set(mailroom.peers)) == batches
    assert sorted(mailroom.recipients()) == sorted(set(mailroom.recipients())), "each parent once"


def test_invalid_test_email_is_refused_before_anything_is_rendered(settings, minted_club, tmp_path, mailroom):
    result = run_cli(["blast", "--tenant", TENANT, "--test-email", "coach@@club"], cli_env(tmp_path))
    assert result.returncode == 2
    assert "not a valid email address" in result.stderr
    assert mailroom.messages == []


def test_emulator_links_never_reach_real_parents_over_smtp(settings, minted_club, mailroom, use_settings):
    use_settings(allow_test_links=False)
    state = outstanding_balance_email(tenant=TENANT, send=True, return_state=True)
    assert state.is_failed()
    assert mailroom.messages == []
    outstanding_balance_email(tenant=TENANT, test_email="me@club.example")
    assert mailroom.recipients() == ["me@club.example"]


def test_test_email_and_send_together_are_refused_before_anything_is_sent(settings, minted_club, mailroom):
    state = outstanding_balance_email(
        tenant=TENANT, test_email="coach@club.example", send=True, return_state=True
    )
    assert state.is_failed()
    assert "not both" in str(state.result(raise_on_failure=False))
    assert mailroom.messages == []
