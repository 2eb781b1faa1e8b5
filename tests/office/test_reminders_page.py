"""The admin's reminders page, over HTTP: the club's cadence, hours and on/off (checked before
anything is saved), and the next hourly run's expected recipients (a dry run)."""

from __future__ import annotations

from paylinks.club.tenants import tenant_by_slug
from tests.helpers import TENANT


def test_the_admin_sets_the_cadence_and_sees_who_the_next_run_would_remind(
    office, admin, coach, engine, minted_club
):
    page = f"/t/{TENANT}/reminders"
    opened = admin.get(page)
    assert opened.status_code == 200 and "-7,0,+3,+7,+14,+30,+45,+60" in opened.text

    refused = admin.submit(page, page, {"enabled": "on", "days": "-7,0,later", "hours": "0-24"})
    assert refused.status_code == 422
    assert f"tenant {TENANT}: reminder_days: &#39;later&#39; is not a whole number of days" in refused.text

    saved = admin.submit(page, page, {"enabled": "on", "days": "-7,0,3", "hours": "0-24"})
    assert saved.status_code == 200 and "Saved." in saved.text
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
    assert (club.reminders_enabled, club.reminder_days, club.reminder_hours) == (True, "-7,0,3", "0-24")
    # The kit fell due three days ago: its +3 step is today, so the next run reminds every family
    # with an address (the one without is held back, and says so).
    assert "expected recipients" in saved.text and "3 days overdue (due" in saved.text
    assert "no email address on file" in saved.text

    assert coach.get(page).status_code in (403, 404)
