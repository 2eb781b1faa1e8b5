"""A coach, in a real browser (headless Chromium): logs in, finds a player by part of the name as
they type, opens the card, presses "Resend to parent", reads what was sent, and the email
arrives at the SMTP server."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from paylinks.store.tables import parents, payment_links, players
from tests.browser import ARTIFACTS_DIR
from tests.office.cdp import Browser
from tests.office.conftest import COACH, PASSWORD, TENANT


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_coach_logs_in_finds_a_player_and_resends(minted_club, engine, office, mailroom, tmp_path):
    with engine.connect() as connection:
        player = connection.execute(
            sa.select(players.c.id, players.c.first_name, players.c.last_name, parents.c.email)
            .join(parents, parents.c.id == players.c.parent_id)
            .join(payment_links, payment_links.c.player_id == players.c.id)
            .where(payment_links.c.status == "pending", parents.c.email.is_not(None))
            .order_by(players.c.id.desc())
        ).first()
    name = f"{player.first_name} {player.last_name}"

    with Browser(tmp_path / "chromium") as browser:
        browser.open(f"{office.url}/t/{TENANT}")  # sent to the login page first
        assert browser.wait_for("location.pathname === '/login'")
        browser.type_into("input[name=email]", COACH)
        browser.type_into("input[name=password]", PASSWORD)
        browser.click("form[action='/login'] button[type=submit]")
        browser.wait_for(f"location.pathname === '/t/{TENANT}' && document.readyState === 'complete'")

        browser.type_into("#q", player.last_name[:4].lower())  # part of the name, as typed
        link = f"#results a[href='/t/{TENANT}/players/{player.id}']"
        browser.wait_for(f"document.querySelector({json.dumps(link)}) !== null")
        browser.screenshot(ARTIFACTS_DIR / "office-coach-search.png")
        browser.click(link)
        browser.wait_for(
            f"location.pathname === '/t/{TENANT}/players/{player.id}' && document.readyState === 'complete'"
            f" && document.body.innerText.includes({json.dumps(player.email)})"
        )
        assert name in browser.text() and "Copy link" in browser.text()

        browser.click("button[value=resend]")
        notice = browser.wait_for("(document.querySelector('.notice') || {}).innerText")
        browser.screenshot(ARTIFACTS_DIR / "office-coach-resent.png")

    assert re.search(
        rf"Sent \d+ open items? \(\$[\d,.]+ in all\) to {re.escape(player.email)} at .+ E[SD]T\.", notice
    )
    assert mailroom.recipients() == [player.email]
    ((_, message),) = mailroom.messages
    assert player.first_name in message.get_body(preferencelist=("plain",)).get_content()
