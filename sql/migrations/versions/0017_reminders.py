"""Reminders: due dates on the club's bills, each club's cadence, the parents who asked for none.

- `products.due_on` and `orders.due_on` (date, NULL): additions to the club's tables, never
  written by paylinks (a bill without one is due on its product's date, else its order's
  creation plus the club's terms);
- on `tenants`: `default_terms_days` (14), `reminders_enabled` (off), `reminder_days` and
  `reminder_hours` (as the admin typed them; NULL: -7,0,3,7,14,30,45,60 and 8-20);
- a new email type, `reminder` (claimed in `email_log` once per parent and cadence step);
- `reminder_optouts` (who gets no reminders, when, how) and `reminder_tokens` (the SHA-256 of
  each reminder's one-click "stop reminders" token).

Revision ID: 0017
Revises: 0014 (rechain onto the last of 0015/0016 when those land)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
OPT_OUT_HOWS = ("one_click", "page", "admin")
EMAIL_TYPES_BEFORE = ("outstanding_balance", "payment_link", "receipt")


def _new_columns() -> dict[str, tuple[sa.Column, ...]]:
    # Fresh Column objects each time: one is bound to its table once added.
    return {
        "products": (sa.Column("due_on", sa.Date(), nullable=True),),
        "orders": (sa.Column("due_on", sa.Date(), nullable=True),),
        "tenants": (
            sa.Column("default_terms_days", sa.Integer(), nullable=False, server_default="14"),
            sa.Column("reminders_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
            sa.Column("reminder_days", sa.String(200), nullable=True),
            sa.Column("reminder_hours", sa.String(20), nullable=True),
        ),
    }


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    for table, columns in _new_columns().items():
        # A club database created from today's tables already carries them: left as they are.
        missing = [column for column in columns if column.name not in _columns(table)]
        if missing:
            with op.batch_alter_table(table) as batch:
                for column in missing:
                    batch.add_column(column)
    if _is_postgresql():  # on SQLite the column is a VARCHAR: any type fits
        op.execute("ALTER TYPE email_type ADD VALUE IF NOT EXISTS 'reminder'")
    op.create_table(
        "reminder_optouts",
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), primary_key=True),
        sa.Column("opted_out_at", Timestamp, nullable=False),
        sa.Column("how", sa.Enum(*OPT_OUT_HOWS, name="reminder_optout_how"), nullable=False),
    )
    op.create_table(
        "reminder_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("reminder_tokens")
    op.drop_table("reminder_optouts")
    op.execute("DELETE FROM email_log WHERE email_type = 'reminder'")
    if _is_postgresql():
        sa.Enum(name="reminder_optout_how").drop(op.get_bind(), checkfirst=True)
        # PostgreSQL cannot drop an enum value: rebuild the type with the ones before.
        op.execute("ALTER TYPE email_type RENAME TO email_type_0017")
        sa.Enum(*EMAIL_TYPES_BEFORE, name="email_type").create(op.get_bind())
        op.execute(
            "ALTER TABLE email_log ALTER COLUMN email_type TYPE email_type USING email_type::text::email_type"
        )
        op.execute("DROP TYPE email_type_0017")
    for table, columns in _new_columns().items():
        present = [column.name for column in columns if column.name in _columns(table)]
        if present:
            with op.batch_alter_table(table) as batch:
                for name in reversed(present):
                    batch.drop_column(name)
