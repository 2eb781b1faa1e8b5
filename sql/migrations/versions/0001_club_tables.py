"""Club tables: the contract with the club application, created only where missing.

In production the club's own application already has these tables; paylinks creates them for a
fresh database (the demo, tests). The tables this migration created are listed in
`paylinks_created_tables`, so a downgrade drops those and never a club's own tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CREATED = sa.table("paylinks_created_tables", sa.column("table_name", sa.String))


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    op.create_table("paylinks_created_tables", sa.Column("table_name", sa.String(64), primary_key=True))
    for name, create in CLUB_TABLES:
        if name not in existing:
            create()
            op.execute(CREATED.insert().values(table_name=name))


def downgrade() -> None:
    created = set(op.get_bind().execute(sa.select(CREATED.c.table_name)).scalars())
    for name, _ in reversed(CLUB_TABLES):
        if name in created:
            op.drop_table(name)
    op.drop_table("paylinks_created_tables")


def _create_tenants() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reply_to_email", sa.String(length=320), nullable=False),
        sa.Column("brand_color", sa.String(length=16), server_default="#1f4e8c", nullable=False),
        sa.Column("logo_url", sa.String(length=1000), nullable=True),
        sa.Column("currency", sa.String(length=3), server_default="usd", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )


def _create_parents() -> None:
    op.create_table(
        "parents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_parents_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parents")),
    )
    op.create_index(op.f("ix_parents_tenant_id"), "parents", ["tenant_id"])


def _create_players() -> None:
    op.create_table(
        "players",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="registered", nullable=False),
        sa.CheckConstraint("status IN ('signed', 'registered', 'withdrawn')", name=op.f("ck_players_status")),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"], name=op.f("fk_players_parent_id_parents")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_players_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_players")),
    )
    op.create_index(op.f("ix_players_tenant_id"), "players", ["tenant_id"])


def _create_products() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("bill_signed_players", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("stripe_product_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_products_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_tenant_id"), "products", ["tenant_id"])


def _create_orders() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'paid', 'cancelled')", name=op.f("ck_orders_status")),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"], name=op.f("fk_orders_parent_id_parents")),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name=op.f("fk_orders_player_id_players")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_orders_product_id_products")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_orders_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_tenant_id"), "orders", ["tenant_id"])


# In dependency order: each table's foreign keys point to tables created before it.
CLUB_TABLES = (
    ("tenants", _create_tenants),
    ("parents", _create_parents),
    ("players", _create_players),
    ("products", _create_products),
    ("orders", _create_orders),
)
