"""Clubs paid into their own Stripe accounts (Connect): two clubs on two connected accounts and one
on the platform's. Each club's links, prices and payments live in its own account at the emulator;
reconcile and webhooks find them there; a club whose account Stripe does not know fails alone."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import sqlalchemy as sa

from flows.backfill_payment_links import BackfillIncompleteError, backfill_payment_links
from flows.reconcile_payments import reconcile_payments
from paylinks.club.tenants import Tenant, all_tenants, set_stripe_account
from paylinks.demo.data import DemoTenant, SeedReport, _seed_tenant, demo_today, seed_demo
from paylinks.payments.transitions import Outcome
from paylinks.store.tables import payment_links, price_tiers, tenants
from tests.helpers import cli_env, current_settings, run_cli, stripe_signed_headers, wait_for

HOOPS, EAGLES, FALCONS = "riverside-hoops", "northside-eagles", "eastside-falcons"
HOOPS_ACCOUNT, EAGLES_ACCOUNT = "acct_riversideHoops01", "acct_northsideEagles1"
WEBHOOK_SECRET = "whsec_test_connected_accounts_0123"

FALCONS_DEMO = DemoTenant(
    FALCONS, "Eastside Falcons", "fees@eastsidefalcons.example", "#2e8b57", None, 8, ("U12 Green",)
)


@pytest.fixture
def three_clubs(settings, engine, emulator) -> dict[str, Tenant]:
    """Hoops and Eagles on connected accounts of their own, Falcons on the platform's."""
    seed_demo(engine, settings.club_timezone)
    with engine.begin() as connection:
        _seed_tenant(
            connection,
            FALCONS_DEMO,
            2,
            SeedReport(tenants=[], skipped_tenants=[]),
            demo_today(settings.club_timezone),
        )
    for slug, account in ((HOOPS, HOOPS_ACCOUNT), (EAGLES, EAGLES_ACCOUNT)):
        emulator.emulator.create_connected_account(account)
        set_stripe_account(engine, settings, slug, account)
    with engine.connect() as connection:
        return {club.slug: club for club in all_tenants(connection)}


def rows_of(engine, club: Tenant) -> list[sa.RowMapping]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(payment_links)
                .where(payment_links.c.tenant_id == club.id)
                .order_by(payment_links.c.id)
            ).mappings()
        )


def status_of(engine, row_id: int) -> str:
    with engine.connect() as connection:
        status = connection.execute(
            sa.select(payment_links.c.status).where(payment_links.c.id == row_id)
        ).scalar()
    return getattr(status, "value", status)


def book_link_ids(emulator, account: str | None) -> set[str]:
    """Every payment link the emulator holds in this account (None: the platform's)."""
    book, found, params = emulator.emulator.account(account), set(), {"limit": 100}
    while True:
        page = book.list_payment_links(params)
        found |= {link["id"] for link in page["data"]}
        if not page["has_more"]:
            return found
        params = {"limit": 100, "starting_after": page["data"][-1]["id"]}


def pay_as_a_parent(url: str) -> None:
    with httpx.Client() as client:
        assert client.get(url).status_code == 200
        assert client.post(url).status_code == 200


def test_each_club_mints_in_its_own_account_and_a_rerun_asks_no_account_anything(
    three_clubs, engine, emulator
):
    reports = backfill_payment_links(commit=True)

    assert {r.tenant: r.failed for r in reports} == {HOOPS: False, EAGLES: False, FALCONS: False}
    platform = emulator.emulator.platform_account_id
    for slug, account in ((HOOPS, HOOPS_ACCOUNT), (EAGLES, EAGLES_ACCOUNT), (FALCONS, platform)):
        club_rows = rows_of(engine, three_clubs[slug])
        assert club_rows and all(r["stripe_payment_link_id"] for r in club_rows)
        # The account's own book holds exactly this club's links; the rows say where they were minted.
        assert {r["stripe_payment_link_id"] for r in club_rows} == book_link_ids(
            emulator, None if account == platform else account
        )
        assert {r["stripe_account"] for r in club_rows} == {account}
        with engine.connect() as connection:
            tier_accounts = set(
                connection.execute(
                    sa.select(price_tiers.c.stripe_account).where(
                        price_tiers.c.tenant_id == three_clubs[slug].id
                    )
                ).scalars()
            )
        assert tier_accounts == {account}

    before = emulator.emulator.request_counts()
    again = backfill_payment_links(commit=True)

    assert all(r.minted == 0 and not r.failed for r in again)
    # Nothing changed: where the key acts in each account was confirmed by the run a moment ago,
    # so no account is asked anything.
    assert emulator.emulator.request_counts() == before


@pytest.mark.slow  # serves the office
def test_a_connected_clubs_payments_are_found_by_reconcile_and_by_its_webhook(
    three_clubs, engine, emulator, use_settings
):
    from office.server import OfficeServer

    backfill_payment_links(commit=True)
    hoops_row, eagles_row = rows_of(engine, three_clubs[HOOPS])[0], rows_of(engine, three_clubs[EAGLES])[0]
    falcons_row = rows_of(engine, three_clubs[FALCONS])[0]
    for row in (hoops_row, falcons_row):
        pay_as_a_parent(row["stripe_payment_link_url"])

    reports = {r.tenant: r for r in reconcile_payments()}

    assert status_of(engine, hoops_row["id"]) == "paid" and status_of(engine, falcons_row["id"]) == "paid"
    assert reports[HOOPS].rows(Outcome.marked_paid) == [hoops_row["id"]]
    assert reports[FALCONS].rows(Outcome.marked_paid) == [falcons_row["id"]]

    # Eagles' parent pays; Stripe tells the platform's endpoint, naming Eagles' account.
    pay_as_a_parent(eagles_row["stripe_payment_link_url"])
    (completed,) = emulator.emulator.account(EAGLES_ACCOUNT).list_events(
        {"type": "checkout.session.completed"}
    )["data"]
    assert completed["account"] == EAGLES_ACCOUNT
    use_settings(
        office_session_secret="test-office-session-secret-0123456789abcdef",
        stripe_webhook_secret=WEBHOOK_SECRET,
    )
    with OfficeServer(current_settings()) as office:
        # The same payment claimed from another account (here: the platform's) is not Eagles'.
        forged = {key: value for key, value in completed.items() if key != "account"} | {
            "id": "evt_forged_0001"
        }
        assert post_signed(office.url, forged).status_code == 200
        time.sleep(1.0)
        assert status_of(engine, eagles_row["id"]) == "pending"

        assert post_signed(office.url, completed).status_code == 200
        assert wait_for(lambda: status_of(engine, eagles_row["id"]) == "paid")


def test_a_club_whose_account_stripe_does_not_know_fails_alone(three_clubs, engine, emulator):
    with engine.begin() as connection:  # say the club's account was disconnected from the platform
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == EAGLES).values(stripe_account="acct_neverConnected01")
        )

    with pytest.raises(BackfillIncompleteError) as raised:
        backfill_payment_links(commit=True)

    reports = {r.tenant: r for r in raised.value.reports}
    assert reports[EAGLES].failed and reports[EAGLES].loaded == 0
    assert EAGLES in reports[EAGLES].aborted and "acct_neverConnected01" in reports[EAGLES].aborted
    assert "does not have access to account" in reports[EAGLES].aborted
    assert "sk_test_paylinks_tests" not in reports[EAGLES].aborted
    assert EAGLES in str(raised.value) and HOOPS not in str(raised.value)
    assert not reports[HOOPS].failed and not reports[FALCONS].failed
    assert all(r["stripe_payment_link_id"] for r in rows_of(engine, three_clubs[HOOPS]))
    assert rows_of(engine, three_clubs[EAGLES]) == []

    # Reconcile too: Eagles fails, named; the others are reconciled.
    state = reconcile_payments(return_state=True)
    error = state.result(raise_on_failure=False)
    assert state.is_failed() and list(error.failed) == [EAGLES]
    assert "acct_neverConnected01" in str(error) and "sk_test_paylinks_tests" not in str(error)
    assert sorted(r.tenant for r in error.reports) == [FALCONS, HOOPS]


def test_a_club_moved_to_its_own_account_gets_its_links_minted_there(three_clubs, engine, emulator, settings):
    backfill_payment_links(tenant=FALCONS, commit=True)
    on_the_platform = {r["stripe_payment_link_id"] for r in rows_of(engine, three_clubs[FALCONS])}
    emulator.emulator.create_connected_account("acct_eastsideFalcons2")
    set_stripe_account(engine, settings, FALCONS, "acct_eastsideFalcons2")

    (report,) = backfill_payment_links(tenant=FALCONS, commit=True)

    moved = rows_of(engine, three_clubs[FALCONS])
    assert report.loaded == len(moved) == len(on_the_platform) and not report.failed
    assert {r["stripe_account"] for r in moved} == {"acct_eastsideFalcons2"}
    assert {r["stripe_payment_link_id"] for r in moved} == book_link_ids(emulator, "acct_eastsideFalcons2")
    assert not on_the_platform & {r["stripe_payment_link_id"] for r in moved}


def test_setting_an_account_checks_it_with_stripe_first(three_clubs, engine, settings):
    from paylinks.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as raised:
        set_stripe_account(engine, settings, FALCONS, "acct_neverConnected02")
    assert "acct_neverConnected02" in str(raised.value) and "nothing saved" in str(raised.value)
    with pytest.raises(ConfigurationError):
        set_stripe_account(engine, settings, FALCONS, "riverside")

    assert set_stripe_account(engine, settings, HOOPS, None).stripe_account is None
    with engine.connect() as connection:
        accounts = dict(connection.execute(sa.select(tenants.c.slug, tenants.c.stripe_account)).all())
    assert accounts == {HOOPS: None, EAGLES: EAGLES_ACCOUNT, FALCONS: None}


@pytest.mark.slow  # runs the command in processes of its own
def test_the_operator_command_checks_the_account_then_saves_it(three_clubs, engine, emulator, tmp_path):
    env = cli_env(tmp_path)
    emulator.emulator.create_connected_account("acct_eastsideFalcons1")

    unknown = run_cli(["tenant", "account", FALCONS, "acct_neverConnected03"], env)
    assert unknown.returncode == 2 and unknown.stdout == ""
    (line,) = unknown.stderr.strip().splitlines()
    assert "acct_neverConnected03" in line and "nothing saved" in line and "Traceback" not in line

    moved = run_cli(["tenant", "account", FALCONS, "acct_eastsideFalcons1"], env)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip() == f"tenant {FALCONS} now pays into Stripe account acct_eastsideFalcons1"
    back = run_cli(["tenant", "account", HOOPS, "--platform"], env)
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == f"tenant {HOOPS} now pays into the platform's Stripe account"

    with engine.connect() as connection:
        accounts = dict(connection.execute(sa.select(tenants.c.slug, tenants.c.stripe_account)).all())
    assert accounts == {HOOPS: None, EAGLES: EAGLES_ACCOUNT, FALCONS: "acct_eastsideFalcons1"}


def post_signed(office_url: str, event: dict) -> httpx.Response:
    payload = json.dumps(event)
    headers = stripe_signed_headers(payload, WEBHOOK_SECRET)
    return httpx.post(f"{office_url}/stripe/webhook", content=payload, headers=headers, timeout=30)
