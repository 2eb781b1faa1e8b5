"""`paylinks demo`: the whole job, end to end, on the embedded defaults.

A fresh SQLite database, the demo club, the local Stripe emulator in this process (its state
kept beside the database, for `make office`), the outbox for mail, and Prefect's ephemeral API
(its runs stay in var/prefect for `make ui`):
backfill (dry run, then commit) → a test email → the real blast → a few parents pay through
their link pages → reconcile → the balances, shrunk.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from paylinks.demo.data import DEMO_CONNECTED_ACCOUNT, DEMO_CONNECTED_TENANT
from paylinks.errors import ConfigurationError
from paylinks.payments.transitions import Outcome
from paylinks.present.tables import label
from paylinks.settings import PROJECT_ROOT, EmailTransportName, Settings

if TYPE_CHECKING:
    from flows.fan_out import ChildRun
    from paylinks.billing.report import BackfillReport
    from paylinks.payments.reconcile import ReconcileReport

DEMO_EMULATOR_PORT = 12111
ADMIN_TEST_ADDRESS = "club-admin@paylinks.example"
PAYMENTS_PER_TENANT = 3


@dataclass
class TenantTally:
    slug: str
    links_minted: int = 0
    emails_written: int = 0
    paid_cents: int = 0
    paid_links: int = 0
    owed_before_cents: int = 0
    owed_after_cents: int = 0


def default_database_path(settings: Settings) -> Path | None:
    """The SQLite file of the embedded default, or None when another database is configured."""
    url = sa.make_url(settings.database_url)
    default = sa.make_url(Settings.model_fields["database_url"].default)
    # The default URL names a SQLite file, so its database is set.
    return Path(cast(str, url.database)) if url == default else None


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]


def run_demo(console: Console, settings: Settings, reset_database: bool = False) -> list[TenantTally]:
    """Run every step; the database is emptied first, so only the embedded default (or a SQLite
    file the caller explicitly allows with `reset_database`) is accepted."""
    database = default_database_path(settings)
    url = sa.make_url(settings.database_url)
    if database is None and reset_database and url.get_backend_name() == "sqlite" and url.database:
        database = Path(url.database)
    if database is None:
        raise ConfigurationError(
            "the demo starts from an empty database, so it runs on the embedded SQLite default only; "
            "unset PAYLINKS_DATABASE_URL (or, for a SQLite file you mean to wipe, pass --reset-database)"
        )
    from cli.local_club import emulator_state_path
    from stripe_emulator import EmulatorServer
    from tasks.run_settings import settings_for_runs

    # The emulator keeps its state beside the database, so the demo's links stay payable after it
    # (`make office` serves them again); a new demo starts both afresh.
    state = emulator_state_path(settings)
    state.unlink(missing_ok=True)
    with EmulatorServer(host="127.0.0.1", port=_free_port(DEMO_EMULATOR_PORT), state=state) as emulator:
        # The demo's runs talk to its own emulator and write mail to the outbox, whatever the
        # environment says about Stripe and SMTP.
        demo_settings = settings.model_copy(
            update={"stripe_api_base": emulator.url, "email_transport": EmailTransportName.outbox}
        )
        with settings_for_runs(demo_settings):
            return _run_steps(console, demo_settings, database, emulator)


def _step(console: Console, title: str) -> None:
    console.print(f"\n[bold]▶ {title}[/]")


def _run_steps(console: Console, settings: Settings, database: Path, emulator: Any) -> list[TenantTally]:
    from flows.backfill_payment_links import backfill_payment_links
    from flows.outstanding_balance_email import outstanding_balance_email
    from flows.reconcile_payments import reconcile_payments
    from paylinks.demo.data import seed_demo
    from paylinks.messaging.prepare import SkipReason
    from paylinks.runtime import engine_for
    from paylinks.store import migrations

    _step(
        console,
        f"fresh database {database.relative_to(PROJECT_ROOT) if database.is_relative_to(PROJECT_ROOT) else database}",
    )
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)
    database.parent.mkdir(parents=True, exist_ok=True)
    engine_for.cache_clear()
    migrations.upgrade(settings.database_url)
    seeded = seed_demo(engine_for(settings.database_url), settings.club_timezone)
    console.print(
        f"  demo club: {', '.join(seeded.tenants)} — {seeded.parents} parents, {seeded.players} players, "
        f"{seeded.orders} orders"
    )
    # The club office's people for the first demo club (paylinks.access.accounts; `make office` serves it).
    from paylinks.access.accounts import add_user
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.club.tenants import tenant_by_slug
    from paylinks.vocabulary import Role

    with engine_for(settings.database_url).begin() as connection:
        club = tenant_by_slug(connection, seeded.tenants[0])
        for role in (Role.admin, Role.coach):
            person = add_user(connection, f"{role.value}@{club.slug}.example", club, role, actor=COMMAND_LINE)
            console.print(
                f"  office {role.value}: {person.user.email}, one-time password {person.one_time_password} "
                "(`make office` prints a fresh one at each start until a password of one's own is set)",
                markup=False,
            )
    if DEMO_CONNECTED_TENANT in seeded.tenants:
        _connect_demo_account(settings, emulator.url, console)
    outbox = settings.outbox_dir
    outbox.mkdir(parents=True, exist_ok=True)
    for old in [*outbox.glob("*.eml"), outbox / "index.html"]:
        old.unlink(missing_ok=True)
    console.print(f"  local Stripe emulator at {emulator.url}; mail goes to {outbox}")

    tallies = {slug: TenantTally(slug) for slug in seeded.tenants}
    # Without fan_out every flow runs in this process, so a backfill reports per tenant.
    report: BackfillReport | ReconcileReport | ChildRun

    _step(console, "backfill, dry run: what would be minted")
    for report in cast("list[BackfillReport]", backfill_payment_links(commit=False)):
        plan = report.plan
        console.print(
            f"  {report.tenant}: {len(plan.items)} items ({_money(plan.amount_owed_cents, report.currency)}), "
            f"{len(plan.tiers_needed)} price tiers to create, {len(plan.to_mint)} links to mint, "
            f"{len(plan.skipped)} rows skipped (each with its reason in the artifact)"
        )
    _step(console, "backfill, commit: price tiers and one payment link per item")
    for report in cast("list[BackfillReport]", backfill_payment_links(commit=True)):
        tallies[report.tenant].links_minted = report.loaded
        where = f" in Stripe account {report.where.account}" if report.where else ""
        console.print(
            f"  {report.tenant}: {report.tiers_created} price tiers, {report.loaded} links minted{where}"
        )
    report_again = cast("list[BackfillReport]", backfill_payment_links(commit=True))
    console.print(f"  run again: {sum(r.loaded for r in report_again)} links minted (idempotent)")

    _step(console, f"outstanding-balance email, test send to {ADMIN_TEST_ADDRESS}")
    for slug in tallies:
        outstanding_balance_email(tenant=slug, test_email=ADMIN_TEST_ADDRESS)
        console.print(f"  {slug}: one sample, subject marked [TEST]")
    _step(console, "outstanding-balance email, the real blast (into the outbox)")
    for slug, tally in tallies.items():
        blast = outstanding_balance_email(tenant=slug, send=True, blast_key=f"{slug}-demo")
        tally.owed_before_cents = blast.total_cents
        tally.emails_written = len(blast.sent)
        unreachable = blast.skipped_for(SkipReason.no_address)
        console.print(
            f"  {slug}: {len(blast.sent)} parents emailed, {unreachable} without an email address, "
            f"{_money(tally.owed_before_cents, blast.currency)} owed"
        )

    _step(console, f"{PAYMENTS_PER_TENANT} parents per club pay through their link pages")
    _pay_some_links(settings, tallies, console)
    first = next(iter(tallies))
    _step(
        console,
        f"meanwhile at {first}: the club cancels a bill the family then pays anyway, "
        "and a family pays by bank debit",
    )
    debit_session = _life_happens(settings, first, emulator.url, console)
    _step(console, "reconcile: learn from Stripe what was paid")
    for report in reconcile_payments():
        _say_reconciled(console, report)
    _step(console, "the bank debit bounces; reconcile replaces the spent link at once")
    with httpx.Client(timeout=10) as client:
        client.post(
            f"{emulator.url}/_emulator/checkout_sessions/{debit_session}/settle", data={"outcome": "failed"}
        ).raise_for_status()
    for report in reconcile_payments(tenant=first):
        _say_reconciled(console, report)
    _step(console, "balances now (a fresh preview)")
    for slug, tally in tallies.items():
        preview = outstanding_balance_email(tenant=slug)
        tally.owed_after_cents = preview.total_cents
        console.print(
            f"  {slug}: {_money(tally.owed_before_cents, preview.currency)} → "
            f"{_money(tally.owed_after_cents, preview.currency)}"
        )
    return list(tallies.values())


def _connect_demo_account(settings: Settings, emulator_url: str, console: Console) -> None:
    """One demo club is paid into its own Stripe account: connected at the emulator, then set as
    an operator would (`paylinks tenant account`)."""
    from paylinks.club.tenants import set_stripe_account
    from paylinks.runtime import engine_for

    with httpx.Client(timeout=10) as client:
        client.post(
            f"{emulator_url}/_emulator/accounts", data={"id": DEMO_CONNECTED_ACCOUNT}
        ).raise_for_status()
    set_stripe_account(
        engine_for(settings.database_url), settings, DEMO_CONNECTED_TENANT, DEMO_CONNECTED_ACCOUNT
    )
    console.print(
        f"  {DEMO_CONNECTED_TENANT} is paid into its own Stripe account {DEMO_CONNECTED_ACCOUNT} (Connect); "
        "the other club into the platform's"
    )


def _say_reconciled(console: Console, report: Any) -> None:
    parts = [
        f"{len(report.rows(Outcome.marked_paid))} links marked paid "
        f"({len(report.result.orders_paid)} with their order)"
    ]
    for outcome, words in (
        (Outcome.processing, "awaiting a bank debit (processing, not chased)"),
        (Outcome.refund_due, "refund due (paid after the club cancelled it)"),
        (Outcome.slow_payment_failed, "slow payment failed"),
    ):
        if report.rows(outcome):
            parts.append(f"{len(report.rows(outcome))} {words}")
    if report.replaced_links:
        parts.append(f"{len(report.replaced_links)} fresh link(s) minted in place of the spent one")
    console.print(f"  {report.tenant}: " + "; ".join(parts) + f" (read from {label(report.source)})")


def _life_happens(settings: Settings, slug: str, emulator_url: str, console: Console) -> str:
    """The club cancels an order after the email went out and the family pays its link anyway;
    another family pays by bank debit (complete now, settled later). Returns the debit's session."""
    from paylinks.runtime import engine_for

    engine = engine_for(settings.database_url)
    with engine.connect() as connection:
        open_rows = (
            connection.execute(
                sa.text(
                    "SELECT pl.id, pl.order_id, pl.stripe_payment_link_id AS link_id, "
                    "       pl.stripe_payment_link_url AS url, pl.amount_cents, pl.description, "
                    "       pa.first_name || ' ' || pa.last_name AS parent "
                    "FROM payment_links pl JOIN tenants t ON t.id = pl.tenant_id "
                    "JOIN parents pa ON pa.id = pl.parent_id "
                    "WHERE t.slug = :slug AND pl.status = 'pending' ORDER BY pl.id DESC"
                ),
                {"slug": slug},
            )
            .mappings()
            .all()
        )
    cancelled = next(row for row in open_rows if row["order_id"] is not None)
    debit = next(row for row in open_rows if row["parent"] != cancelled["parent"] and row["order_id"] is None)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE orders SET status = 'cancelled' WHERE id = :id"), {"id": cancelled["order_id"]}
        )
    with httpx.Client(timeout=10) as client:
        client.post(cancelled["url"]).raise_for_status()
        console.print(
            f"  the club cancelled {cancelled['description']}; {cancelled['parent']} paid the emailed link "
            f"anyway ({_money(cancelled['amount_cents'])})"
        )
        session = client.post(f"{emulator_url}/_emulator/payment_links/{debit['link_id']}/open_session")
        session.raise_for_status()
        session_id = session.json()["id"]
        client.post(
            f"{emulator_url}/_emulator/checkout_sessions/{session_id}/complete",
            data={"payment_method": "bank_debit"},
        ).raise_for_status()
        console.print(f"  {debit['parent']} paid {debit['description']} by bank debit (not settled yet)")
    return session_id


def _pay_some_links(settings: Settings, tallies: dict[str, TenantTally], console: Console) -> None:
    from paylinks.runtime import engine_for

    with engine_for(settings.database_url).connect() as connection:
        for slug, tally in tallies.items():
            links = (
                connection.execute(
                    sa.text(
                        "SELECT pl.stripe_payment_link_url AS url, pl.amount_cents, pl.description, pl.order_id, "
                        "       pa.first_name || ' ' || pa.last_name AS parent "
                        "FROM payment_links pl JOIN tenants t ON t.id = pl.tenant_id JOIN parents pa ON pa.id = pl.parent_id "
                        "WHERE t.slug = :slug AND pl.status = 'pending' ORDER BY pl.id"
                    ),
                    {"slug": slug},
                )
                .mappings()
                .all()
            )
            with httpx.Client(timeout=10) as client:
                # One bill with an order (its order gets paid too) and a couple without.
                # Different families; the first pays a bill with an order (its order gets paid too).
                chosen = [next(link for link in links if link["order_id"] is not None)]
                for link in links:
                    if len(chosen) < PAYMENTS_PER_TENANT and link["parent"] not in {
                        c["parent"] for c in chosen
                    }:
                        chosen.append(link)
                for link in chosen:
                    client.post(link["url"]).raise_for_status()
                    tally.paid_cents += link["amount_cents"]
                    tally.paid_links += 1
                    console.print(
                        f"  {link['parent']} paid {link['description']} ({_money(link['amount_cents'])})"
                    )


def _money(amount_cents: int, currency: str = "usd") -> str:
    from paylinks.money import format_money

    return format_money(int(amount_cents), currency)


def closing_table(tallies: list[TenantTally]) -> Table:
    table = Table(title="paylinks demo")
    for column in ("tenant", "links minted", "emails written", "paid", "still owed"):
        table.add_column(column, justify="left" if column == "tenant" else "right")
    for t in tallies:
        table.add_row(
            t.slug,
            str(t.links_minted),
            str(t.emails_written),
            f"{t.paid_links} ({_money(t.paid_cents)})",
            _money(t.owed_after_cents),
        )
    return table


def closing_words(settings: Settings) -> list[str]:
    outbox = settings.outbox_dir / "index.html"
    shown = outbox.relative_to(PROJECT_ROOT) if outbox.is_relative_to(PROJECT_ROOT) else outbox
    return [
        f"Emails: open {shown} (each .eml is one message).",
        "Runs, task runs and summary artifacts: `make ui`, then http://127.0.0.1:4200",
        "Every Pay Now link stays payable: `make office` serves the club office and the emulator on the "
        "demo's state (http://127.0.0.1:8000); `make demo` again starts over.",
    ]
