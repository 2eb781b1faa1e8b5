"""Stripe's word over what paylinks remembers: the local Stripe comes back at the same address as
another account (or as the same account with nothing in it), and every part says one thing about
the same rows, then a backfill makes them payable again. Real parts: the emulator over HTTP (a
second server on the first one's port), the `paylinks` command in its own process, SQLite."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from flows.backfill_payment_links import BackfillIncompleteError, backfill_payment_links
from flows.outstanding_balance_email import outstanding_balance_email
from paylinks.billing.plan import Action
from paylinks.club.balances import Withheld
from paylinks.present.backfill import backfill_tables
from paylinks.store.tables import orders, payment_links, players, stripe_key_accounts, tenants
from stripe_emulator import EmulatorServer
from tests.helpers import TENANT, cli_env, run_cli

MOVED = "the Stripe key now acts in"


def open_rows(engine) -> dict[int, sa.RowMapping]:
    """TENANT's pending rows, with the player's name."""
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(payment_links, players.c.first_name, players.c.last_name)
            .join(players, players.c.id == payment_links.c.player_id)
            .join(tenants, tenants.c.id == payment_links.c.tenant_id)
            .where(tenants.c.slug == TENANT, payment_links.c.status == "pending")
            .order_by(payment_links.c.id)
        ).mappings()
        return {row["id"]: row for row in found}


def remembered_accounts(engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(stripe_key_accounts.c.stripe_account)).scalars())


@pytest.fixture
def restartable(use_settings, demo_club):
    """The club minted on a local Stripe that is then stopped; `again(account_id=None)` starts
    another on the same port (the same PAYLINKS_STRIPE_API_BASE), as `make emulator` does."""
    servers: list[EmulatorServer] = []
    first = EmulatorServer(host="127.0.0.1", port=0).start()
    servers.append(first)
    # Every backfill asks where the key acts (a later test takes the hour's trust of the default).
    use_settings(stripe_api_base=first.url, stripe_account_recheck_minutes=0)
    backfill_payment_links(tenant=TENANT, commit=True)
    address, port = first.url, first.port
    first.stop()

    class Restart:
        old = first

        @staticmethod
        def again(account_id: str | None = None) -> EmulatorServer:
            server = EmulatorServer(host="127.0.0.1", port=port, account_id=account_id).start()
            servers.append(server)
            assert server.url == address
            return server

    yield Restart
    for server in servers:
        server.stop()


def test_a_remembered_account_stripe_contradicts_is_said_in_one_line_and_its_links_are_reminted(
    settings, engine, restartable, tmp_path
):
    old_account = restartable.old.emulator.platform_account_id
    before = open_rows(engine)
    assert before and remembered_accounts(engine) == {old_account}

    second = restartable.again()  # nothing kept: another account at the same address
    new_account = second.emulator.platform_account_id
    assert new_account != old_account

    done = run_cli(["backfill", "--tenant", TENANT, "--commit"], cli_env(tmp_path))

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    said = [line for line in output.splitlines() if MOVED in line]
    assert len(said) == 1, output
    assert said[0].endswith(
        f"{MOVED} {new_account} (test mode) (was {old_account} (test mode)): "
        "links minted there are re-minted by the next backfill"
    )
    after = open_rows(engine)
    assert after.keys() == before.keys()
    for row_id, row in after.items():
        assert row["stripe_account"] == new_account
        assert row["stripe_payment_link_id"] != before[row_id]["stripe_payment_link_id"]
        assert row["mint_version"] == before[row_id]["mint_version"] + 1
    assert second.emulator.counts()["payment_links"] == len(after)
    assert remembered_accounts(engine) == {new_account}
    # Every re-minted link opens, at the address the emulator answers at now.
    with httpx.Client() as client:
        for row in after.values():
            assert client.get(row["stripe_payment_link_url"]).status_code == 200

    # The next run: the same account, nothing said, nothing minted; one request (GET /v1/account).
    requests = second.emulator.request_counts()
    again = run_cli(["backfill", "--tenant", TENANT, "--commit"], cli_env(tmp_path))
    assert again.returncode == 0 and MOVED not in again.stdout + again.stderr
    assert second.emulator.request_counts() == {new_account: requests[new_account] + 1}
    assert open_rows(engine) == after

    # With the default hour of trust, a run right after one that asked asks Stripe nothing.
    trusting = cli_env(tmp_path, PAYLINKS_STRIPE_ACCOUNT_RECHECK_MINUTES="60")
    quiet = run_cli(["backfill", "--tenant", TENANT, "--commit"], trusting)
    assert quiet.returncode == 0 and MOVED not in quiet.stdout + quiet.stderr
    assert second.emulator.request_counts() == {new_account: requests[new_account] + 1}
    assert open_rows(engine) == after


def test_until_the_backfill_every_part_gives_the_one_explanation_of_links_of_another_account(
    settings, engine, restartable, tmp_path
):
    restartable.again()
    rows = open_rows(engine)
    player = next(iter(rows.values()))
    words = Withheld.other_stripe_account.label

    # The coach's lookup notices first: one line, and each open link says why it is not offered.
    looked = run_cli(["lookup", str(player["player_id"]), "--tenant", TENANT], cli_env(tmp_path))
    assert looked.returncode == 0, looked.stdout + looked.stderr
    assert sum(MOVED in line for line in looked.stdout.splitlines()) == 1
    theirs = [r for r in rows.values() if r["player_id"] == player["player_id"]]
    for row in theirs:
        assert row["stripe_payment_link_url"] not in looked.stdout
    assert looked.stdout.count(words) == len(theirs)

    # The blast holds every one of them back for that reason (never "nobody owes anything")...
    preview = outstanding_balance_email(tenant=TENANT)
    assert not preview.emails
    assert {item.payment_link_id: item.reason for item in preview.held_back} == dict.fromkeys(
        rows, Withheld.other_stripe_account
    )
    # ...and the backfill's dry run plans to mint each of them here, in the same words.
    (dry,) = backfill_payment_links(tenant=TENANT, commit=False)
    assert {s.row_id for s in dry.plan.steps_for(Action.remint_elsewhere)} == set(rows)
    step_words = {cells[0] for cells in backfill_tables(dry)[1].rows}
    assert step_words == {Action.remint_elsewhere.label}
    assert "link minted in another Stripe account/mode" in words
    assert "link minted in another Stripe account/mode" in Action.remint_elsewhere.label

    (done,) = backfill_payment_links(tenant=TENANT, commit=True)
    assert done.minted == len(rows)
    sent = outstanding_balance_email(tenant=TENANT)
    assert not sent.held_back and sum(len(e.urls) for e in sent.emails) == len(rows)


def test_links_and_prices_stripe_no_longer_has_are_minted_again_by_the_backfill(
    settings, engine, restartable, use_settings
):
    old_account = restartable.old.emulator.platform_account_id
    rows = open_rows(engine)
    unnamed, moved, reserved, *_ = rows.values()
    with engine.begin() as connection:
        # One link minted before paylinks named the player (it is updated, or minted if missing),
        connection.execute(
            sa.update(payment_links).where(payment_links.c.id == unnamed["id"]).values(checkout_text=None)
        )
        # one whose bill moves to another order (its link's metadata is updated),
        order_id = connection.execute(
            sa.insert(orders)
            .values(
                tenant_id=moved["tenant_id"],
                player_id=moved["player_id"],
                parent_id=moved["parent_id"],
                product_id=moved["product_id"],
                amount_cents=moved["amount_cents"],
                status="pending",
            )
            .returning(orders.c.id)
        ).scalar_one()
        if moved["order_id"] is not None:
            connection.execute(
                sa.update(orders).where(orders.c.id == moved["order_id"]).values(status="cancelled")
            )
        # and one reserved at its price by a run that stopped before minting it.
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == reserved["id"])
            .values(stripe_payment_link_id=None, stripe_payment_link_url=None)
        )
    # The same account comes back with nothing in it: no link, no price, no product.
    empty = restartable.again(account_id=old_account)
    assert empty.emulator.counts()["payment_links"] == 0

    with pytest.raises(BackfillIncompleteError) as first_run:
        backfill_payment_links(tenant=TENANT, commit=True)

    (report,) = first_run.value.reports
    # The unnamed link: Stripe had no such link, so it was minted again in the same run.
    after = open_rows(engine)
    assert after[unnamed["id"]]["stripe_payment_link_id"] not in (None, unnamed["stripe_payment_link_id"])
    assert empty.emulator.account(None).holds("payment_links", after[unnamed["id"]]["stripe_payment_link_id"])
    assert after[unnamed["id"]]["checkout_text"]
    # The moved bill's link and the reserved row's price were missing: let go of, not minted yet.
    for row in (moved, reserved):
        assert after[row["id"]]["stripe_payment_link_id"] is None
        assert after[row["id"]]["mint_version"] == row["mint_version"] + 1
    assert [row_id for row_id, _error in report.mint_errors] == [reserved["id"]]
    findings = {(f.kind.value, f.row_id) for f in report.retire.findings}
    assert {("link_missing_at_stripe", unnamed["id"]), ("link_missing_at_stripe", moved["id"])} <= findings
    held = {i.payment_link_id: i.reason for i in outstanding_balance_email(tenant=TENANT).held_back}
    assert held[reserved["id"]] is Withheld.not_minted
    assert held[moved["id"]] is Withheld.bill_changed  # a bill that changed says so first

    (second,) = backfill_payment_links(tenant=TENANT, commit=True)

    assert not second.failed and second.minted == 2
    again = open_rows(engine)
    for row in (moved, reserved):
        link_id = again[row["id"]]["stripe_payment_link_id"]
        assert link_id and empty.emulator.account(None).holds("payment_links", link_id)
    assert again[moved["id"]]["order_id"] == order_id
    with httpx.Client() as client:
        assert client.get(again[reserved["id"]]["stripe_payment_link_url"]).status_code == 200
