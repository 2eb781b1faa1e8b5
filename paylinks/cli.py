"""The `paylinks` command: one front door for the database, the demo, every flow and the emulator.

Each command checks what it can before starting a flow (configuration, tenant), so bad input
gets one clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from paylinks.errors import PaylinksError
from paylinks.settings import Settings, get_settings

app = typer.Typer(help="Persistent Stripe Payment Links for club fees.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, exit_code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
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
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations to PAYLINKS_DATABASE_URL (default: a SQLite file under ./var)."""
    from paylinks import migrations

    settings = get_settings()
    guarded(lambda: _with_db_errors(settings, lambda: migrations.upgrade(settings.database_url, revision)))
    console.print(f"database at revision {migrations.current_revision(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("base")) -> None:
    """Revert migrations (default: all of them)."""
    from paylinks import migrations

    settings = get_settings()
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
        raise ConfigurationError(f"cannot reach the database at {url}: {first_line}. "
                                 "Check PAYLINKS_DATABASE_URL.") from None


# -- demo data ------------------------------------------------------------------------------
@app.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo club (two tenants, about 40 players) into the database."""
    from paylinks.db import check_database
    from paylinks.demo_data import seed_demo
    from paylinks.runtime import engine_for

    settings = get_settings()
    engine = engine_for(settings.database_url)
    guarded(lambda: check_database(engine))
    report = seed_demo(engine)
    for slug in report.tenants:
        console.print(f"seeded tenant {slug}")
    for slug in report.skipped_tenants:
        console.print(f"tenant {slug} already exists; left as it is")
    console.print(f"{report.parents} parents, {report.players} players, {report.orders} orders")


# -- flows ----------------------------------------------------------------------------------
def _preflight(settings: Settings, tenant: Optional[str], needs_stripe: bool) -> None:
    from paylinks.db import check_database
    from paylinks.runtime import engine_for
    from paylinks.stripe_gateway import check_stripe_settings
    from paylinks.tenants import resolve_tenants

    def check() -> None:
        engine = engine_for(settings.database_url)
        check_database(engine)
        if needs_stripe:
            check_stripe_settings(settings)
        with engine.connect() as connection:
            resolve_tenants(connection, tenant)

    guarded(check)


def _run_flow(flow_call: Callable[[], Any]) -> Any:
    """Run a flow; a failed run exits 1 with its error's message (details are in the Prefect UI)."""
    try:
        return flow_call()
    except PaylinksError as error:
        fail(str(error), error.exit_code)
    except Exception as error:  # the flow run failed; Prefect has logged and recorded it
        fail(f"{type(error).__name__}: {error}", 1)


@app.command()
def backfill(
    tenant: Optional[str] = typer.Option(None, help="Tenant slug; omit for every tenant."),
    commit: bool = typer.Option(False, "--commit", help="Act: create prices and links, write rows."),
) -> None:
    """Make sure every bill has its Stripe Payment Link (a dry run unless --commit)."""
    from flows.backfill_payment_links import backfill_payment_links

    settings = get_settings()
    _preflight(settings, tenant, needs_stripe=commit)
    reports = _run_flow(lambda: backfill_payment_links(tenant=tenant, commit=commit))
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
                detail.add_row(row["action"], str(row["row"] or ""), str(row["player"]), str(row["product"]),
                               str(row["order"] or ""), money(row["amount_cents"]))
            console.print(detail)
        if report.plan.tiers_needed:
            console.print("price tiers to create: " + ", ".join(
                f"product {product_id} at {money(amount)}" for product_id, amount in sorted(report.plan.tiers_needed)))
    for row in report.skipped_rows():
        ids = ", ".join(f"{k} {row[k]}" for k in ("player", "product", "order") if row[k] is not None)
        console.print(f"[yellow]skipped[/] ({ids}): {row['reason']}" if ids else f"[yellow]skipped[/] {row['reason']}")
    for row_id, error in report.mint_errors:
        console.print(f"[red]failed[/] row {row_id}: {error}")
    if report.aborted:
        console.print(f"[red]stopped[/] {report.aborted}")


# -- the local Stripe emulator ----------------------------------------------------------------
@app.command("stripe-emulator")
def stripe_emulator(
    port: int = typer.Option(12111, help="Port to listen on (loopback)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    latency_ms: int = typer.Option(0, help="Added latency per API call."),
    rate_limit: Optional[float] = typer.Option(None, help="Requests per second before 429s."),
    fail_rate: float = typer.Option(0.0, min=0.0, max=1.0, help="Fraction of API calls that fail with 500."),
    api_key: Optional[str] = typer.Option(None, envvar="PAYLINKS_EMULATOR_API_KEY",
                                          help="Accept only this key (default: any sk_test_ key)."),
) -> None:
    """Run the local Stripe emulator (point PAYLINKS_STRIPE_API_BASE at it)."""
    from paylinks.stripe_emulator import serve

    console.print(f"Stripe emulator on http://{host}:{port} (export PAYLINKS_STRIPE_API_BASE=http://{host}:{port})")
    serve(host=host, port=port, latency_ms=latency_ms, rate_limit_rps=rate_limit, fail_rate=fail_rate,
          api_key=api_key)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
