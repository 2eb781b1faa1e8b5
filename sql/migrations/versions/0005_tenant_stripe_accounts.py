"""Each club's own Stripe account (optional): a Connect account id every call for the tenant
carries as `Stripe-Account`. Empty: the platform's own account, as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _has_column() -> bool:
    return "stripe_account" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("tenants")}


def upgrade() -> None:
    if _has_column():  # a club database that already carries it
        return
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("stripe_account", sa.String(255), nullable=True))


def downgrade() -> None:
    if not _has_column():
        return
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("stripe_account")
