"""Stripe's limits are per account: workers in separate processes share one pace through the
Prefect server's global concurrency limits, and pace themselves alone (with a warning) when the
limit was never set up."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import stripe
from typer.testing import CliRunner

from cli.main import app
from paylinks.settings import Settings
from paylinks.store.tables import tenants
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.stripe_api.pacers import PAYMENT_LINK_CREATE, REQUEST, LocalPacer
from stripe_emulator import EmulatorServer
from tasks.pacing import SharedPacer, ensure_stripe_limits, stripe_limit_name, worker_share
from tests.flows.pacing_worker import gather_workers, start_workers, worker_env
from tests.helpers import settings_env

KEY = "sk_test_paylinks_tests"
LIMIT = 10  # link creations per second: the emulator's limit and the shared limit's rate
BURST = 10  # the shared limit's `limit`: a second's worth


def _settings(tmp_path: Path, api_base: str, **changes: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        stripe_api_base=api_base,
        stripe_api_key=KEY,
        outbox_dir=tmp_path / "outbox",
        **changes,
    )


def _account_with_a_price(server: EmulatorServer) -> str:
    client = stripe.StripeClient(KEY, base_addresses={"api": server.url})
    product = client.v1.products.create(params={"name": "Season fee"})
    return client.v1.prices.create(params={"product": product.id, "unit_amount": 4500, "currency": "usd"}).id


@pytest.mark.slow
def test_two_workers_on_one_account_stay_within_its_limit_only_when_they_share_it(tmp_path):
    # Two accounts, each on an emulator allowing LIMIT link creations a second: two workers
    # sharing the limit mint in one, two workers pacing themselves alone in the other, all at once.
    shared_account, alone_account = (f"acct_pacing{uuid.uuid4().hex[:10]}" for _ in range(2))
    with (
        EmulatorServer(
            host="127.0.0.1", port=0, link_create_rps=LIMIT, account_id=shared_account
        ) as shared_stripe,
        EmulatorServer(
            host="127.0.0.1", port=0, link_create_rps=LIMIT, account_id=alone_account
        ) as alone_stripe,
    ):
        changes = {}
        runs = {}
        for account, server, is_shared in (
            (shared_account, shared_stripe, True),
            (alone_account, alone_stripe, False),
        ):
            settings = _settings(
                tmp_path, server.url, stripe_max_rps=100, stripe_link_create_rps=LIMIT, stripe_max_retries=20
            )
            if is_shared:
                changes = ensure_stripe_limits(settings, [account], livemode=False)
            env = worker_env(settings, tmp_path / "prefect-home")
            price = _account_with_a_price(server)
            runs[is_shared] = start_workers(env, account=account, price_id=price, count=25, shared=is_shared)
        shared, alone = gather_workers(runs[True]), gather_workers(runs[False])

    print(f"\nshared: {shared}\nalone:  {alone}")
    assert [(c.name, c.action, c.rate, c.burst) for c in changes] == [
        (f"stripe-{shared_account}-test", "created", 25.0, 25),
        (f"stripe-{shared_account}-test-payment-links", "created", float(LIMIT), BURST),
    ]
    assert shared.minted == alone.minted == 50
    # Sharing: each worker spends its share of the rate (the limit less one a second per worker,
    # divided between them), so in no second do they send more than the limit together.
    assert shared.busiest_second <= LIMIT + 1  # one a busy machine's scheduling put a moment early
    assert shared.minted / shared.seconds <= LIMIT
    # Each worker alone keeps to the limit, so together they send up to twice it: Stripe says 429.
    assert alone.busiest_second > shared.busiest_second
    assert alone.busiest_second >= LIMIT + 8
    assert alone.rate_limited > 2 * shared.rate_limited


def test_a_missing_limit_warns_once_naming_it_and_the_setup_then_paces_locally(tmp_path, caplog):
    account = f"acct_missing{uuid.uuid4().hex[:10]}"
    settings = _settings(tmp_path, "http://127.0.0.1:9", stripe_max_rps=5)
    pacer = SharedPacer(lambda: StripeContext(account=account, livemode=False), LocalPacer(settings))
    caplog.set_level(logging.WARNING)

    started = time.monotonic()
    for _ in range(6):
        pacer.acquire(REQUEST)
    elapsed = time.monotonic() - started

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    missing = stripe_limit_name(account, False, REQUEST)
    assert len([w for w in warnings if missing in w]) == 1, warnings
    assert "paylinks limits setup" in warnings[0]
    assert elapsed >= 0.9, "six permits at 5/s take a second: paced locally"
    pacer.acquire(PAYMENT_LINK_CREATE)  # the other limit is missing too: its own one warning
    assert (
        sum(stripe_limit_name(account, False, PAYMENT_LINK_CREATE) in r.getMessage() for r in caplog.records)
        == 1
    )


def test_setting_up_the_limits_again_changes_nothing_and_a_new_rate_updates_them(tmp_path):
    account = f"acct_setup{uuid.uuid4().hex[:10]}"
    settings = _settings(tmp_path, "http://127.0.0.1:9")
    first = ensure_stripe_limits(settings, [account, account], livemode=True)
    again = ensure_stripe_limits(settings, [account], livemode=True)
    slower = ensure_stripe_limits(
        settings.model_copy(update={"stripe_link_create_rps": 20.0}), [account], True
    )

    assert [c.describe() for c in first] == [
        f"created   stripe-{account}-live: 100/s, burst 100",
        f"created   stripe-{account}-live-payment-links: 25/s, burst 25",
    ]
    assert [c.action for c in again] == ["unchanged", "unchanged"]
    assert [(c.action, c.rate) for c in slower] == [("unchanged", 100.0), ("updated", 20.0)]


def test_limits_setup_covers_the_keys_account_and_every_tenants_connected_account(
    settings, engine, demo_club
):
    settings = settings.model_copy(
        update={"stripe_link_create_rps": 25.0}
    )  # Stripe's own, as operators keep it
    club = f"acct_club{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants).where(tenants.c.id == demo_club[0].id).values(stripe_account=club)
        )
    platform = StripeGateway(settings).context().account

    first = CliRunner().invoke(app, ["limits", "setup"], env=settings_env(settings))
    again = CliRunner().invoke(app, ["limits", "setup"], env=settings_env(settings))

    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    for account in (platform, club):
        assert f"stripe-{account}-test: 25/s, burst 25" in first.stdout
        assert f"stripe-{account}-test-payment-links: 25/s, burst 25" in first.stdout
    assert len(lines) == 4 and all(line.startswith(("created", "unchanged")) for line in lines), lines
    assert (
        again.exit_code == 0 and [line.split()[0] for line in again.stdout.splitlines()] == ["unchanged"] * 4
    )


def test_a_backfill_with_nothing_to_do_asks_stripe_nothing_even_through_the_shared_pacer(
    settings, emulator, demo_club
):
    from flows.backfill_payment_links import backfill_payment_links

    backfill_payment_links(commit=True)
    before = emulator.emulator.request_counts()

    again = backfill_payment_links(commit=True)

    assert all(report.loaded == 0 for report in again)
    # Nothing asked at all: the key's account as Stripe confirmed it minutes ago is trusted
    # (PAYLINKS_STRIPE_ACCOUNT_RECHECK_MINUTES), and a pacer with no request to pace asks nothing.
    assert emulator.emulator.request_counts() == before


def test_every_gateway_of_a_process_in_one_account_shares_its_pace(tmp_path):
    # Gateways are built per task call: pacing each alone would let N of them send N times the rate.
    waits: list[float] = []
    settings = _settings(tmp_path, f"http://127.0.0.1:9/{uuid.uuid4().hex}", stripe_max_rps=5)
    first, second = StripeGateway(settings, sleep=waits.append), StripeGateway(settings, sleep=waits.append)
    elsewhere = StripeGateway(settings, account=f"acct_other{uuid.uuid4().hex[:8]}", sleep=waits.append)

    for gateway in (first, second, first, second, elsewhere):
        gateway.pacer.acquire(REQUEST)

    # 5/s: each permit 0.2 s after the one before, whichever gateway asks (no real time passes:
    # the waits are recorded, not slept); another (connected) account has a pace of its own.
    assert len(waits) == 3 and waits == pytest.approx([0.2, 0.4, 0.6], abs=0.05)


def test_minting_a_link_takes_a_link_permit_and_a_request_permit(tmp_path):
    asked: list[str] = []

    class Recorder:
        def acquire(self, kind: str) -> None:
            asked.append(kind)

    with EmulatorServer(host="127.0.0.1", port=0) as server:
        gateway = StripeGateway(_settings(tmp_path, server.url), pacer=Recorder())
        price = _account_with_a_price(server)
        gateway.create_payment_link(
            price_id=price, metadata={"payment_link_row_id": "1"}, idempotency_key="k-1"
        )
        gateway.retrieve_payment_link(
            gateway.create_payment_link(
                price_id=price, metadata={"payment_link_row_id": "2"}, idempotency_key="k-2"
            ).id
        )

    # The link permit last, just before the request leaves: its pace is the one Stripe sees.
    assert asked == [REQUEST, PAYMENT_LINK_CREATE, REQUEST, PAYMENT_LINK_CREATE, REQUEST]


@pytest.mark.parametrize("rate", [10.0, 25.0, 100.0])
def test_workers_sharing_a_limit_spend_within_it_in_every_second_together(rate):
    # An evenly spaced stream of s permits a second shows up to s + 1 in some sliding second:
    # with each of n workers at its share, together they stay within the limit in every second.
    for workers in range(1, int(rate // 2) + 1):
        share = worker_share(rate, workers)
        assert workers * (share + 1) <= rate + 1e-9
        assert share >= (rate - workers) / workers
    assert worker_share(25.0, 1) == 24.0  # a worker alone: all but one a second
