"""The commands that run the flows: backfill, blast, resend, lookup, reconcile, and the demo.

Each checks what it can before starting a flow (configuration, tenant), so bad input gets one
clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

import typer

from cli.app import app, console, fail, flow_failed, guarded, money, preflight, print_tables, run_flow
from paylinks.settings import Settings
from tasks.run_settings import settings_for_runs

if TYPE_CHECKING:
    from paylinks.billing.report import BackfillReport
    from paylinks.payments.reconcile import ReconcileReport


@app.command()
def backfill(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, help="Tenant slug; omit for every tenant."),
    commit: bool = typer.Option(False, "--commit", help="Act: create prices and links, write rows."),
) -> None:
    """Make sure every bill has its Stripe Payment Link (a dry run unless --commit)."""
    from flows.backfill_payment_links import backfill_payment_links

    settings = ctx.obj.settings
    preflight(settings, tenant, needs_stripe=commit)
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
        flow_failed(error)
    for report in reports:
        print_backfill_report(report)


def print_backfill_report(report: Any) -> None:
    from paylinks.present.backfill import backfill_tables

    summary, steps, skipped, findings = backfill_tables(report)
    print_tables([summary, steps] if steps.rows else [summary])
    print_tables([t for t in (skipped, findings) if t.rows])


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
    include_recent: bool = typer.Option(
        False,
        "--include-recent",
        help="Also email parents another blast emailed in the last 24 hours (the tenant's hold), held back otherwise.",
    ),
) -> None:
    """Email each parent what they owe (a preview unless --send or --test-email)."""
    from flows.outstanding_balance_email import outstanding_balance_email

    if test_email and send:
        fail("choose --test-email (one sample to you) or --send (every parent), not both")
    settings = ctx.obj.settings
    test_address = _valid_address(test_email, "--test-email") if test_email else None
    preflight(settings, tenant, needs_stripe=True)
    report = run_flow(
        settings,
        lambda: outstanding_balance_email(
            tenant=tenant,
            test_email=test_address,
            send=send,
            blast_key=blast_key,
            include_recent=include_recent,
        ),
    )
    print_blast_report(report)
    if report.sends_nothing_because_recent:
        from paylinks.present.blast import nothing_sent_line

        console.print(nothing_sent_line(report, "--include-recent"), markup=False, soft_wrap=True)


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
    # The tenant and the player first: a query no one matches is named whether or not Stripe answers.
    preflight(settings, tenant, needs_stripe=False)
    guarded(lambda: _find_player(settings, tenant, player))
    preflight(settings, tenant, needs_stripe=True)
    report = run_flow(
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
    from paylinks.stripe_api.where import stripe_where

    settings = ctx.obj.settings
    # The tenant and the player first: a query no one matches is named whether or not Stripe answers.
    preflight(settings, tenant, needs_stripe=False)
    with engine_for(settings.database_url).connect() as connection:
        club = tenant_by_slug(connection, tenant)
        matches = guarded(lambda: find_players(connection, club, player))
    if not matches:
        fail(str(UnknownPlayerError(player, club)))
    preflight(settings, tenant, needs_stripe=True)
    # Stripe's word on where the key acts (one request), never only what was remembered.
    engine = engine_for(settings.database_url)
    context = guarded(
        lambda: stripe_where(engine, StripeGateway(settings, account=club.stripe_account), settings)
    )
    if context.moved_words:
        console.print(context.moved_words, soft_wrap=True, markup=False)
    from paylinks.club.clock import now_utc
    from paylinks.messaging.reminders import player_due_words

    with engine_for(settings.database_url).connect() as connection:
        for match in matches:
            links = player_links_now(connection, club, match.player_id, context)
            due = player_due_words(connection, club, match.player_id, settings.club_timezone, now_utc())
            _print_player_links(match, links, club.currency, due)


def _print_player_links(match: Any, links: list, currency: str, due: dict[int, str] | None = None) -> None:
    from paylinks.present.tables import label
    from paylinks.vocabulary import PaymentLinkStatus

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
        if link.status is PaymentLinkStatus.pending and (due or {}).get(link.payment_link_id):
            owed_by = f"{(due or {})[link.payment_link_id]}, {owed_by}"
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
    preflight(settings, tenant, needs_stripe=True)

    try:
        with settings_for_runs(settings):
            reports = reconcile_payments(tenant=tenant)
        failure = None
    except ReconcileIncompleteError as error:
        reports, failure = error.reports, error
    except Exception as error:
        flow_failed(error)
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
