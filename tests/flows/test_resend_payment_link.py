"""The coach's resend and lookup: find a player, send the parent their open links."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flows.resend_payment_link import resend_payment_link
from paylinks.club.players import AmbiguousPlayerError
from paylinks.messaging.reports import ResendOutcome
from paylinks.store.tables import email_log, payment_links, players
from tests.helpers import TENANT, cli_env, run_cli


def open_links_of(engine: sa.Engine, player_id: int) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                sa.select(payment_links.c.stripe_payment_link_url).where(
                    payment_links.c.player_id == player_id, payment_links.c.status == "pending"
                )
            ).scalars()
        )


def first_player_with_a_unique_name(engine: sa.Engine) -> sa.Row:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT p.id, p.first_name, p.last_name, pa.email FROM players p JOIN parents pa ON pa.id = p.parent_id "
                "JOIN tenants t ON t.id = p.tenant_id WHERE t.slug = :slug AND p.status = 'signed' "
                "AND pa.email IS NOT NULL ORDER BY p.id"
            ),
            {"slug": TENANT},
        ).all()
    names = [f"{r.first_name} {r.last_name}".lower() for r in rows]
    return next(r for r, n in zip(rows, names, strict=True) if sum(n in other for other in names) == 1)


def test_resend_delivers_the_players_open_links_to_the_parent(settings, engine, minted_club, mailroom):
    player = first_player_with_a_unique_name(engine)

    report = resend_payment_link(tenant=TENANT, player=f"{player.first_name} {player.last_name}".upper())

    assert [(p.outcome, p.recipient) for p in report.parents] == [(ResendOutcome.sent, player.email)]
    assert mailroom.recipients() == [player.email]
    ((_, message),) = mailroom.messages
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for url in open_links_of(engine, player.id):
        assert url in text and url in html
    with engine.connect() as connection:
        logged = connection.execute(sa.select(email_log)).mappings().all()
    assert [(row["email_type"].value, row["recipient"], row["status"].value) for row in logged] == [
        ("payment_link", player.email, "sent")
    ]


def test_resend_to_another_address_and_by_id(settings, engine, minted_club, mailroom):
    player = first_player_with_a_unique_name(engine)
    resend_payment_link(tenant=TENANT, player=str(player.id), to="front-desk@club.example")
    assert mailroom.recipients() == ["front-desk@club.example"]


def test_an_ambiguous_name_sends_nothing_and_lists_the_matches(
    settings, engine, minted_club, mailroom, tmp_path
):
    with engine.connect() as connection:
        last_name = (
            connection.execute(
                sa.text(
                    "SELECT last_name FROM players GROUP BY last_name HAVING COUNT(*) > 1 ORDER BY last_name"
                )
            )
            .scalars()
            .first()
        )
    with pytest.raises(AmbiguousPlayerError) as raised:
        resend_payment_link(tenant=TENANT, player=last_name.lower())
    assert len(raised.value.matches) > 1
    assert mailroom.messages == []

    result = run_cli(["resend", "--tenant", TENANT, last_name], cli_env(tmp_path))
    assert result.returncode == 2
    assert "nothing sent" in result.stderr and last_name in result.stderr
    assert mailroom.messages == []


def test_unknown_player_is_one_clear_message_and_exit_2(settings, minted_club, tmp_path):
    result = run_cli(["resend", "--tenant", TENANT, "Nobody Atall"], cli_env(tmp_path))
    assert result.returncode == 2
    assert "no player matches 'Nobody Atall'" in result.stderr


def test_lookup_prints_each_link_and_its_status(settings, engine, minted_club, tmp_path):
    player = first_player_with_a_unique_name(engine)
    result = run_cli(["lookup", "--tenant", TENANT, str(player.id)], cli_env(tmp_path, COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    for url in open_links_of(engine, player.id):
        assert url in result.stdout
    assert "Pending" in result.stdout  # the status in words


def test_hostile_names_cannot_inject_headers_and_are_escaped(settings, engine, minted_club, mailroom):
    player = first_player_with_a_unique_name(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.update(players)
            .where(players.c.id == player.id)
            .values(first_name='<script>alert("x")</script>', last_name="O'Brien\r\nBcc: thief@evil.example")
        )
    resend_payment_link(tenant=TENANT, player=str(player.id))
    ((rcpt_tos, message),) = mailroom.messages
    assert rcpt_tos == [player.email]
    assert message["Bcc"] is None
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
