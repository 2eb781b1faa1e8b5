"""The coach's page over HTTP: find a player by part of the name, see the family, items and email
history, resend to the parent or another address, and read what was sent, to whom and when."""

from __future__ import annotations

import re

import sqlalchemy as sa

from paylinks.store.tables import audit_log, parents, payment_links, players
from paylinks.vocabulary import AuditAction
from tests.office.conftest import COACH, TENANT


def a_player_who_owes(engine) -> sa.RowMapping:
    """A player of TENANT with open, minted links and a parent with an email address."""
    with engine.connect() as connection:
        return (
            connection.execute(
                sa.select(players.c.id, players.c.first_name, players.c.last_name, parents.c.email)
                .join(parents, parents.c.id == players.c.parent_id)
                .join(payment_links, payment_links.c.player_id == players.c.id)
                .where(
                    payment_links.c.status == "pending",
                    payment_links.c.stripe_payment_link_url.is_not(None),
                    parents.c.email.is_not(None),
                )
                .order_by(players.c.id)
            )
            .mappings()
            .first()
        )


def test_search_by_part_of_the_name_or_by_id_within_the_tenant(minted_club, engine, coach):
    player = a_player_who_owes(engine)
    part = player["last_name"][1:4].upper()  # any part, any case
    page = coach.get(f"/t/{TENANT}/players", params={"q": part})
    assert page.status_code == 200
    assert f"{player['first_name']} {player['last_name']}" in page.text
    assert f'href="/t/{TENANT}/players/{player["id"]}"' in page.text

    as_typed = coach.get(f"/t/{TENANT}/players", params={"q": part, "fragment": "1"})
    assert "<html" not in as_typed.text and f"/players/{player['id']}" in as_typed.text

    by_id = coach.get(f"/t/{TENANT}/players", params={"q": f"#{player['id']}"})
    assert len(re.findall(r'href="/t/[^/]+/players/\d+"', by_id.text)) == 1

    nobody = coach.get(f"/t/{TENANT}/players", params={"q": "%_%"})  # wildcards match literally
    assert "No player matches" in nobody.text


def test_resend_to_the_parent_says_what_was_sent_to_whom_and_when(minted_club, engine, coach, mailroom):
    player = a_player_who_owes(engine)
    card = coach.get(f"/t/{TENANT}/players/{player['id']}")
    assert card.status_code == 200
    assert player["email"] in card.text and "Copy link" in card.text
    urls = re.findall(r'data-copy="([^"]+)"', card.text)
    assert urls

    response = coach.submit(
        f"/t/{TENANT}/players/{player['id']}", f"/t/{TENANT}/players/{player['id']}/resend"
    )
    assert response.status_code == 303
    after = coach.get(response.headers["location"])
    notice = re.search(r'<p class="notice" role="status">(.*?)</p>', after.text, re.S).group(1)
    assert re.search(  # the club's time (the demo club's zone: the default, New York)
        rf"Sent \d+ open items? \(\$[\d,.]+ in all\) to {re.escape(player['email'])} "
        r"at [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M E[SD]T\.$",
        notice,
    )
    assert "Run " not in notice and 'class="error"' not in after.text  # the run's id is behind Details

    ((rcpt, message),) = mailroom.messages
    assert rcpt == [player["email"]]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert all(url in body for url in urls)
    assert "payment link" in after.text  # the email history now lists it

    with engine.connect() as connection:
        entry = connection.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).mappings().first()
    assert entry["action"] == AuditAction.resend and entry["actor"] == COACH
    assert entry["client_address"] == "127.0.0.1" and player["email"] in entry["detail"]


def test_send_to_another_address_and_a_bad_address_is_named(minted_club, engine, coach, mailroom):
    player = a_player_who_owes(engine)
    page = f"/t/{TENANT}/players/{player['id']}"
    bad = coach.submit(page, f"{page}/resend", {"to": "not-an-address"})
    assert bad.status_code == 422 and "not a valid email address" in bad.text
    assert mailroom.messages == []

    sent = coach.submit(page, f"{page}/resend", {"to": "Grandma@Example.com"})
    assert sent.status_code == 303
    assert "to Grandma@example.com" in coach.get(sent.headers["location"]).text
    assert mailroom.recipients() == ["Grandma@example.com"]
    with engine.connect() as connection:
        action = connection.execute(sa.select(audit_log.c.action).order_by(audit_log.c.id.desc())).scalar()
    assert action == AuditAction.send_to_address
