"""The alembic migrations: clean both ways on SQLite and PostgreSQL, in step with the tables the
code uses, and harmless to a club database whose own tables already exist."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from paylinks.store import migrations
from paylinks.store.tables import metadata, tenants

# Storage semantics matter here (migrations run DDL that differs by dialect): PostgreSQL too.
pytestmark = pytest.mark.storage

CLUB_TABLES = ("tenants", "parents", "players", "products", "orders")
OWN_TABLES = (
    "price_tiers",
    "payment_links",
    "email_log",
    "reconcile_cursors",
    "payments",
    "stripe_events",
    "blasts",
    "stripe_key_accounts",
    "minted_links",
    "users",
    "user_roles",
    "api_tokens",
    "api_token_tenants",
    "audit_log",
    "login_failures",
    "payment_allocations",
    "reminder_optouts",
    "reminder_tokens",
)


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_runs_clean(empty_database_url):
    migrations.upgrade(empty_database_url)
    assert table_names(empty_database_url) >= set(CLUB_TABLES + OWN_TABLES)
    migrations.downgrade(empty_database_url, "base")
    assert table_names(empty_database_url) <= {"alembic_version"}
    migrations.upgrade(empty_database_url)
    assert migrations.current_revision(empty_database_url) == migrations.head_revision()


def test_migrations_match_the_tables_the_code_uses(empty_database_url):
    migrations.upgrade(empty_database_url)
    engine = sa.create_engine(empty_database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [
            d for d in compare_metadata(context, metadata) if "paylinks_created_tables" not in str(d)
        ]
    engine.dispose()
    assert differences == []


def test_a_club_database_keeps_its_own_tables_and_rows(empty_database_url):
    engine = sa.create_engine(empty_database_url)
    for name in CLUB_TABLES:  # the club application's tables, already there
        metadata.tables[name].create(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(tenants).values(slug="club", name="A Club", reply_to_email="a@club.example")
        )
    engine.dispose()

    migrations.upgrade(empty_database_url)
    migrations.downgrade(empty_database_url, "base")

    assert table_names(empty_database_url) >= set(CLUB_TABLES)
    assert not table_names(empty_database_url) & set(OWN_TABLES)
    engine = sa.create_engine(empty_database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(tenants.c.slug)).scalars().all() == ["club"]
    engine.dispose()
