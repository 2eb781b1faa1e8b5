"""A parent's emails found by index: email_log indexed by (tenant_id, parent_id).

Before a blast or a reminder mails a parent, it asks whether anyone else emailed them lately (one
query per parent, after its claim). Without this index that query read every balance email the
tenant had ever logged, so each blast cost more than the last: on a log of 6,000 rows a parent's
check took three times as long as on an empty one. The index replaces the one on tenant_id alone,
its prefix.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_email_log_tenant_parent", "email_log", ["tenant_id", "parent_id"])
    op.drop_index("ix_email_log_tenant_id", table_name="email_log")


def downgrade() -> None:
    op.create_index("ix_email_log_tenant_id", "email_log", ["tenant_id"])
    op.drop_index("ix_email_log_tenant_parent", table_name="email_log")
