"""People an admin can disable, enable, remove and reset, tokens they can revoke (audited: new
audit actions), and the admin endpoint's limits: test emails per token per hour
(`api_test_sends`) and one send to every parent running per tenant (`blast_claims`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_AUDIT_ACTIONS = (
    "user_added",
    "password_changed",
    "token_created",
    "resend",
    "send_to_address",
    "blast_test",
    "blast_send",
    "blast_preview",
    "mark_paid_offline",
    "refund_resolved",
)
NEW_AUDIT_ACTIONS = ("user_disabled", "user_enabled", "role_removed", "password_reset", "token_revoked")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _is_postgresql():
        for value in NEW_AUDIT_ACTIONS:
            op.execute(f"ALTER TYPE audit_action ADD VALUE IF NOT EXISTS '{value}'")
    # On SQLite the column is a VARCHAR as long as the longest action, which the new ones are not.
    op.create_table(
        "api_test_sends",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_api_test_sends_token_id_api_tokens")
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_api_test_sends")),
    )
    op.create_table(
        "blast_claims",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_blast_claims_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_blast_claims")),
    )


def downgrade() -> None:
    op.drop_table("blast_claims")
    op.drop_table("api_test_sends")
    # The entries 0008 has no words for go with the actions (a downgrade is for development).
    actions = ", ".join(f"'{value}'" for value in NEW_AUDIT_ACTIONS)
    op.execute(f"DELETE FROM audit_log WHERE action IN ({actions})")
    if _is_postgresql():
        # PostgreSQL cannot drop an enum value: rebuild the type with the old ones.
        op.execute("ALTER TYPE audit_action RENAME TO audit_action_0009")
        sa.Enum(*OLD_AUDIT_ACTIONS, name="audit_action").create(op.get_bind())
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN action TYPE audit_action USING action::text::audit_action"
        )
        op.execute("DROP TYPE audit_action_0009")
