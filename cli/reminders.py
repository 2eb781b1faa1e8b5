"""Reminders from the command line: a club's cadence and sending hours (`paylinks reminders set`)
and a reminder run (`paylinks remind`, a dry run unless --send)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from cli.app import app, console, fail, flow_failed, guarded, preflight, print_tables
from tasks.run_settings import settings_for_runs

reminders_app = typer.Typer(
    help="Reminders: each club's cadence, sending hours, on or off.", no_args_is_help=True
)
app.add_typer(reminders_app, name="reminders")


@reminders_app.command("set")
def reminders_set(
    ctx: typer.Context,
    tenant: str = typer.Option(..., help="Tenant slug."),
    days: str | None = typer.Option(
        None, help="Days from each bill's due date, e.g. -7,0,3,7 (each -90..+180, at most 12)."
    ),
    hours: str | None = typer.Option(None, help="Local sending hours, e.g. 8-20 (from 08:00 until 20:00)."),
    enabled: bool | None = typer.Option(None, "--on/--off", help="Turn the club's reminders on or off."),
) -> None:
    """Set a club's reminder cadence, sending hours, and whether reminders go out at all."""
    from paylinks.messaging.cadence import days_words, parse_days, parse_hours
    from paylinks.messaging.reminders import set_reminders
    from paylinks.runtime import engine_for

    if days is None and hours is None and enabled is None:
        fail(f"tenant {tenant}: say what to set: --days, --hours, --on or --off")
    settings = ctx.obj.settings
    preflight(settings, tenant, needs_stripe=False)
    club = guarded(
        lambda: set_reminders(
            engine_for(settings.database_url), tenant, days=days, hours=hours, enabled=enabled
        )
    )
    first, last = parse_hours(club.reminder_hours)
    console.print(
        f"tenant {club.slug}: reminders {'on' if club.reminders_enabled else 'off'}, "
        f"days {days_words(parse_days(club.reminder_days))} from the due date, "
        f"sent {first:02d}:00–{last:02d}:00 local",
        markup=False,
        soft_wrap=True,
    )


@app.command()
def remind(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, help="Tenant slug; omit for every tenant with reminders on."),
    send: bool = typer.Option(False, "--send", help="Email the digests (otherwise a dry run)."),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Run as if at this time, e.g. 2026-12-14T09:00 (without an offset: the club's local time).",
    ),
) -> None:
    """Remind each parent with a cadence step due: one digest of everything they owe (a dry run unless --send)."""
    from flows.remind_outstanding_balances import RemindersIncompleteError, remind_outstanding_balances

    moment = _moment(as_of) if as_of else None
    settings = ctx.obj.settings
    preflight(settings, tenant, needs_stripe=send)
    failure: RemindersIncompleteError | None = None
    try:
        with settings_for_runs(settings):
            reports: list[Any] = remind_outstanding_balances(tenant=tenant, send=send, as_of=moment)
    except RemindersIncompleteError as error:
        reports, failure = error.reports, error
    except Exception as error:
        flow_failed(error)
    print_reminder_reports(reports)
    if failure is not None:
        # A club's setting that does not parse is bad input (2); anything else a failed run (1).
        fail(str(failure), failure.exit_code)


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        fail(
            f"--as-of {text!r} is not a date and time like 2026-12-14T09:00 (an offset like -06:00 is optional)"
        )


def print_reminder_reports(reports: list[Any]) -> None:
    from paylinks.present.reminders import reminder_tables

    quiet = [report.tenant for report in reports if report.quiet]
    if quiet:
        names = ", ".join(quiet[:10]) + (f" and {len(quiet) - 10} more" if len(quiet) > 10 else "")
        print(f"{len(quiet)} tenant(s) with nothing due (no reminder step today or yesterday): {names}")
    for report in reports:
        if report.quiet:
            continue
        summary, parents = reminder_tables(report)
        print_tables([summary] + ([parents] if parents.rows else []))
