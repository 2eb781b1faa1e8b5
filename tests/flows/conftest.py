"""Fixtures for flow tests: the demo club seeded into the test database, a Stripe client, and a
real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import stripe
from aiosmtpd.controller import Controller

from paylinks.db import payment_links
from paylinks.demo_data import seed_demo
from paylinks.tenants import Tenant, tenant_by_slug


@pytest.fixture
def demo_club(settings, engine: sa.Engine) -> list[Tenant]:
    report = seed_demo(engine)
    with engine.connect() as connection:
        return [tenant_by_slug(connection, slug) for slug in report.tenants]


TENANT = "riverside-hoops"  # the demo tenant most flow tests work on


@pytest.fixture
def minted_club(settings, demo_club: list[Tenant]) -> list[Tenant]:
    """The demo club with TENANT's links minted (a committed backfill)."""
    from flows.backfill_payment_links import backfill_payment_links

    backfill_payment_links(tenant=TENANT, commit=True)
    return demo_club


def rows(engine: sa.Engine) -> dict[int, sa.RowMapping]:
    """Every payment_links row, by id."""
    with engine.connect() as connection:
        return {r["id"]: r for r in connection.execute(sa.select(payment_links)).mappings()}


@pytest.fixture
def stripe_client(emulator) -> stripe.StripeClient:
    """The real SDK pointed at the test's emulator, retries off so we see what it returns."""
    return stripe.StripeClient(
        "sk_test_paylinks_tests", base_addresses={"api": emulator.url}, max_network_retries=0
    )


class Mailroom:
    """An aiosmtpd handler that keeps what it accepted and can refuse or stall on cue."""

    def __init__(self) -> None:
        self.messages: list = []  # (envelope recipients, parsed message)
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
        return "250 OK"

    def recipients(self) -> list[str]:
        return [address for rcpt_tos, _ in self.messages for address in rcpt_tos]


@pytest.fixture
def mailroom(use_settings) -> Iterator[Mailroom]:
    """A real SMTP server on loopback; the test's settings send through it."""
    handler = Mailroom()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    use_settings(
        email_transport="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        allow_test_links=True,  # the emulator's links, on purpose
    )
    try:
        yield handler
    finally:
        controller.stop()
