"""Reconcile reads each Stripe account's events once per run, for every tenant on it: its cursor
is kept per Stripe account and mode, no longer per tenant.

The per-tenant cursors are dropped, not converted: an account without a cursor is simply read
the first-run way (its checkout sessions, then the follow-up events Stripe still keeps), and
every piece of news is applied once by id, so nothing is applied twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("reconcile_cursors")
    op.create_table(
        "reconcile_cursors",
        sa.Column("stripe_account", sa.String(length=255), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("last_event_created", sa.BigInteger(), nullable=False),
        sa.Column("last_event_id", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("stripe_account", "livemode", name=op.f("pk_reconcile_cursors")),
    )


def downgrade() -> None:
    op.drop_table("reconcile_cursors")
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
