"""Two ways to pay one bill: a payment is allocated to each bill it covered
(`payment_allocations`), a family checkout's payment has no link of its own, refunded money not
matched to whole bills is kept on the payment, a payment waits for its receipt; and a new email
type, `receipt`.

Existing payments get their one allocation, in the state their bill's row shows.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ALLOCATION_STATUSES = ("processing", "paid", "refund_due", "refunded", "resolved", "failed")
NEW_EMAIL_TYPE = "receipt"
EMAIL_TYPES_BEFORE = ("outstanding_balance", "payment_link")
Timestamp = sa.DateTime(timezone=True)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _is_postgresql():
        # Outside the transaction's use of it: a value added here is only used by later runs.
        op.execute(f"ALTER TYPE email_type ADD VALUE IF NOT EXISTS '{NEW_EMAIL_TYPE}'")
    with op.batch_alter_table("payments") as batch:
        batch.alter_column("stripe_payment_link_id", existing_type=sa.String(255), nullable=True)
        batch.add_column(
            sa.Column(
                "family_checkout_id",
                sa.Integer,
                sa.ForeignKey("family_checkouts.id", name="fk_payments_family_checkout_id_family_checkouts"),
                nullable=True,
            )
        )
        batch.add_column(
            sa.Column("unallocated_refund_cents", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("receipt_due", sa.Boolean, nullable=False, server_default=sa.false()))
    status = sa.Enum(*ALLOCATION_STATUSES, name="allocation_status")
    op.create_table(
        "payment_allocations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("payment_id", sa.Integer, sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("payment_link_row_id", sa.Integer, sa.ForeignKey("payment_links.id"), nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("status", status, nullable=False),
        sa.Column("refund_due_reason", sa.String(200), nullable=True),
        sa.Column("refunded_cents", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stripe_payment_link_id", sa.String(255), nullable=True),
        sa.Column("link_closed_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("payment_id", "payment_link_row_id", name="uq_payment_allocations_payment_row"),
    )
    op.create_index(
        "ix_payment_allocations_payment_link_row_id", "payment_allocations", ["payment_link_row_id"]
    )
    # Each payment recorded so far paid (or was owed back on) its one bill.
    status_cast = "::allocation_status" if _is_postgresql() else ""
    op.execute(
        f"""
        INSERT INTO payment_allocations (tenant_id, payment_id, payment_link_row_id, amount_cents,
                                         status, refund_due_reason, refunded_cents)
        SELECT pm.tenant_id, pm.id, pm.payment_link_row_id, pm.amount_cents,
               (CASE
                 WHEN pm.status = 'failed' THEN 'failed'
                 WHEN pm.status = 'processing' THEN 'processing'
                 WHEN pm.refunded_cents >= pm.amount_cents OR pm.dispute_status = 'lost' THEN 'refunded'
                 WHEN pm.refund_due AND pm.resolved_at IS NOT NULL THEN 'resolved'
                 WHEN pm.refund_due THEN 'refund_due'
                 ELSE 'paid'
               END){status_cast},
               pm.refund_due_reason, pm.refunded_cents
        FROM payments AS pm
        WHERE pm.payment_link_row_id IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_index("ix_payment_allocations_payment_link_row_id", table_name="payment_allocations")
    op.drop_table("payment_allocations")
    if _is_postgresql():
        sa.Enum(name="allocation_status").drop(op.get_bind(), checkfirst=True)
    # A family checkout's payment has no link of its own: it cannot be kept without one.
    op.execute("DELETE FROM payments WHERE stripe_payment_link_id IS NULL")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("receipt_due")
        batch.drop_column("unallocated_refund_cents")
        batch.drop_column("family_checkout_id")
        batch.alter_column("stripe_payment_link_id", existing_type=sa.String(255), nullable=False)
    op.execute(f"DELETE FROM email_log WHERE email_type = '{NEW_EMAIL_TYPE}'")
    if _is_postgresql():
        # PostgreSQL cannot drop an enum value: rebuild the type with the ones before.
        op.execute("ALTER TYPE email_type RENAME TO email_type_0015")
        sa.Enum(*EMAIL_TYPES_BEFORE, name="email_type").create(op.get_bind())
        op.execute(
            "ALTER TABLE email_log ALTER COLUMN email_type TYPE email_type USING email_type::text::email_type"
        )
        op.execute("DROP TYPE email_type_0015")
