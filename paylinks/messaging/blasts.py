"""Blasts: one row of `blasts` (tenant, key, transport) per outstanding-balance blast; each of
its sends is claimed in `email_log` under its key (see claims).

Without a key, a send resumes the tenant's unfinished blast on the same transport, whatever its
date, or starts a new one. A blast is finished once every reachable parent has their email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.club.tenants import Tenant
from paylinks.settings import EmailTransportName
from paylinks.store.tables import blasts, dialect_insert, utcnow
from paylinks.vocabulary import BlastStatus


@dataclass(frozen=True)
class BlastRun:
    """The blast a run belongs to (or, for a preview, the one a send would use)."""

    run_key: str
    transport: EmailTransportName
    started_at: datetime | None  # None: not started yet (a preview of a new blast)
    resumed: bool  # an existing blast picked up again, rather than a new one


def _blast_row(connection: Connection, tenant: Tenant, run_key: str, transport: EmailTransportName):
    return connection.execute(
        sa.select(blasts.c.run_key, blasts.c.status, blasts.c.started_at).where(
            blasts.c.tenant_id == tenant.id,
            blasts.c.run_key == run_key,
            blasts.c.transport == transport.value,
        )
    ).first()


def _unfinished_blast(connection: Connection, tenant: Tenant, transport: EmailTransportName):
    return connection.execute(
        sa.select(blasts.c.run_key, blasts.c.status, blasts.c.started_at)
        .where(
            blasts.c.tenant_id == tenant.id,
            blasts.c.transport == transport.value,
            blasts.c.status == BlastStatus.running,
        )
        .order_by(blasts.c.started_at.desc(), blasts.c.id.desc())
        .limit(1)
    ).first()


def _try_start(engine: Engine, tenant: Tenant, run_key: str, transport: EmailTransportName) -> bool:
    """Insert the blast row; False when a row with this key (and transport) already exists."""
    with engine.begin() as connection:
        statement = (
            dialect_insert(connection, blasts)
            .values(
                tenant_id=tenant.id,
                run_key=run_key,
                transport=transport.value,
                status=BlastStatus.running,
                started_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(blasts.c.id)
        )
        # RETURNING, not rowcount: a row comes back only when this insert made it.
        return connection.execute(statement).scalar_one_or_none() is not None


def find_blast(
    engine: Engine, tenant: Tenant, transport: EmailTransportName, blast_key: str | None
) -> BlastRun | None:
    """The blast a send would use now, without starting it; None when a send would start a new one."""
    with engine.connect() as connection:
        row = (
            _blast_row(connection, tenant, blast_key, transport)
            if blast_key
            else _unfinished_blast(connection, tenant, transport)
        )
    if row is None:
        return BlastRun(blast_key, transport, None, resumed=False) if blast_key else None
    return BlastRun(row.run_key, transport, row.started_at, resumed=True)


def start_blast(
    engine: Engine, tenant: Tenant, transport: EmailTransportName, blast_key: str | None, today: date
) -> BlastRun:
    """The blast this send belongs to: the named one, else the tenant's unfinished one, else a new one.

    Starting is an insert only one run wins, so two keyless sends started together share one
    blast (the loser resumes the winner's) instead of each mailing every parent.
    """
    if blast_key:
        created = _try_start(engine, tenant, blast_key, transport)
        with engine.begin() as connection:
            if not created:
                # A named blast run again (to reach parents added since) is running until it ends.
                connection.execute(
                    sa.update(blasts)
                    .where(
                        blasts.c.tenant_id == tenant.id,
                        blasts.c.run_key == blast_key,
                        blasts.c.transport == transport.value,
                    )
                    .values(status=BlastStatus.running, finished_at=None)
                )
            row = _blast_row(connection, tenant, blast_key, transport)
        return BlastRun(blast_key, transport, row.started_at, resumed=not created)
    with engine.connect() as connection:
        unfinished = _unfinished_blast(connection, tenant, transport)
    if unfinished is not None:
        return BlastRun(unfinished.run_key, transport, unfinished.started_at, resumed=True)
    base = f"{tenant.slug}-{today.isoformat()}"
    for attempt in range(1, 1000):
        run_key = base if attempt == 1 else f"{base}-{attempt}"
        created = _try_start(engine, tenant, run_key, transport)
        with engine.connect() as connection:
            row = _blast_row(connection, tenant, run_key, transport)
        if created:
            return BlastRun(run_key, transport, row.started_at, resumed=False)
        if row.status == BlastStatus.running:
            # Another send started this very blast a moment ago: share it.
            return BlastRun(run_key, transport, row.started_at, resumed=True)
    raise RuntimeError(f"no free blast key left for {base}")  # pragma: no cover - 999 blasts in a day


def finish_blast(engine: Engine, tenant: Tenant, blast: BlastRun) -> None:
    """Every reachable parent has their email: a keyless send no longer resumes this blast."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(blasts)
            .where(
                blasts.c.tenant_id == tenant.id,
                blasts.c.run_key == blast.run_key,
                blasts.c.transport == blast.transport.value,
            )
            .values(status=BlastStatus.finished, finished_at=utcnow())
        )


def hold_window(tenant: Tenant, default_hours: int) -> timedelta | None:
    """How far back another blast's email holds a parent back: the tenant's hours, else the
    settings'; None when that is 0 (never hold back)."""
    hours = tenant.recent_email_hold_hours if tenant.recent_email_hold_hours is not None else default_hours
    return timedelta(hours=hours) if hours > 0 else None


def hold_since(tenant: Tenant, default_hours: int, now: datetime) -> datetime | None:
    """Another blast's email since this moment holds a parent back from a new one; None: never."""
    window = hold_window(tenant, default_hours)
    return None if window is None else now - window


def hold_window_hours(tenant: Tenant, default_hours: int) -> int:
    """The hold window in hours (0: never hold back)."""
    window = hold_window(tenant, default_hours)
    return 0 if window is None else int(window.total_seconds() // 3600)
