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
    seed_demo(engine, settings.club_timezone)


COMMANDS = {
    "backfill-commit": ["backfill", "--tenant", TENANT, "--commit"],
    "blast-preview": ["blast", "--tenant", TENANT],
    "resend": ["resend", "--tenant", TENANT, "1"],
    "lookup": ["lookup", "--tenant", TENANT, "Ava"],
    "reconcile": ["reconcile", "--tenant", TENANT],
    "tenant-account": ["tenant", "account", TENANT, "acct_1ClubOwnAccount"],
    "limits-setup": ["limits", "setup"],
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
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


def test_a_setting_named_like_a_proxy_does_not_hide_stripe_being_out_of_reach(closed_port, monkeypatch):
    # urllib reads every *_PROXY variable; only a proxy for Stripe's scheme carries the SDK's calls.
    from paylinks.stripe_api.failures import StripeUnreachableError, check_stripe_reachable

    monkeypatch.setenv("PAYLINKS_OFFICE_BEHIND_PROXY", "true")
    settings = Settings(stripe_api_base=closed_port, stripe_api_key="sk_test_probe")
    with pytest.raises(StripeUnreachableError, match="nothing listens there"):
        check_stripe_reachable(settings)

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    check_stripe_reachable(settings)  # the proxy would carry the calls: a direct probe says nothing
