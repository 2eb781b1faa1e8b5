"""Each club's time zone (the office and emails show its local times) and how long a parent
just emailed an outstanding balance is held back from a new blast. NULL in either: the
settings' default (`club_timezone`, `recent_email_hold_hours`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


NEW_COLUMNS = (
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("recent_email_hold_hours", sa.Integer(), nullable=True),
)


def upgrade() -> None:
    # A club database created from today's tables already carries them.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("tenants")}
    missing = [column for column in NEW_COLUMNS if column.name not in present]
    if not missing:
        return
    with op.batch_alter_table("tenants") as batch:
        for column in missing:
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("recent_email_hold_hours")
        batch.drop_column("timezone")
