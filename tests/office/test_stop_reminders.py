"""A parent stops reminders from the reminder itself: the mail program's one click (RFC 8058,
POST `List-Unsubscribe=One-Click` to the List-Unsubscribe url) or the "stop reminders" page, over
HTTP to the real office; the page can undo it. An opted-out parent gets no reminders, and still
gets the blasts the admin sends."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from flows.outstanding_balance_email import outstanding_balance_email
from flows.remind_outstanding_balances import remind_outstanding_balances
from paylinks.messaging.cadence import Hold
from paylinks.messaging.reminders import ReminderResult
from paylinks.store.tables import email_log, players, reminder_optouts
from paylinks.vocabulary import OptOutHow
from tests.helpers import TENANT


def ten_am() -> datetime:
    return datetime.combine(datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).date(), time(10))


def test_one_click_stops_reminders_the_page_undoes_it_and_blasts_still_arrive(
    office, admin, engine, minted_club, mailroom
):
    (report,) = remind_outstanding_balances(tenant=TENANT, as_of=ten_am(), send=True)
    (first, *_) = report.of(ReminderResult.sent)
    message = next(m for rcpt, m in mailroom.messages if rcpt == [first.recipient])
    url = message["List-Unsubscribe"].strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = url.removeprefix(office.settings.office_url)
    # An address no one can guess from the parent's number (a random token may hold any digit).
    token = path.removeprefix("/r/")
    assert path.startswith("/r/") and len(token) >= 20 and not token.isdigit()

    with httpx.Client(base_url=office.url, timeout=30) as client:
        # Opening the link (a mail scanner, a preview) only asks.
        asked = client.get(path)
        assert asked.status_code == 200 and "Stop reminders</button>" in asked.text
        with engine.connect() as connection:
            assert connection.execute(sa.select(reminder_optouts)).first() is None

        # The mail program's one click: no cookie, no CSRF token, the RFC 8058 body.
        clicked = client.post(
            path,
            content="List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert clicked.status_code == 200
        assert (
            f"{first.parent_name} gets no more" in clicked.text and "Keep getting reminders" in clicked.text
        )
        with engine.connect() as connection:
            (row,) = connection.execute(sa.select(reminder_optouts)).mappings().all()
        assert (row["parent_id"], OptOutHow(row["how"])) == (first.parent_id, OptOutHow.one_click)

        # A guessed or altered token opens nothing.
        assert client.post(path[:-2] + "xx", content="List-Unsubscribe=One-Click").status_code == 404
        assert client.get(f"/r/{first.parent_id}").status_code == 404

    # The player card shows it, and an admin can let reminders resume from there.
    with engine.connect() as connection:
        player_id = connection.execute(
            sa.select(players.c.id).where(players.c.parent_id == first.parent_id).limit(1)
        ).scalar_one()
    card = admin.get(f"/t/{TENANT}/players/{player_id}")
    assert "Reminders: stopped" in card.text and "(one click in their mail program)" in card.text
    assert "overdue by 3 days" in card.text, "each open bill's due state"
    action = f"/t/{TENANT}/players/{player_id}/parents/{first.parent_id}/reminders"
    resumed = admin.submit(f"/t/{TENANT}/players/{player_id}", action, {"action": "resume"})
    assert resumed.status_code == 200 and f"{first.parent_name} gets reminders again." in resumed.text
    stopped = admin.submit(f"/t/{TENANT}/players/{player_id}", action, {"action": "stop"})
    assert "(an admin, in the office)" in stopped.text

    # The next day's reminders hold the parent back; an admin's blast still reaches them.
    with engine.begin() as connection:
        connection.execute(sa.delete(email_log))
    (later,) = remind_outstanding_balances(tenant=TENANT, as_of=ten_am(), send=True)
    assert first.parent_id in {line.parent_id for line in later.held(Hold.opted_out)}
    assert first.parent_id not in {line.parent_id for line in later.of(ReminderResult.sent)}
    blast = outstanding_balance_email(tenant=TENANT, send=True)
    assert first.parent_id in {outcome.parent_id for outcome in blast.sent}

    # The confirmation page's button undoes it: reminders again.
    with httpx.Client(base_url=office.url, timeout=30) as client:
        resumed = client.post(f"{path}/resume")
        assert resumed.status_code == 200 and "gets payment reminders from" in resumed.text
    with engine.connect() as connection:
        assert connection.execute(sa.select(reminder_optouts)).first() is None
