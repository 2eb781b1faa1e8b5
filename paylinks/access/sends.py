"""The admin endpoint's limits, kept in the database so every office process shares them: test
emails per API token per hour (counted atomically before the run starts), and one send to every
parent running per tenant (a claim taken before the run starts, given up once it is over).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.store.tables import api_test_sends, as_utc, blast_claims, dialect_insert, utcnow

TEST_SEND_WINDOW = timedelta(hours=1)
# A claim whose run never got an id (the office stopped while starting it) frees after this long.
UNSTARTED_CLAIM_HOLDS = timedelta(minutes=10)


@dataclass(frozen=True)
class TooManyTestSends:
    limit: int
    retry_after_s: int


def count_test_send(connection: Connection, token_id: int, limit: int) -> TooManyTestSends | None:
    """Count one test email for the token in its current hour (one atomic upsert); the refusal
    once the hour holds more than `limit`."""
    now = utcnow()
    stale = api_test_sends.c.window_started_at <= now - TEST_SEND_WINDOW
    moment = sa.bindparam("send_at", now, type_=api_test_sends.c.window_started_at.type)
    counted = connection.execute(
        dialect_insert(connection, api_test_sends)
        .values(token_id=token_id, window_started_at=now, sends=1)
        .on_conflict_do_update(
            index_elements=[api_test_sends.c.token_id],
            set_={
                "sends": sa.case((stale, 1), else_=api_test_sends.c.sends + 1),
                "window_started_at": sa.case((stale, moment), else_=api_test_sends.c.window_started_at),
            },
        )
        .returning(api_test_sends.c.sends, api_test_sends.c.window_started_at)
    ).one()
    if counted.sends <= limit:
        return None
    free_at = as_utc(counted.window_started_at) + TEST_SEND_WINDOW
    return TooManyTestSends(limit, max(1, int((free_at - now).total_seconds()) + 1))


@dataclass(frozen=True)
class BlastClaim:
    """The tenant's send to every parent that holds the claim: by whom, since when, which run."""

    flow_run_id: str | None
    claimed_at: datetime
    claimed_by: str


def claim_blast(
    connection: Connection, tenant_id: int, claimed_by: str, run_is_over: Callable[[str], bool]
) -> BlastClaim | None:
    """Take the tenant's claim on a send to every parent: None when it is ours now, else the claim
    of the send still running. A claim whose run is over (`run_is_over(flow_run_id)`), or that
    never got a run for too long, is taken over; two callers racing cannot both win."""
    now = utcnow()
    inserted = connection.execute(
        dialect_insert(connection, blast_claims)
        .values(tenant_id=tenant_id, flow_run_id=None, claimed_at=now, claimed_by=claimed_by[:320])
        .on_conflict_do_nothing(index_elements=[blast_claims.c.tenant_id])
        .returning(blast_claims.c.tenant_id)
    ).first()
    if inserted is not None:
        return None
    row = connection.execute(sa.select(blast_claims).where(blast_claims.c.tenant_id == tenant_id)).first()
    if row is None:  # given up between the two statements: try once more
        return claim_blast(connection, tenant_id, claimed_by, run_is_over)
    held = BlastClaim(row.flow_run_id, as_utc(row.claimed_at), row.claimed_by)
    over = run_is_over(row.flow_run_id) if row.flow_run_id else now - held.claimed_at > UNSTARTED_CLAIM_HOLDS
    if not over:
        return held
    taken = connection.execute(
        sa.update(blast_claims)
        .where(blast_claims.c.tenant_id == tenant_id, blast_claims.c.claimed_at == row.claimed_at)
        .values(flow_run_id=None, claimed_at=now, claimed_by=claimed_by[:320])
    )
    return None if taken.rowcount == 1 else held


def claimed_by_run(connection: Connection, tenant_id: int, flow_run_id: str) -> None:
    """The claim's run has started: name it, so the next caller can ask whether it is over."""
    connection.execute(
        sa.update(blast_claims).where(blast_claims.c.tenant_id == tenant_id).values(flow_run_id=flow_run_id)
    )


def give_up_claim(connection: Connection, tenant_id: int) -> None:
    """The run could not start: free the claim at once."""
    connection.execute(sa.delete(blast_claims).where(blast_claims.c.tenant_id == tenant_id))
