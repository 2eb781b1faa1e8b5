"""The `paylinks` command: one front door for the database, the demo, every flow and the emulator.

Each command checks what it can before starting a flow (configuration, tenant), so bad input
gets one clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from paylinks.errors import PaylinksError
from paylinks.settings import Settings, load_settings

app = typer.Typer(
    help="Persistent Stripe Payment Links for club fees.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


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


def fail(message: str, exit_code: int = 2) -> None:
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
    from paylinks.rendering import format_money

    return format_money(int(amount_cents), currency)


# -- database --------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = typer.Argument("head")) -> None:
    """Apply migrations to PAYLINKS_DATABASE_URL (default: a SQLite file under ./var)."""
    from paylinks import migrations

    settings = ctx.obj.settings
    guarded(lambda: _with_db_errors(settings, lambda: migrations.upgrade(settings.database_url, revision)))
    console.print(f"database at revision {migrations.current_revision(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(ctx: typer.Context, revision: str = typer.Argument("base")) -> None:
    """Revert migrations (default: all of them)."""
    from paylinks import migrations

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
    from paylinks.db import check_database
    from paylinks.demo_data import seed_demo
    from paylinks.runtime import engine_for

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
    from paylinks.db import check_database
    from paylinks.runtime import engine_for
    from paylinks.stripe_gateway import check_stripe_settings
    from paylinks.tenants import resolve_tenants

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
    from tasks.prefect_support import settings_for_runs

    try:
        with settings_for_runs(settings):
            return flow_call()
    except PaylinksError as error:
        fail(str(error), error.exit_code)
    except Exception as error:  # the flow run failed; Prefect has logged and recorded it
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
    reports = _run_flow(settings, lambda: backfill_payment_links(tenant=tenant, commit=commit))
    for report in reports:
        print_backfill_report(report)


def print_backfill_report(report: Any) -> None:
    summary = report.summary()
    table = Table(title=f"backfill {report.tenant} ({summary['mode']})", show_header=False)
    for key, value in summary.items():
        if key in ("tenant", "mode"):
            continue
        table.add_row(key, money(value) if key == "amount owed" else str(value))
    console.print(table)
    if not report.commit:
        steps = [row for row in report.step_rows() if row["action"] != "already there"]
        if steps:
            detail = Table(title="would do", title_justify="left")
            for column in ("action", "row", "player", "product", "order", "amount"):
                detail.add_column(column)
            for row in steps:
                player = (
                    f"{row['player_name']} (#{row['player']})" if row["player_name"] else f"#{row['player']}"
                )
                detail.add_row(
                    row["action"],
                    str(row["row"] or ""),
                    player,
                    str(row["product"]),
                    str(row["order"] or ""),
                    money(row["amount_cents"]),
                )
            console.print(detail)
        if report.plan.tiers_needed:
            console.print(
                "price tiers to create: "
                + ", ".join(
                    f"product {product_id} at {money(amount)}"
                    for product_id, amount in sorted(report.plan.tiers_needed)
                )
            )
    for row in report.skipped_rows():
        ids = ", ".join(f"{k} {row[k]}" for k in ("player", "product", "order") if row[k] is not None)
        console.print(
            f"[yellow]skipped[/] ({ids}): {row['reason']}" if ids else f"[yellow]skipped[/] {row['reason']}"
        )
    for row_id, error in report.mint_errors:
        console.print(f"[red]failed[/] row {row_id}: {error}")
    if report.aborted:
        console.print(f"[red]stopped[/] {report.aborted}")


@app.command()
def blast(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="Tenant slug."),
    test_email: str | None = typer.Option(
        None, help="Send one sample (the fullest email) to this address only."
    ),
    send: bool = typer.Option(False, "--send", help="Email every parent with a balance."),
    blast_key: str | None = typer.Option(None, help="Names the blast (default: tenant and today's date)."),
) -> None:
    """Email each parent what they owe (a preview unless --send or --test-email)."""
    from flows.outstanding_balance_email import outstanding_balance_email

    if test_email and send:
        fail("choose --test-email (one sample to you) or --send (every parent), not both")
    settings = ctx.obj.settings
    test_address = _valid_address(test_email, "--test-email") if test_email else None
    _preflight(settings, tenant, needs_stripe=False)
    report = _run_flow(
        settings,
        lambda: outstanding_balance_email(
            tenant=tenant, test_email=test_address, send=send, blast_key=blast_key
        )
    )
    print_blast_report(report)


def _valid_address(address: str, option: str) -> str:
    from paylinks.params import normalized_email

    try:
        return normalized_email(address)
    except ValueError as error:
        fail(f"{option} {error}")


def print_blast_report(report: Any) -> None:
    summary = report.summary()
    table = Table(
        title=f"outstanding balances {report.tenant} ({report.mode}, key {report.run_key})", show_header=False
    )
    for key, value in summary.items():
        if key in ("tenant", "mode", "blast key"):
            continue
        table.add_row(key, money(value) if key == "total owed" else str(value))
    console.print(table)
    if report.mode == "test":
        for outcome in report.sent:
            console.print(f"test email sent to {outcome.recipient}")
        return
    detail = Table(title="recipients", title_justify="left")
    for column in ("parent", "email", "items", "total", "outcome"):
        detail.add_column(column)
    for row in report.recipient_rows():
        detail.add_row(
            row["parent"],
            row["email"],
            str(row["items"]),
            money(row["total_cents"]),
            row["outcome"] + (f": {row['error']}" if row["error"] else ""),
        )
    console.print(detail)


@app.command()
def resend(
    ctx: typer.Context,
    player: str = typer.Argument(..., help="Player id or any part of the player's name."),
    tenant: str = typer.Option(..., help="Tenant slug."),
    to: str | None = typer.Option(None, help="Send to this address instead of the parent."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the email, send nothing."),
) -> None:
    """Resend a player's open payment links to their parent."""
    from flows.resend_payment_link import resend_payment_link

    settings = ctx.obj.settings
    to_address = _valid_address(to, "--to") if to else None
    _preflight(settings, tenant, needs_stripe=False)
    guarded(lambda: _find_player(settings, tenant, player))
    report = _run_flow(
        settings,
        lambda: resend_payment_link(tenant=tenant, player=player, to=to_address, dry_run=dry_run)
    )
    console.print(
        f"{report.player.describe()}: {report.outcome}"
        + (f" to {report.recipient}" if report.outcome == "sent" else "")
    )
    if report.email is not None:
        for line in _item_lines(report.email):
            console.print(line)
        if dry_run:
            console.rule(report.email.rendered.subject)
            console.print(report.email.rendered.text, markup=False)


def _item_lines(email: Any) -> list[str]:
    return [f"  {url}" for url in email.urls] + [
        f"  total {money(email.total_cents)} in {email.item_count} item(s)"
    ]


def _find_player(settings: Settings, tenant: str, query: str) -> Any:
    from paylinks.players import find_player
    from paylinks.runtime import engine_for
    from paylinks.tenants import tenant_by_slug

    with engine_for(settings.database_url).connect() as connection:
        return find_player(connection, tenant_by_slug(connection, tenant), query)


@app.command()
def lookup(
    ctx: typer.Context,
    player: str = typer.Argument(..., help="Player id or any part of the player's name."),
    tenant: str = typer.Option(..., help="Tenant slug."),
) -> None:
    """Print a player's payment links and their status: the fastest answer to "how do I pay?".

    Several players matching is fine here: each is shown with their links.
    """
    from paylinks.players import UnknownPlayerError, find_players
    from paylinks.queries import fetch_all
    from paylinks.runtime import engine_for
    from paylinks.tenants import tenant_by_slug

    settings = ctx.obj.settings
    _preflight(settings, tenant, needs_stripe=False)
    with engine_for(settings.database_url).connect() as connection:
        club = tenant_by_slug(connection, tenant)
        matches = guarded(lambda: find_players(connection, club, player))
        if not matches:
            fail(str(UnknownPlayerError(player, club)))
        for match in matches:
            links = fetch_all(
                connection, "player_payment_links", tenant_id=club.id, player_id=match.player_id
            )
            _print_player_links(match, links, club.currency)


def _print_player_links(match: Any, links: list, currency: str) -> None:
    console.print(match.describe() + (f", {match.parent_email}" if match.parent_email else ""))
    if not links:
        console.print("  no payment links yet (run the backfill)\n")
        return
    width = max(len(link["description"]) for link in links)
    for link in links:
        status = getattr(link["status"], "value", link["status"])
        # One line per link, never wrapped, so the url can be copied whole.
        console.print(
            f"  {link['description']:<{width}}  {money(link['amount_cents'], currency):>10}  "
            f"{status:<9}  {link['url'] or '(not minted yet)'}",
            soft_wrap=True,
            markup=False,
        )
    console.print()


@app.command()
def reconcile(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, help="Tenant slug; omit for every tenant."),
) -> None:
    """Learn from Stripe which links were paid; mark them and their orders paid."""
    from flows.reconcile_payments import reconcile_payments

    settings = ctx.obj.settings
    _preflight(settings, tenant, needs_stripe=True)
    for report in _run_flow(settings, lambda: reconcile_payments(tenant=tenant)):
        table = Table(title=f"reconcile {report.tenant} ({report.source})", show_header=False)
        for key, value in report.summary().items():
            if key not in ("tenant", "source"):
                table.add_row(key, str(value))
        console.print(table)
        for drift in report.drift:
            console.print(f"[yellow]drift[/] {drift.kind}: {drift.detail}")
        for why in report.skipped:
            console.print(f"[yellow]skipped event[/] {why}")


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
    port: int = typer.Option(12111, help="Port to listen on (loopback)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    latency_ms: int = typer.Option(0, help="Added latency per API call."),
    rate_limit: float | None = typer.Option(None, help="Requests per second before 429s."),
    fail_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Fraction of API calls that fail with 500."),
    api_key: str | None = typer.Option(
        None, envvar="PAYLINKS_EMULATOR_API_KEY", help="Accept only this key (default: any sk_test_ key)."
    ),
) -> None:
    """Run the local Stripe emulator (point PAYLINKS_STRIPE_API_BASE at it)."""
    from stripe_emulator import serve

    console.print(
        f"Stripe emulator on http://{host}:{port} (export PAYLINKS_STRIPE_API_BASE=http://{host}:{port})"
    )
    serve(
        host=host,
        port=port,
        latency_ms=latency_ms,
        rate_limit_rps=rate_limit,
        fail_rate=fail_rate,
        api_key=api_key,
    )


# -- the club office ----------------------------------------------------------------------------
user_app = typer.Typer(help="People who use the club office.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for the admin endpoint.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to bind (put a TLS proxy in front for anything but loopback)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the club office: pages for admins and coaches, the admin endpoint, Stripe's webhooks."""
    from office.app import check_office_settings, office_settings
    from office.server import serve as serve_office
    from paylinks.db import check_database
    from paylinks.runtime import engine_for

    settings = guarded(lambda: office_settings(ctx.obj.settings))
    guarded(lambda: check_office_settings(settings))
    guarded(lambda: check_database(engine_for(settings.database_url)))
    console.print(f"club office on http://{host}:{port} (database {settings.safe_database_url()})")
    if settings.stripe_webhook_secret is None:
        console.print("Stripe webhooks are off: set PAYLINKS_STRIPE_WEBHOOK_SECRET to receive them")
    guarded(lambda: serve_office(settings, host, port))


def _office_tenant(settings: Settings, slug: str) -> Any:
    from paylinks.db import check_database
    from paylinks.runtime import engine_for
    from paylinks.tenants import tenant_by_slug

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
    from paylinks.accounts import add_user
    from paylinks.audit import COMMAND_LINE
    from paylinks.db import Role
    from paylinks.runtime import engine_for

    try:
        chosen = Role(role.strip().lower())
    except ValueError:
        fail(f"--role must be admin or coach, not {role!r}")
    settings = ctx.obj.settings
    club = _office_tenant(settings, tenant)

    def add() -> Any:
        with engine_for(settings.database_url).begin() as connection:
            return add_user(connection, email, club, chosen, actor=COMMAND_LINE, reset_password=reset_password)

    added = guarded(add)
    console.print(f"{added.user.email} is {chosen.value} of {club.slug}")
    if added.one_time_password:
        console.print(f"one-time password: {added.one_time_password}", markup=False)
        console.print("it is shown only now; the first login asks for a new password")
    else:
        console.print("the account already existed and keeps its password (--reset-password issues a new one)")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The account the token acts for."),
    tenant: list[str] = typer.Option(..., help="Tenant slug (repeat for a token that acts in several)."),
) -> None:
    """Create an API token for the admin endpoint; it is printed once and stored only hashed."""
    from paylinks.accounts import AccountError, create_api_token, user_by_email
    from paylinks.audit import COMMAND_LINE
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
