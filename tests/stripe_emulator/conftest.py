"""Fixtures of the emulator's tests: a fresh server per test, and clients on it."""

from __future__ import annotations

import httpx
import pytest
import stripe

from stripe_emulator import EmulatorServer
from tests.stripe_emulator.support import API_KEY, sdk_client


@pytest.fixture
def server():
    with EmulatorServer() as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer) -> stripe.StripeClient:
    return sdk_client(server)


@pytest.fixture
def http(server: EmulatorServer):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as raw_client:
        yield raw_client
