"""The local Stripe emulator, driven through the real `stripe` SDK over HTTP.

Each server test starts its own `EmulatorServer` on a free loopback port (about 30 ms), so no
state leaks between tests. The SDK never retries here (`max_network_retries=0`): injected
faults must reach the test as the exceptions paylinks' retry logic will see.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
import stripe

from stripe_emulator import Emulator, EmulatorError, EmulatorServer, FaultConfig
from stripe_emulator.auth import mask_api_key
from stripe_emulator.forms import parse_form
from tests.stripe_emulator.support import (
    NULL_WHERE_STRIPE_RETURNS_NULL,
    create_link,
    create_price,
    pay,
    sdk_client,
    shape_mismatches,
)
from tests.support.stripe_fixtures import STRIPE_FIXTURES

# ---------------------------------------------------------------------- without a server


def test_parse_form_reads_stripe_bracket_notation():
    params = parse_form(
        "name=Fee&metadata[club]=fc&metadata[0]=zero&line_items[0][price]=price_a&line_items[0][quantity]=1"
        "&line_items[1][price]=price_b&lookup_keys[]=a&lookup_keys[]=b&created[gte]=123&inactive_message="
    )
    assert params == {
        "name": "Fee",
        "metadata": {"club": "fc", "0": "zero"},  # metadata keys are never list indices
        "line_items": [{"price": "price_a", "quantity": "1"}, {"price": "price_b"}],
        "lookup_keys": ["a", "b"],
        "created": {"gte": "123"},
        "inactive_message": "",
    }


def test_parse_form_rejects_a_key_used_as_value_and_hash():
    with pytest.raises(EmulatorError) as raised:
        parse_form("metadata=x&metadata[a]=b")
    assert raised.value.http_status == 400


def test_api_key_is_masked_to_its_last_four_characters():
    assert mask_api_key("sk_test_51HabcdefghijklmnWXYZ") == "sk_test_****WXYZ"
    assert mask_api_key("sk_test_short") == "sk_test_****"


def test_emulator_used_directly_pays_and_settles_a_link():
    emulator = Emulator(clock=lambda: 1_700_000_000)
    product = emulator.create_product({"name": "Kit"})
    price = emulator.create_price({"product": product["id"], "unit_amount": 2500, "currency": "usd"})
    link = emulator.create_payment_link({"line_items": [{"price": price["id"], "quantity": 2}]})

    session = emulator.pay(link["id"], payment_status="unpaid")
    assert (session["status"], session["payment_status"], session["amount_total"]) == (
        "complete",
        "unpaid",
        5000,
    )
    assert session["created"] == 1_700_000_000
    assert emulator.settle(session["id"])["payment_status"] == "paid"
    with pytest.raises(EmulatorError):
        emulator.settle(session["id"])  # nothing left to settle

    event_types = [event["type"] for event in emulator.list_events({"limit": 100})["data"]]
    assert event_types[:2] == ["checkout.session.async_payment_succeeded", "checkout.session.completed"]
    assert emulator.counts() == {
        "products": 1,
        "prices": 1,
        "payment_links": 1,
        "checkout_sessions": 1,
        "payment_intents": 1,
        "charges": 1,
        "refunds": 0,
        "disputes": 0,
        "events": 5,
    }


def test_fault_config_rejects_nonsense():
    with pytest.raises(ValueError, match="fail_rate"):
        FaultConfig(fail_rate=1.5).validate()


# ---------------------------------------------------------------------- products and prices


@pytest.mark.slow
class TestProductsAndPrices:
    def test_price_is_found_by_lookup_key(self, client):
        price = create_price(client, lookup_key="u12-fee-4500")
        create_price(client, lookup_key="u14-fee-5000")

        found = client.v1.prices.list(params={"lookup_keys": ["u12-fee-4500", "missing-key"]})

        assert [p.id for p in found.data] == [price.id]
        assert (found.data[0].unit_amount, str(found.data[0].unit_amount_decimal), found.data[0].type) == (
            4500,
            "4500",
            "one_time",
        )

    def test_second_price_with_same_lookup_key_is_rejected(self, client, server):
        price = create_price(client, lookup_key="u12-fee-4500")
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.prices.create(
                params={
                    "product": price.product,
                    "unit_amount": 4500,
                    "currency": "usd",
                    "lookup_key": "u12-fee-4500",
                }
            )
        assert raised.value.http_status == 400
        assert raised.value.param == "lookup_key"
        assert server.emulator.counts()["prices"] == 1

    def test_transfer_lookup_key_moves_the_key_to_the_new_price(self, client):
        old = create_price(client, lookup_key="fee")
        new = client.v1.prices.create(
            params={
                "product": old.product,
                "unit_amount": 5000,
                "currency": "usd",
                "lookup_key": "fee",
                "transfer_lookup_key": True,
            }
        )
        assert [p.id for p in client.v1.prices.list(params={"lookup_keys": ["fee"]}).data] == [new.id]
        assert client.v1.prices.retrieve(old.id).lookup_key is None

    def test_lookup_keys_work_in_bracket_form_and_are_capped_at_ten(self, client, http):
        price = create_price(client, lookup_key="a")
        listed = http.get("/v1/prices?lookup_keys[]=a&lookup_keys[]=b").json()
        assert [p["id"] for p in listed["data"]] == [price.id]
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.prices.list(params={"lookup_keys": [f"key-{n}" for n in range(11)]})
        assert raised.value.param == "lookup_keys"

    def test_recurring_price_is_refused_rather_than_made_one_time(self, client):
        product = client.v1.products.create(params={"name": "Membership"})
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.prices.create(
                params={
                    "product": product.id,
                    "unit_amount": 1000,
                    "currency": "usd",
                    "recurring": {"interval": "month"},
                }
            )
        assert raised.value.param == "recurring"

    def test_price_for_unknown_product_names_the_param(self, client):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.prices.create(params={"product": "prod_missing", "unit_amount": 100, "currency": "usd"})
        assert (raised.value.code, raised.value.param) == ("resource_missing", "product")

    def test_misspelt_param_is_refused_as_stripe_would(self, client):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.products.create(params={"name": "Fee", "metdata": {"a": "b"}})
        assert (raised.value.code, raised.value.param) == ("parameter_unknown", "metdata")

    def test_product_update_merges_metadata_and_records_an_event(self, client):
        product = client.v1.products.create(
            params={"name": "Fee", "metadata": {"season": "2025", "old": "x"}}
        )
        updated = client.v1.products.update(product.id, params={"name": "Fee 2026", "metadata": {"old": ""}})
        assert (updated.name, updated.metadata.to_dict()) == ("Fee 2026", {"season": "2025"})
        event = client.v1.events.list(params={"type": "product.updated"}).data[0]
        assert event.data.previous_attributes["name"] == "Fee"


# ---------------------------------------------------------------------- payment links


@pytest.mark.slow
class TestPaymentLinks:
    def test_create_and_retrieve_keep_metadata_and_restrictions(self, client):
        price = create_price(client)
        link = create_link(
            client,
            price.id,
            metadata={"payment_link_row": "17"},
            payment_intent_data={"metadata": {"tenant": "fc-north"}},
            restrictions={"completed_sessions": {"limit": 1}},
        )
        fetched = client.v1.payment_links.retrieve(link.id)

        assert fetched.id.startswith("plink_") and fetched.active
        assert fetched.metadata.to_dict() == {"payment_link_row": "17"}
        assert fetched.payment_intent_data.metadata.to_dict() == {"tenant": "fc-north"}
        assert fetched.restrictions.completed_sessions.to_dict() == {"count": 0, "limit": 1}
        assert fetched.currency == "usd"
        assert fetched.url.endswith(f"/pay/{link.id}")

    def test_list_pages_newest_first(self, client):
        price = create_price(client)
        created = [create_link(client, price.id).id for _ in range(12)]
        newest_first = created[::-1]

        first = client.v1.payment_links.list()
        assert [link.id for link in first.data] == newest_first[:10] and first.has_more
        second = client.v1.payment_links.list(params={"starting_after": first.data[-1].id})
        assert [link.id for link in second.data] == newest_first[10:] and not second.has_more
        back = client.v1.payment_links.list(params={"ending_before": second.data[0].id, "limit": 3})
        assert [link.id for link in back.data] == newest_first[7:10] and back.has_more

        paged = client.v1.payment_links.list(params={"limit": 5}).auto_paging_iter()
        assert [link.id for link in paged] == newest_first

    def test_update_deactivates_and_list_filters_on_active(self, client):
        price = create_price(client)
        kept, retired = create_link(client, price.id), create_link(client, price.id)

        updated = client.v1.payment_links.update(
            retired.id, params={"active": False, "inactive_message": "Paid in full."}
        )

        assert (updated.active, updated.inactive_message) == (False, "Paid in full.")
        assert [link.id for link in client.v1.payment_links.list(params={"active": True}).data] == [kept.id]
        assert [link.id for link in client.v1.payment_links.list(params={"active": False}).data] == [
            retired.id
        ]

    def test_line_items_carry_the_price_amount(self, client):
        price = create_price(client, unit_amount=4500)
        link = client.v1.payment_links.create(params={"line_items": [{"price": price.id, "quantity": 2}]})

        items = client.v1.payment_links.line_items.list(link.id)

        (item,) = items.data
        assert item.id.startswith("li_") and item.object == "item"
        assert (item.price.id, item.price.unit_amount, item.quantity) == (price.id, 4500, 2)
        assert (item.amount_subtotal, item.amount_total, item.currency) == (9000, 9000, "usd")
        assert item.description == "U12 season fee"

    def test_unknown_price_is_resource_missing_on_the_line_item(self, client, server):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            create_link(client, "price_doesNotExist")
        assert raised.value.http_status == 400
        assert (raised.value.code, raised.value.param) == ("resource_missing", "line_items[0][price]")
        assert server.emulator.counts()["payment_links"] == 0

    def test_unknown_link_is_a_stripe_404(self, http):
        response = http.get("/v1/payment_links/plink_x")
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "No such payment_link: 'plink_x'",
                "param": "id",
            }
        }


# ---------------------------------------------------------------------- idempotency


@pytest.mark.slow
class TestIdempotency:
    def test_same_key_and_params_replays_the_first_response(self, client, server, http):
        params = {"name": "Fee", "metadata": {"row": "1"}}
        first = client.v1.products.create(params=params, options={"idempotency_key": "row-1"})
        again = client.v1.products.create(params=params, options={"idempotency_key": "row-1"})
        assert again.id == first.id
        assert server.emulator.counts()["products"] == 1

        raw = http.post(
            "/v1/products", data={"name": "Fee", "metadata[row]": "1"}, headers={"Idempotency-Key": "row-1"}
        )
        assert raw.headers["Idempotent-Replayed"] == "true" and raw.json()["id"] == first.id

    def test_same_key_with_other_params_is_an_idempotency_error(self, client, server):
        client.v1.products.create(params={"name": "Fee"}, options={"idempotency_key": "row-2"})
        with pytest.raises(stripe.IdempotencyError) as raised:
            client.v1.products.create(params={"name": "Other fee"}, options={"idempotency_key": "row-2"})
        assert raised.value.http_status == 400
        assert server.emulator.counts()["products"] == 1

    def test_keys_are_scoped_per_api_key(self, client, server):
        other_account = sdk_client(server, api_key="sk_test_anotherAccountKey")
        first = client.v1.products.create(params={"name": "Fee"}, options={"idempotency_key": "shared"})
        second = other_account.v1.products.create(
            params={"name": "Fee"}, options={"idempotency_key": "shared"}
        )
        assert first.id != second.id

    def test_concurrent_request_with_same_key_gets_409(self, client, server):
        server.emulator.faults.latency_ms = 300
        outcomes: list[Any] = []

        def create() -> None:
            try:
                outcomes.append(
                    client.v1.products.create(params={"name": "Fee"}, options={"idempotency_key": "race"}).id
                )
            except stripe.APIError as error:
                outcomes.append(error.http_status)

        threads = [threading.Thread(target=create) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        created_ids = [outcome for outcome in outcomes if isinstance(outcome, str)]
        assert 409 in outcomes and len(created_ids) == 1
        assert server.emulator.counts()["products"] == 1


# ---------------------------------------------------------------------- object shapes


@pytest.fixture
def one_of_each(http: httpx.Client, server: EmulatorServer) -> dict[str, dict[str, Any]]:
    """One object of every type as raw JSON, built so optional fields paylinks sets are filled."""
    product = http.post(
        "/v1/products",
        data={
            "name": "Kit",
            "description": "Home kit",
            "default_price_data[currency]": "usd",
            "default_price_data[unit_amount]": "3000",
        },
    ).json()
    price = http.post(
        "/v1/prices",
        data={
            "product": product["id"],
            "unit_amount": "4500",
            "currency": "usd",
            "lookup_key": "kit",
            "nickname": "Kit",
        },
    ).json()
    link = http.post(
        "/v1/payment_links",
        data={
            "line_items[0][price]": price["id"],
            "line_items[0][quantity]": "1",
            "payment_intent_data[metadata][row]": "1",
            "restrictions[completed_sessions][limit]": "3",
            "inactive_message": "Paid",
            "metadata[row]": "1",
        },
    ).json()
    item = http.get(f"/v1/payment_links/{link['id']}/line_items").json()["data"][0]
    session = pay(link["url"]).json()
    event = http.get("/v1/events", params={"type": "checkout.session.completed"}).json()["data"][0]
    refund = http.post(
        "/v1/refunds",
        data={
            "payment_intent": session["payment_intent"],
            "amount": "500",
            "reason": "requested_by_customer",
        },
    ).json()
    intent = http.get(f"/v1/payment_intents/{session['payment_intent']}").json()
    charge = http.get(f"/v1/charges/{intent['latest_charge']}").json()
    dispute = httpx.post(
        f"{server.url}/_emulator/payment_intents/{intent['id']}/dispute", data={"status": "lost"}
    ).json()
    return {
        "product": product,
        "price": price,
        "payment_link": link,
        "checkout.session": session,
        "event": event,
        "item": item,
        "payment_intent": intent,
        "charge": charge,
        "refund": refund,
        "dispute": dispute,
        "account": http.get("/v1/account").json(),
    }


@pytest.mark.slow
@pytest.mark.parametrize("object_type", sorted(NULL_WHERE_STRIPE_RETURNS_NULL))
def test_objects_carry_every_field_of_stripes_example(object_type, one_of_each):
    assert STRIPE_FIXTURES.is_file(), f"Stripe's fixtures are expected at {STRIPE_FIXTURES}"
    example = json.loads(STRIPE_FIXTURES.read_text())["resources"][object_type]
    ours = one_of_each[object_type]

    assert ours["object"] == example["object"]
    assert shape_mismatches(example, ours, NULL_WHERE_STRIPE_RETURNS_NULL[object_type]) == []


# ---------------------------------------------------------------------- pay page


@pytest.mark.slow
class TestPayPage:
    def test_page_shows_what_is_owed_and_escapes_names(self, client):
        product = client.v1.products.create(params={"name": "<b>Kit & Co</b>"})
        price = client.v1.prices.create(
            params={"product": product.id, "unit_amount": 4500, "currency": "usd"}
        )
        link = create_link(client, price.id)

        page = httpx.get(link.url)

        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "$45.00" in page.text and '<form method="post">' in page.text
        assert "&lt;b&gt;Kit &amp; Co&lt;/b&gt;" in page.text and "<b>Kit" not in page.text

    def test_paying_completes_a_session_records_an_event_and_uses_up_the_link(self, client, server):
        link = create_link(client, create_price(client).id, restrictions={"completed_sessions": {"limit": 1}})
        started = int(time.time())

        paid = httpx.post(link.url)  # the Pay button: an HTML form post

        assert paid.status_code == 200 and "Thanks for your payment" in paid.text
        (session,) = client.v1.checkout.sessions.list(params={"payment_link": link.id}).data
        assert (session.status, session.payment_status, session.payment_link) == ("complete", "paid", link.id)
        assert (session.amount_total, session.amount_subtotal, session.currency) == (4500, 4500, "usd")
        assert session.id.startswith("cs_test_") and session.payment_intent.startswith("pi_")
        assert session.metadata.to_dict() == {}

        events = client.v1.events.list(
            params={"type": "checkout.session.completed", "created": {"gte": started}}
        )
        assert [event.data.object.id for event in events.data] == [session.id]

        used_up = client.v1.payment_links.retrieve(link.id)
        assert used_up.active is False and used_up.restrictions.completed_sessions.count == 1

        refused = httpx.post(link.url)
        assert refused.status_code == 410 and "no longer active" in refused.text
        assert server.emulator.counts()["checkout_sessions"] == 1

    def test_unpaid_session_is_settled_later(self, client, server):
        link = create_link(client, create_price(client).id)
        session = pay(link.url, payment_status="unpaid").json()
        assert (session["status"], session["payment_status"]) == ("complete", "unpaid")

        settled = httpx.post(f"{server.url}/_emulator/checkout_sessions/{session['id']}/settle")

        assert settled.status_code == 200 and settled.json()["payment_status"] == "paid"
        assert client.v1.checkout.sessions.retrieve(session["id"]).payment_status == "paid"
        event = client.v1.events.list(params={"type": "checkout.session.async_payment_succeeded"}).data[0]
        assert event.data.object.id == session["id"]

    def test_amount_total_override_simulates_drift(self, client, server):
        link = create_link(client, create_price(client, unit_amount=4500).id)
        session = server.emulator.pay(link.id, amount_total=4000)
        assert client.v1.checkout.sessions.retrieve(session["id"]).amount_total == 4000

    def test_events_follow_the_emulator_clock(self, client, server):
        link = create_link(client, create_price(client).id)
        server.emulator.pay(link.id)
        server.emulator.clock = lambda: 2_000_000_000
        later = server.emulator.pay(link.id)

        recent = client.v1.events.list(
            params={"type": "checkout.session.*", "created": {"gte": 2_000_000_000}}
        )

        assert [event.data.object.id for event in recent.data] == [later["id"]]
        assert recent.data[0].created == 2_000_000_000


# ---------------------------------------------------------------------- faults


@pytest.mark.slow
class TestFaults:
    def test_burst_above_the_rate_limit_gets_429s(self, client, server):
        server.emulator.faults.rate_limit_rps = 5
        rate_limited = 0
        for _ in range(20):
            try:
                client.v1.products.list()
            except stripe.RateLimitError as error:
                assert error.http_status == 429
                rate_limited += 1
        assert 10 <= rate_limited < 20

    def test_fail_rate_one_fails_every_call(self, client, server):
        server.emulator.faults.fail_rate = 1.0
        with pytest.raises(stripe.APIError) as raised:
            client.v1.products.list()
        assert raised.value.http_status == 500

    def test_failure_after_write_is_replayed_on_retry_with_the_same_key(self, client, server):
        server.emulator.faults.fail_rate = 1.0
        server.emulator.faults.seed = 7
        for attempt in range(50):  # half the failures land after the write; find one
            with pytest.raises(stripe.APIError):
                client.v1.products.create(
                    params={"name": "Fee"}, options={"idempotency_key": f"row-{attempt}"}
                )
            if server.emulator.counts()["products"] == 1:
                break
        (written,) = server.emulator.list_products({})["data"]

        server.emulator.faults.fail_rate = 0.0
        retried = client.v1.products.create(
            params={"name": "Fee"}, options={"idempotency_key": f"row-{attempt}"}
        )

        assert retried.id == written["id"]
        assert server.emulator.counts()["products"] == 1

    def test_latency_delays_each_call_without_serialising_them(self, client, server):
        server.emulator.faults.latency_ms = 300

        started = time.monotonic()
        client.v1.products.list()
        assert time.monotonic() - started >= 0.3

        threads = [threading.Thread(target=client.v1.products.list) for _ in range(10)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Ten calls one after another would take 3 s; in parallel they take one delay, plus
        # whatever a busy machine adds.
        assert time.monotonic() - started < 1.5

    def test_admin_endpoint_changes_faults_live_and_spares_pages(self, client, server):
        link = create_link(client, create_price(client).id)

        changed = httpx.post(f"{server.url}/_emulator/faults", json={"fail_rate": 1.0})

        assert changed.status_code == 200 and server.emulator.faults.fail_rate == 1.0
        with pytest.raises(stripe.APIError):
            client.v1.products.list()
        assert httpx.get(link.url).status_code == 200
        assert httpx.get(f"{server.url}/_emulator/counts").json()["payment_links"] == 1
        assert httpx.post(f"{server.url}/_emulator/faults", json={"fail_rate": 2}).status_code == 400


# ---------------------------------------------------------------------- auth


@pytest.mark.slow
class TestAuth:
    def test_wrong_key_is_refused_without_echoing_it(self):
        with EmulatorServer(api_key="sk_test_configuredKey000001") as server:
            wrong_key = "sk_test_wrongKeyWithSecretPart9876"
            with pytest.raises(stripe.AuthenticationError) as raised:
                sdk_client(server, api_key=wrong_key).v1.products.list()
            assert raised.value.http_status == 401
            assert wrong_key not in str(raised.value) and "9876" in str(raised.value)
            assert sdk_client(server, api_key="sk_test_configuredKey000001").v1.products.list().data == []

    def test_missing_or_publishable_key_is_refused(self, server):
        assert httpx.get(f"{server.url}/v1/products").status_code == 401
        with pytest.raises(stripe.AuthenticationError):
            sdk_client(server, api_key="pk_test_publishableKey").v1.products.list()
