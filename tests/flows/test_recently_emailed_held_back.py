"""Nobody mailed twice by accident: a parent another blast emailed in the last 24 hours (the
tenant's hold) is held back from a new blast, listed as "emailed <when>", unless the admin asks.
Real SMTP on loopback (aiosmtpd), the emulator over HTTP, the `paylinks` command in its own
process, SQLite (and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from flows.outstanding_balance_email import outstanding_balance_email
from paylinks.club.clock import when_words
from paylinks.club.tenants import tenant_by_slug
from paylinks.messaging.claims import SendResult, claim_send, send_logged
from paylinks.messaging.prepare import SkipReason
from paylinks.present.blast import blast_tables
from paylinks.runtime import mail_transport
from paylinks.store.tables import email_log, tenants
from paylinks.vocabulary import EmailType
from tests.helpers import TENANT, cli_env, current_settings, run_cli

CLUB_ZONE = ZoneInfo("America/New_York")  # the demo club names none: the settings' default


def summary_of(report) -> dict[str, str]:
    return {r["figure"]: r["value"] for r in blast_tables(report)[0].records()}


def recipients_of(report) -> dict[str, dict[str, str]]:
    return {r["parent"]: r for r in blast_tables(report)[1].records()}


def reachable(report) -> list[str]:
    return sorted(e.address for e in report.emails if e.address)


def test_blast_send_twice_in_a_row_sends_nothing_the_second_time_and_says_why(
    settings, engine, minted_club, mailroom, tmp_path
):
    env = cli_env(tmp_path, COLUMNS="250")
    first = run_cli(["blast", "--tenant", TENANT, "--send"], env)
    assert first.returncode == 0, first.stderr
    parents = len(mailroom.messages)
    assert parents > 0

    second = run_cli(["blast", "--tenant", TENANT, "--send"], env)

    assert second.returncode == 0, second.stderr
    assert len(mailroom.messages) == parents, "nobody got a second email"
    (line,) = [line for line in second.stdout.splitlines() if line.startswith("Nothing sent:")]
    assert f"all {parents} parents who could be emailed were emailed in the last 24 hours" in line
    assert f"{parents} parents)" in line and "--include-recent sends to them again" in line

    third = run_cli(["blast", "--tenant", TENANT, "--send", "--include-recent"], env)

    assert third.returncode == 0, third.stderr
    assert len(mailroom.messages) == 2 * parents
    assert "Nothing sent" not in third.stdout


def test_the_preview_says_when_the_last_blast_was_and_lists_who_it_would_hold_back(
    settings, engine, minted_club, mailroom, tmp_path
):
    before = outstanding_balance_email(tenant=TENANT)
    assert summary_of(before)["last blast"] == "none yet"
    someone = next(e for e in before.emails if e.address)
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
    # Only one parent was emailed (by a blast of their own), three hours ago.
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(email_log).values(
                tenant_id=club.id,
                email_type=EmailType.outstanding_balance,
                parent_id=someone.parent_id,
                recipient=someone.address,
                subject="What you owe",
                status="sent",
                run_key="earlier",
                transport="smtp",
                claimed_at=three_hours_ago,
                sent_at=three_hours_ago,
            )
        )

    preview = run_cli(["blast", "--tenant", TENANT], cli_env(tmp_path, COLUMNS="250"))

    assert preview.returncode == 0, preview.stderr
    emailed = when_words(three_hours_ago, CLUB_ZONE)
    assert "last blast" in preview.stdout and f"{emailed}, 1 parent" in preview.stdout
    (row,) = [line for line in preview.stdout.splitlines() if someone.parent_name in line]
    assert "would hold back" in row and f"emailed {emailed}" in row
    report = outstanding_balance_email(tenant=TENANT, send=True)
    assert sorted(o.recipient for o in report.sent) == sorted(set(reachable(report)) - {someone.address})
    assert report.skipped[someone.parent_id] is SkipReason.recently_emailed
    assert recipients_of(report)[someone.parent_name]["detail"] == f"emailed {emailed}"
    assert summary_of(report)["skipped: held back: emailed recently"] == "1"


def test_a_test_email_is_never_held_back(settings, engine, minted_club, mailroom):
    blast = outstanding_balance_email(tenant=TENANT, send=True)
    assert blast.sent

    report = outstanding_balance_email(tenant=TENANT, test_email="me@club.example")

    assert mailroom.recipients()[-1] == "me@club.example"
    assert len(report.sent) == 1 and report.sent[0].result is SendResult.sent
    assert summary_of(report)["recently emailed parents"] == "a test email is never held back"


@pytest.mark.storage  # stored times compared with the hold's start (text on SQLite)
def test_the_hold_follows_the_tenant_and_zero_means_never(settings, engine, minted_club, mailroom):
    first = outstanding_balance_email(tenant=TENANT, send=True)
    parents = len(first.sent)
    with engine.begin() as connection:  # that blast went out 30 hours ago
        connection.execute(sa.update(email_log).values(sent_at=datetime.now(UTC) - timedelta(hours=30)))
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == TENANT).values(recent_email_hold_hours=48)
        )

    held = outstanding_balance_email(tenant=TENANT, send=True)
    assert held.sent == [] and len(held.held_back_parents) == parents
    assert "48 hours" in summary_of(held)["recently emailed parents"]

    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == TENANT).values(recent_email_hold_hours=0)
        )
    again = outstanding_balance_email(tenant=TENANT, send=True)
    assert len(again.sent) == parents and len(mailroom.messages) == 2 * parents


@pytest.mark.storage  # claims racing across transactions
def test_two_blasts_with_different_keys_racing_for_one_parent_mail_them_at_most_once(
    settings, engine, minted_club, mailroom
):
    preview = outstanding_balance_email(tenant=TENANT)
    email = next(e for e in preview.emails if e.address)
    assert email.address is not None
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
    settings = current_settings()
    since = datetime.now(UTC) - timedelta(hours=24)
    lease = timedelta(minutes=settings.blast_claim_lease_minutes)

    # A blast that has claimed the parent and is sending now: another blast holds them back.
    claim_send(
        engine, club, EmailType.outstanding_balance, "spring", settings.email_transport, email,
        email.address, email.parent_id, lease,
    )  # fmt: skip
    outcome = send_logged(
        engine, mail_transport(settings), settings, club, EmailType.outstanding_balance, "autumn",
        email, email.address, email.parent_id, hold_since=since,
    )  # fmt: skip
    assert outcome.result is SendResult.held_back and mailroom.messages == []
    with engine.connect() as connection:
        keys = connection.execute(sa.select(email_log.c.run_key)).scalars().all()
    assert keys == ["spring"], "the held-back send left no claim behind"

    # Two blasts at the same instant: at most one of them mails the parent.
    with engine.begin() as connection:
        connection.execute(sa.delete(email_log))
    start = threading.Barrier(2)
    outcomes: list = []

    def send(key: str) -> None:
        start.wait()
        outcomes.append(
            send_logged(
                engine,
                mail_transport(settings),
                settings,
                club,
                EmailType.outstanding_balance,
                key,
                email,
                email.address,
                email.parent_id,
                hold_since=since,
            )  # fmt: skip
        )

    threads = [threading.Thread(target=send, args=(key,)) for key in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(mailroom.messages) <= 1
    assert sorted(o.result for o in outcomes) in (
        [SendResult.held_back, SendResult.sent],
        [SendResult.held_back, SendResult.held_back],
    )
