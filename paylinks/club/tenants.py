"""Tenants: each club is one tenant, and every query is scoped by its id."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.errors import ConfigurationError, UnknownTenantError
from paylinks.settings import Settings
from paylinks.store.tables import tenants


@dataclass(frozen=True)
class Tenant:
    id: int
    slug: str
    name: str
    reply_to_email: str
    brand_color: str
    logo_url: str | None
    currency: str
    stripe_account: str | None = None  # the club's Connect account; None: the platform's
    timezone: str | None = None  # IANA name; None: settings' club_timezone (see club/clock.py)
    recent_email_hold_hours: int | None = None  # None: settings' recent_email_hold_hours
    # Reminders (see paylinks/messaging/cadence.py): terms of a bill without a due date, on or
    # off, and the cadence and sending hours as the admin typed them (None: the defaults).
    default_terms_days: int = 14
    reminders_enabled: bool = False
    reminder_days: str | None = None
    reminder_hours: str | None = None


def tenant_from_row(row: sa.RowMapping) -> Tenant:
    return Tenant(**{field: row[field] for field in Tenant.__dataclass_fields__})


def all_tenants(connection: Connection) -> list[Tenant]:
    return [
        tenant_from_row(row)
        for row in connection.execute(sa.select(tenants).order_by(tenants.c.slug)).mappings()
    ]


def tenant_by_slug(connection: Connection, slug: str) -> Tenant:
    row = connection.execute(sa.select(tenants).where(tenants.c.slug == slug)).mappings().first()
    if row is None:
        raise UnknownTenantError(slug, [t.slug for t in all_tenants(connection)])
    return tenant_from_row(row)


def resolve_tenants(connection: Connection, slug: str | None) -> list[Tenant]:
    """The named tenant, or every tenant when no slug is given."""
    return [tenant_by_slug(connection, slug)] if slug else all_tenants(connection)


def set_stripe_account(engine: Engine, settings: Settings, slug: str, account: str | None) -> Tenant:
    """Put the tenant on its own Stripe (Connect) account, or back on the platform's (None).

    The account is asked first (`GET /v1/account` with `Stripe-Account`): one Stripe does not
    know, or this key may not act in, is refused and nothing is saved.
    """
    from paylinks.stripe_api.gateway import StripeGateway, StripeRequestError
    from paylinks.stripe_api.where import stripe_where

    with engine.connect() as connection:
        tenant = tenant_by_slug(connection, slug)
    if account is not None:
        account = account.strip()
        if not account.startswith("acct_") or len(account) <= len("acct_") or not account.isascii():
            raise ConfigurationError(
                f"{account!r} is not a Stripe account id (they look like acct_1A2b3C...)"
            )
        gateway = StripeGateway(settings, account=account)
        try:
            answered = gateway.context()
        except StripeRequestError as error:
            raise ConfigurationError(
                f"Stripe account {account} cannot be used for tenant {slug}; nothing saved: {error}"
            ) from None
        if answered.account != account:
            raise ConfigurationError(
                f"Stripe answered for account {answered.account}, not {account}; nothing saved"
            )
        stripe_where(engine, gateway, settings)  # remembered: the next backfill need not ask
    with engine.begin() as connection:
        connection.execute(sa.update(tenants).where(tenants.c.id == tenant.id).values(stripe_account=account))
    return dataclasses.replace(tenant, stripe_account=account)
