"""Helpers the test modules share (test modules never import from each other)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr

from paylinks.settings import ENV_PREFIX, PROJECT_ROOT, Settings
from paylinks.store.tables import payment_links

PAYLINKS = [sys.executable, "-m", "cli"]
TENANT = "riverside-hoops"  # the demo tenant most flow tests work on


def current_settings() -> Settings:
    """The settings the test's flows run with (the `settings` fixture, plus any `use_settings`)."""
    from tasks.run_settings import scoped_settings

    settings = scoped_settings()
    assert settings is not None, "this test needs the `settings` fixture"
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as the PAYLINKS_* environment of another process (the edge of that process)."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(exclude_none=True).items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, (tuple, list)):  # pydantic-settings reads a list as JSON
            env[f"{ENV_PREFIX}{name.upper()}"] = json.dumps(list(value))
            continue
        env[f"{ENV_PREFIX}{name.upper()}"] = str(getattr(value, "value", value))
    return env


def cli_env(tmp_path: Path, ephemeral_api: bool = False, **extra: str) -> dict[str, str]:
    """The environment of a fresh `paylinks` process: the test's settings, a Prefect home of its
    own, and the session's test API (or, with `ephemeral_api`, Prefect's ephemeral API as an
    operator gets it)."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYLINKS_", "PREFECT_"))}
    env.update(settings_env(current_settings()))
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    if not ephemeral_api:
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `paylinks ARGS` in its own process, as an operator would."""
    return subprocess.run(
        PAYLINKS + args, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


def rows(engine: sa.Engine) -> dict[int, sa.RowMapping]:
    """Every payment_links row, by id."""
    with engine.connect() as connection:
        return {r["id"]: r for r in connection.execute(sa.select(payment_links)).mappings()}


class Mailroom:
    """An aiosmtpd handler that keeps what it accepted and can refuse or stall on cue."""

    def __init__(self) -> None:
        self.messages: list = []  # (envelope recipients, parsed message)
        self.peers: list = []  # each accepted message's client (address, port): its connection
        self.refuse: set[str] = set()
        self.stall_after: int | None = None  # stall (then 451) the message after this many
        self.stalled = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.stall_after is not None and len(self.messages) >= self.stall_after:
            self.stalled.set()
            await asyncio.sleep(5)
            return "451 4.3.0 try again later"
        parsed = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        self.messages.append((list(envelope.rcpt_tos), parsed))
        self.peers.append(session.peer)
        return "250 OK"

    def recipients(self) -> list[str]:
        return [address for rcpt_tos, _ in self.messages for address in rcpt_tos]


@contextmanager
def smtp_server(handler: object) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on a free loopback port, handled by `handler`; yields the port."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def stripe_signed_headers(payload: str, secret: str, at: int | None = None) -> dict[str, str]:
    """The headers Stripe sends a webhook with: Stripe-Signature `t=<unix time>,v1=HMAC-SHA256(secret, "t.payload")`."""
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={timestamp},v1={digest}", "content-type": "application/json"}


def wait_for(check, timeout: float = 10.0) -> bool:
    """Whether `check()` came true within `timeout` seconds (asked every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()
