"""What a coach may read of what others did: the notice above a page (`?done=N`) shows only the
viewer's own action, never another person's audit entry (one-time passwords issued, test sends);
a run's page shows a coach only the runs they started (an admin's blast answers 404), while an
admin sees every run of the tenant."""

from __future__ import annotations

import re

import sqlalchemy as sa

from paylinks.access.audit import Actor, record
from paylinks.club.tenants import tenant_by_slug
from paylinks.store.tables import audit_log, players, users
from paylinks.vocabulary import AuditAction
from tests.office.conftest import ADMIN, COACH, TENANT

NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.S)


def user_id(engine, email: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(users.c.id).where(users.c.email == email)).scalar()


def a_player_id(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(players.c.id).order_by(players.c.id)).scalar()


def entry_by(engine, email: str, action: AuditAction, detail: str) -> int:
    """An audit entry of TENANT written as `email`'s action would be."""
    with engine.begin() as connection:
        tenant = tenant_by_slug(connection, TENANT)
        return record(
            connection, Actor(user_id(engine, email), email, "127.0.0.1"), action, tenant.id, detail
        )


def notice(page_text: str) -> str | None:
    match = NOTICE.search(page_text)
    return match.group(1) if match else None


def test_done_shows_a_coach_only_their_own_action(engine, admin, coach):
    player = a_player_id(engine)
    admins_test = entry_by(
        engine, ADMIN, AuditAction.blast_test, "Test email sent to ada@home.example. Run x."
    )
    coachs_own = entry_by(engine, COACH, AuditAction.resend, "Sent 2 open items to a parent.")
    with engine.connect() as connection:
        tenant_id = tenant_by_slug(connection, TENANT).id
        others = connection.execute(
            sa.select(audit_log.c.id, audit_log.c.detail).where(
                audit_log.c.tenant_id == tenant_id, audit_log.c.id != coachs_own
            )
        ).all()
    assert any("one-time password issued" in detail for _, detail in others)
    for entry_id, detail in others:
        page = coach.get(f"/t/{TENANT}/players/{player}?done={entry_id}")
        assert page.status_code == 200
        assert notice(page.text) is None and detail not in page.text, detail

    assert notice(coach.get(f"/t/{TENANT}/players/{player}?done={coachs_own}").text) == (
        "Sent 2 open items to a parent."
    )
    # The admin, too, is told of their own action only.
    assert "ada@home.example" in notice(admin.get(f"/t/{TENANT}/admin?done={admins_test}").text)
    assert notice(admin.get(f"/t/{TENANT}/admin?done={coachs_own}").text) is None


def test_a_coach_sees_the_runs_they_started_and_no_admins(minted_club, engine, admin, coach, mailroom):
    reachable = re.search(r"<strong>(\d+)</strong> of them", admin.get(f"/t/{TENANT}/blast").text).group(1)
    sent = admin.submit(f"/t/{TENANT}/blast", f"/t/{TENANT}/blast/send", {"parents": reachable})
    assert sent.status_code == 303
    admins_run = sent.headers["location"]
    assert admin.get(admins_run).status_code == 200
    refused = coach.get(admins_run)
    assert refused.status_code == 404 and "There is nothing here" in refused.text

    player = a_player_id(engine)
    resent = coach.submit(f"/t/{TENANT}/players/{player}", f"/t/{TENANT}/players/{player}/resend")
    # The run's id is not in the notice's words: it is behind its "Details" disclosure.
    after = coach.get(resent.headers["location"]).text
    assert "Run " not in notice(after)
    run_id = re.search(r'<details class="ids">.*?Run ([0-9a-f-]{36})', after, re.S).group(1)
    own = coach.get(f"/t/{TENANT}/runs/{run_id}")
    assert own.status_code == 200 and "<h1>Links resent to a parent</h1>" in own.text
    assert admin.get(f"/t/{TENANT}/runs/{run_id}").status_code == 200  # an admin sees every run of the club
