"""Player search the way a coach types it: ids, parts of names, and text that only looks special."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from paylinks.club.players import (
    MAX_PLAYER_ID,
    EmptyPlayerQueryError,
    PlayerQuery,
    find_player,
    find_players,
    parse_player_query,
)
from paylinks.club.tenants import Tenant, tenant_by_slug

# Storage semantics matter here (name search: case folding and LIKE differ by dialect): PostgreSQL too.
pytestmark = pytest.mark.storage


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("42", PlayerQuery(42, None)),
        ("#42", PlayerQuery(42, None)),
        ("  7 ", PlayerQuery(7, None)),
        (str(MAX_PLAYER_ID), PlayerQuery(MAX_PLAYER_ID, None)),
        # Not ids: digits of other scripts, and numbers no INTEGER column can hold.
        ("²", PlayerQuery(None, "%²%")),
        ("٣", PlayerQuery(None, "%٣%")),
        ("12345678901234567890", PlayerQuery(None, "%12345678901234567890%")),
        (str(MAX_PLAYER_ID + 1), PlayerQuery(None, f"%{MAX_PLAYER_ID + 1}%")),
        ("-3", PlayerQuery(None, "%-3%")),
        # Names: lower-cased, LIKE's wildcards and escape character taken literally.
        ("Ava", PlayerQuery(None, "%ava%")),
        ("100%", PlayerQuery(None, "%100\\%%")),
        ("a_b", PlayerQuery(None, "%a\\_b%")),
        ("back\\slash", PlayerQuery(None, "%back\\\\slash%")),
    ],
)
def test_what_is_an_id_and_what_is_part_of_a_name(typed, expected):
    assert parse_player_query(typed) == expected


@pytest.mark.parametrize("typed", ["", "   ", "#", "# "])
def test_an_empty_search_is_refused_saying_what_to_give(typed):
    with pytest.raises(EmptyPlayerQueryError, match="give a player id or part of the player's name"):
        parse_player_query(typed)


NAMES = [
    ("Ava", "Chen"),
    ("Ava", "Chenoweth"),
    ("Zoë", "Ångström"),
    ("Percy", "100%Fit"),
    ("Under", "Score_Jr"),
    ("李", "小龙"),
    ("Robert'); DROP TABLE players;--", "Tables"),
]


@pytest.fixture
def club(engine: sa.Engine) -> Tenant:
    """A tenant whose players have the names above, plus a second tenant with an Ava of its own."""
    from paylinks.store.tables import parents, players, tenants

    with engine.begin() as connection:
        for slug in ("search-club", "other-club"):
            connection.execute(
                sa.insert(tenants).values(slug=slug, name=slug, reply_to_email=f"office@{slug}.example")
            )
        ids = {slug: tenant_by_slug(connection, slug).id for slug in ("search-club", "other-club")}
        parent_id = connection.execute(
            sa.insert(parents).values(
                tenant_id=ids["search-club"], first_name="Pat", last_name="Parent", email="pat@example.com"
            )
        ).inserted_primary_key[0]
        for first, last in NAMES:
            connection.execute(
                sa.insert(players).values(
                    tenant_id=ids["search-club"],
                    parent_id=parent_id,
                    first_name=first,
                    last_name=last,
                    status="signed",
                )
            )
        connection.execute(
            sa.insert(players).values(
                tenant_id=ids["other-club"], first_name="Ava", last_name="Elsewhere", status="signed"
            )
        )
        return tenant_by_slug(connection, "search-club")


def names(engine: sa.Engine, club: Tenant, typed: str) -> list[str]:
    with engine.connect() as connection:
        return sorted(match.name for match in find_players(connection, club, typed))


def test_part_of_a_name_in_any_case_finds_only_this_tenants_players(engine, club):
    assert names(engine, club, "ava") == ["Ava Chen", "Ava Chenoweth"]
    assert names(engine, club, "CHEN") == ["Ava Chen", "Ava Chenoweth"]
    assert names(engine, club, "a c") == ["Ava Chen", "Ava Chenoweth"]
    assert names(engine, club, "Zoë") == ["Zoë Ångström"]
    assert names(engine, club, "小龙") == ["李 小龙"]


def test_an_exact_full_name_wins_over_longer_ones(engine, club):
    with engine.connect() as connection:
        assert find_player(connection, club, "ava chen").name == "Ava Chen"


def test_percent_and_underscore_match_only_themselves(engine, club):
    assert names(engine, club, "%") == ["Percy 100%Fit"]
    assert names(engine, club, "0%f") == ["Percy 100%Fit"]
    assert names(engine, club, "_") == ["Under Score_Jr"]
    assert names(engine, club, "e_j") == ["Under Score_Jr"]
    assert names(engine, club, "\\") == []


def test_an_id_finds_that_player_and_no_other_tenants(engine, club):
    with engine.connect() as connection:
        chen = find_player(connection, club, "Ava Chen")
        assert find_player(connection, club, str(chen.player_id)).name == "Ava Chen"
        assert find_player(connection, club, f"#{chen.player_id}").name == "Ava Chen"
        other = connection.execute(
            sa.text("SELECT id FROM players WHERE last_name = 'Elsewhere'")
        ).scalar_one()
    assert names(engine, club, str(other)) == []


@pytest.mark.parametrize(
    "typed",
    ["²", "٣", "12345678901234567890", str(MAX_PLAYER_ID + 1), "nul\x00byte", "line\r\nbreak"],
)
def test_digits_of_other_scripts_huge_numbers_and_control_characters_match_nobody(engine, club, typed):
    assert names(engine, club, typed) == []


@pytest.mark.parametrize(
    "typed",
    ["' OR '1'='1", "1 OR 1=1", "'; DROP TABLE players; --", '" OR ""="', "1; SELECT * FROM parents"],
)
def test_text_shaped_like_sql_is_only_ever_text(engine, club, typed):
    assert names(engine, club, typed) == []
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM players")).scalar_one() == len(NAMES) + 1
    # A name that holds SQL is found like any other name.
    assert names(engine, club, "drop table") == ["Robert'); DROP TABLE players;-- Tables"]
