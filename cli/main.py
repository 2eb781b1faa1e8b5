"""The `paylinks` command: one front door for the database, the demo, every flow and the emulator.

Each command checks what it can before starting a flow (configuration, tenant), so bad input
gets one clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.table import Table

from paylinks.errors import PaylinksError
from paylinks.settings import Settings, load_settings
from tasks.run_settings import settings_for_runs

if TYPE_CHECKING:
    from paylinks.billing.report import BackfillReport
    from paylinks.payments.reconcile import ReconcileReport

app = typer.Typer(
    help="Persistent Stripe Payment Links for club fees.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
limits_app = typer.Typer(
    help="Stripe's rate limits, shared by every worker through Prefect.", no_args_is_help=True
)
app.add_typer(limits_app, name="limits")


class Edge:
    """What every command shares: the settings, read from the environment once, on first use."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = guarded(load_settings)
        return self._settings


@app.callback()
def _edge(ctx: typer.Context) -> None:
    ctx.obj = Edge()


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, exit_code: int = 2) -> NoReturn:
    # soft_wrap: one line however narrow the terminal; markup=False: a name with [brackets] shows as typed.
    err_console.print("[bold red]error:[/] ", end="")
    err_console.print(message, soft_wrap=True, markup=False, highlight=False)
    raise typer.Exit(exit_code)


def guarded(action: Callable[[], Any]) -> Any:
    """Run `action`, turning paylinks' own errors into one clear line and their exit code."""
    try:
        return action()
    except PaylinksError as error:
        fail(str(error), error.exit_code)


def money(amount_cents: int, currency: str = "usd") -> str:
    from paylinks.money import format_money

    return format_money(int(amount_cents), currency)


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
    guarded(lambda: _require_sqlite_file(settings))
    engine = engine_for(settings.database_url)
    guarded(lambda: check_database(engine))
    report = seed_demo(engine)
    for slug in report.tenants:
        console.print(f"seeded tenant {slug}")
    for slug in report.skipped_tenants:
        console.print(f"tenant {slug} already exists; left as it is")
    console.print(f"{report.parents} parents, {report.players} players, {report.orders} orders")


# -- flows ----------------------------------------------------------------------------------
def _preflight(settings: Settings, tenant: str | None, needs_stripe: bool) -> None:
    from paylinks.club.tenants import resolve_tenants
    from paylinks.runtime import engine_for
    from paylinks.store.tables import check_database
    from paylinks.stripe_api.gateway import check_stripe_settings

    def check() -> None:
        _require_sqlite_file(settings)
        engine = engine_for(settings.database_url)
        check_database(engine)
        if needs_stripe:
            check_stripe_settings(settings)
        with engine.connect() as connection:
            resolve_tenants(connection, tenant)

    guarded(check)


def _require_sqlite_file(settings: Settings) -> None:
    """A mistyped SQLite path is refused before connecting, which would create an empty file."""
    from pathlib import Path

    import sqlalchemy as sa

    from paylinks.errors import ConfigurationError

    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            raise ConfigurationError(
                f"there is no SQLite database at {url.database}; check PAYLINKS_DATABASE_URL, "
                "or create it with `paylinks db upgrade`"
            )


def _run_flow(settings: Settings, flow_call: Callable[[], Any]) -> Any:
    """Run a flow with these settings; a failed run exits 1 with its error's message (details are
    in the Prefect UI)."""
    try:
        with settings_for_runs(settings):
            return flow_call()
    except Exception as error:
        _flow_failed(error)


def _flow_failed(error: Exception) -> NoReturn:
    if isinstance(error, PaylinksError):
        fail(str(error), error.exit_code)
    # The flow run failed for a reason of no one's making here; Prefect has logged and recorded it.
    fail(f"{type(error).__name__}: {error}", 1)


@app.command()
def backfill(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, help="Tenant slug; omit for every tenant."),
    commit: bool = typer.Option(False, "--commit", help="Act: create prices and links, write rows."),
) -> None:
    """Make sure every bill has its Stripe Payment Link (a dry run unless --commit)."""
    from flows.backfill_payment_links import backfill_payment_links

    settings = ctx.obj.settings
    _preflight(settings, tenant, needs_stripe=commit)
    from flows.backfill_payment_links import BackfillIncompleteError

    try:
        with settings_for_runs(settings):
            # Without fan_out every tenant runs in this process: one report each.
            reports = cast("list[BackfillReport]", backfill_payment_links(tenant=tenant, commit=commit))
    except BackfillIncompleteError as error:
        for report in error.reports:  # every tenant's outcome, the failed ones too
            print_backfill_report(report)
        fail(str(error), 1)
    except Exception as error:
        _flow_failed(error)
    for report in reports:
        print_backfill_report(report)


def print_backfill_report(report: Any) -> None:
    from paylinks.present.backfill import backfill_tables

    summary, steps, skipped, findings = backfill_tables(report)
    print_tables([summary, steps] if steps.rows else [summary])
    print_tables([t for t in (skipped, findings) if t.rows])


def print_tables(tables: list[Any]) -> None:
    """Presenter tables (`paylinks.present.tables.Table`) on the console: a summary of figures
    without a header row, the others with one; urls and ids never wrapped."""
    for presented in tables:
        figures = presented.columns == ("figure", "value")
        table = Table(title=presented.title, title_justify="left", show_header=not figures)
        for column in presented.columns:
            table.add_column(column, overflow="fold")
        for row in presented.rows:
            table.add_row(*row)
        if not presented.rows:
            table.caption = presented.empty
        console.print(table)


@app.command()
def blast(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="Tenant slug."),
    test_email: str | None = typer.Option(
        None, help="Send one sample (the fullest email, its buttons not payable) to this address only."
    ),
    send: bool = typer.Option(False, "--send", help="Email every parent with a balance."),
    blast_key: str | None = typer.Option(
        None, help="Names the blast (default: resume the tenant's unfinished blast, else start a new one)."
    ),
) -> None:
    """Email each parent what they owe (a preview unless --send or --test-email)."""
    from flows.outstanding_balance_email import outstanding_balance_email

    if test_email and send:
        fail("choose --test-email (one sample to you) or --send (every parent), not both")
    settings = ctx.obj.settings
    test_address = _valid_address(test_email, "--test-email") if test_email else None
    _preflight(settings, tenant, needs_stripe=True)
    report = _run_flow(
        settings,
        lambda: outstanding_balance_email(
            tenant=tenant, test_email=test_address, send=send, blast_key=blast_key
        ),
    )
    print_blast_report(report)


def _valid_address(address: str, option: str) -> str:
    from paylinks.params import normalized_email

    try:
        return normalized_email(address)
    except ValueError as error:
        fail(f"{option} {error}")


def print_blast_report(report: Any) -> None:
    from paylinks.present.blast import blast_tables

    summary, recipients, held_back = blast_tables(report)
    print_tables([summary, recipients] + ([held_back] if held_back.rows else []))


@app.command()
def resend(
    ctx: typer.Context,
    player: str = typer.Argument(..., help="Player id or any part of the player's name."),
    tenant: str = typer.Option(..., help="Tenant slug."),
    to: str | None = typer.Option(
        None, help="Send every parent's email to this address instead, each labelled with its parent."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the emails, send nothing."),
) -> None:
    """Resend a player's open payment links: each parent who owes some of them gets their own email."""
    from flows.resend_payment_link import resend_payment_link
    from paylinks.present.blast import resend_tables

    settings = ctx.obj.settings
    to_address = _valid_address(to, "--to") if to else None
    _preflight(settings, tenant, needs_stripe=True)
    guarded(lambda: _find_player(settings, tenant, player))
    report = _run_flow(
        settings, lambda: resend_payment_link(tenant=tenant, player=player, to=to_address, dry_run=dry_run)
    )
    summary, parents, held_back = resend_tables(report)
    print_tables([summary] + ([parents] if parents.rows else []) + ([held_back] if held_back.rows else []))
    if dry_run:
        for parent in report.parents:
            console.rule(parent.email.rendered.subject)
            console.print(parent.email.rendered.text, markup=False, soft_wrap=True)


def _find_player(settings: Settings, tenant: str, query: str) -> Any:
    from paylinks.club.players import find_player
    from paylinks.club.tenants import tenant_by_slug
    from paylinks.runtime import engine_for

    with engine_for(settings.database_url).connect() as connection:
        return find_player(connection, tenant_by_slug(connection, tenant), query)


@app.command()
def lookup(
    ctx: typer.Context,
    player: str = typer.Argument(..., help="Player id or any part of the player's name."),
    tenant: str = typer.Option(..., help="Tenant slug."),
) -> None:
    """Print a player's payment links and their status: the fastest answer to "how do I pay?".

    Several players matching is fine here: each is shown with their links. Only links that can
    be paid now show their url; an open one that cannot says why.
    """
    from paylinks.club.balances import player_links_now
    from paylinks.club.players import UnknownPlayerError, find_players
    from paylinks.club.tenants import tenant_by_slug
    from paylinks.runtime import engine_for
    from paylinks.stripe_api.gateway import StripeGateway

    settings = ctx.obj.settings
    _preflight(settings, tenant, needs_stripe=True)
    with engine_for(settings.database_url).connect() as connection:
        club = tenant_by_slug(connection, tenant)
    context = guarded(lambda: StripeGateway(settings, account=club.stripe_account).context())
    with engine_for(settings.database_url).connect() as connection:
        matches = guarded(lambda: find_players(connection, club, player))
        if not matches:
            fail(str(UnknownPlayerError(player, club)))
        for match in matches:
            links = player_links_now(connection, club, match.player_id, context)
            _print_player_links(match, links, club.currency)


def _print_player_links(match: Any, links: list, currency: str) -> None:
    from paylinks.present.tables import label

    console.print(match.describe() + (f", {match.parent_email}" if match.parent_email else ""), markup=False)
    if not links:
        console.print("  no payment links yet (run the backfill)\n")
        return
    width = max(len(link.description) for link in links)
    for link in links:
        if link.offered:
            status, where = label(link.status), link.url
        elif link.withheld is not None:
            status, where = "not offered", label(link.withheld)
        else:
            status, where = label(link.status), ""
        owed_by = f"owed by {link.parent_name}" if link.parent_name else "no parent on file"
        # One line per link, never wrapped, so the url can be copied whole.
        console.print(
            f"  {link.description:<{width}}  {money(link.amount_cents, currency):>12}  "
            f"{status:<11}  {owed_by}  {where}".rstrip(),
            soft_wrap=True,
            markup=False,
        )
    console.print()


@app.command()
def reconcile(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, help="Tenant slug; omit for every tenant."),
) -> None:
    """Learn from Stripe what was paid, refunded or disputed; mark rows and their orders."""
    from flows.reconcile_payments import ReconcileIncompleteError, reconcile_payments
    from paylinks.present.reconcile import reconcile_tables

    settings = ctx.obj.settings
    _preflight(settings, tenant, needs_stripe=True)

    try:
        with settings_for_runs(settings):
            reports = reconcile_payments(tenant=tenant)
        failure = None
    except ReconcileIncompleteError as error:
        reports, failure = error.reports, error
    except Exception as error:
        _flow_failed(error)
    for report in reports:
        # Without fan-out the flow returns its reports, never child runs.
        tables = reconcile_tables(cast("ReconcileReport", report))
        print_tables([t for i, t in enumerate(tables) if i == 0 or t.rows])
    if failure is not None:
        fail(str(failure), 1)


def quiet_prefect_console() -> None:
    """Keep Prefect's per-run chatter off the console; its warnings and errors still show there.

    Only the console handler is raised to WARNING (Prefect reads PREFECT_LOGGING_HANDLERS_* when
    it configures logging; the ephemeral API's process inherits it): the run loggers keep INFO,
    so every run's log lines still reach the Prefect API and the UI shows them.
    """
    import os

    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    if "prefect" in sys.modules:  # logging is configured on import: apply the change now
        from prefect.logging.configuration import setup_logging

        setup_logging()


@app.command()
def demo(
    ctx: typer.Context,
    reset_database: bool = typer.Option(
        False, "--reset-database", help="Allow wiping the SQLite file PAYLINKS_DATABASE_URL names."
    ),
) -> None:
    """The whole job on the embedded defaults: SQLite, the local emulator, the outbox."""
    quiet_prefect_console()
    from cli.demo import closing_table, closing_words, run_demo

    settings = ctx.obj.settings
    tallies = guarded(lambda: run_demo(console, settings, reset_database=reset_database))
    console.print()
    console.print(closing_table(tallies))
    for line in closing_words(settings):
        console.print(line, markup=False)


# -- the local Stripe emulator ----------------------------------------------------------------
@app.command("stripe-emulator")
def stripe_emulator(
    ctx: typer.Context,
    port: int = typer.Option(12111, help="Port to listen on (loopback)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
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
    """Run the local Stripe emulator (point PAYLINKS_STRIPE_API_BASE at it)."""
    from stripe_emulator import serve

    if webhook_url and not webhook_secret:
        configured = ctx.obj.settings.stripe_webhook_secret
        webhook_secret = configured.get_secret_value() if configured else None
        if not webhook_secret:
            fail("--webhook-url needs --webhook-secret or PAYLINKS_STRIPE_WEBHOOK_SECRET (whsec_...)")
    console.print(
        f"Stripe emulator on http://{host}:{port} (export PAYLINKS_STRIPE_API_BASE=http://{host}:{port})"
    )
    if webhook_url:
        console.print(f"delivering signed webhooks to {webhook_url}", markup=False)
    try:
        serve(
            host=host,
            port=port,
            latency_ms=latency_ms,
            rate_limit_rps=rate_limit,
            link_create_rps=link_create_rate,
            fail_rate=fail_rate,
            api_key=api_key,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
    except ValueError as error:  # a setting the emulator refuses, e.g. a negative rate
        fail(str(error))


# -- tenants ---------------------------------------------------------------------------------------
tenant_app = typer.Typer(help="Tenants (clubs) and where their money goes.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")


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
    _preflight(settings, slug, needs_stripe=not platform)
    engine = engine_for(settings.database_url)
    club = guarded(lambda: set_stripe_account(engine, settings, slug, None if platform else account_id))
    if club.stripe_account:
        console.print(f"tenant {club.slug} now pays into Stripe account {club.stripe_account}", markup=False)
    else:
        console.print(f"tenant {club.slug} now pays into the platform's Stripe account", markup=False)


# -- the club office ----------------------------------------------------------------------------
user_app = typer.Typer(help="People who use the club office.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for the admin endpoint.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")


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
    console.print(f"club office on http://{host}:{port} (database {settings.safe_database_url()})")
    if settings.stripe_webhook_secret is None:
        console.print("Stripe webhooks are off: set PAYLINKS_STRIPE_WEBHOOK_SECRET to receive them")
    guarded(lambda: serve_office(settings, host, port))


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
    from paylinks.stripe_api.gateway import StripeGateway, key_is_live
    from paylinks.stripe_api.where import stripe_where
    from tasks.pacing import ensure_stripe_limits, shared_limits_configured
    from tasks.run_settings import with_secret_blocks

    settings = guarded(lambda: with_secret_blocks(ctx.obj.settings))
    _preflight(settings, None, needs_stripe=True)
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
