"""Stripe out of reach: every command that talks to Stripe ends with one line naming the URL it
tried and the setting that names it (exit code 2), never a traceback or a raw connection error. A
command's own arguments are checked first: a player no one matches is named whether or not Stripe
answers."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

from paylinks.demo.data import seed_demo
from paylinks.settings import Settings
from tests.test_bad_input import TENANT, assert_one_clear_line, everything_written, invoke


@pytest.fixture
def closed_port() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def club(settings: Settings, engine: sa.Engine) -> None:
    seed_demo(engine)


COMMANDS = {
    "backfill-commit": ["backfill", "--tenant", TENANT, "--commit"],
    "blast-preview": ["blast", "--tenant", TENANT],
    "resend": ["resend", "--tenant", TENANT, "1"],
    "lookup": ["lookup", "--tenant", TENANT, "Ava"],
    "reconcile": ["reconcile", "--tenant", TENANT],
    "tenant-account": ["tenant", "account", TENANT, "acct_1ClubOwnAccount"],
    "limits-setup": ["limits", "setup"],
}


RECONCILE_GAP = pytest.mark.xfail(
    strict=True,
    reason="reconcile names the URL and setting, but only after the run's retries, inside "
    "'reconcile failed for 1 tenant(s)', and exits 1: its preflight does not yet probe Stripe",
)


@pytest.mark.parametrize(
    "args",
    [pytest.param(a, id=k, marks=RECONCILE_GAP if k == "reconcile" else ()) for k, a in COMMANDS.items()],
)
def test_stripe_out_of_reach_is_one_line_naming_the_url_and_the_setting(
    settings, engine, emulator, club, closed_port, args
):
    before = everything_written(settings, engine, emulator)
    result = invoke(settings, args, {"PAYLINKS_STRIPE_API_BASE": closed_port})
    line = assert_one_clear_line(result, f"cannot reach Stripe at {closed_port}", "PAYLINKS_STRIPE_API_BASE")
    assert "urllib3" not in line and "HTTPConnectionPool" not in line and "Errno" not in line, line

    assert everything_written(settings, engine, emulator) == before


PLAYER_QUERIES = {
    "lookup-superscript-two": (
        ["lookup", "--tenant", TENANT, "²"],
        "no player matches '²' in riverside-hoops",
    ),
    "lookup-20-digit-id": (
        ["lookup", "--tenant", TENANT, "12345678901234567890"],
        "no player matches '12345678901234567890' in riverside-hoops",
    ),
    "resend-unknown": (["resend", "--tenant", TENANT, "Nobody Here"], "no player matches 'Nobody Here'"),
    "lookup-unknown-tenant": (["lookup", "--tenant", "no-such-club", "²"], "unknown tenant 'no-such-club'"),
}


@pytest.mark.parametrize("row", PLAYER_QUERIES.values(), ids=PLAYER_QUERIES.keys())
def test_the_tenant_and_the_player_are_checked_before_stripe_is_asked(
    settings, engine, emulator, club, closed_port, row
):
    args, expected = row
    result = invoke(settings, args, {"PAYLINKS_STRIPE_API_BASE": closed_port})
    assert_one_clear_line(result, expected)
