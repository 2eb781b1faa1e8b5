"""Taking office access away from the command line: `paylinks user list|disable|enable|remove-role`
and `paylinks token list|revoke` (`user add` and `token create` are in `cli.setup`). Every change
is audited as the command line's, and takes effect at the person's next request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from cli.app import console, guarded, token_app, user_app
from paylinks.settings import Settings


def _in_database(settings: Settings, action: Callable[[Any], Any], *, write: bool = True) -> Any:
    """Run `action(connection)` on the checked database (one transaction when it writes)."""
    from cli.app import require_sqlite_file
    from paylinks.runtime import engine_for
    from paylinks.store.tables import check_database

    guarded(lambda: require_sqlite_file(settings))
    engine = engine_for(settings.database_url)
    guarded(lambda: check_database(engine))

    def run() -> Any:
        with engine.begin() if write else engine.connect() as connection:
            return action(connection)

    return guarded(run)


def _tenant(connection: Any, slug: str | None) -> Any:
    from paylinks.club.tenants import tenant_by_slug

    return tenant_by_slug(connection, slug) if slug else None


@user_app.command("list")
def user_list(
    ctx: typer.Context, tenant: str | None = typer.Option(None, help="Only this tenant's people.")
) -> None:
    """Every office account (or a tenant's people): its roles, and whether it is disabled."""
    from paylinks.access.people import account_users

    listed = _in_database(ctx.obj.settings, lambda c: account_users(c, _tenant(c, tenant)), write=False)
    for email, disabled, roles in listed:
        described = ", ".join(f"{role.value} of {slug}" for slug, role in roles.items()) or "no role"
        console.print(
            f"{email}  {'disabled' if disabled else 'active'}  {described}", markup=False, soft_wrap=True
        )
    if not listed:
        console.print("nobody yet: add someone with `paylinks user add`", markup=False)


@user_app.command("disable")
def user_disable(ctx: typer.Context, email: str = typer.Argument(..., help="The account's email.")) -> None:
    """Disable an account: it cannot log in, its sessions end and its API tokens answer 401."""
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.access.people import account_id, disable_user

    done = _in_database(ctx.obj.settings, lambda c: disable_user(c, account_id(c, email), actor=COMMAND_LINE))
    console.print(f"{done} is disabled: logged out everywhere, API tokens stopped", markup=False)


@user_app.command("enable")
def user_enable(ctx: typer.Context, email: str = typer.Argument(..., help="The account's email.")) -> None:
    """Let a disabled account log in again (its API tokens that were not revoked work again)."""
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.access.people import account_id, enable_user

    done = _in_database(ctx.obj.settings, lambda c: enable_user(c, account_id(c, email), actor=COMMAND_LINE))
    console.print(f"{done} can log in again", markup=False)


@user_app.command("remove-role")
def user_remove_role(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The account's email."),
    tenant: str = typer.Option(..., help="Tenant slug."),
) -> None:
    """Take a person's role in a tenant away; their API tokens no longer act there."""
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.access.people import account_id, remove_role

    def remove(connection: Any) -> str:
        return remove_role(
            connection, account_id(connection, email), _tenant(connection, tenant), actor=COMMAND_LINE
        )

    done = _in_database(ctx.obj.settings, remove)
    console.print(f"{done} no longer works for {tenant}", markup=False)


@token_app.command("list")
def token_list_command(
    ctx: typer.Context, tenant: str | None = typer.Option(None, help="Only tokens acting in this tenant.")
) -> None:
    """Every API token: its number, holder, tenants, when it was made and last used, and if revoked.
    The tokens themselves are never stored, so never shown."""
    from paylinks.access.people import token_list
    from paylinks.store.tables import as_utc

    def when(moment: Any) -> str:
        return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "never"

    listed = _in_database(ctx.obj.settings, lambda c: token_list(c, _tenant(c, tenant)), write=False)
    for t in listed:
        status = f"revoked {when(t.revoked_at)}" if t.revoked_at else "live"
        console.print(
            f"#{t.id}  {t.email}  in {', '.join(t.tenants) or 'no tenant'}  created {when(t.created_at)}  "
            f"last used {when(t.last_used_at)}  {status}",
            markup=False,
            soft_wrap=True,
        )
    if not listed:
        console.print("no token yet: make one with `paylinks token create`", markup=False)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: int = typer.Argument(
        ..., min=1, max=2**31 - 1, help="The token's number (`paylinks token list`)."
    ),
) -> None:
    """Revoke an API token: it answers 401 from the next request on."""
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.access.people import revoke_token

    holder = _in_database(ctx.obj.settings, lambda c: revoke_token(c, token_id, actor=COMMAND_LINE))
    console.print(f"API token #{token_id} of {holder} is revoked", markup=False)
