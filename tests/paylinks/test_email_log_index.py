"""The check before each send reads one parent's emails, not the club's whole history: on a log of
many past blasts, the statement that asks whether anyone else emailed this parent lately finds
their rows by index (migration 0019). Without it, every blast cost more than the last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from paylinks.club.tenants import tenant_by_slug
from paylinks.demo.data import seed_demo
from paylinks.messaging.claims import _recent_select
from paylinks.store.tables import email_log, parents
from paylinks.vocabulary import EmailStatus, EmailType
from tests.helpers import TENANT


def test_the_check_before_a_send_finds_the_parent_by_index_on_a_long_log(engine):
    seed_demo(engine, "America/New_York")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        club = tenant_by_slug(connection, TENANT)
        parent_ids = (
            connection.execute(sa.select(parents.c.id).where(parents.c.tenant_id == club.id)).scalars().all()
        )
        connection.execute(
            sa.insert(email_log),
            [
                dict(
                    tenant_id=club.id,
                    email_type=EmailType.outstanding_balance,
                    parent_id=parent_id,
                    recipient=f"parent{parent_id}@example.com",
                    subject="Your balance",
                    status=EmailStatus.sent,
                    run_key=f"week-{week}",
                    transport="smtp",
                    sent_at=now - timedelta(days=7 * week),
                )  # fmt: skip
                for week in range(1, 201)
                for parent_id in parent_ids
            ],
        )
        statement = _recent_select(other_runs_only=True, one_parent=True)
        values = dict(
            tenant_id=club.id, transport="smtp", since=now - timedelta(days=1), live_since=now,
            other_than="this-week", parent_id=parent_ids[0],
        )  # fmt: skip
        sql = statement.params(values).compile(connection, compile_kwargs={"literal_binds": True})
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()

    assert len(parent_ids) * 200 >= 2000, "a long log: four years of weekly blasts"
    steps = " / ".join(row[-1] for row in plan)
    assert "USING INDEX ix_email_log_tenant_parent (tenant_id=? AND parent_id=?)" in steps, steps
