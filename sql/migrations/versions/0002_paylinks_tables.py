"""paylinks' own tables: price tiers, payment links, the email log and reconcile cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_tiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_price_tiers_product_id_products")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_price_tiers_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_tiers")),
        sa.UniqueConstraint("product_id", "amount_cents", name="uq_price_tiers_product_amount"),
    )
    op.create_index(op.f("ix_price_tiers_tenant_id"), "price_tiers", ["tenant_id"])
    op.create_table(
        "payment_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_link_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_link_url", sa.String(length=1000), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "paid", "cancelled", name="payment_link_status"),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("mint_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stripe_checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("paid_amount_cents", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_payment_links_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["parents.id"], name=op.f("fk_payment_links_parent_id_parents")
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_payment_links_player_id_players")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_payment_links_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_payment_links_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_links")),
        sa.UniqueConstraint(
            "player_id", "product_id", "tenant_id", name="uq_payment_links_player_product_tenant"
        ),
        sa.UniqueConstraint("stripe_payment_link_id", name=op.f("uq_payment_links_stripe_payment_link_id")),
    )
    op.create_index(op.f("ix_payment_links_tenant_id"), "payment_links", ["tenant_id"])
    op.create_table(
        "email_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column(
            "email_type", sa.Enum("outstanding_balance", "payment_link", name="email_type"), nullable=False
        ),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("status", sa.Enum("sending", "sent", "failed", name="email_status"), nullable=False),
        sa.Column("run_key", sa.String(length=200), nullable=False),
        sa.Column("item_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_cents", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"], name=op.f("fk_email_log_parent_id_parents")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_email_log_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_log")),
        sa.UniqueConstraint(
            "tenant_id", "email_type", "run_key", "parent_id", name="uq_email_log_once_per_run"
        ),
    )
    op.create_index(op.f("ix_email_log_tenant_id"), "email_log", ["tenant_id"])
    op.create_table(
        "reconcile_cursors",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("last_event_created", sa.BigInteger(), nullable=False),
        sa.Column("last_event_id", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_reconcile_cursors_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_reconcile_cursors")),
    )


def downgrade() -> None:
    op.drop_table("reconcile_cursors")
    op.drop_table("email_log")
    op.drop_table("payment_links")
    op.drop_table("price_tiers")
    # PostgreSQL keeps enum types after their tables are gone; drop them so a later
    # upgrade can create them again.
    bind = op.get_bind()
    for enum_name in ("payment_link_status", "email_status", "email_type"):
        sa.Enum(name=enum_name).drop(bind, checkfirst=True)
