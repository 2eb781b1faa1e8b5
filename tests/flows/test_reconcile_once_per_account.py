"""Reconcile reads each Stripe account once per run, whatever the number of tenants on it, and
hands each payment to the tenant whose link took it. Requests are counted where Stripe would
count them: at the emulator, per account."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
import stripe

from flows.reconcile_payments import reconcile_payments
from paylinks.payments.reconcile import NewsSource
from paylinks.payments.transitions import Outcome
from paylinks.store.tables import (
    minted_links,
    parents,
    payment_links,
    players,
    products,
    reconcile_cursors,
    tenants,
)
from stripe_emulator.state import Account
from tests.helpers import rows

# The test marked `storage` runs on PostgreSQL too (an event re-read by another tenant's run is applied
# once, by its unique id); the rest on SQLite.

CONNECTED = "acct_clubOwnAccount01"


@pytest.fixture
def requests_per_account(monkeypatch) -> Counter:
    """Every `/v1` request the emulator answers, by the account it acted in."""
    counted: Counter = Counter()
    admit = Account.admit_request

    def counting(self: Account) -> bool:
        counted[self.id] += 1
        return admit(self)

    monkeypatch.setattr(Account, "admit_request", counting)
    return counted


def club_with_links(
    engine: sa.Engine, emulator, slug: str, links: int, stripe_account: str | None = None
) -> list[int]:
    """A tenant with `links` signed players, each billed through a link minted in the tenant's
    Stripe account (the platform's, or its own); returns the rows' ids."""
    client = stripe.StripeClient(
        "sk_test_paylinks_tests", base_addresses={"api": emulator.url}, max_network_retries=0
    )
    options = {"stripe_account": stripe_account} if stripe_account else {}
    where = stripe_account or emulator.emulator.platform_account_id
    product = client.v1.products.create(params={"name": f"{slug} dues"}, options=options)
    price = client.v1.prices.create(
        params={"product": product.id, "unit_amount": 5000, "currency": "usd"}, options=options
    )
    with engine.begin() as connection:
        tenant_id = connection.execute(
            sa.insert(tenants)
            .values(
                slug=slug,
                name=slug.title(),
                reply_to_email=f"office@{slug}.test",
                currency="usd",
                stripe_account=stripe_account,
            )
            .returning(tenants.c.id)
        ).scalar_one()
        parent_id = connection.execute(
            sa.insert(parents)
            .values(tenant_id=tenant_id, first_name="Pat", last_name="Doe", email=f"pat@{slug}.test")
            .returning(parents.c.id)
        ).scalar_one()
        product_id = connection.execute(
            sa.insert(products)
            .values(
                tenant_id=tenant_id, name="Dues", amount_cents=5000, active=True, bill_signed_players=True
            )
            .returning(products.c.id)
        ).scalar_one()
        row_ids = []
        for n in range(links):
            player_id = connection.execute(
                sa.insert(players)
                .values(
                    tenant_id=tenant_id,
                    parent_id=parent_id,
                    first_name=f"Kid{n}",
                    last_name="Doe",
                    status="signed",
                )
                .returning(players.c.id)
            ).scalar_one()
            link = client.v1.payment_links.create(
                params={"line_items": [{"price": price.id, "quantity": 1}]}, options=options
            )
            row_id = connection.execute(
                sa.insert(payment_links)
                .values(
                    tenant_id=tenant_id,
                    player_id=player_id,
                    parent_id=parent_id,
                    product_id=product_id,
                    description="Dues",
                    amount_cents=5000,
                    stripe_price_id=price.id,
                    stripe_payment_link_id=link.id,
                    stripe_payment_link_url=link.url,
                    stripe_account=where,
                    livemode=False,
                )
                .returning(payment_links.c.id)
            ).scalar_one()
            connection.execute(
                sa.insert(minted_links).values(
                    stripe_payment_link_id=link.id,
                    tenant_id=tenant_id,
                    payment_link_row_id=row_id,
                    mint_version=1,
                )
            )
            row_ids.append(row_id)
    return row_ids


def pay(engine: sa.Engine, emulator, row_id: int) -> None:
    emulator.emulator.pay(rows(engine)[row_id]["stripe_payment_link_id"])


def paid_rows(engine: sa.Engine) -> set[int]:
    return {i for i, r in rows(engine).items() if r["status"].value == "paid"}


def cursors(engine: sa.Engine) -> dict[tuple[str, bool], int]:
    with engine.connect() as connection:
        return {
            (c.stripe_account, c.livemode): c.last_event_created
            for c in connection.execute(sa.select(reconcile_cursors))
        }


def test_five_tenants_on_one_account_are_read_once(settings, engine, emulator, requests_per_account):
    platform = emulator.emulator.platform_account_id
    clubs = {f"club-{n}": club_with_links(engine, emulator, f"club-{n}", 20) for n in range(5)}
    # Before the first run: a few payments, and link pages opened but not paid: 120 sessions.
    early = [clubs["club-0"][0], clubs["club-3"][5]]
    for row_id in early:
        pay(engine, emulator, row_id)
    every_row = [r for ids in clubs.values() for r in ids]
    for row_id in [r for r in every_row if r not in early] + every_row[-20:]:
        emulator.emulator.open_session(rows(engine)[row_id]["stripe_payment_link_id"])
    assert emulator.emulator.counts()["checkout_sessions"] == 120
    requests_per_account.clear()

    first = reconcile_payments()

    # One account read: where the key acts (once ever), 2 pages of 100 sessions, 1 page of events;
    # never one request per link (100 links).
    assert requests_per_account == Counter({platform: 4})
    assert {r.tenant: r.source for r in first} == {slug: NewsSource.session_scan for slug in clubs}
    assert paid_rows(engine) == set(early)
    assert {r.tenant: r.rows(Outcome.marked_paid) for r in first if r.rows(Outcome.marked_paid)} == {
        "club-0": [early[0]],
        "club-3": [early[1]],
    }
    assert list(cursors(engine)) == [(platform, False)]

    # Ten payments across the tenants since the last run: one events read for all of them.
    paid = [ids[k] for i, ids in enumerate(clubs.values()) for k in (i + 1, i + 10)]
    for row_id in paid:
        pay(engine, emulator, row_id)
    requests_per_account.clear()

    second = reconcile_payments()

    assert requests_per_account == Counter({platform: 1})
    assert all(r.source is NewsSource.events and r.stripe_requests == 1 for r in second)
    assert paid_rows(engine) == set(early) | set(paid)
    for report in second:  # each payment is applied to the tenant whose link took it, only
        assert sorted(report.rows(Outcome.marked_paid)) == sorted(set(paid) & set(clubs[report.tenant]))


@pytest.mark.storage  # an event re-read by another run is applied once (its unique id)
def test_a_run_for_one_tenant_reconciles_its_whole_account(settings, engine, emulator, requests_per_account):
    # The account's news is read anyway: it is applied for every tenant on the account (as a
    # webhook would) and the account's cursor moves; the run reports on the tenant asked for.
    alpha = club_with_links(engine, emulator, "alpha", 3)
    beta = club_with_links(engine, emulator, "beta", 3)
    reconcile_payments(tenant="alpha")
    cursor_before = cursors(engine)
    pay(engine, emulator, alpha[0])
    pay(engine, emulator, beta[1])
    requests_per_account.clear()

    (report,) = reconcile_payments(tenant="alpha")

    assert sum(requests_per_account.values()) == 1
    assert report.tenant == "alpha" and report.rows(Outcome.marked_paid) == [alpha[0]]
    assert paid_rows(engine) == {alpha[0], beta[1]}
    assert cursors(engine).keys() == cursor_before.keys()

    (again,) = reconcile_payments(tenant="beta")  # nothing new: already applied
    assert again.rows(Outcome.marked_paid) == [] and again.already_applied == 1


def test_cursors_are_per_account_and_each_account_is_read_with_its_own(
    settings, engine, emulator, requests_per_account
):
    platform = emulator.emulator.platform_account_id
    emulator.emulator.create_connected_account(CONNECTED)
    ours = club_with_links(engine, emulator, "on-the-platform", 4)
    own = club_with_links(engine, emulator, "own-account", 4, stripe_account=CONNECTED)
    pay(engine, emulator, own[0])  # before the first run: found by the scan of the club's account

    first = {r.tenant: r for r in reconcile_payments()}

    assert first["own-account"].rows(Outcome.marked_paid) == [own[0]]
    assert first["own-account"].stripe_account == CONNECTED
    assert set(cursors(engine)) == {(platform, False), (CONNECTED, False)}

    pay(engine, emulator, own[1])
    pay(engine, emulator, ours[2])
    requests_per_account.clear()
    second = {r.tenant: r for r in reconcile_payments()}

    assert requests_per_account == Counter({platform: 1, CONNECTED: 1})  # one events read each
    assert second["own-account"].rows(Outcome.marked_paid) == [own[1]]
    assert second["on-the-platform"].rows(Outcome.marked_paid) == [ours[2]]
    assert paid_rows(engine) == {own[0], own[1], ours[2]}

    # A run for the platform's tenant leaves the other account's cursor alone.
    before = cursors(engine)
    pay(engine, emulator, own[2])
    reconcile_payments(tenant="on-the-platform")
    assert cursors(engine)[(CONNECTED, False)] == before[(CONNECTED, False)]
    assert own[2] not in paid_rows(engine)


def test_the_emulator_lists_checkout_sessions_by_creation_time(emulator, stripe_client):
    product = stripe_client.v1.products.create(params={"name": "Dues"})
    price = stripe_client.v1.prices.create(
        params={"product": product.id, "unit_amount": 100, "currency": "usd"}
    )
    link = stripe_client.v1.payment_links.create(params={"line_items": [{"price": price.id, "quantity": 1}]})
    session = emulator.emulator.open_session(link.id)

    def listed(**created: int) -> list[str]:
        return [s.id for s in stripe_client.v1.checkout.sessions.list(params={"created": created}).data]

    assert listed(gte=session["created"]) == [session["id"]]
    assert listed(gt=session["created"]) == []
    assert listed(lt=session["created"] + 1) == [session["id"]]
