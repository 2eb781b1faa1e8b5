"""Finding a player the way a coach asks: by id, or by any part of the name."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.store.queries import fetch_all


@dataclass(frozen=True)
class PlayerMatch:
    player_id: int
    name: str
    team: str | None
    status: str
    parent_id: int | None
    parent_name: str | None
    parent_email: str | None

    def describe(self) -> str:
        parent = f"parent {self.parent_name}" if self.parent_name else "no parent on file"
        return f"#{self.player_id} {self.name} ({self.team or 'no team'}, {self.status}; {parent})"


class UnknownPlayerError(PaylinksError):
    exit_code = 2

    def __init__(self, query: str, tenant: Tenant):
        super().__init__(f"no player matches {query!r} in {tenant.slug}")


class AmbiguousPlayerError(PaylinksError):
    exit_code = 2

    def __init__(self, query: str, matches: list[PlayerMatch]):
        self.matches = matches
        listing = "\n".join(f"  {m.describe()}" for m in matches)
        super().__init__(
            f"{len(matches)} players match {query!r}; nothing sent. Use the id of one of:\n{listing}"
        )


class EmptyPlayerQueryError(PaylinksError):
    exit_code = 2

    def __init__(self) -> None:
        super().__init__("the player to find is empty; give a player id or part of the player's name")


# The largest id an INTEGER column holds (PostgreSQL's is 32 bits): a longer number is no id.
MAX_PLAYER_ID = 2**31 - 1


@dataclass(frozen=True)
class PlayerQuery:
    """What a coach typed, as the search runs it: an id, or a LIKE pattern for the full name."""

    player_id: int | None
    name_pattern: str | None


def parse_player_query(query: str) -> PlayerQuery:
    """`42` or `#42` is an id; anything else is matched, case-insensitively, inside the name."""
    text = query.strip()
    digits = text.removeprefix("#")
    if not digits.strip():
        raise EmptyPlayerQueryError()
    # ASCII digits only: str.isdigit() also accepts "²" and other scripts' digits.
    if digits and digits.isascii() and digits.isdigit() and int(digits) <= MAX_PLAYER_ID:
        return PlayerQuery(player_id=int(digits), name_pattern=None)
    # LIKE wildcards typed by a coach are matched literally.
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return PlayerQuery(player_id=None, name_pattern=f"%{escaped}%")


def find_players(connection: Connection, tenant: Tenant, query: str) -> list[PlayerMatch]:
    parsed = parse_player_query(query)
    if parsed.name_pattern is not None and any(unicodedata.category(ch) == "Cc" for ch in query):
        return []  # no name holds a control character, and PostgreSQL refuses a NUL outright
    rows = fetch_all(
        connection,
        "find_players",
        tenant_id=tenant.id,
        player_id=parsed.player_id,
        name_pattern=parsed.name_pattern,
    )
    return [
        PlayerMatch(
            player_id=int(r["player_id"]),
            name=f"{r['first_name']} {r['last_name']}",
            team=r["team"],
            status=r["status"],
            parent_id=r["parent_id"],
            parent_name=f"{r['parent_first_name']} {r['parent_last_name']}" if r["parent_id"] else None,
            parent_email=r["parent_email"],
        )
        for r in rows
    ]


def find_player(connection: Connection, tenant: Tenant, query: str) -> PlayerMatch:
    matches = find_players(connection, tenant, query)
    if not matches:
        raise UnknownPlayerError(query, tenant)
    if len(matches) > 1:
        # An exact full-name match wins over partial ones ("Ava Chen" vs "Ava Chenoweth").
        exact = [m for m in matches if m.name.lower() == query.strip().lower()]
        if len(exact) != 1:
            raise AmbiguousPlayerError(query, matches)
        return exact[0]
    return matches[0]
