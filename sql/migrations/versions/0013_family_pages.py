"""The family's side: a page per parent without a password (a token kept hashed) and "Pay all"
checkout sessions with the bills each covers, at the terms they were offered.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

STATUSES = ("reserved", "open", "complete", "expired", "refused")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "family_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.String(320), nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_family_tokens_token_hash"),
        sa.UniqueConstraint("tenant_id", "parent_id", name="uq_family_tokens_tenant_parent"),
    )
    op.create_table(
        "family_checkouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("status", sa.Enum(*STATUSES, name="family_checkout_status"), nullable=False),
        sa.Column("stripe_account", sa.String(255), nullable=True),
        sa.Column("livemode", sa.Boolean, nullable=True),
        sa.Column("checkout_session_id", sa.String(255), nullable=True),
        sa.Column("url", sa.String(1000), nullable=True),
        sa.Column("amount_total_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("idempotency_key", name="uq_family_checkouts_idempotency_key"),
        sa.UniqueConstraint("checkout_session_id", name="uq_family_checkouts_checkout_session_id"),
    )
    op.create_index("ix_family_checkouts_tenant_id", "family_checkouts", ["tenant_id"])
    op.create_table(
        "family_checkout_rows",
        sa.Column("family_checkout_id", sa.Integer, sa.ForeignKey("family_checkouts.id"), primary_key=True),
        sa.Column("payment_link_row_id", sa.Integer, sa.ForeignKey("payment_links.id"), primary_key=True),
        sa.Column("mint_version", sa.Integer, nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("stripe_price_id", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("family_checkout_rows")
    op.drop_index("ix_family_checkouts_tenant_id", table_name="family_checkouts")
    op.drop_table("family_checkouts")
    op.drop_table("family_tokens")
    if op.get_bind().dialect.name == "postgresql":
        sa.Enum(name="family_checkout_status").drop(op.get_bind(), checkfirst=True)
