"""Each parent's family page address, `/f/<token>`: derived, never stored.

`token = urlsafe_b64(HMAC-SHA256(secret, salt))`, its first 32 characters (192 bits); the salt is
random per (tenant, parent) and stored with `sha256(token)`, which is what a request is looked up
by. Whoever holds the secret (the office, a flow sending emails) can always make a parent's link
again; a copy of the database alone opens nothing. Rotating replaces the salt: the old address
is a 404 from that moment. A token is never logged, stored or put in an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.access.audit import Actor, record
from paylinks.store.tables import dialect_insert, family_tokens, parents, utcnow
from paylinks.vocabulary import AuditAction

TOKEN_LENGTH = 32  # characters of urlsafe base64: 192 bits
_TOKEN_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")


@dataclass(frozen=True)
class FamilyKey:
    """Whose page a token opens."""

    tenant_id: int
    parent_id: int


def derive_token(secret: bytes, salt: str) -> str:
    digest = hmac.new(secret, salt.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:TOKEN_LENGTH]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(32)


def family_path(token: str) -> str:
    return f"/f/{token}"


def family_url(office_url: str, token: str) -> str:
    """The page's public address: the office's (`PAYLINKS_OFFICE_URL`) plus `/f/<token>`."""
    return office_url.rstrip("/") + family_path(token)


def family_tokens_for(
    connection: Connection, secret: bytes, tenant_id: int, parent_ids: Iterable[int]
) -> dict[int, str]:
    """Each parent's token, made on first need (a salt stored with the token's hash). Parents of
    another tenant get none. When the secret changed since a salt was stored, the stored hash
    follows the token the secret derives now (the old address stops opening)."""
    wanted = sorted(set(parent_ids))
    if not wanted:
        return {}
    ours = set(
        connection.execute(
            sa.select(parents.c.id).where(parents.c.tenant_id == tenant_id, parents.c.id.in_(wanted))
        ).scalars()
    )
    known = _salts(connection, tenant_id, ours)
    missing = [parent_id for parent_id in sorted(ours) if parent_id not in known]
    if missing:
        rows = []
        for parent_id in missing:
            salt = new_salt()
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "parent_id": parent_id,
                    "salt": salt,
                    "token_hash": token_hash(derive_token(secret, salt)),
                    "created_at": utcnow(),
                }
            )
        # Two requests making the same parent's token at once: one salt wins, both read it back.
        statement = dialect_insert(connection, family_tokens).on_conflict_do_nothing(
            index_elements=["tenant_id", "parent_id"]
        )
        connection.execute(statement, rows)
        known.update(_salts(connection, tenant_id, missing))
    tokens = {}
    for parent_id, (salt, stored_hash) in known.items():
        token = derive_token(secret, salt)
        if not hmac.compare_digest(token_hash(token), stored_hash):
            connection.execute(
                sa.update(family_tokens)
                .where(family_tokens.c.tenant_id == tenant_id, family_tokens.c.parent_id == parent_id)
                .values(token_hash=token_hash(token))
            )
        tokens[parent_id] = token
    return tokens


def family_token(connection: Connection, secret: bytes, tenant_id: int, parent_id: int) -> str | None:
    """One parent's token (made on first need); None when the parent is not the tenant's."""
    return family_tokens_for(connection, secret, tenant_id, [parent_id]).get(parent_id)


def _salts(connection: Connection, tenant_id: int, parent_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    ids = list(parent_ids)
    if not ids:
        return {}
    rows = connection.execute(
        sa.select(family_tokens.c.parent_id, family_tokens.c.salt, family_tokens.c.token_hash).where(
            family_tokens.c.tenant_id == tenant_id, family_tokens.c.parent_id.in_(ids)
        )
    )
    return {int(r.parent_id): (r.salt, r.token_hash) for r in rows}


def find_family(connection: Connection, secret: bytes, token: str) -> FamilyKey | None:
    """Whose page `token` opens; None for anything else (malformed, unknown, rotated, or made
    with another secret)."""
    if not _TOKEN_SHAPE.fullmatch(token):
        return None
    row = connection.execute(
        sa.select(family_tokens.c.tenant_id, family_tokens.c.parent_id, family_tokens.c.salt).where(
            family_tokens.c.token_hash == token_hash(token)
        )
    ).first()
    if row is None or not hmac.compare_digest(derive_token(secret, row.salt), token):
        return None
    return FamilyKey(int(row.tenant_id), int(row.parent_id))


@dataclass(frozen=True)
class Rotated:
    token: str
    audit_entry_id: int


def rotate_family_token(
    connection: Connection, secret: bytes, tenant_id: int, parent_id: int, actor: Actor
) -> Rotated | None:
    """A new address for the parent's page (a new salt): the old one is a 404 at once. Audited
    (never the token). None when the parent is not the tenant's."""
    parent = connection.execute(
        sa.select(parents.c.first_name, parents.c.last_name).where(
            parents.c.tenant_id == tenant_id, parents.c.id == parent_id
        )
    ).first()
    if parent is None:
        return None
    salt = new_salt()
    token = derive_token(secret, salt)
    values = {
        "salt": salt,
        "token_hash": token_hash(token),
        "created_at": utcnow(),
        "created_by": actor.name[:320],
    }
    updated = connection.execute(
        sa.update(family_tokens)
        .where(family_tokens.c.tenant_id == tenant_id, family_tokens.c.parent_id == parent_id)
        .values(**values)
    )
    if updated.rowcount == 0:
        connection.execute(
            sa.insert(family_tokens).values(tenant_id=tenant_id, parent_id=parent_id, **values)
        )
    entry_id = record(
        connection,
        actor,
        AuditAction.family_link_reset,
        tenant_id,
        f"New family page address for {parent.first_name} {parent.last_name} (parent #{parent_id}); "
        "the old one no longer opens.",
    )
    return Rotated(token, entry_id)
