"""Statuses and records for money that moves after the link is minted.

- payment_links: the statuses processing, refund_due and refunded; the Stripe account and
  mode a link was minted in; when its mint was reserved; how a paid bill was paid.
- price_tiers: keyed by currency, account and mode as well.
- payments: the ledger of every payment Stripe reported; stripe_events: events applied, by id;
  stripe_key_accounts: the account and mode an API key acts in, by the key's hash.
- email_log: the transport is part of a blast's claim, and a claim has a time (its lease).
- blasts: a blast run without a key resumes the tenant's unfinished one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_LINK_STATUSES = ("pending", "paid", "cancelled")
NEW_LINK_STATUSES = ("pending", "processing", "paid", "cancelled", "refund_due", "refunded")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _is_postgresql():
        for value in ("processing", "refund_due", "refunded"):
            op.execute(f"ALTER TYPE payment_link_status ADD VALUE IF NOT EXISTS '{value}'")
    paid_method = sa.Enum("stripe", "cash", "cheque", "other", name="paid_method")
    paid_method.create(op.get_bind(), checkfirst=True)

    with op.batch_alter_table("payment_links") as batch:
        if not _is_postgresql():  # a VARCHAR sized to the longest status on SQLite
            batch.alter_column(
                "status",
                existing_type=sa.Enum(*OLD_LINK_STATUSES, name="payment_link_status"),
                type_=sa.Enum(*NEW_LINK_STATUSES, name="payment_link_status"),
                existing_nullable=False,
                existing_server_default="pending",
            )
        batch.add_column(sa.Column("stripe_account", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("livemode", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paid_method", paid_method, nullable=True))
        batch.add_column(sa.Column("paid_by", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("paid_note", sa.Text(), nullable=True))
    op.execute("UPDATE payment_links SET paid_method = 'stripe' WHERE status = 'paid'")

    with op.batch_alter_table("price_tiers") as batch:
        batch.add_column(sa.Column("currency", sa.String(length=3), server_default="usd", nullable=False))
        batch.add_column(
            sa.Column("stripe_account", sa.String(length=255), server_default="", nullable=False)
        )
        batch.add_column(sa.Column("livemode", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("stripe_product_id", sa.String(length=255), nullable=True))
        batch.drop_constraint("uq_price_tiers_product_amount", type_="unique")
        batch.create_unique_constraint(
            "uq_price_tiers_product_amount_account",
            ["product_id", "amount_cents", "currency", "stripe_account", "livemode"],
        )
    op.execute(
        "UPDATE price_tiers SET currency = (SELECT currency FROM tenants WHERE tenants.id = price_tiers.tenant_id)"
    )

    with op.batch_alter_table("email_log") as batch:
        batch.add_column(sa.Column("transport", sa.String(length=20), server_default="smtp", nullable=False))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("uq_email_log_once_per_run", type_="unique")
        batch.create_unique_constraint(
            "uq_email_log_once_per_run", ["tenant_id", "email_type", "run_key", "transport", "parent_id"]
        )

    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("payment_link_row_id", sa.Integer(), nullable=True),
        sa.Column("stripe_account", sa.String(length=255), nullable=True),
        sa.Column("stripe_payment_link_id", sa.String(length=255), nullable=False),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status", sa.Enum("processing", "succeeded", "failed", name="payment_status"), nullable=False
        ),
        sa.Column("refunded_cents", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dispute_status", sa.String(length=40), nullable=True),
        sa.Column("disputed_cents", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refund_due", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("refund_due_reason", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=320), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_link_row_id"],
            ["payment_links.id"],
            name=op.f("fk_payments_payment_link_row_id_payment_links"),
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_payments_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("checkout_session_id", name=op.f("uq_payments_checkout_session_id")),
    )
    op.create_index(op.f("ix_payments_tenant_id"), "payments", ["tenant_id"])
    op.create_index(op.f("ix_payments_payment_link_row_id"), "payments", ["payment_link_row_id"])
    op.create_index(op.f("ix_payments_payment_intent_id"), "payments", ["payment_intent_id"])

    op.create_table(
        "minted_links",
        sa.Column("stripe_payment_link_id", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("payment_link_row_id", sa.Integer(), nullable=False),
        sa.Column("mint_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_link_row_id"],
            ["payment_links.id"],
            name=op.f("fk_minted_links_payment_link_row_id_payment_links"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_minted_links_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("stripe_payment_link_id", name=op.f("pk_minted_links")),
    )
    op.create_index(op.f("ix_minted_links_payment_link_row_id"), "minted_links", ["payment_link_row_id"])
    # Links minted before this migration: each row's current link.
    op.execute(
        "INSERT INTO minted_links (stripe_payment_link_id, tenant_id, payment_link_row_id, mint_version) "
        "SELECT stripe_payment_link_id, tenant_id, id, mint_version FROM payment_links "
        "WHERE stripe_payment_link_id IS NOT NULL"
    )

    op.create_table(
        "stripe_key_accounts",
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("stripe_account", sa.String(length=255), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("key_sha256", name=op.f("pk_stripe_key_accounts")),
    )

    op.create_table(
        "stripe_events",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_account", sa.String(length=255), nullable=True),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("stripe_created", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_stripe_events")),
    )

    op.create_table(
        "blasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=200), nullable=False),
        sa.Column("transport", sa.String(length=20), nullable=False),
        sa.Column("status", sa.Enum("running", "finished", name="blast_status"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_blasts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blasts")),
        sa.UniqueConstraint("tenant_id", "run_key", "transport", name="uq_blasts_tenant_run_key"),
    )
    op.create_index(op.f("ix_blasts_tenant_id"), "blasts", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("blasts")
    op.drop_table("stripe_events")
    op.drop_table("stripe_key_accounts")
    op.drop_table("minted_links")
    op.drop_table("payments")
    bind = op.get_bind()
    for enum_name in ("blast_status", "payment_status"):
        sa.Enum(name=enum_name).drop(bind, checkfirst=True)

    op.execute("DELETE FROM email_log WHERE transport = 'outbox' AND parent_id IS NOT NULL")
    with op.batch_alter_table("email_log") as batch:
        batch.drop_constraint("uq_email_log_once_per_run", type_="unique")
        batch.create_unique_constraint(
            "uq_email_log_once_per_run", ["tenant_id", "email_type", "run_key", "parent_id"]
        )
        batch.drop_column("claimed_at")
        batch.drop_column("transport")

    op.execute(
        "DELETE FROM price_tiers WHERE id NOT IN (SELECT MIN(id) FROM price_tiers GROUP BY product_id, amount_cents)"
    )
    with op.batch_alter_table("price_tiers") as batch:
        batch.drop_constraint("uq_price_tiers_product_amount_account", type_="unique")
        batch.create_unique_constraint("uq_price_tiers_product_amount", ["product_id", "amount_cents"])
        batch.drop_column("stripe_product_id")
        batch.drop_column("livemode")
        batch.drop_column("stripe_account")
        batch.drop_column("currency")

    # The statuses 0002 knows: money still at Stripe reads as paid, returned money as cancelled.
    op.execute("UPDATE payment_links SET status = 'paid' WHERE status IN ('processing', 'refund_due')")
    op.execute("UPDATE payment_links SET status = 'cancelled' WHERE status = 'refunded'")
    with op.batch_alter_table("payment_links") as batch:
        batch.drop_column("paid_note")
        batch.drop_column("paid_by")
        batch.drop_column("paid_method")
        batch.drop_column("reserved_at")
        batch.drop_column("livemode")
        batch.drop_column("stripe_account")
    sa.Enum(name="paid_method").drop(bind, checkfirst=True)
    if _is_postgresql():
        # PostgreSQL cannot drop an enum value: rebuild the type with the old ones.
        op.execute("ALTER TYPE payment_link_status RENAME TO payment_link_status_0003")
        sa.Enum(*OLD_LINK_STATUSES, name="payment_link_status").create(bind)
        op.execute("ALTER TABLE payment_links ALTER COLUMN status DROP DEFAULT")
        op.execute(
            "ALTER TABLE payment_links ALTER COLUMN status TYPE payment_link_status "
            "USING status::text::payment_link_status"
        )
        op.execute("ALTER TABLE payment_links ALTER COLUMN status SET DEFAULT 'pending'")
        op.execute("DROP TYPE payment_link_status_0003")
    else:
        with op.batch_alter_table("payment_links") as batch:
            batch.alter_column(
                "status",
                existing_type=sa.Enum(*NEW_LINK_STATUSES, name="payment_link_status"),
                type_=sa.Enum(*OLD_LINK_STATUSES, name="payment_link_status"),
                existing_nullable=False,
                existing_server_default="pending",
            )
