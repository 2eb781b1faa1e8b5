"""Tenants: each club is one tenant, and every query is scoped by its id."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.db import tenants
from paylinks.errors import UnknownTenantError


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


def tenant_from_row(row: sa.RowMapping) -> Tenant:
    return Tenant(**{field: row[field] for field in Tenant.__dataclass_fields__})


def all_tenants(connection: Connection) -> list[Tenant]:
    return [
        tenant_from_row(row) for row in connection.execute(sa.select(tenants).order_by(tenants.c.slug)).mappings()
    ]


def tenant_by_slug(connection: Connection, slug: str) -> Tenant:
    row = connection.execute(sa.select(tenants).where(tenants.c.slug == slug)).mappings().first()
    if row is None:
        raise UnknownTenantError(slug, [t.slug for t in all_tenants(connection)])
    return tenant_from_row(row)


def resolve_tenants(connection: Connection, slug: str | None) -> list[Tenant]:
    """The named tenant, or every tenant when no slug is given."""
    return [tenant_by_slug(connection, slug)] if slug else all_tenants(connection)
