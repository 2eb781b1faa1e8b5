"""How a Stripe payment was paid: card or bank debit.

- two new values of `paid_method`, `card` (the checkout was paid when it completed) and
  `bank_debit` (it completed unpaid and settled later), written on a bill's row when a payment
  pays it; `stripe` stays for bills paid at Stripe before this (how is not known);
- `payments.paid_method`: the ledger's record of how each payment was paid (NULL: recorded
  before this).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

NEW_METHODS = ("card", "bank_debit")
METHODS_BEFORE = ("stripe", "cash", "cheque", "other")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _method_type(values: tuple[str, ...]) -> sa.types.TypeEngine:
    if _is_postgresql():  # the type `payment_links.paid_method` already uses
        return postgresql.ENUM(*values, name="paid_method", create_type=False)
    return sa.Enum(*values, name="paid_method")


def upgrade() -> None:
    if _is_postgresql():
        # Only used by later transactions: PostgreSQL takes a new value inside this one.
        for value in NEW_METHODS:
            op.execute(f"ALTER TYPE paid_method ADD VALUE IF NOT EXISTS '{value}'")
    all_methods = METHODS_BEFORE + NEW_METHODS
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("paid_method", _method_type(all_methods), nullable=True))
    if not _is_postgresql():  # SQLite keeps an enum as a VARCHAR as long as its longest value
        with op.batch_alter_table("payment_links") as batch:
            batch.alter_column(
                "paid_method",
                existing_type=sa.Enum(*METHODS_BEFORE, name="paid_method"),
                type_=sa.Enum(*all_methods, name="paid_method"),
                existing_nullable=True,
            )


def downgrade() -> None:
    # Bills paid by card or bank debit read as paid at Stripe, as they did before.
    op.execute("UPDATE payment_links SET paid_method = 'stripe' WHERE paid_method IN ('card', 'bank_debit')")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("paid_method")
    if _is_postgresql():
        # PostgreSQL cannot drop an enum value: rebuild the type with the ones before.
        op.execute("ALTER TYPE paid_method RENAME TO paid_method_0018")
        sa.Enum(*METHODS_BEFORE, name="paid_method").create(op.get_bind())
        op.execute(
            "ALTER TABLE payment_links ALTER COLUMN paid_method TYPE paid_method "
            "USING paid_method::text::paid_method"
        )
        op.execute("DROP TYPE paid_method_0018")
    else:
        with op.batch_alter_table("payment_links") as batch:
            batch.alter_column(
                "paid_method",
                existing_type=sa.Enum(*(METHODS_BEFORE + NEW_METHODS), name="paid_method"),
                type_=sa.Enum(*METHODS_BEFORE, name="paid_method"),
                existing_nullable=True,
            )
