"""The audit log: who did what, in which tenant, when and from where.

Every state-changing action of the office and its command line writes one row, in the same
transaction as the change. Details are words for a person, never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.store.tables import audit_log, utcnow
from paylinks.vocabulary import AuditAction


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in person, an API token's holder, or the command line."""

    user_id: int | None
    name: str  # the person's email, or "command line"
    client_address: str | None = None


COMMAND_LINE = Actor(None, "command line", "local")


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    tenant_id: int | None
    actor: str
    action: AuditAction
    detail: str
    client_address: str | None


def record(
    connection: Connection, actor: Actor, action: AuditAction, tenant_id: int | None, detail: str
) -> int:
    """Write one entry; its id."""
    result = connection.execute(
        sa.insert(audit_log).values(
            at=utcnow(),
            tenant_id=tenant_id,
            user_id=actor.user_id,
            actor=actor.name[:320],
            action=action,
            detail=detail,
            client_address=(actor.client_address or None) and actor.client_address[:100],
        )
    )
    return int(cast("sa.Row[Any]", result.inserted_primary_key)[0])


def entry(
    connection: Connection, tenant_id: int, entry_id: int, *, by_user_id: int | None
) -> AuditEntry | None:
    """One entry of this tenant, or None; with `by_user_id`, only one of that person's own doing."""
    query = sa.select(audit_log).where(audit_log.c.id == entry_id, audit_log.c.tenant_id == tenant_id)
    if by_user_id is not None:
        query = query.where(audit_log.c.user_id == by_user_id)
    row = connection.execute(query).mappings().first()
    return _entry(row) if row is not None else None


def _entry(r: sa.RowMapping) -> AuditEntry:
    return AuditEntry(
        at=r["at"],
        tenant_id=r["tenant_id"],
        actor=r["actor"],
        action=AuditAction(r["action"]),
        detail=r["detail"],
        client_address=r["client_address"],
    )


def recent_entries(connection: Connection, tenant_ids: Iterable[int], limit: int = 50) -> list[AuditEntry]:
    """The newest entries of these tenants, newest first."""
    rows = connection.execute(
        sa.select(audit_log)
        .where(audit_log.c.tenant_id.in_(list(tenant_ids)))
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .limit(limit)
    ).mappings()
    return [_entry(r) for r in rows]
