"""Least power: a coach sees their own tenant only (another tenant's player, row and run answer
404), and cannot blast, mark paid, resolve refunds or read the admin page (403)."""

from __future__ import annotations

import sqlalchemy as sa

from paylinks.store.tables import payment_links, players
from tests.office.conftest import OTHER_COACH, OTHER_TENANT, TENANT


def test_another_tenants_player_row_and_run_answer_404(minted_club, engine, office):
    from flows.resend_payment_link import resend_payment_link
    from office.runs import run_flow_in_process

    with engine.connect() as connection:
        row = connection.execute(
            sa.select(payment_links.c.id, payment_links.c.player_id)
            .join(players)
            .where(players.c.tenant_id == minted_club[0].id)
        ).first()
    run_id, _ = run_flow_in_process(
        office.settings,
        resend_payment_link,
        {"tenant": TENANT, "player": str(row.player_id), "dry_run": True},
        started_by=None,
    )
    with office.client() as stranger:
        assert stranger.login(OTHER_COACH).status_code == 303
        assert stranger.get(f"/t/{OTHER_TENANT}").status_code == 200
        for path in (
            f"/t/{TENANT}",
            f"/t/{TENANT}/players/{row.player_id}",
            f"/t/{OTHER_TENANT}/players/{row.player_id}",
            f"/t/{OTHER_TENANT}/runs/{run_id}",
            f"/t/{TENANT}/runs/{run_id}",
            "/t/no-such-club",
        ):
            assert stranger.get(path).status_code == 404, path
        marked = stranger.submit(
            f"/t/{OTHER_TENANT}", f"/t/{OTHER_TENANT}/rows/{row.id}/paid-offline", {"method": "cash"}
        )
        assert marked.status_code == 404
        resent = stranger.submit(f"/t/{OTHER_TENANT}", f"/t/{OTHER_TENANT}/players/{row.player_id}/resend")
        assert resent.status_code == 404
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(payment_links.c.status).where(payment_links.c.id == row.id)).scalar()
            == "pending"
        )


def test_a_coach_cannot_do_what_admins_do(minted_club, engine, coach):
    with engine.connect() as connection:
        row = connection.execute(sa.select(payment_links.c.id, payment_links.c.player_id)).first()
    assert coach.get(f"/t/{TENANT}/admin").status_code == 403
    assert coach.get(f"/t/{TENANT}/admin/open-items.csv").status_code == 403
    assert coach.get(f"/t/{TENANT}/blast").status_code == 403
    page = f"/t/{TENANT}/players/{row.player_id}"
    assert "Mark paid offline" not in coach.get(page).text
    for action, data in (
        (f"/t/{TENANT}/rows/{row.id}/paid-offline", {"method": "cash"}),
        (f"/t/{TENANT}/blast/send", {"parents": "1"}),
        (f"/t/{TENANT}/blast/test", {"test_email": "coach@example.com"}),
        (f"/t/{TENANT}/refunds/1/resolve", {"resolution": "kept as credit"}),
    ):
        response = coach.submit(page, action, data)
        assert response.status_code == 403 and "Only a club admin" in response.text, action
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(payment_links.c.status).where(payment_links.c.id == row.id)).scalar()
            == "pending"
        )
