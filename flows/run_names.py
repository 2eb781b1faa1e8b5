"""Flow run names that say what a run does (`blast-riverside-hoops-send`, `reconcile-all`), so
the Prefect UI's run list reads like a log of the club's jobs instead of random words.

Each `*_run_name` builds a name from a flow's parameters; `from_parameters` turns one into the
zero-argument callable `@flow(flow_run_name=...)` expects, reading the parameters of the run
being named.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from paylinks.club.players import parse_player_query
from paylinks.errors import PaylinksError

EVERY_TENANT = "all"
_PLAYER_WORDS_MAX = 40


def from_parameters(build: Callable[..., str]) -> Callable[[], str]:
    """A `flow_run_name` callable: `build` called with the parameters of the run it names."""

    def name() -> str:
        from prefect.runtime import flow_run

        return build(**flow_run.parameters)

    name.__qualname__ = name.__name__ = build.__name__
    return name


def backfill_run_name(tenant: str | None = None, commit: bool = False, **_: Any) -> str:
    """`backfill-riverside-hoops-commit`, `backfill-all-dry-run`."""
    return f"backfill-{tenant or EVERY_TENANT}-{'commit' if commit else 'dry-run'}"


def blast_run_name(tenant: str, test_email: str | None = None, send: bool = False, **_: Any) -> str:
    """`blast-riverside-hoops-test` (one sample), `-send` (every parent), `-preview` (nothing sent)."""
    mode = "test" if test_email else "send" if send else "preview"
    return f"blast-{tenant}-{mode}"


def resend_run_name(tenant: str, player: str, dry_run: bool = False, **_: Any) -> str:
    """`resend-riverside-hoops-player-12` for a player id, `resend-riverside-hoops-maya-o-neil` for
    part of a name; `-dry-run` when nothing is sent."""
    return f"resend-{tenant}-{_player_words(player)}" + ("-dry-run" if dry_run else "")


def reconcile_run_name(tenant: str | None = None, whole_account: bool = False, **_: Any) -> str:
    """`reconcile-all`, `reconcile-riverside-hoops`, `reconcile-riverside-hoops-account` (its
    whole Stripe account)."""
    return f"reconcile-{tenant or EVERY_TENANT}" + ("-account" if tenant and whole_account else "")


def remind_run_name(tenant: str | None = None, send: bool = False, **_: Any) -> str:
    """`remind-all-send`, `remind-riverside-hoops-dry-run`."""
    return f"remind-{tenant or EVERY_TENANT}-{'send' if send else 'dry-run'}"


def _player_words(player: str) -> str:
    try:
        query = parse_player_query(player)
    except PaylinksError:  # an empty search: the run itself says so
        return "player"
    if query.player_id is not None:  # read as the search reads it: `12` and `#12` are ids
        return f"player-{query.player_id}"
    words = re.sub(r"[\W_]+", "-", player.casefold()).strip("-")[:_PLAYER_WORDS_MAX].strip("-")
    return words or "player"
