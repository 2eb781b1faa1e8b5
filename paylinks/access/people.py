"""Who works for a club, and taking access away: list a tenant's people and tokens, disable or
enable an account, remove a role, reset a password (a new one-time one), revoke API tokens.

Every change is audited in the same transaction and takes effect at the next request: a disabled
account's sessions end (its `session_epoch` moves on) and its tokens stop answering, a revoked
token is refused. A tenant is never left without an admin, and nobody disables their own account.
From the office (`acting` given) an admin changes an account only when they are an admin of every
club that account works for, so no club's admin can take over a person another club relies on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.access.accounts import AccountError, User, account_name, hash_password
from paylinks.access.audit import Actor, record
from paylinks.club.tenants import Tenant
from paylinks.store.tables import api_token_tenants, api_tokens, tenants, user_roles, users, utcnow
from paylinks.vocabulary import AuditAction, Role


@dataclass(frozen=True)
class Person:
    """Someone with a role in a tenant, as the People page lists them."""

    user_id: int
    email: str
    role: Role
    disabled: bool
    password_is_temporary: bool
    live_tokens: int  # API tokens acting in this tenant, not revoked


@dataclass(frozen=True)
class TokenView:
    id: int
    email: str
    tenants: tuple[str, ...]  # slugs
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def people_of(connection: Connection, tenant: Tenant) -> list[Person]:
    """The tenant's people by email, with their role, whether they are disabled, and live tokens."""
    live = (
        sa.select(sa.func.count())
        .select_from(api_tokens.join(api_token_tenants, api_token_tenants.c.token_id == api_tokens.c.id))
        .where(
            api_tokens.c.user_id == users.c.id,
            api_token_tenants.c.tenant_id == tenant.id,
            api_tokens.c.revoked_at.is_(None),
        )
        .scalar_subquery()
    )
    rows = connection.execute(
        sa.select(users, user_roles.c.role, live.label("live_tokens"))
        .join(user_roles, user_roles.c.user_id == users.c.id)
        .where(user_roles.c.tenant_id == tenant.id)
        .order_by(users.c.email)
    ).mappings()
    return [
        Person(
            user_id=r["id"],
            email=r["email"],
            role=Role(r["role"]),
            disabled=r["disabled_at"] is not None,
            password_is_temporary=bool(r["password_is_temporary"]),
            live_tokens=int(r["live_tokens"]),
        )
        for r in rows
    ]


def person_in(connection: Connection, tenant: Tenant, user_id: int) -> Person | None:
    """One of the tenant's people, or None for anyone else."""
    return next((p for p in people_of(connection, tenant) if p.user_id == user_id), None)


def account_id(connection: Connection, email: str) -> int:
    """The id of the account `email` logs in with (disabled or not); AccountError naming it if none."""
    name = account_name(email)
    found = connection.execute(sa.select(users.c.id).where(users.c.email == name)).scalar()
    if found is None:
        raise AccountError(f"there is no office account for {name}")
    return int(found)


def _email(connection: Connection, user_id: int) -> str:
    return str(connection.execute(sa.select(users.c.email).where(users.c.id == user_id)).scalar_one())


def _roles(connection: Connection, user_id: int) -> dict[int, tuple[str, Role]]:
    """tenant id → (club name, role) of every role the account holds."""
    rows = connection.execute(
        sa.select(user_roles.c.tenant_id, tenants.c.name, user_roles.c.role)
        .join(tenants, tenants.c.id == user_roles.c.tenant_id)
        .where(user_roles.c.user_id == user_id)
    )
    return {r.tenant_id: (r.name, Role(r.role)) for r in rows}


def _active_admins(connection: Connection, tenant_id: int) -> set[int]:
    return set(
        connection.execute(
            sa.select(user_roles.c.user_id)
            .join(users, users.c.id == user_roles.c.user_id)
            .where(
                user_roles.c.tenant_id == tenant_id,
                user_roles.c.role == Role.admin,
                users.c.disabled_at.is_(None),
            )
        ).scalars()
    )


def _keep_an_admin(connection: Connection, user_id: int, tenant_ids: list[int], email: str) -> None:
    """AccountError when taking `user_id` away would leave one of these tenants with no admin."""
    for tenant_id, (club, role) in _roles(connection, user_id).items():
        if (
            tenant_id in tenant_ids
            and role == Role.admin
            and _active_admins(connection, tenant_id) <= {user_id}
        ):
            raise AccountError(f"{email} is the only admin of {club}: make someone else an admin there first")


def _may_change_account(connection: Connection, acting: User | None, user_id: int, email: str) -> None:
    """From the office, the acting admin must be an admin of every club the account works for."""
    if acting is None:
        return  # the command line: the operator
    if acting.id == user_id:
        raise AccountError("you cannot disable or reset your own account here; ask another admin")
    elsewhere = [
        club
        for tenant_id, (club, _) in _roles(connection, user_id).items()
        if acting.role_in(tenant_id) != Role.admin
    ]
    if elsewhere:
        raise AccountError(
            f"{email} also works for {', '.join(sorted(elsewhere))}, so only an admin of every club "
            "they work for can change their account"
        )


def _record_everywhere(
    connection: Connection, actor: Actor, action: AuditAction, user_id: int, detail: str
) -> None:
    """One entry in each tenant the account works for (each club's history shows it), or one without."""
    tenant_ids: list[int | None] = [*_roles(connection, user_id)] or [None]
    for tenant_id in tenant_ids:
        record(connection, actor, action, tenant_id, detail)


def disable_user(connection: Connection, user_id: int, *, actor: Actor, acting: User | None = None) -> str:
    """Disable the account: no login, its sessions end, its tokens answer 401. Its email."""
    email = _email(connection, user_id)
    _may_change_account(connection, acting, user_id, email)
    _keep_an_admin(connection, user_id, list(_roles(connection, user_id)), email)
    connection.execute(
        sa.update(users)
        .where(users.c.id == user_id)
        .values(
            disabled_at=sa.func.coalesce(users.c.disabled_at, utcnow()),
            session_epoch=users.c.session_epoch + 1,
        )
    )
    _record_everywhere(
        connection,
        actor,
        AuditAction.user_disabled,
        user_id,
        f"{email} disabled: logged out, API tokens stopped",
    )
    return email


def enable_user(connection: Connection, user_id: int, *, actor: Actor, acting: User | None = None) -> str:
    """Let a disabled account log in again (its tokens that were not revoked answer again). Its email."""
    email = _email(connection, user_id)
    _may_change_account(connection, acting, user_id, email)
    connection.execute(sa.update(users).where(users.c.id == user_id).values(disabled_at=None))
    _record_everywhere(connection, actor, AuditAction.user_enabled, user_id, f"{email} enabled again")
    return email


def remove_role(connection: Connection, user_id: int, tenant: Tenant, *, actor: Actor) -> str:
    """Take the person's role in `tenant` away; their tokens no longer act there. Their email."""
    email = _email(connection, user_id)
    if tenant.id not in _roles(connection, user_id):
        raise AccountError(f"{email} has no role in {tenant.slug}")
    _keep_an_admin(connection, user_id, [tenant.id], email)
    connection.execute(
        sa.delete(user_roles).where(user_roles.c.user_id == user_id, user_roles.c.tenant_id == tenant.id)
    )
    their_tokens = sa.select(api_tokens.c.id).where(api_tokens.c.user_id == user_id)
    connection.execute(
        sa.delete(api_token_tenants).where(
            api_token_tenants.c.tenant_id == tenant.id, api_token_tenants.c.token_id.in_(their_tokens)
        )
    )
    record(
        connection, actor, AuditAction.role_removed, tenant.id, f"{email} no longer works for {tenant.slug}"
    )
    return email


def reset_password(
    connection: Connection, user_id: int, *, actor: Actor, acting: User | None = None
) -> tuple[str, str]:
    """A new one-time password for the account (shown once, never stored); every session of theirs
    ends. (email, password)."""
    email = _email(connection, user_id)
    _may_change_account(connection, acting, user_id, email)
    password = secrets.token_urlsafe(12)
    connection.execute(
        sa.update(users)
        .where(users.c.id == user_id)
        .values(
            password_hash=hash_password(password),
            password_is_temporary=True,
            session_epoch=users.c.session_epoch + 1,
        )
    )
    _record_everywhere(
        connection,
        actor,
        AuditAction.password_reset,
        user_id,
        f"{email}: one-time password issued, logged out",
    )
    return email, password


def _revoke(connection: Connection, token_ids: list[int], actor: Actor, email: str) -> None:
    now = utcnow()
    for token_id in token_ids:
        connection.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now))
        acts_in = connection.execute(
            sa.select(api_token_tenants.c.tenant_id).where(api_token_tenants.c.token_id == token_id)
        ).scalars()
        for tenant_id in list(acts_in) or [None]:
            record(
                connection,
                actor,
                AuditAction.token_revoked,
                tenant_id,
                f"API token #{token_id} of {email} revoked",
            )


def revoke_token(connection: Connection, token_id: int, *, actor: Actor) -> str:
    """Revoke one token (the command line's `token revoke ID`); the holder's email."""
    row = connection.execute(
        sa.select(api_tokens.c.user_id, api_tokens.c.revoked_at).where(api_tokens.c.id == token_id)
    ).first()
    if row is None:
        raise AccountError(f"there is no API token #{token_id} (`paylinks token list` shows them)")
    email = _email(connection, row.user_id)
    if row.revoked_at is not None:
        raise AccountError(f"API token #{token_id} of {email} is already revoked")
    _revoke(connection, [token_id], actor, email)
    return email


def revoke_tokens_in(connection: Connection, user_id: int, tenant: Tenant, *, actor: Actor) -> int:
    """Revoke every live token of the person that acts in `tenant`; how many."""
    token_ids = list(
        connection.execute(
            sa.select(api_tokens.c.id)
            .join(api_token_tenants, api_token_tenants.c.token_id == api_tokens.c.id)
            .where(
                api_tokens.c.user_id == user_id,
                api_token_tenants.c.tenant_id == tenant.id,
                api_tokens.c.revoked_at.is_(None),
            )
        ).scalars()
    )
    _revoke(connection, token_ids, actor, _email(connection, user_id))
    return len(token_ids)


def token_list(connection: Connection, tenant: Tenant | None = None) -> list[TokenView]:
    """Every token (or those acting in `tenant`), oldest first; never the token itself."""
    query = sa.select(api_tokens, users.c.email).join(users, users.c.id == api_tokens.c.user_id)
    if tenant is not None:
        query = query.where(
            api_tokens.c.id.in_(
                sa.select(api_token_tenants.c.token_id).where(api_token_tenants.c.tenant_id == tenant.id)
            )
        )
    rows = connection.execute(query.order_by(api_tokens.c.id)).mappings().all()
    views = []
    for r in rows:
        slugs = connection.execute(
            sa.select(tenants.c.slug)
            .join(api_token_tenants, api_token_tenants.c.tenant_id == tenants.c.id)
            .where(api_token_tenants.c.token_id == r["id"])
            .order_by(tenants.c.slug)
        ).scalars()
        views.append(
            TokenView(r["id"], r["email"], tuple(slugs), r["created_at"], r["last_used_at"], r["revoked_at"])
        )
    return views


def account_users(
    connection: Connection, tenant: Tenant | None = None
) -> list[tuple[str, bool, dict[str, Role]]]:
    """Every account (or the tenant's people): (email, disabled, slug → role), by email."""
    query = sa.select(users.c.id, users.c.email, users.c.disabled_at).order_by(users.c.email)
    if tenant is not None:
        query = query.where(
            users.c.id.in_(sa.select(user_roles.c.user_id).where(user_roles.c.tenant_id == tenant.id))
        )
    listed = []
    for row in connection.execute(query).all():
        roles = {
            r.slug: Role(r.role)
            for r in connection.execute(
                sa.select(tenants.c.slug, user_roles.c.role)
                .join(tenants, tenants.c.id == user_roles.c.tenant_id)
                .where(user_roles.c.user_id == row.id)
                .order_by(tenants.c.slug)
            )
        }
        listed.append((row.email, row.disabled_at is not None, roles))
    return listed
