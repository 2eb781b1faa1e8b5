"""What a blast costs per parent, and how much of that is Prefect's per-send task run.

Each send in the outstanding-balance blast is its own task run (visible in the Prefect UI) and
its own `email_log` claim. This benchmark builds a club of N parents (two children, two minted
links each) in a temporary SQLite database, then, against a real SMTP server on loopback
(aiosmtpd), measures in one run:

- the full blast flow with send=True (render, claim, deliver, record; one task run per send);
- the same emails rendered and delivered over one SMTP connection with no Prefect and no log;

and prints messages per second for both and their ratio (the price of observability and
resumability per message).

Usage: .venv/bin/python benchmarks/blast_throughput.py [--parents 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="paylinks-bench-prefect-")

import sqlalchemy as sa  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from paylinks.store import migrations
from paylinks.store.tables import parents, payment_links, players, products, tenants


class Counter:
    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        return "250 OK"


def build_club(database_url: str, parent_count: int) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        tenant_id = connection.execute(
            sa.insert(tenants)
            .values(
                slug="bench", name="Bench Club", reply_to_email="club@bench.example", brand_color="#224488"
            )
            .returning(tenants.c.id)
        ).scalar_one()
        product_ids = [
            connection.execute(
                sa.insert(products)
                .values(tenant_id=tenant_id, name=name, amount_cents=amount, bill_signed_players=True)
                .returning(products.c.id)
            ).scalar_one()
            for name, amount in (("Season dues", 25000), ("Uniform kit", 6500))
        ]
        for p in range(parent_count):
            parent_id = connection.execute(
                sa.insert(parents)
                .values(
                    tenant_id=tenant_id,
                    first_name=f"Parent{p}",
                    last_name="Bench",
                    email=f"p{p}@bench.example",
                )
                .returning(parents.c.id)
            ).scalar_one()
            for child in range(2):
                player_id = connection.execute(
                    sa.insert(players)
                    .values(
                        tenant_id=tenant_id,
                        parent_id=parent_id,
                        first_name=f"Kid{child}",
                        last_name=f"Bench{p}",
                        status="signed",
                    )
                    .returning(players.c.id)
                ).scalar_one()
                for product_id in product_ids:
                    connection.execute(
                        sa.insert(payment_links).values(
                            tenant_id=tenant_id,
                            player_id=player_id,
                            parent_id=parent_id,
                            product_id=product_id,
                            description="Season dues" if product_id == product_ids[0] else "Uniform kit",
                            amount_cents=25000 if product_id == product_ids[0] else 6500,
                            stripe_payment_link_id=f"plink_{player_id}_{product_id}",
                            stripe_payment_link_url=f"https://buy.stripe.com/test_{player_id}_{product_id}",
                        )
                    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=200)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="paylinks-bench-"))
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    migrations.upgrade(database_url)
    build_club(database_url, args.parents)

    counter = Counter()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    from stripe_emulator import EmulatorServer

    # The blast mails only links minted in the key's Stripe account and mode: ask the emulator
    # which that is and stamp the benchmark's rows with it.
    emulator = EmulatorServer(host="127.0.0.1", port=0).start()
    try:
        from flows.outstanding_balance_email import outstanding_balance_email
        from paylinks.club.balances import outstanding_balances
        from paylinks.club.tenants import tenant_by_slug
        from paylinks.messaging.prepare import message_for, prepare_balance_emails
        from paylinks.messaging.transports import transport_from_settings
        from paylinks.settings import Settings
        from paylinks.stripe_api.gateway import StripeGateway
        from tasks.run_settings import settings_for_runs

        settings = Settings(
            database_url=database_url,
            email_transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            stripe_api_base=emulator.url,
        )
        context = StripeGateway(settings).context()
        engine = sa.create_engine(database_url)
        with engine.begin() as connection:
            connection.execute(
                sa.update(payment_links).values(stripe_account=context.account, livemode=context.livemode)
            )
        with engine.connect() as connection:
            club = tenant_by_slug(connection, "bench")
            sheet = outstanding_balances(connection, club, context)
        started = time.perf_counter()
        with transport_from_settings(settings) as transport:
            for email in prepare_balance_emails(club, sheet):
                transport.send(message_for(settings, club, email, email.address))
        bare = args.parents / (time.perf_counter() - started)

        with settings_for_runs(settings):
            started = time.perf_counter()
            outstanding_balance_email(tenant="bench")  # a preview: starts Prefect's API, renders all
            preview = time.perf_counter() - started
            started = time.perf_counter()
            report = outstanding_balance_email(tenant="bench", send=True, blast_key="bench")
            flow = len(report.sent) / (time.perf_counter() - started)
        assert len(report.sent) == args.parents and counter.messages == 2 * args.parents
    finally:
        emulator.stop()
        controller.stop()

    print(f"{args.parents} parents, 4 items each, real SMTP on loopback")
    print(f"render + deliver, no Prefect, no log: {bare:.1f} messages/s")
    print(f"preview flow (first run: starts Prefect's ephemeral API, renders every email): {preview:.1f} s")
    print(f"blast flow (a task run, a claim and a record per send): {flow:.1f} messages/s")
    print(
        f"ratio flow/bare: {flow / bare:.2f} (a {args.parents}-parent blast takes {args.parents / flow:.0f} s)"
    )


if __name__ == "__main__":
    main()
