"""Fixtures for flow tests: the demo club seeded into the test database, and a Stripe client."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import stripe

from paylinks.demo_data import seed_demo
from paylinks.tenants import Tenant, tenant_by_slug


@pytest.fixture
def demo_club(settings, engine: sa.Engine) -> list[Tenant]:
    report = seed_demo(engine)
    with engine.connect() as connection:
        return [tenant_by_slug(connection, slug) for slug in report.tenants]


@pytest.fixture
def stripe_client(emulator) -> stripe.StripeClient:
    """The real SDK pointed at the test's emulator, retries off so we see what it returns."""
    return stripe.StripeClient("sk_test_paylinks_tests", base_addresses={"api": emulator.url}, max_network_retries=0)
