"""How a refund due ended is a code of its own (`resolution`: refunded at Stripe, refunded by
hand, kept as credit); `resolution_note` keeps only what the person wrote.

Existing notes are split: a note that starts with the words of a resolution gives its code and
keeps the rest as the note.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RESOLUTIONS = {
    "refunded_at_stripe": "refunded at Stripe",
    "refunded_by_hand": "refunded by hand",
    "kept_as_credit": "kept as credit",
}


def upgrade() -> None:
    resolution = sa.Enum(*RESOLUTIONS, name="refund_resolution")
    resolution.create(op.get_bind(), checkfirst=True)
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("resolution", resolution, nullable=True))
    payments = sa.table("payments", sa.column("id"), sa.column("resolution"), sa.column("resolution_note"))
    bind = op.get_bind()
    for code, words in RESOLUTIONS.items():
        for prefix, rest in ((f"{words}: ", True), (words, False)):
            matching = (
                payments.c.resolution_note.like(f"{prefix}%") if rest else payments.c.resolution_note == words
            )
            note = sa.func.substr(payments.c.resolution_note, len(prefix) + 1) if rest else sa.null()
            bind.execute(
                sa.update(payments)
                .where(payments.c.resolution.is_(None), matching)
                .values(resolution=code, resolution_note=note)
            )


def downgrade() -> None:
    payments = sa.table("payments", sa.column("resolution"), sa.column("resolution_note"))
    bind = op.get_bind()
    for code, words in RESOLUTIONS.items():
        bind.execute(
            sa.update(payments)
            .where(sa.cast(payments.c.resolution, sa.String) == code)
            .values(
                resolution_note=sa.case(
                    (payments.c.resolution_note.is_(None), words),
                    else_=words + ": " + payments.c.resolution_note,
                )
            )
        )
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("resolution")
    sa.Enum(name="refund_resolution").drop(bind, checkfirst=True)
