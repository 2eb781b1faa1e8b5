"""The platform account, Connect accounts (`Stripe-Account`), test and live mode, and per-account limits."""

from __future__ import annotations

import httpx
import pytest
import stripe

from stripe_emulator import EmulatorServer
from tests.stripe_emulator.support import API_KEY, create_link, create_price, pay, sdk_client

pytestmark = pytest.mark.slow


def connect_account(server: EmulatorServer, **form: str) -> str:
    created = httpx.post(f"{server.url}/_emulator/accounts", data=form)
    assert created.status_code == 200, created.text
    return created.json()["id"]


class TestTheAccount:
    def test_the_platform_account_is_stable_for_the_emulators_life(self, client, server):
        first = client.v1.accounts.retrieve_current()
        again = client.v1.accounts.retrieve_current()

        assert first.id.startswith("acct_") and first.id == again.id == server.emulator.platform_account_id
        assert (first.object, first.charges_enabled, first.default_currency) == ("account", True, "usd")

    def test_a_test_key_makes_test_objects(self, client):
        link = create_link(client, create_price(client).id)
        session = pay(link.url).json()

        assert (
            link.livemode is False and session["livemode"] is False and session["id"].startswith("cs_test_")
        )
        assert client.v1.events.list().data[0].livemode is False

    def test_a_live_key_makes_live_objects_kept_apart_from_test_ones(self):
        live_key = "sk_live_emulatorLiveKey0001"
        with EmulatorServer() as server:
            live, test = sdk_client(server, api_key=live_key), sdk_client(server)
            link = create_link(live, create_price(live).id)
            session = pay(link.url).json()

            assert link.livemode is True and session["livemode"] is True
            assert session["id"].startswith("cs_live_")
            assert live.v1.payment_intents.retrieve(session["payment_intent"]).livemode is True
            with pytest.raises(stripe.InvalidRequestError):
                test.v1.payment_links.retrieve(link.id)  # test mode never sees live data
            assert test.v1.payment_links.list().data == []

    def test_an_emulator_started_for_a_live_key_is_live_when_used_directly(self):
        live_key = "sk_live_emulatorLiveKey0002"
        with EmulatorServer(api_key=live_key) as server:
            product = server.emulator.create_product({"name": "Fee"})
            assert product["livemode"] is True
            assert sdk_client(server, api_key=live_key).v1.products.retrieve(product["id"]).livemode is True


class TestConnectAccounts:
    def test_each_account_has_its_own_objects_lookup_keys_and_events(self, client, server):
        club = sdk_client(server, stripe_account=connect_account(server))
        ours = create_price(client, lookup_key="u12-fee-4500")
        theirs = create_price(club, lookup_key="u12-fee-4500")  # the same key, another account: no clash

        assert [p.id for p in client.v1.prices.list(params={"lookup_keys": ["u12-fee-4500"]}).data] == [
            ours.id
        ]
        assert [p.id for p in club.v1.prices.list(params={"lookup_keys": ["u12-fee-4500"]}).data] == [
            theirs.id
        ]
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.prices.retrieve(theirs.id)
        assert raised.value.http_status == 404
        assert [link.id for link in client.v1.payment_links.list().data] == []

    def test_a_connected_accounts_payments_and_events_stay_in_that_account(self, client, server):
        account_id = connect_account(server, id="acct_clubNorth0001")
        club = sdk_client(server, stripe_account=account_id)
        link = create_link(club, create_price(club).id)

        session = pay(link.url).json()  # the parent pays on the link's page, whoever's it is

        assert [found.id for found in club.v1.checkout.sessions.list().data] == [session["id"]]
        assert client.v1.checkout.sessions.list().data == []
        completed = club.v1.events.list(params={"type": "checkout.session.completed"}).data[0]
        assert completed.account == account_id
        assert client.v1.events.list().data == []
        assert club.v1.accounts.retrieve_current().id == account_id
        client.v1.products.create(params={"name": "Platform fee"})
        (platform_event,) = client.v1.events.list().data
        assert "account" not in platform_event.to_dict()
        assert server.emulator.counts(account_id)["checkout_sessions"] == 1

    def test_idempotency_keys_are_kept_per_account(self, client, server):
        club = sdk_client(server, stripe_account=connect_account(server))
        ours = client.v1.products.create(params={"name": "Fee"}, options={"idempotency_key": "row-1"})
        theirs = club.v1.products.create(params={"name": "Fee"}, options={"idempotency_key": "row-1"})
        assert ours.id != theirs.id

    def test_one_idempotency_key_in_two_accounts_mints_two_links(self, client, server):
        club = sdk_client(server, stripe_account=connect_account(server))
        key = {"idempotency_key": "paylinks-plink-1-17-v1"}
        prices = {"ours": create_price(client).id, "theirs": create_price(club).id}
        link_params = {"restrictions": {"completed_sessions": {"limit": 1}}}

        ours = client.v1.payment_links.create(
            params={"line_items": [{"price": prices["ours"], "quantity": 1}], **link_params}, options=key
        )
        theirs = club.v1.payment_links.create(
            params={"line_items": [{"price": prices["theirs"], "quantity": 1}], **link_params}, options=key
        )
        replayed = club.v1.payment_links.create(
            params={"line_items": [{"price": prices["theirs"], "quantity": 1}], **link_params}, options=key
        )

        assert ours.id != theirs.id and replayed.id == theirs.id
        assert [link.id for link in client.v1.payment_links.list().data] == [ours.id]
        assert [link.id for link in club.v1.payment_links.list().data] == [theirs.id]

    def test_events_are_listed_per_account_each_naming_it(self, client, server):
        north, south = connect_account(server), connect_account(server)
        for account in (north, south):
            club = sdk_client(server, stripe_account=account)
            create_link(club, create_price(club).id)
            events = club.v1.events.list().data
            assert {event.type for event in events} == {
                "product.created",
                "price.created",
                "payment_link.created",
            }
            assert {event.account for event in events} == {account}
        assert client.v1.events.list().data == []

    def test_requests_are_counted_per_account(self, client, server):
        club_account = connect_account(server)
        club = sdk_client(server, stripe_account=club_account)
        client.v1.products.list()
        for _ in range(3):
            club.v1.products.list()
        with pytest.raises(stripe.PermissionError):
            sdk_client(server, stripe_account="acct_neverConnected").v1.products.list()

        counts = server.emulator.request_counts()
        assert counts == {server.emulator.platform_account_id: 1, club_account: 3}

    def test_an_unknown_account_gets_stripes_403(self, server):
        stranger = sdk_client(server, stripe_account="acct_neverConnected")
        with pytest.raises(stripe.PermissionError) as raised:
            stranger.v1.products.list()
        # The SDK keeps `code` only for 400s; the body carries it for every status.
        assert (raised.value.http_status, raised.value.json_body["error"]["code"]) == (403, "account_invalid")
        message = str(raised.value)
        assert "does not have access to account 'acct_neverConnected'" in message
        assert API_KEY not in message and "sk_test_****0001" in message

    def test_connecting_an_account_twice_or_with_a_bad_id_is_refused(self, server):
        connect_account(server, id="acct_twice")
        assert httpx.post(f"{server.url}/_emulator/accounts", data={"id": "acct_twice"}).status_code == 400
        assert httpx.post(f"{server.url}/_emulator/accounts", data={"id": "club"}).status_code == 400
        assert httpx.post(f"{server.url}/_emulator/accounts", data={"name": "x"}).status_code == 400


class TestRateLimits:
    def burst(self, call, times: int) -> int:
        """How many of `times` calls in a row got Stripe's 429 `rate_limit`."""
        limited = 0
        for _ in range(times):
            try:
                call()
            except stripe.RateLimitError as error:
                assert (error.http_status, error.json_body["error"]["code"]) == (429, "rate_limit")
                limited += 1
        return limited

    def test_each_account_has_its_own_overall_limit(self, client, server):
        club = sdk_client(server, stripe_account=connect_account(server))
        server.emulator.faults.rate_limit_rps = 2

        assert self.burst(client.v1.products.list, 10) >= 4
        assert (
            self.burst(club.v1.products.list, 2) == 0
        )  # the platform's burst did not spend the club's budget

    def test_one_accounts_link_creation_limit_does_not_throttle_another(self, client, server):
        club = sdk_client(server, stripe_account=connect_account(server))
        ours, theirs = create_price(client), create_price(club)
        server.emulator.faults.link_create_rps = 2

        assert self.burst(lambda: create_link(client, ours.id), 8) >= 4
        assert self.burst(lambda: create_link(club, theirs.id), 2) == 0

    def test_payment_link_creation_has_its_own_limit(self, client, server):
        price = create_price(client)
        server.emulator.faults.link_create_rps = 1

        assert self.burst(lambda: create_link(client, price.id), 8) >= 4
        assert self.burst(client.v1.products.list, 5) == 0  # other calls are not held back
        assert server.emulator.counts()["payment_links"] <= 4

    def test_the_link_creation_rate_can_be_set_live(self, server):
        changed = httpx.post(f"{server.url}/_emulator/faults", json={"link_create_rps": 25})
        assert changed.status_code == 200 and server.emulator.faults.link_create_rps == 25
        assert httpx.post(f"{server.url}/_emulator/faults", json={"link_create_rps": -1}).status_code == 400


class TestPaymentLinkMetadata:
    def test_metadata_updates_merge_and_are_recorded(self, client):
        link = create_link(client, create_price(client).id, metadata={"row": "17", "order": "5"})

        updated = client.v1.payment_links.update(link.id, params={"metadata": {"order": "6", "parent": "9"}})

        assert updated.metadata.to_dict() == {"row": "17", "order": "6", "parent": "9"}
        event = client.v1.events.list(params={"type": "payment_link.updated"}).data[0]
        assert event.data.previous_attributes.metadata.to_dict() == {"row": "17", "order": "5"}

    def test_links_created_since_a_moment_are_found_through_their_events(self, client, server):
        # Stripe's PaymentLink has no `created` and its list has no date filter; the
        # `payment_link.created` events (kept 30 days) say when each link was made.
        price = create_price(client)
        server.emulator.clock = lambda: 1_800_000_000
        create_link(client, price.id, metadata={"row": "1"})
        server.emulator.clock = lambda: 1_800_090_000
        wanted = create_link(client, price.id, metadata={"row": "2", "mint_version": "1"})

        recent = client.v1.events.list(
            params={"type": "payment_link.created", "created": {"gte": 1_800_050_000}}
        ).data

        assert [event.data.object.id for event in recent] == [wanted.id]
        assert recent[0].data.object.metadata.to_dict() == {"row": "2", "mint_version": "1"}
