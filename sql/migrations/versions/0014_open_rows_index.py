"""The outstanding-balance query reads only open rows: payment_links indexed by (tenant_id, status,
parent_id). It replaces the index on tenant_id alone, its prefix; a family page's query (one
parent's open rows) uses all three columns.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_payment_links_tenant_status_parent", "payment_links", ["tenant_id", "status", "parent_id"]
    )
    op.drop_index("ix_payment_links_tenant_id", table_name="payment_links")


def downgrade() -> None:
    op.create_index("ix_payment_links_tenant_id", "payment_links", ["tenant_id"])
    op.drop_index("ix_payment_links_tenant_status_parent", table_name="payment_links")
