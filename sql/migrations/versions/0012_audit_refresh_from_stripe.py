"""The admin's "Refresh from Stripe" (a reconcile of the tenant started in the office) is audited:
a new audit action, `stripe_refresh`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NEW_AUDIT_ACTION = "stripe_refresh"
ACTIONS_BEFORE = (
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
    "user_disabled",
    "user_enabled",
    "role_removed",
    "password_reset",
    "token_revoked",
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    # On SQLite the column is a VARCHAR: any action fits.
    if _is_postgresql():
        op.execute(f"ALTER TYPE audit_action ADD VALUE IF NOT EXISTS '{NEW_AUDIT_ACTION}'")


def downgrade() -> None:
    op.execute(f"DELETE FROM audit_log WHERE action = '{NEW_AUDIT_ACTION}'")
    if _is_postgresql():
        import sqlalchemy as sa

        # PostgreSQL cannot drop an enum value: rebuild the type with the ones before.
        op.execute("ALTER TYPE audit_action RENAME TO audit_action_0012")
        sa.Enum(*ACTIONS_BEFORE, name="audit_action").create(op.get_bind())
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN action TYPE audit_action USING action::text::audit_action"
        )
        op.execute("DROP TYPE audit_action_0012")
