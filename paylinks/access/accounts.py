"""People who use the club office: accounts, a role per tenant, API tokens, and the login throttle.

Passwords are hashed with argon2id (argon2-cffi) and checked in constant time, an unknown
account costing the same as a known one. API tokens are random and stored only as SHA-256
hashes. The login throttle lives in the database, so every office process shares it: attempts of
one account from one address are counted atomically before the password is checked (a limit per
account and address: a stranger's guesses do not lock the real person out from elsewhere), and an
address that fails on many accounts is throttled whatever account it tries.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Connection, Engine

from paylinks.access.audit import Actor, record
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.params import normalized_email
from paylinks.store.tables import (
    api_token_tenants,
    api_tokens,
    as_utc,
    dialect_insert,
    login_attempts,
    login_failures,
    tenants,
    user_roles,
    users,
    utcnow,
)
from paylinks.vocabulary import AuditAction, Role

MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "plk_"

_hasher = PasswordHasher()
# Verified against when the account does not exist, so a miss takes as long as a wrong password.
_UNKNOWN_ACCOUNT_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(PaylinksError):
    """Bad input about an account (an invalid email, a weak password): the message says what to fix."""

    exit_code = 2


@dataclass(frozen=True)
class User:
    id: int
    email: str
    roles: Mapping[int, Role]  # tenant id → role
    password_is_temporary: bool
    session_epoch: int

    def role_in(self, tenant_id: int) -> Role | None:
        return self.roles.get(tenant_id)


@dataclass(frozen=True)
class LoginThrottled:
    """Too many failed logins for this account or from this address; try again after this long."""

    retry_after_s: int


@dataclass(frozen=True)
class ThrottleLimits:
    failures_per_account: int
    failures_per_address: int
    window_s: int


@dataclass(frozen=True)
class TokenHolder:
    """Who an API token speaks for, and in which tenants."""

    token_id: int
    user: User
    tenant_ids: frozenset[int]


def account_name(email: str) -> str:
    """The account's key: the normalized address, lower case; AccountError when it is no address."""
    try:
        return normalized_email(email.strip()).lower()
    except ValueError as error:
        raise AccountError(str(error)) from None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the new password must have at least {MIN_PASSWORD_LENGTH} characters")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _user(connection: Connection, row: sa.RowMapping) -> User:
    roles = {
        r.tenant_id: Role(r.role)
        for r in connection.execute(
            sa.select(user_roles.c.tenant_id, user_roles.c.role).where(user_roles.c.user_id == row["id"])
        )
    }
    return User(
        id=row["id"],
        email=row["email"],
        roles=roles,
        password_is_temporary=bool(row["password_is_temporary"]),
        session_epoch=int(row["session_epoch"]),
    )


def user_by_id(connection: Connection, user_id: int) -> User | None:
    row = (
        connection.execute(sa.select(users).where(users.c.id == user_id, users.c.disabled_at.is_(None)))
        .mappings()
        .first()
    )
    return _user(connection, row) if row is not None else None


def user_by_email(connection: Connection, email: str) -> User | None:
    row = connection.execute(sa.select(users).where(users.c.email == account_name(email))).mappings().first()
    return _user(connection, row) if row is not None else None


@dataclass(frozen=True)
class AddedUser:
    user: User
    one_time_password: str | None  # None when the account already existed and kept its password


def add_user(
    connection: Connection,
    email: str,
    tenant: Tenant,
    role: Role,
    *,
    actor: Actor,
    reset_password: bool = False,
) -> AddedUser:
    """Give `email` the role in `tenant`, creating the account with a one-time password if new."""
    name = account_name(email)
    row = connection.execute(sa.select(users).where(users.c.email == name)).mappings().first()
    password: str | None = None
    if row is None or reset_password:
        password = secrets.token_urlsafe(12)
        values = {"password_hash": hash_password(password), "password_is_temporary": True}
        if row is None:
            user_id = cast(
                "sa.Row[Any]",
                connection.execute(sa.insert(users).values(email=name, **values)).inserted_primary_key,
            )[0]
        else:
            user_id = row["id"]
            connection.execute(
                sa.update(users)
                .where(users.c.id == user_id)
                .values(session_epoch=users.c.session_epoch + 1, **values)
            )
    else:
        user_id = row["id"]
    existing = connection.execute(
        sa.select(user_roles.c.role).where(
            user_roles.c.user_id == user_id, user_roles.c.tenant_id == tenant.id
        )
    ).first()
    if existing is None:
        connection.execute(sa.insert(user_roles).values(user_id=user_id, tenant_id=tenant.id, role=role))
    else:
        connection.execute(
            sa.update(user_roles)
            .where(user_roles.c.user_id == user_id, user_roles.c.tenant_id == tenant.id)
            .values(role=role)
        )
    record(
        connection,
        actor,
        AuditAction.user_added,
        tenant.id,
        f"{name} is {role.value} of {tenant.slug}" + ("; one-time password issued" if password else ""),
    )
    user = user_by_id(connection, user_id)
    assert user is not None
    return AddedUser(user, password)


def _address_throttled(
    connection: Connection, client_address: str, limits: ThrottleLimits, now: datetime
) -> LoginThrottled | None:
    """Whether this address has failed on too many different accounts within the window (one
    person guessing one account is the per-account limit's business)."""
    since = now - timedelta(seconds=limits.window_s)
    first_failures = (
        connection.execute(
            sa.select(sa.func.min(login_failures.c.failed_at))
            .where(login_failures.c.client_address == client_address, login_failures.c.failed_at > since)
            .group_by(login_failures.c.account)
        )
        .scalars()
        .all()
    )
    if len(first_failures) < limits.failures_per_address:
        return None
    # Free again when the earliest of those accounts' failures leaves the window.
    return _free_after(min(as_utc(m) for m in first_failures), limits, now)


def _count_attempt(
    connection: Connection, account: str, client_address: str, limits: ThrottleLimits, now: datetime
) -> LoginThrottled | None:
    """Count this attempt of the account from this address, atomically, before any password is
    checked; LoginThrottled once the window holds more attempts than the limit."""
    stale = login_attempts.c.window_started_at <= now - timedelta(seconds=limits.window_s)
    moment = sa.bindparam("attempt_at", now, type_=login_attempts.c.window_started_at.type)
    counted = connection.execute(
        dialect_insert(connection, login_attempts)
        .values(account=account, client_address=client_address, window_started_at=now, attempts=1)
        .on_conflict_do_update(
            index_elements=[login_attempts.c.account, login_attempts.c.client_address],
            set_={
                "attempts": sa.case((stale, 1), else_=login_attempts.c.attempts + 1),
                "window_started_at": sa.case((stale, moment), else_=login_attempts.c.window_started_at),
            },
        )
        .returning(login_attempts.c.attempts, login_attempts.c.window_started_at)
    ).one()
    if counted.attempts <= limits.failures_per_account:
        return None
    return _free_after(as_utc(counted.window_started_at), limits, now)


def _free_after(since: datetime, limits: ThrottleLimits, now: datetime) -> LoginThrottled:
    free_at = since + timedelta(seconds=limits.window_s)
    return LoginThrottled(max(1, int((free_at - now).total_seconds()) + 1))


def authenticate(
    engine: Engine, email: str, password: str, client_address: str, limits: ThrottleLimits
) -> User | LoginThrottled | None:
    """The user these credentials open, LoginThrottled, or None (wrong, unknown or disabled: one
    answer). The attempt is counted (committed) before the password is checked, and the check
    runs outside any transaction, so parallel guesses are counted one by one."""
    try:
        account = account_name(email)
    except AccountError:
        account = email.strip().lower()[:320]
    address = client_address[:100]
    now = utcnow()
    with engine.begin() as connection:
        refusal = _address_throttled(connection, address, limits, now) or _count_attempt(
            connection, account, address, limits, now
        )
        row = (
            None
            if refusal is not None
            else connection.execute(
                sa.select(users).where(users.c.email == account, users.c.disabled_at.is_(None))
            )
            .mappings()
            .first()
        )
    if refusal is not None:
        return refusal
    matches = _verify(row["password_hash"] if row is not None else _UNKNOWN_ACCOUNT_HASH, password)
    with engine.begin() as connection:
        if row is None or not matches:
            since = utcnow() - timedelta(seconds=limits.window_s)
            connection.execute(sa.delete(login_failures).where(login_failures.c.failed_at < since))
            connection.execute(sa.delete(login_attempts).where(login_attempts.c.window_started_at < since))
            connection.execute(
                sa.insert(login_failures).values(account=account, client_address=address, failed_at=utcnow())
            )
            return None
        connection.execute(sa.delete(login_failures).where(login_failures.c.account == account))
        connection.execute(
            sa.delete(login_attempts).where(
                login_attempts.c.account == account, login_attempts.c.client_address == address
            )
        )
        if _hasher.check_needs_rehash(row["password_hash"]):
            connection.execute(
                sa.update(users).where(users.c.id == row["id"]).values(password_hash=hash_password(password))
            )
        return _user(connection, row)


def change_password(
    connection: Connection, user: User, current_password: str, new_password: str, *, actor: Actor
) -> User:
    """Replace the password (the one-time one, or any); every other session of the user ends."""
    row = connection.execute(sa.select(users.c.password_hash).where(users.c.id == user.id)).first()
    if row is None or not _verify(row.password_hash, current_password):
        raise AccountError("the current password is not right")
    check_password_strength(new_password)
    if secrets.compare_digest(current_password.encode(), new_password.encode()):
        raise AccountError("choose a new password, not the current one")
    connection.execute(
        sa.update(users)
        .where(users.c.id == user.id)
        .values(
            password_hash=hash_password(new_password),
            password_is_temporary=False,
            session_epoch=users.c.session_epoch + 1,
        )
    )
    record(connection, actor, AuditAction.password_changed, None, f"{user.email} changed their password")
    changed = user_by_id(connection, user.id)
    assert changed is not None
    return changed


def end_sessions(connection: Connection, user: User) -> None:
    """Log the user out everywhere: cookies signed for the old epoch stop working."""
    connection.execute(
        sa.update(users).where(users.c.id == user.id).values(session_epoch=users.c.session_epoch + 1)
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(connection: Connection, user: User, tenants_: Iterable[Tenant], *, actor: Actor) -> str:
    """A new token for `user` acting in `tenants_` (where they hold a role); returned once, stored hashed."""
    chosen = list(tenants_)
    for tenant in chosen:
        if user.role_in(tenant.id) is None:
            raise AccountError(
                f"{user.email} has no role in {tenant.slug}; give one first with "
                f"`paylinks user add {user.email} --tenant {tenant.slug} --role admin|coach`"
            )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = cast(
        "sa.Row[Any]",
        connection.execute(
            sa.insert(api_tokens).values(user_id=user.id, token_sha256=token_digest(token))
        ).inserted_primary_key,
    )[0]
    for tenant in chosen:
        connection.execute(sa.insert(api_token_tenants).values(token_id=token_id, tenant_id=tenant.id))
        record(
            connection,
            actor,
            AuditAction.token_created,
            tenant.id,
            f"API token #{token_id} for {user.email} ({cast(Role, user.role_in(tenant.id)).value} of {tenant.slug})",
        )
    return token


def token_holder(connection: Connection, token: str) -> TokenHolder | None:
    """Who the token speaks for; None for an unknown, revoked or disabled one."""
    # The lookup is by the token's SHA-256: a caller cannot steer the hash byte by byte, so the
    # index lookup leaks nothing a timing attack could use.
    row = connection.execute(
        sa.select(api_tokens.c.id, api_tokens.c.user_id).where(
            api_tokens.c.token_sha256 == token_digest(token), api_tokens.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    user = user_by_id(connection, row.user_id)
    if user is None:
        return None
    tenant_ids = frozenset(
        connection.execute(
            sa.select(api_token_tenants.c.tenant_id).where(api_token_tenants.c.token_id == row.id)
        ).scalars()
    )
    if not tenant_ids:
        return None  # every role it acted in was removed: a token for nothing
    connection.execute(sa.update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=utcnow()))
    return TokenHolder(row.id, user, tenant_ids)


def tenants_of(connection: Connection, user: User) -> list[Tenant]:
    """The tenants the user holds a role in, by slug."""
    from paylinks.club.tenants import tenant_from_row

    if not user.roles:
        return []
    rows = connection.execute(
        sa.select(tenants).where(tenants.c.id.in_(list(user.roles))).order_by(tenants.c.slug)
    ).mappings()
    return [tenant_from_row(row) for row in rows]
