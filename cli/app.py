"""What every `paylinks` command shares: the Typer app and its groups, the settings read once at
the edge, and the one way to fail (one clear line and an exit code, never a traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from paylinks.errors import PaylinksError
from paylinks.settings import Settings, load_settings
from tasks.run_settings import settings_for_runs

if TYPE_CHECKING:
    pass

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


# Commands that serve until stopped; every other command runs and exits.
LONG_RUNNING = ("office", "serve", "stripe-emulator")


@app.callback()
def _edge(ctx: typer.Context) -> None:
    ctx.obj = Edge()
    if ctx.invoked_subcommand not in LONG_RUNNING:
        from tasks.prefect_api import one_shot_api

        ctx.with_resource(one_shot_api())


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


# -- the command groups ---------------------------------------------------------------------------------------
tenant_app = typer.Typer(help="Tenants (clubs) and where their money goes.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")

user_app = typer.Typer(help="People who use the club office.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for the admin endpoint.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")


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


# -- flows ----------------------------------------------------------------------------------
def preflight(settings: Settings, tenant: str | None, needs_stripe: bool) -> None:
    from paylinks.club.tenants import resolve_tenants
    from paylinks.runtime import engine_for
    from paylinks.store.tables import check_database
    from paylinks.stripe_api.keys import check_stripe_settings

    def check() -> None:
        require_sqlite_file(settings)
        engine = engine_for(settings.database_url)
        check_database(engine)
        if needs_stripe:
            check_stripe_settings(settings)
        with engine.connect() as connection:
            resolve_tenants(connection, tenant)

    guarded(check)
    if needs_stripe:
        stripe_reachable(settings)


def stripe_reachable(settings: Settings) -> None:
    """Stripe answers at its address, or one line naming the URL and its setting (exit code 2)."""
    from paylinks.stripe_api.failures import check_stripe_reachable

    guarded(lambda: check_stripe_reachable(settings))


def require_sqlite_file(settings: Settings) -> None:
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


def run_flow(settings: Settings, flow_call: Callable[[], Any]) -> Any:
    """Run a flow with these settings; a failed run exits 1 with its error's message (details are
    in the Prefect UI)."""
    try:
        with settings_for_runs(settings):
            return flow_call()
    except Exception as error:
        flow_failed(error)


def flow_failed(error: Exception) -> NoReturn:
    if isinstance(error, PaylinksError):
        fail(str(error), error.exit_code)
    # The flow run failed for a reason of no one's making here; Prefect has logged and recorded it.
    fail(f"{type(error).__name__}: {error}", 1)
