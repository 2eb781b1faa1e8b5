"""The emulator's state file: a restart on the same file is the same Stripe, over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
import stripe

from paylinks.settings import PROJECT_ROOT
from stripe_emulator import EmulatorServer, EmulatorStateError
from tests.stripe_emulator.support import create_link, create_price, pay, sdk_client

CLUB_ACCOUNT = "acct_stateKeptClub"


def test_a_restart_on_the_same_file_keeps_accounts_objects_events_and_keys(tmp_path):
    state = tmp_path / "var" / "stripe-emulator.json"
    with EmulatorServer(state=state) as first:
        client = sdk_client(first)
        platform = client.v1.accounts.retrieve_current().id
        httpx.post(f"{first.url}/_emulator/accounts", data={"id": CLUB_ACCOUNT}).raise_for_status()
        price = create_price(client, unit_amount=6500)
        link = client.v1.payment_links.create(
            params={"line_items": [{"price": price.id, "quantity": 1}]},
            options={"idempotency_key": "row-17-link"},
        )
        club = sdk_client(first, stripe_account=CLUB_ACCOUNT)
        club_link = create_link(club, create_price(club).id)
        paid_before = pay(club_link.url)
        events_before = [event.id for event in client.v1.events.list(params={"limit": 100}).data]
        port = first.port
    assert paid_before.status_code == 200
    assert state.stat().st_mode & 0o777 == 0o600  # it holds customers' email addresses

    with EmulatorServer(state=state) as second:
        client = sdk_client(second)
        assert second.port == port  # where the kept links point
        assert client.v1.accounts.retrieve_current().id == platform
        assert (
            sdk_client(second, stripe_account=CLUB_ACCOUNT).v1.accounts.retrieve_current().id == CLUB_ACCOUNT
        )
        assert [event.id for event in client.v1.events.list(params={"limit": 100}).data] == events_before
        # The same idempotency key with the same request answers the kept link, not a second one.
        again = client.v1.payment_links.create(
            params={"line_items": [{"price": price.id, "quantity": 1}]},
            options={"idempotency_key": "row-17-link"},
        )
        assert again.id == link.id and second.emulator.counts()["payment_links"] == 1

        # The link minted before the restart opens and pays after it, as a parent would.
        page = httpx.get(link.url)
        assert page.status_code == 200 and "65.00" in page.text
        paid = pay(link.url)
        assert paid.status_code == 200 and paid.json()["payment_status"] == "paid"
        assert (
            client.v1.checkout.sessions.list(params={"payment_link": link.id}).data[0].id == paid.json()["id"]
        )
        # The connected account's payment, made before the restart, is still there.
        club_sessions = sdk_client(second, stripe_account=CLUB_ACCOUNT).v1.checkout.sessions.list()
        assert [s.id for s in club_sessions.data] == [paid_before.json()["id"]]

    with EmulatorServer(state=state) as third:  # and what the second run did is kept too
        assert third.emulator.counts()["checkout_sessions"] == 1
        assert sdk_client(third).v1.accounts.retrieve_current().id == platform


def test_the_file_holds_no_api_key(tmp_path):
    state = tmp_path / "state.json"
    with EmulatorServer(state=state) as server:
        client = stripe.StripeClient("sk_test_aKeyNobodyMaySee42", base_addresses={"api": server.url})
        client.v1.products.create(params={"name": "Fee"}, options={"idempotency_key": "one"})
    assert "sk_test_aKeyNobodyMaySee42" not in state.read_text()


def test_memory_keeps_nothing(tmp_path):
    with EmulatorServer(state=":memory:") as first:
        create_price(sdk_client(first))
        account = first.emulator.platform_account_id
    with EmulatorServer(state=":memory:") as second:
        assert second.emulator.counts()["prices"] == 0 and second.emulator.platform_account_id != account
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "contents",
    [b'{"format": "paylinks-stripe-emulator/1", "base_url": "http://127', b"\xff\xfe not text", b"[1, 2]"],
    ids=["cut short", "not text", "not a state"],
)
def test_a_file_it_cannot_read_is_one_line_naming_it(tmp_path, contents):
    state = tmp_path / "stripe-emulator.json"
    state.write_bytes(contents)

    with pytest.raises(EmulatorStateError) as refused:
        EmulatorServer(state=state)
    assert str(state) in str(refused.value) and "\n" not in str(refused.value)

    assert state.read_bytes() == contents  # left as it was, for whoever wants to look


def test_a_file_of_another_shape_is_refused_not_started_empty(tmp_path):
    state = tmp_path / "stripe-emulator.json"
    state.write_text(json.dumps({"format": "paylinks-stripe-emulator/1", "accounts": {}}))
    with pytest.raises(EmulatorStateError, match="incomplete"):
        EmulatorServer(state=state)


def test_the_command_names_the_file_it_cannot_read_in_one_line(tmp_path):
    state = tmp_path / "stripe-emulator.json"
    state.write_text('{"format": "paylinks-stripe-emulator/1", "base_url": "http://127')
    run = subprocess.run(
        [sys.executable, "-m", "cli", "stripe-emulator", "--state", str(state), "--port", "0"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and str(state) in run.stderr and "Traceback" not in run.stderr


def test_the_command_keeps_a_state_on_the_port_its_links_point_at(tmp_path):
    state = tmp_path / "stripe-emulator.json"
    with EmulatorServer(state=state) as first:
        create_link(sdk_client(first), create_price(sdk_client(first)).id)
        port = first.port
    elsewhere = subprocess.run(
        [sys.executable, "-m", "cli", "stripe-emulator", "--state", str(state), "--port", str(port + 1)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert elsewhere.returncode == 2 and elsewhere.stderr.count("\n") == 1
    assert f"point at port {port}" in elsewhere.stderr and "leave out --port" in elsewhere.stderr
    assert json.loads(state.read_text())["base_url"].endswith(f":{port}")  # untouched
