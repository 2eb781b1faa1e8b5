"""remind-outstanding-balances end to end: the demo club minted at the emulator (over HTTP), real
SMTP on loopback (aiosmtpd), SQLite. The flow is called in-process, `--as-of` style, to step the
club's days forward; the command itself is run once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from flows.outstanding_balance_email import outstanding_balance_email
from flows.remind_outstanding_balances import RemindersIncompleteError, remind_outstanding_balances
from paylinks.club.tenants import tenant_by_slug
from paylinks.messaging.cadence import DEFAULT_DAYS, Hold
from paylinks.messaging.reminders import ReminderResult, set_opted_out, set_reminders
from paylinks.present.reminders import reminder_tables
from paylinks.store.tables import email_log, orders, parents, payment_links, products, tenants
from paylinks.vocabulary import EmailStatus, EmailType, OptOutHow
from tests.helpers import TENANT, cli_env, run_cli

CLUB_ZONE = ZoneInfo("America/New_York")  # the demo club names none: the settings' default
DAY = timedelta(days=1)


def club_today() -> date:
    return datetime.now(UTC).astimezone(CLUB_ZONE).date()


def morning(day: date, hour: int = 10) -> datetime:
    """`day` at `hour` in the club's zone, without an offset (as --as-of takes it)."""
    return datetime.combine(day, time(hour))


def summary_of(report) -> dict[str, str]:
    return {r["figure"]: r["value"] for r in reminder_tables(report)[0].records()}


def sent_to(mailroom, since: int = 0) -> Counter:
    return Counter(address for rcpt_tos, _ in mailroom.messages[since:] for address in rcpt_tos)


def reminded(mailroom, since: int = 0) -> Counter:
    """Reminders delivered, by recipient (a payment's receipt, which a run applying Stripe's news
    sends, is not one)."""
    return Counter(
        address
        for rcpt_tos, message in mailroom.messages[since:]
        if message["List-Unsubscribe"] is not None
        for address in rcpt_tos
    )


def open_rows(engine, parent_id: int) -> list:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(payment_links.c.stripe_payment_link_url).where(
                payment_links.c.parent_id == parent_id, payment_links.c.status == "pending"
            )
        ).all()


def pay_everything_of(engine, parent_id: int) -> None:
    """The parent pays each of their links at the emulator's pay page, as a browser would (no webhook)."""
    for (url,) in open_rows(engine, parent_id):
        with httpx.Client() as client:
            assert client.get(url).status_code == 200
            assert client.post(url).status_code == 200


def test_a_dry_run_names_who_would_get_a_digest_and_a_send_mails_each_once_with_one_click_stop(
    settings, engine, minted_club, mailroom
):
    today = club_today()
    (preview,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(today))
    would = preview.of(ReminderResult.would_send)
    assert would and not mailroom.messages, "a dry run sends nothing"
    assert [line.hold for line in preview.lines if line.result is ReminderResult.held_back] == [
        Hold.no_address
    ]
    assert summary_of(preview)["would be sent"] == str(len(would))
    # The kit was due three days ago: its +3 step is today, and the digest lists everything owed.
    assert all(line.due.step.on == today and line.due.step.offset == 3 for line in would)

    (report,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(today), send=True)

    sent = report.of(ReminderResult.sent)
    assert {line.parent_id for line in sent} == {line.parent_id for line in would}
    assert sorted(sent_to(mailroom).values()) == [1] * len(sent)
    _, message = mailroom.messages[0]
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{settings.office_url}/r/") and unsubscribe.endswith(">")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    assert "overdue by 3 days" in text and "Pay Now:" in text
    assert f"Stop reminders (you will still get receipts): {unsubscribe[1:-1]}" in text
    html = message.get_body(("html",)).get_content()
    assert "Stop reminders</a>" in html and "overdue by 3 days" in html
    # Beside the items: the parent's own family page, to see everything and pay all at once.
    assert "See everything and pay all at once (your family page):" in text
    assert f"{settings.office_url}/f/" in text
    assert f'href="{settings.office_url}/f/' in html and "See everything and pay all at once</a>" in html
    with engine.connect() as connection:
        claims = connection.execute(
            sa.select(email_log.c.run_key, email_log.c.status).where(
                email_log.c.email_type == EmailType.reminder
            )
        ).all()
    assert {tuple(c) for c in claims} == {(f"reminder:{today.isoformat()}", EmailStatus.sent)}
    # The token is in the email only: the database keeps its hash.
    token = unsubscribe[1:-1].rsplit("/", 1)[1]
    with engine.connect() as connection:
        stored = [str(v) for row in connection.execute(sa.text("SELECT * FROM reminder_tokens")) for v in row]
    assert token not in " ".join(stored)

    # Run again the same day, even an hour later: nobody is mailed twice.
    (again,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(today, 11), send=True)
    assert len(mailroom.messages) == len(sent) and again.of(ReminderResult.sent) == []


def test_a_parent_who_paid_minutes_ago_with_the_webhook_lost_is_not_reminded(
    settings, engine, minted_club, mailroom
):
    today = club_today()
    (preview,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(today))
    payer = preview.of(ReminderResult.would_send)[0]
    pay_everything_of(engine, payer.parent_id)  # the emulator delivers no webhook in these tests
    assert open_rows(engine, payer.parent_id), "paylinks has not heard of the payment yet"

    (report,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(today), send=True)

    assert payer.recipient not in reminded(mailroom)
    assert [line.parent_id for line in report.held(Hold.paid_since)] == [payer.parent_id]
    assert len(report.of(ReminderResult.sent)) == len(preview.of(ReminderResult.would_send)) - 1
    assert summary_of(report)["held back: paid since (Stripe's news before the send)"] == "1"
    assert not open_rows(engine, payer.parent_id), "Stripe's news was applied before the send"


def test_one_balance_email_a_day_a_blast_holds_back_the_reminder_and_a_reminder_the_blast(
    settings, engine, minted_club, mailroom
):
    set_reminders(engine, TENANT, hours="0-24")  # whatever the hour this test runs at
    blasted = outstanding_balance_email(tenant=TENANT, send=True)
    parents_blasted = len(blasted.sent)
    (report,) = remind_outstanding_balances(tenant=TENANT, send=True)
    assert report.of(ReminderResult.sent) == []
    reachable = len(report.lines) - len(report.held(Hold.no_address))
    assert len(report.held(Hold.emailed_today)) == reachable > 0
    assert len(mailroom.messages) == parents_blasted

    # A reminder first: then a blast holds that parent back.
    with engine.begin() as connection:
        connection.execute(sa.delete(email_log))
    (report,) = remind_outstanding_balances(tenant=TENANT, send=True)
    reminded = {line.parent_id for line in report.of(ReminderResult.sent)}
    assert reminded
    blast = outstanding_balance_email(tenant=TENANT, send=True)
    assert reminded <= set(blast.recently_emailed), "the blast held the reminded parents back"


def test_a_month_of_days_each_parent_gets_the_oracles_count_none_after_paying_none_opted_out(
    settings, engine, minted_club, mailroom
):
    """Every day at 10:00 for 30 days. The oracle counts, per parent, the distinct step dates of
    their bills in the month (the first run folding yesterday's into today's)."""
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
        items = connection.execute(
            sa.select(
                payment_links.c.parent_id,
                parents.c.email,
                orders.c.created_at,
                products.c.due_on,
                payment_links.c.order_id,
            )
            .join(parents, parents.c.id == payment_links.c.parent_id)
            .join(products, products.c.id == payment_links.c.product_id)
            .outerjoin(orders, orders.c.id == payment_links.c.order_id)
            .where(payment_links.c.tenant_id == club.id, payment_links.c.status == "pending")
        ).all()
    due: dict[int, set[date]] = {}
    emails: dict[int, str | None] = {}
    for parent_id, email, created_at, product_due, _order_id in items:
        if product_due is not None:  # an order without a date of its own: its product's
            on = product_due
        else:  # raised (in the club's zone) + the club's 14 days
            raised = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
            on = raised.astimezone(CLUB_ZONE).date() + timedelta(days=14)
        due.setdefault(parent_id, set()).add(on)
        emails[parent_id] = email
    reachable = sorted(p for p, e in emails.items() if e)
    opted_out, payer = reachable[0], reachable[1]
    set_opted_out(engine, club, opted_out, OptOutHow.admin)

    # Start two days ahead, so every simulated run is later than the real sends before it.
    first = club_today() + 2 * DAY
    days = 30
    pay_day = first + 6 * DAY

    def oracle(parent_id: int, last: date) -> int:
        steps = {d + timedelta(days=n) for d in due[parent_id] for n in DEFAULT_DAYS}
        window = {s for s in steps if first - DAY <= s <= last}
        return len(window) - (1 if {first - DAY, first} <= window else 0)

    got: Counter = Counter()
    days_sent: dict[str, list[date]] = {}
    for n in range(days):
        day = first + n * DAY
        if day == pay_day:
            pay_everything_of(engine, payer)
        before = len(mailroom.messages)
        (report,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(day), send=True)
        today = reminded(mailroom, before)
        assert all(count == 1 for count in today.values()), f"{day}: one email a parent a day"
        assert len(report.of(ReminderResult.sent)) == sum(today.values())
        got.update(today)
        for address in today:
            days_sent.setdefault(address, []).append(day)

    last = first + (days - 1) * DAY
    for parent_id in reachable:
        if parent_id == opted_out:
            expected = 0
        elif parent_id == payer:
            expected = oracle(parent_id, pay_day - DAY)
        else:
            expected = oracle(parent_id, last)
        assert got[emails[parent_id]] == expected, " ".join(
            [str(parent_id), "steps"]
            + sorted(str(s) for s in {d + timedelta(days=n) for d in due[parent_id] for n in DEFAULT_DAYS})
            + ["sent"]
            + [str(d) for d in days_sent.get(emails[parent_id] or "", [])]
        )
    assert sum(got.values()) > len(reachable), "the month had reminders to send"


def test_a_club_whose_settings_do_not_parse_is_skipped_and_named_the_others_are_reminded(
    settings, engine, minted_club, mailroom
):
    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == "northside-eagles").values(reminder_days="-7,soon")
        )
    with pytest.raises(RemindersIncompleteError) as failure:
        remind_outstanding_balances(as_of=morning(club_today()))
    assert str(failure.value).startswith(
        "reminders skipped for 1 tenant(s): tenant northside-eagles: reminder_days"
    )
    assert failure.value.exit_code == 2
    by_tenant = {report.tenant: report for report in failure.value.reports}
    assert by_tenant["northside-eagles"].problem and by_tenant[TENANT].of(ReminderResult.would_send)

    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants)
            .where(tenants.c.slug == "northside-eagles")
            .values(reminder_days=None, timezone="Mars/Olympus_Mons")
        )
    with pytest.raises(RemindersIncompleteError, match="tenant northside-eagles: timezone"):
        remind_outstanding_balances(as_of=morning(club_today()))

    # A date the club's application stored that is not one (SQLite keeps whatever it is given).
    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == "northside-eagles").values(timezone=None)
        )
        connection.execute(
            sa.text("UPDATE products SET due_on = 'soon' WHERE tenant_id = :tenant AND name = 'Season dues'"),
            {"tenant": minted_club[0].id},
        )
    with pytest.raises(RemindersIncompleteError) as failure:
        remind_outstanding_balances(as_of=morning(club_today()))
    assert list(failure.value.failed) == [TENANT]
    assert failure.value.failed[TENANT].startswith(f"tenant {TENANT}: products.due_on: product ")
    assert "'soon' is not a date" in failure.value.failed[TENANT]


def test_the_command_sets_the_cadence_refuses_nonsense_in_one_line_and_runs_a_dry_run(
    settings, engine, minted_club, tmp_path
):
    env = cli_env(tmp_path, COLUMNS="250")
    bad = run_cli(["reminders", "set", "--tenant", TENANT, "--days", "-7,0,400"], env)
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line.endswith(f"tenant {TENANT}: reminder_days: 400 is outside -90..+180 days of the due date")
    ok = run_cli(["reminders", "set", "--tenant", TENANT, "--days", "-7,0,3", "--hours", "9-17", "--on"], env)
    assert ok.returncode == 0, ok.stderr
    assert (
        f"tenant {TENANT}: reminders on, days -7,0,+3 from the due date, sent 09:00–17:00 local" in ok.stdout
    )

    dry = run_cli(["remind", "--tenant", TENANT, "--as-of", f"{club_today().isoformat()}T10:00"], env)
    assert dry.returncode == 0, dry.stderr
    assert "dry run (nothing sent)" in dry.stdout and "would be sent" in dry.stdout
    assert "3 days overdue (due" in dry.stdout

    # The coach's lookup says where each open bill stands against its due date.
    lookup = run_cli(["lookup", "--tenant", TENANT, "Alvarez"], env)
    assert lookup.returncode == 0, lookup.stderr
    assert "overdue by 3 days, owed by" in lookup.stdout and "due today" not in lookup.stdout


@pytest.mark.storage  # claims racing across transactions
def test_racing_sends_of_one_step_or_of_a_reminder_and_a_blast_mail_a_parent_at_most_once(
    settings, engine, minted_club, mailroom
):
    import threading

    from paylinks.messaging.claims import SendResult, send_logged
    from paylinks.runtime import mail_transport
    from tests.helpers import current_settings

    (preview,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(club_today()))
    email = next(e for e in preview.emails if e.address)
    assert email.address is not None
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
    current = current_settings()
    since = datetime.now(UTC) - timedelta(hours=24)
    step_key = f"reminder:{club_today().isoformat()}"

    def race(sends: list[tuple[EmailType, str]]) -> list:
        start = threading.Barrier(len(sends))
        outcomes: list = []

        def send(email_type: EmailType, run_key: str) -> None:
            start.wait()
            outcomes.append(
                send_logged(
                    engine,
                    mail_transport(current),
                    current,
                    club,
                    email_type,
                    run_key,
                    email,
                    email.address,
                    email.parent_id,
                    hold_since=since,
                )  # fmt: skip
            )

        threads = [threading.Thread(target=send, args=pair) for pair in sends]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(o.result for o in outcomes)

    # Two reminder runs sending the same step at the same instant: one claim wins.
    results = race([(EmailType.reminder, step_key), (EmailType.reminder, step_key)])
    assert len(mailroom.messages) == 1
    assert results in (
        [SendResult.already_sent, SendResult.sent],
        [SendResult.claimed_elsewhere, SendResult.sent],
    )

    # A reminder and a blast at the same instant: at most one balance email reaches the parent.
    with engine.begin() as connection:
        connection.execute(sa.delete(email_log))
    mailroom.messages.clear()
    results = race([(EmailType.reminder, step_key), (EmailType.outstanding_balance, "spring")])
    assert len(mailroom.messages) <= 1
    assert results in ([SendResult.held_back, SendResult.sent], [SendResult.held_back, SendResult.held_back])


def test_an_opted_out_parent_is_named_in_both_summaries_mailed_by_a_blast_never_reminded(
    settings, engine, minted_club, mailroom
):
    from paylinks.present.blast import OPTED_OUT_WORDS, blast_tables

    today = club_today()
    (preview,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(today))
    stopped = preview.of(ReminderResult.would_send)[0]
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
    set_opted_out(engine, club, stopped.parent_id, OptOutHow.one_click)

    (report,) = remind_outstanding_balances(tenant=TENANT, as_of=morning(today), send=True)
    assert stopped.recipient not in reminded(mailroom), "an opted-out parent gets no reminder"
    assert [line.parent_id for line in report.held(Hold.opted_out)] == [stopped.parent_id]
    assert summary_of(report)["held back: opted out of reminders"] == "1"
    rows = reminder_tables(report)[1].records()
    (row,) = [r for r in rows if r["parent"] == stopped.parent_name]
    assert row["outcome"] == "held back: opted out of reminders"

    # Opting out is of reminders only: the admin's blast still mails them, and says who opted out.
    mailroom.messages.clear()
    blasted = outstanding_balance_email(tenant=TENANT, send=True, include_recent=True)
    assert stopped.recipient in sent_to(mailroom)
    assert blasted.opted_out == {stopped.parent_id}
    summary, recipients, _ = blast_tables(blasted)
    assert {r["figure"]: r["value"] for r in summary.records()}[OPTED_OUT_WORDS] == "1"
    (row,) = [r for r in recipients.records() if r["parent"] == stopped.parent_name]
    assert row["outcome"] == "sent" and "opted out of reminders" in row["detail"]
    others = [r for r in recipients.records() if r["parent"] != stopped.parent_name]
    assert others and not any("opted out" in r["detail"] for r in others)


def test_an_every_club_run_passes_over_clubs_with_no_step_near_today_with_one_query(
    settings, engine, minted_club, mailroom
):
    """A club whose open bills have no cadence step today or yesterday has nobody due: the hourly
    run reports it as such without planning it (no task run, no Stripe request); a step
    yesterday still counts (it goes out the day after when no run could send it)."""
    from paylinks.present.reminders import quiet_tables

    today = club_today()
    club_id = minted_club[0].id

    def due(products_on: date, orders_on: date | None) -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.update(products).where(products.c.tenant_id == club_id).values(due_on=products_on)
            )
            connection.execute(
                sa.update(orders).where(orders.c.tenant_id == club_id).values(due_on=orders_on)
            )

    due(today + 40 * DAY, today + 40 * DAY)  # the -7 step is 33 days away
    by_tenant = {report.tenant: report for report in remind_outstanding_balances(as_of=morning(today))}
    assert by_tenant[TENANT].quiet and by_tenant[TENANT].lines == []
    summary, clubs = quiet_tables([by_tenant[TENANT]])
    assert TENANT in [r["tenant"] for r in clubs.records()]
    assert summary_of(by_tenant[TENANT])["nobody due"].startswith("no open bill has a cadence step")

    due(today - DAY, None)  # the due date's own step was yesterday
    by_tenant = {report.tenant: report for report in remind_outstanding_balances(as_of=morning(today))}
    assert not by_tenant[TENANT].quiet and by_tenant[TENANT].of(ReminderResult.would_send)


def test_a_plan_at_a_time_in_another_zone_still_holds_back_a_parent_emailed_within_the_day(
    settings, engine, minted_club, mailroom
):
    """The hold compares stored UTC times: an --as-of with an offset (here +09:00) is turned to UTC
    first. (SQLite compares times as text: the offset's 9 hours were lost, and a parent blasted
    20 hours before showed as one the next run would send to.)"""
    from zoneinfo import ZoneInfo

    set_reminders(engine, TENANT, hours="0-24")
    blasted = outstanding_balance_email(tenant=TENANT, send=True)
    assert blasted.sent
    later = (datetime.now(UTC) + timedelta(hours=20)).astimezone(ZoneInfo("Asia/Tokyo"))
    (plan,) = remind_outstanding_balances(tenant=TENANT, as_of=later)
    assert plan.of(ReminderResult.would_send) == []
    reachable = len(plan.lines) - len(plan.held(Hold.no_address))
    assert len(plan.held(Hold.emailed_today)) == reachable > 0
