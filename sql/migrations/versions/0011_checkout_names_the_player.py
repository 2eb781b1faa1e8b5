"""What each link's checkout page and receipt say the payment is for ("Spring tournament — Eli
Alvarez, Riverside Hoops"): payment_links.checkout_text, the text its link carries (or is minted
with). NULL: a link minted before paylinks named the player; the next backfill updates it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_links") as batch:
        batch.add_column(sa.Column("checkout_text", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_links") as batch:
        batch.drop_column("checkout_text")
