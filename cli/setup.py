"""The commands that set paylinks up: the database, the demo data, the local Stripe emulator,
tenants' Stripe accounts, the club office and its people, and Stripe's shared limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from cli.app import (
    app,
    console,
    db_app,
    err_console,
    fail,
    guarded,
    limits_app,
    preflight,
    require_sqlite_file,
    tenant_app,
    token_app,
    user_app,
)
from paylinks.settings import Settings

if TYPE_CHECKING:
    pass


# -- database --------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = typer.Argument("head")) -> None:
    """Apply migrations to PAYLINKS_DATABASE_URL (default: a SQLite file under ./var)."""
    from paylinks.store import migrations

    settings = ctx.obj.settings
    guarded(lambda: _with_db_errors(settings, lambda: migrations.upgrade(settings.database_url, revision)))
    console.print(f"database at revision {migrations.current_revision(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(ctx: typer.Context, revision: str = typer.Argument("base")) -> None:
    """Revert migrations (default: all of them)."""
    from paylinks.store import migrations

    settings = ctx.obj.settings
    guarded(lambda: _with_db_errors(settings, lambda: migrations.downgrade(settings.database_url, revision)))
    console.print(f"database at revision {migrations.current_revision(settings.database_url) or 'base'}")


def _with_db_errors(settings: Settings, action: Callable[[], Any]) -> Any:
    import sqlalchemy as sa

    from paylinks.errors import ConfigurationError

    try:
        return action()
    except sa.exc.OperationalError as error:
        url = sa.make_url(settings.database_url).render_as_string(hide_password=True)
        first_line = str(error.orig).strip().splitlines()[0] if error.orig else "unreachable"
        raise ConfigurationError(
            f"cannot reach the database at {url}: {first_line}. Check PAYLINKS_DATABASE_URL."
        ) from None


# -- demo data ------------------------------------------------------------------------------
@app.command("seed-demo")
def seed_demo_command(ctx: typer.Context) -> None:
    """Load the demo club (two tenants, about 40 players) into the database."""
    from paylinks.demo.data import seed_demo
    from paylinks.runtime import engine_for
    from paylinks.store.tables import check_database

    settings = ctx.obj.settings
    guarded(lambda: require_sqlite_file(settings))
    engine = engine_for(settings.database_url)
    guarded(lambda: check_database(engine))
    report = seed_demo(engine, settings.club_timezone)
    for slug in report.tenants:
        console.print(f"seeded tenant {slug}")
    for slug in report.skipped_tenants:
        console.print(f"tenant {slug} already exists; left as it is")
    console.print(f"{report.parents} parents, {report.players} players, {report.orders} orders")


# -- the local Stripe emulator ----------------------------------------------------------------
@app.command("stripe-emulator")
def stripe_emulator(
    ctx: typer.Context,
    port: int | None = typer.Option(
        None, help="Port to listen on (default: the one its kept links point at, else 12111)."
    ),
    state: str | None = typer.Option(
        None,
        help="File the emulator keeps its state in across restarts (default: var/stripe-emulator.json, "
        "beside the demo's database); :memory: keeps nothing.",
    ),
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback unless --allow-remote)."),
    allow_remote: bool = typer.Option(
        False,
        "--allow-remote",
        help="Bind an address other than loopback: anyone who reaches it can use the admin endpoints.",
    ),
    latency_ms: int = typer.Option(0, help="Added latency per API call."),
    rate_limit: float | None = typer.Option(None, help="Requests per second per account before 429s."),
    link_create_rate: float | None = typer.Option(
        None, help="Payment links created per second per account before 429s (Stripe: 25)."
    ),
    fail_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Fraction of API calls that fail with 500."),
    api_key: str | None = typer.Option(
        None,
        envvar="PAYLINKS_EMULATOR_API_KEY",
        help="Accept only this key (default: any sk_test_/sk_live_ key; the prefix sets the mode).",
    ),
    webhook_url: str | None = typer.Option(None, help="POST every event here, signed as Stripe signs."),
    webhook_secret: str | None = typer.Option(
        None, help="Signing secret (whsec_...) for --webhook-url (default: PAYLINKS_STRIPE_WEBHOOK_SECRET)."
    ),
) -> None:
    """Run the local Stripe emulator (point PAYLINKS_STRIPE_API_BASE at it); its state is kept in a file."""
    from cli.local_club import DEFAULT_EMULATOR_PORT, emulator_state_path
    from paylinks.settings import is_loopback_host
    from stripe_emulator import IN_MEMORY, EmulatorStateError, StateFile, serve

    if not allow_remote and not is_loopback_host(host):
        fail(
            f"--host {host} is not a loopback address: anyone who reaches it could use the emulator's "
            "admin endpoints (/_emulator/...), which have no authentication; bind 127.0.0.1, or pass "
            "--allow-remote to serve other machines anyway"
        )
    if webhook_url and not webhook_secret:
        configured = ctx.obj.settings.stripe_webhook_secret
        webhook_secret = configured.get_secret_value() if configured else None
        if not webhook_secret:
            fail("--webhook-url needs --webhook-secret or PAYLINKS_STRIPE_WEBHOOK_SECRET (whsec_...)")
    state_path = state or str(emulator_state_path(ctx.obj.settings))
    remembered = None
    if state_path != IN_MEMORY:
        try:
            remembered = StateFile(state_path).remembered_port()
        except EmulatorStateError as error:
            fail(str(error))
    if port is not None and remembered not in (None, port):
        fail(
            f"the links kept in {state_path} point at port {remembered}, so the emulator on that state "
            f"serves there: leave out --port, or give another --state (:memory: keeps nothing) for port {port}"
        )
    port = port or remembered or DEFAULT_EMULATOR_PORT
    console.print(
        f"Stripe emulator on http://{host}:{port} (export PAYLINKS_STRIPE_API_BASE=http://{host}:{port})"
    )
    console.print(
        "keeping nothing between runs"
        if state_path == IN_MEMORY
        else f"state kept in {state_path} ({'resumed' if remembered else 'new'})",
        markup=False,
    )
    if webhook_url:
        console.print(f"delivering signed webhooks to {webhook_url}", markup=False)
    try:
        serve(
            host=host,
            port=port,
            state=state_path,
            latency_ms=latency_ms,
            rate_limit_rps=rate_limit,
            link_create_rps=link_create_rate,
            fail_rate=fail_rate,
            api_key=api_key,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
    except (
        ValueError,
        EmulatorStateError,
    ) as error:  # a refused setting, e.g. a negative rate; a bad state file
        fail(str(error))


@tenant_app.command("account")
def tenant_account(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Tenant slug."),
    account_id: str | None = typer.Argument(None, help="The club's Stripe (Connect) account id, acct_..."),
    platform: bool = typer.Option(False, "--platform", help="Use the platform's own account again."),
) -> None:
    """Pay a club into its own Stripe account (Connect), or back into the platform's (--platform).

    The account is checked with Stripe first (GET /v1/account with Stripe-Account); one that
    does not answer is refused and nothing is saved.
    """
    from paylinks.club.tenants import set_stripe_account
    from paylinks.runtime import engine_for

    if platform == (account_id is not None):
        fail("give the club's account id (acct_...), or --platform to use the platform's account, not both")
    settings = ctx.obj.settings
    preflight(settings, slug, needs_stripe=not platform)
    engine = engine_for(settings.database_url)
    club = guarded(lambda: set_stripe_account(engine, settings, slug, None if platform else account_id))
    if club.stripe_account:
        console.print(f"tenant {club.slug} now pays into Stripe account {club.stripe_account}", markup=False)
    else:
        console.print(f"tenant {club.slug} now pays into the platform's Stripe account", markup=False)


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", help="Address to bind (put a TLS proxy in front for anything but loopback)."
    ),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the club office: pages for admins and coaches, the admin endpoint, Stripe's webhooks."""
    from office.app import check_office_settings, office_settings
    from office.server import serve as serve_office
    from paylinks.runtime import engine_for
    from paylinks.store.tables import check_database

    settings = guarded(lambda: office_settings(ctx.obj.settings))
    guarded(lambda: check_office_settings(settings))
    guarded(lambda: check_database(engine_for(settings.database_url)))
    _warn_of_a_shared_address(settings, host)
    console.print(f"club office on http://{host}:{port} (database {settings.safe_database_url()})")
    if settings.stripe_webhook_secret is None:
        console.print("Stripe webhooks are off: set PAYLINKS_STRIPE_WEBHOOK_SECRET to receive them")
    guarded(lambda: serve_office(settings, host, port))


def _warn_of_a_shared_address(settings: Settings, host: str) -> None:
    """On an address other than loopback without PAYLINKS_OFFICE_BEHIND_PROXY, every request behind
    a proxy comes from the proxy's one address: the login throttle would count all users as one."""
    from paylinks.settings import is_loopback_host

    if settings.office_behind_proxy or is_loopback_host(host):
        return
    err_console.print(
        f"warning: serving on {host} without PAYLINKS_OFFICE_BEHIND_PROXY: behind a reverse proxy every "
        "user would come from the proxy's one address, and the login throttle would lock them out "
        "together; set PAYLINKS_OFFICE_BEHIND_PROXY=true when a proxy is in front",
        soft_wrap=True,
        markup=False,
    )


def _office_tenant(settings: Settings, slug: str) -> Any:
    from paylinks.club.tenants import tenant_by_slug
    from paylinks.runtime import engine_for
    from paylinks.store.tables import check_database

    engine = engine_for(settings.database_url)
    guarded(lambda: check_database(engine))
    with engine.connect() as connection:
        return guarded(lambda: tenant_by_slug(connection, slug))


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The person's email address (their login)."),
    tenant: str = typer.Option(..., help="Tenant slug."),
    role: str = typer.Option(..., help="admin or coach."),
    reset_password: bool = typer.Option(
        False, "--reset-password", help="Issue a new one-time password to an existing account."
    ),
) -> None:
    """Give a person a role in a tenant; a new account gets a one-time password, printed once."""
    from paylinks.access.accounts import add_user
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.runtime import engine_for
    from paylinks.vocabulary import Role

    try:
        chosen = Role(role.strip().lower())
    except ValueError:
        fail(f"--role must be admin or coach, not {role!r}")
    settings = ctx.obj.settings
    club = _office_tenant(settings, tenant)

    def add() -> Any:
        with engine_for(settings.database_url).begin() as connection:
            return add_user(
                connection, email, club, chosen, actor=COMMAND_LINE, reset_password=reset_password
            )

    added = guarded(add)
    console.print(f"{added.user.email} is {chosen.value} of {club.slug}")
    if added.one_time_password:
        console.print(f"one-time password: {added.one_time_password}", markup=False)
        console.print("it is shown only now; the first login asks for a new password")
    else:
        console.print(
            "the account already existed and keeps its password (--reset-password issues a new one)"
        )


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The account the token acts for."),
    tenant: list[str] = typer.Option(..., help="Tenant slug (repeat for a token that acts in several)."),
) -> None:
    """Create an API token for the admin endpoint; it is printed once and stored only hashed."""
    from paylinks.access.accounts import AccountError, create_api_token, user_by_email
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.runtime import engine_for

    settings = ctx.obj.settings
    clubs = [_office_tenant(settings, slug) for slug in tenant]

    def create() -> str:
        with engine_for(settings.database_url).begin() as connection:
            user = user_by_email(connection, email)
            if user is None:
                raise AccountError(
                    f"no office account for {email}; add one with `paylinks user add {email} --tenant SLUG --role admin`"
                )
            return create_api_token(connection, user, clubs, actor=COMMAND_LINE)

    token = guarded(create)
    console.print(f"API token for {email} in {', '.join(c.slug for c in clubs)} (shown only now):")
    console.print(token, markup=False, soft_wrap=True)


# -- Stripe's limits ------------------------------------------------------------------------
@limits_app.command("setup")
def limits_setup(ctx: typer.Context) -> None:
    """Create or update the Prefect global concurrency limits that pace every worker's Stripe calls:
    per account in use (the key's own and every tenant's connected account) and mode, one for
    requests (25/s test, 100/s live) and one for payment link creation. Safe to run again."""
    from paylinks.club.tenants import all_tenants
    from paylinks.runtime import engine_for
    from paylinks.stripe_api.gateway import StripeGateway
    from paylinks.stripe_api.keys import key_is_live
    from paylinks.stripe_api.where import stripe_where
    from tasks.pacing import ensure_stripe_limits, shared_limits_configured
    from tasks.run_settings import with_secret_blocks

    settings = guarded(lambda: with_secret_blocks(ctx.obj.settings))
    preflight(settings, None, needs_stripe=True)
    engine = engine_for(settings.database_url)
    where = guarded(
        lambda: _with_db_errors(settings, lambda: stripe_where(engine, StripeGateway(settings), settings))
    )
    with engine.connect() as connection:
        connected = [t.stripe_account for t in all_tenants(connection) if t.stripe_account]
    livemode = key_is_live(StripeGateway(settings).api_key)
    if not shared_limits_configured():
        err_console.print(
            "note: PREFECT_API_URL is not set, so these limits go to this machine's ephemeral Prefect "
            "database; workers share them only through a Prefect server.",
            soft_wrap=True,
            markup=False,
        )
    try:
        changes = ensure_stripe_limits(settings, [where.account, *connected], livemode)
    except Exception as error:  # the Prefect API: unreachable, refusing
        fail(f"cannot set up the limits on the Prefect API: {type(error).__name__}: {error}")
    for change in changes:
        console.print(change.describe(), markup=False, soft_wrap=True)
