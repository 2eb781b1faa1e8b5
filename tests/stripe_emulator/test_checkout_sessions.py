"""Checkout Sessions a caller creates (`POST /v1/checkout/sessions`, payment mode), through the
real `stripe` SDK over HTTP: a family's "Pay all" as Stripe would take it, paid on the session's
page, expired, refunded and disputed, seen in events and webhooks, and kept across a restart."""

from __future__ import annotations

import html
import json
import time
from typing import Any

import httpx
import pytest
import stripe

from stripe_emulator import EmulatorServer
from tests.stripe_emulator.support import (
    NULL_WHERE_STRIPE_RETURNS_NULL,
    create_price,
    pay,
    sdk_client,
    shape_mismatches,
)
from tests.stripe_emulator.test_webhooks import SECRET, Receiver
from tests.support.stripe_fixtures import STRIPE_FIXTURES

pytestmark = pytest.mark.slow

THIRTY_MINUTES = 30 * 60
CLUB_ACCOUNT = "acct_familyCheckoutClub"


def family_session(
    client: stripe.StripeClient, *, key: str | None = None, **params: Any
) -> stripe.checkout.Session:
    """A "Pay all" session: one line at a tier's price, one line from `price_data`."""
    price = params.pop("price", None) or create_price(client, unit_amount=4500)
    body: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {"price": price.id, "quantity": 1},
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 2500,
                    "product_data": {"name": "Uniform — Eli Alvarez", "metadata": {"row": "18"}},
                },
                "quantity": 2,
            },
        ],
        "metadata": {"paylinks_family_checkout": "fc-1", "rows": "17:1,18:3"},
        "success_url": "https://office.example/f/token?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://office.example/f/token",
        "expires_at": int(time.time()) + THIRTY_MINUTES + 60,
        "client_reference_id": "family-42",
        "customer_email": "parent@example.com",
        "payment_intent_data": {"description": "Alvarez family fees", "metadata": {"family": "42"}},
        **params,
    }
    options = {"idempotency_key": key} if key else {}
    return client.v1.checkout.sessions.create(params=body, options=options)


def event_types(client: stripe.StripeClient, object_id: str) -> list[str]:
    """Types of the events about `object_id`, oldest first."""
    events = client.v1.events.list(params={"limit": 100}).data
    return [event.type for event in reversed(events) if event.data.object.id == object_id]


def admin(server: EmulatorServer, path: str, **form: str) -> httpx.Response:
    return httpx.post(f"{server.url}/_emulator/{path}", data=form)


class TestCreate:
    def test_a_session_from_prices_and_price_data_is_open_unpaid_and_payable_at_its_url(self, client, server):
        price = create_price(client, unit_amount=4500)

        session = family_session(client, price=price)

        assert session.id.startswith("cs_test_") and session.object == "checkout.session"
        assert (session.mode, session.status, session.payment_status) == ("payment", "open", "unpaid")
        assert (session.amount_total, session.amount_subtotal, session.currency) == (9500, 9500, "usd")
        assert session.payment_link is None and session.payment_intent is None
        assert session.url == f"{server.url}/checkout/{session.id}"
        assert session.metadata.to_dict() == {"paylinks_family_checkout": "fc-1", "rows": "17:1,18:3"}
        assert session.success_url == "https://office.example/f/token?session={CHECKOUT_SESSION_ID}"
        assert (session.client_reference_id, session.customer_email) == ("family-42", "parent@example.com")
        assert session.created <= session.expires_at - THIRTY_MINUTES

        items = client.v1.checkout.sessions.line_items.list(session.id).data
        assert [(item.description, item.quantity, item.amount_total) for item in items] == [
            ("U12 season fee", 1, 4500),
            ("Uniform — Eli Alvarez", 2, 5000),
        ]
        assert items[0].price.id == price.id
        inline = client.v1.prices.retrieve(items[1].price.id)  # price_data made a price and a product
        assert (inline.unit_amount, inline.currency) == (2500, "usd")
        product = client.v1.products.retrieve(inline.product)
        assert (product.name, product.metadata.to_dict()) == ("Uniform — Eli Alvarez", {"row": "18"})

        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
        listed = client.v1.checkout.sessions.list(params={"status": "open"}).data
        assert [found.id for found in listed] == [session.id]

    def test_the_same_idempotency_key_opens_the_same_session_and_other_params_are_refused(
        self, client, server
    ):
        price = create_price(client)
        expires_at = int(time.time()) + THIRTY_MINUTES + 60

        first = family_session(client, key="family-42-v1", price=price, expires_at=expires_at)
        again = family_session(client, key="family-42-v1", price=price, expires_at=expires_at)

        assert again.id == first.id and again.url == first.url
        assert server.emulator.counts()["checkout_sessions"] == 1
        with pytest.raises(stripe.IdempotencyError) as raised:
            family_session(
                client, key="family-42-v1", price=price, expires_at=expires_at, metadata={"rows": "17:2"}
            )
        assert raised.value.http_status == 400
        assert server.emulator.counts()["checkout_sessions"] == 1

    @pytest.mark.parametrize(
        ("change", "param"),
        [
            ({"expires_at": "soon"}, "expires_at"),
            ({"expires_at": "in 29 minutes"}, "expires_at"),
            ({"expires_at": "in 25 hours"}, "expires_at"),
            ({"mode": "subscription"}, "mode"),
            ({"mode": "setup"}, "mode"),
            ({"mode": "donation"}, "mode"),
            ({"line_items": "101 items"}, "line_items"),
            ({"line_items": []}, "line_items"),
            ({"line_items": [{"price": "price_missing", "quantity": 1}]}, "line_items[0][price]"),
            ({"line_items": [{"price": "the tier", "quantity": 0}]}, "line_items[0][quantity]"),
            ({"line_items": [{"price_data": {"currency": "usd", "unit_amount": 100}, "quantity": 1}]}, None),
            ({"discounts": [{"coupon": "HALF"}]}, "discounts"),
            ({"customer": "cus_123"}, "customer"),
            ({"payment_intent_data": {"transfer_data": {"destination": "acct_x"}}}, None),
            ({"metdata": {"a": "b"}}, "metdata"),
        ],
        ids=[
            "expires_at not a time",
            "expires_at under 30 minutes",
            "expires_at over 24 hours",
            "subscription mode",
            "setup mode",
            "unknown mode",
            "more than 100 items",
            "no items",
            "unknown price",
            "zero quantity",
            "price_data without a product",
            "discounts",
            "customer",
            "connect transfer",
            "misspelt param",
        ],
    )
    def test_what_stripe_refuses_is_a_400_naming_the_param_and_nothing_is_made(
        self, client, server, change, param
    ):
        price = create_price(client)
        now = int(time.time())
        given = dict(change)
        if given.get("expires_at") == "in 29 minutes":
            given["expires_at"] = now + 29 * 60
        elif given.get("expires_at") == "in 25 hours":
            given["expires_at"] = now + 25 * 60 * 60
        if given.get("line_items") == "101 items":
            given["line_items"] = [{"price": price.id, "quantity": 1}] * 101
        elif given.get("line_items") and given["line_items"][0].get("price") == "the tier":
            given["line_items"] = [{"price": price.id, "quantity": 0}]
        counts_before = server.emulator.counts()

        with pytest.raises(stripe.InvalidRequestError) as raised:
            family_session(client, price=price, **given)

        assert (raised.value.http_status, raised.value.error.type) == (400, "invalid_request_error")
        if param is not None:
            assert raised.value.param == param
        assert server.emulator.counts() == counts_before

    def test_expires_at_may_be_as_near_as_30_minutes_and_as_far_as_24_hours(self, client, server):
        frozen = 1_900_000_000
        server.emulator.clock = lambda: frozen
        # "30 minutes from now" as the caller reckoned it a moment before the request arrived
        for expires_at in (frozen + THIRTY_MINUTES - 2, frozen + THIRTY_MINUTES, frozen + 24 * 60 * 60):
            session = family_session(client, expires_at=expires_at)
            assert session.expires_at == expires_at
        assert family_session(client, expires_at=None).expires_at == frozen + 24 * 60 * 60  # Stripe's default

    def test_a_total_above_stripes_maximum_is_refused(self, client, server):
        price = create_price(client, unit_amount=50_000_000)
        with pytest.raises(stripe.InvalidRequestError) as raised:
            family_session(client, price=price, line_items=[{"price": price.id, "quantity": 2}])
        assert (raised.value.code, raised.value.param) == ("amount_too_large", "line_items")
        assert "$999,999.99" in str(raised.value) and server.emulator.counts()["checkout_sessions"] == 0

    def test_a_session_may_have_100_items(self, client):
        price = create_price(client, unit_amount=100)
        session = family_session(client, price=price, line_items=[{"price": price.id, "quantity": 1}] * 100)
        assert session.amount_total == 10_000
        paged = client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 100})
        assert len(paged.data) == 100 and not paged.has_more

    def test_a_connected_account_keeps_its_own_sessions_and_keys(self, client, server):
        admin(server, "accounts", id=CLUB_ACCOUNT).raise_for_status()
        club = sdk_client(server, stripe_account=CLUB_ACCOUNT)

        session = family_session(club, key="family-42-v1", price=create_price(club))
        platform_session = family_session(client, key="family-42-v1")  # same key, another account

        assert platform_session.id != session.id
        assert [found.id for found in club.v1.checkout.sessions.list().data] == [session.id]
        assert server.emulator.counts(CLUB_ACCOUNT)["checkout_sessions"] == 1
        paid = pay(session.url).json()
        assert paid["payment_status"] == "paid"
        (event,) = club.v1.events.list(params={"type": "checkout.session.completed"}).data
        assert (event.account, event.data.object.id) == (CLUB_ACCOUNT, session.id)
        assert club.v1.payment_intents.retrieve(paid["payment_intent"]).amount == 9500


class TestPayByCard:
    def test_a_form_post_to_the_url_pays_the_whole_session_by_card(self, client, server):
        session = family_session(client)

        paid = httpx.post(session.url)  # the Pay button: an HTML form post

        assert paid.status_code == 200 and "Thanks for your payment" in paid.text and "$95.00" in paid.text
        continue_url = f"https://office.example/f/token?session={session.id}"
        assert f'href="{html.escape(continue_url)}"' in paid.text
        done = client.v1.checkout.sessions.retrieve(session.id)
        assert (done.status, done.payment_status, done.url) == ("complete", "paid", None)
        assert done.customer_details.email == "parent@example.com"
        intent = client.v1.payment_intents.retrieve(done.payment_intent)
        assert (intent.status, intent.amount, intent.amount_received) == ("succeeded", 9500, 9500)
        assert (intent.description, intent.metadata.to_dict()) == ("Alvarez family fees", {"family": "42"})
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert (charge.status, charge.paid, charge.amount) == ("succeeded", True, 9500)
        assert event_types(client, session.id) == ["checkout.session.completed"]
        (completed,) = client.v1.events.list(params={"type": "checkout.session.completed"}).data
        assert completed.data.object.metadata.to_dict()["paylinks_family_checkout"] == "fc-1"
        assert completed.data.object.payment_link is None

        filtered = client.v1.checkout.sessions.list(params={"payment_intent": intent.id}).data
        assert [found.id for found in filtered] == [session.id]

    def test_the_page_shows_each_item_the_total_and_the_description_escaped(self, client):
        session = family_session(
            client,
            line_items=[
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 1250,
                        "product_data": {"name": "<script>alert(1)</script> & dues"},
                    },
                    "quantity": 3,
                }
            ],
            payment_intent_data={"description": 'Family "<b>" fees'},
        )

        page = httpx.get(session.url)

        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; dues" in page.text and "<script>" not in page.text
        assert "&times; 3" in page.text and "$37.50" in page.text and "Pay $37.50" in page.text
        assert "Family &quot;&lt;b&gt;&quot; fees" in page.text
        assert 'value="bank_debit"' in page.text

    def test_a_paid_session_cannot_be_paid_again_nor_expired(self, client, server):
        session = family_session(client)
        assert httpx.post(session.url).status_code == 200

        again = httpx.post(session.url)
        as_json = pay(session.url)

        assert again.status_code == 409 and "already complete" in again.text
        assert as_json.status_code == 409
        assert httpx.get(session.url).status_code == 200  # the receipt page still shows
        assert server.emulator.counts()["payment_intents"] == 1
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.checkout.sessions.expire(session.id)
        assert raised.value.http_status == 400 and "status of `complete`" in str(raised.value)


class TestBankDebit:
    def test_a_debit_completes_unpaid_then_settles_paid(self, client, server):
        session = family_session(client)

        chosen = httpx.post(session.url, data={"payment_method": "bank_debit"})

        assert chosen.status_code == 200 and "Payment processing" in chosen.text
        done = client.v1.checkout.sessions.retrieve(session.id)
        assert (done.status, done.payment_status) == ("complete", "unpaid")
        assert client.v1.payment_intents.retrieve(done.payment_intent).status == "processing"

        settled = admin(server, f"checkout_sessions/{session.id}/settle", outcome="succeeded")

        assert settled.status_code == 200 and settled.json()["payment_status"] == "paid"
        assert client.v1.payment_intents.retrieve(done.payment_intent).amount_received == 9500
        assert event_types(client, session.id) == [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
        ]

    def test_a_bounced_debit_leaves_the_session_unpaid(self, client, server):
        session = family_session(client)
        httpx.post(session.url, data={"payment_method": "bank_debit"}).raise_for_status()

        failed = admin(server, f"checkout_sessions/{session.id}/settle", outcome="failed")

        assert failed.status_code == 200 and failed.json()["payment_status"] == "unpaid"
        intent = client.v1.payment_intents.retrieve(failed.json()["payment_intent"])
        assert (intent.status, intent.last_payment_error.code) == (
            "requires_payment_method",
            "insufficient_funds",
        )
        assert event_types(client, session.id) == [
            "checkout.session.completed",
            "checkout.session.async_payment_failed",
        ]

    def test_a_debit_only_session_refuses_a_card(self, client):
        session = family_session(client, payment_method_types=["us_bank_account"])
        page = httpx.get(session.url).text
        assert "Pay $95.00 by bank debit" in page and '<button type="submit">' not in page

        refused = pay(session.url)

        assert refused.status_code == 400 and refused.json()["error"]["param"] == "payment_method"
        assert pay(session.url, payment_method="bank_debit").json()["payment_status"] == "unpaid"

    def test_a_card_only_session_refuses_a_debit(self, client, server):
        session = family_session(client, payment_method_types=["card"])
        assert 'value="bank_debit"' not in httpx.get(session.url).text

        refused = pay(session.url, payment_method="bank_debit")

        assert refused.status_code == 400 and refused.json()["error"]["param"] == "payment_method"
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


class TestExpiry:
    def test_expire_by_the_api_closes_the_page_and_records_the_event(self, client, server):
        session = family_session(client)

        expired = client.v1.checkout.sessions.expire(session.id)

        assert (expired.status, expired.payment_status, expired.url) == ("expired", "unpaid", None)
        assert event_types(client, session.id) == ["checkout.session.expired"]
        (event,) = client.v1.events.list(params={"type": "checkout.session.expired"}).data
        assert event.data.object.status == "expired" and event.request.id is not None
        page, paying = httpx.get(session.url), httpx.post(session.url)
        assert page.status_code == 410 and "expired" in page.text
        assert paying.status_code == 410 and "nothing was paid" in paying.text
        assert pay(session.url).status_code == 410
        assert server.emulator.counts()["payment_intents"] == 0
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.checkout.sessions.expire(session.id)
        assert raised.value.http_status == 400 and "status of `expired`" in str(raised.value)
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.checkout.sessions.expire("cs_test_missing")
        assert missing.value.http_status == 404

    def test_a_session_expires_once_its_time_has_passed_and_then_cannot_be_paid(self, client, server):
        session = family_session(client)
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"

        server.emulator.clock = lambda: session.expires_at  # the moment it expires

        assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
        assert [
            found.id for found in client.v1.checkout.sessions.list(params={"status": "expired"}).data
        ] == [session.id]
        (event,) = client.v1.events.list(params={"type": "checkout.session.expired"}).data
        assert (event.data.object.id, event.created, event.request.id) == (
            session.id,
            session.expires_at,
            None,
        )
        refused = httpx.post(session.url)
        assert refused.status_code == 410 and server.emulator.counts()["payment_intents"] == 0
        assert event_types(client, session.id) == ["checkout.session.expired"]  # once only

    def test_paying_a_session_whose_time_is_up_is_refused_though_nobody_read_it(self, client, server):
        session = family_session(client)
        server.emulator.clock = lambda: session.expires_at + 1

        refused = httpx.post(session.url)

        assert refused.status_code == 410 and "expired" in refused.text
        assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
        assert server.emulator.counts()["charges"] == 0


class TestRefundsAndDisputes:
    def test_partial_then_full_refund_of_a_session_and_the_events_in_order(self, client):
        price = create_price(client)
        session = family_session(client, price=price)
        httpx.post(session.url).raise_for_status()
        intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent

        partial = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 2500})
        rest = client.v1.refunds.create(params={"payment_intent": intent_id})

        assert (partial.amount, rest.amount) == (2500, 7000)
        charge = client.v1.charges.retrieve(partial.charge)
        assert (charge.amount_refunded, charge.refunded, charge.payment_intent) == (9500, True, intent_id)
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1})
        assert raised.value.code == "charge_already_refunded"

        events = list(reversed(client.v1.events.list(params={"limit": 100}).data))
        assert [event.type for event in events] == [
            "product.created",
            "price.created",  # the tier
            "product.created",
            "price.created",  # from price_data
            "checkout.session.completed",
            "charge.refunded",
            "charge.refunded",
        ]
        assert [event.created for event in events] == sorted(event.created for event in events)
        refunded = [event.data.object for event in events if event.type == "charge.refunded"]
        assert [(obj.amount_refunded, obj.refunded) for obj in refunded] == [(2500, False), (9500, True)]
        assert [
            event.type for event in client.v1.events.list(params={"type": "checkout.session.*"}).data
        ] == ["checkout.session.completed"]

    def test_a_dispute_on_a_sessions_payment_then_lost(self, client, server):
        session = family_session(client)
        httpx.post(session.url).raise_for_status()
        intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent

        opened = admin(server, f"payment_intents/{intent_id}/dispute").json()

        assert (opened["status"], opened["amount"], opened["payment_intent"]) == (
            "needs_response",
            9500,
            intent_id,
        )
        assert client.v1.charges.retrieve(opened["charge"]).disputed is True
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.refunds.create(params={"payment_intent": intent_id})
        assert raised.value.code == "charge_disputed"
        admin(server, f"payment_intents/{intent_id}/dispute", status="lost").raise_for_status()
        assert [
            found.status for found in client.v1.disputes.list(params={"payment_intent": intent_id}).data
        ] == ["lost"]
        assert event_types(client, opened["id"]) == ["charge.dispute.created", "charge.dispute.closed"]


class TestListing:
    def test_sessions_filter_by_payment_link_and_payment_intent_as_stripe(self, client):
        price = create_price(client)
        link = client.v1.payment_links.create(params={"line_items": [{"price": price.id, "quantity": 1}]})
        by_link = pay(link.url).json()
        family = family_session(client, price=price)
        httpx.post(family.url).raise_for_status()
        family_intent = client.v1.checkout.sessions.retrieve(family.id).payment_intent

        assert [s.id for s in client.v1.checkout.sessions.list(params={"payment_link": link.id}).data] == [
            by_link["id"]
        ]
        assert [
            s.id for s in client.v1.checkout.sessions.list(params={"payment_intent": family_intent}).data
        ] == [family.id]
        assert [s.id for s in client.v1.checkout.sessions.list().data] == [family.id, by_link["id"]]

    def test_line_items_and_the_payment_intent_expand_as_on_stripe(self, client):
        price = create_price(client, unit_amount=100)
        session = family_session(client, price=price, line_items=[{"price": price.id, "quantity": 1}] * 12)
        httpx.post(session.url).raise_for_status()

        expanded = client.v1.checkout.sessions.retrieve(
            session.id, params={"expand": ["line_items", "payment_intent"]}
        )
        listed = client.v1.checkout.sessions.list(params={"expand": ["data.line_items"]}).data[0]

        assert len(expanded.line_items.data) == 10 and expanded.line_items.has_more  # the first page
        assert expanded.payment_intent.object == "payment_intent" and expanded.payment_intent.amount == 1200
        assert listed.line_items.data[0].price.id == price.id and isinstance(listed.payment_intent, str)
        assert "line_items" not in client.v1.checkout.sessions.retrieve(session.id)
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["customer"]})
        assert (raised.value.http_status, raised.value.param) == (400, "expand")


class TestWebhooks:
    def test_a_sessions_events_arrive_signed_and_expiry_arrives_unasked(self):
        receiver = Receiver()
        try:
            with EmulatorServer(
                webhook_url=receiver.url,
                webhook_secret=SECRET,
                webhook_max_attempts=3,
                webhook_backoff_seconds=0.05,
            ) as server:
                client = sdk_client(server)
                paid = family_session(client)
                httpx.post(paid.url).raise_for_status()
                left = family_session(client)
                expected = len(client.v1.events.list(params={"limit": 100}).data)
                arrived = receiver.wait_for(expected)
                completed = [event for event in arrived if event.type == "checkout.session.completed"]
                assert [event.data.object.id for event in completed] == [paid.id]
                assert completed[0].data.object.metadata["paylinks_family_checkout"] == "fc-1"

                # Nobody reads the session: the server's sweep expires it and the webhook says so.
                server.emulator.clock = lambda: left.expires_at + 1
                arrived = receiver.wait_for(expected + 1, timeout=10)

                expired = [event for event in arrived if event.type == "checkout.session.expired"]
                assert [event.data.object.id for event in expired] == [left.id]
                assert expired[0].data.object.status == "expired"
                assert set(receiver.answers) == {200}  # every delivery verified with the secret
        finally:
            receiver.close()


class TestShapes:
    def test_a_created_session_and_its_events_carry_every_field_of_stripes_example(self, client, http):
        fixtures = json.loads(STRIPE_FIXTURES.read_text())["resources"]
        nullable = NULL_WHERE_STRIPE_RETURNS_NULL["checkout.session"]
        # Until it is paid, a session has no PaymentIntent and no customer details, as on Stripe.
        open_nullable = nullable | {"customer_details", "payment_intent"}
        created = family_session(client)
        expiring = family_session(client)
        httpx.post(created.url, data={"email": "parent@example.com"}).raise_for_status()
        client.v1.checkout.sessions.expire(expiring.id)
        raw_open = http.post(
            "/v1/checkout/sessions",
            data={
                "mode": "payment",
                "line_items[0][price_data][currency]": "usd",
                "line_items[0][price_data][unit_amount]": "100",
                "line_items[0][price_data][product_data][name]": "Fee",
                "line_items[0][quantity]": "1",
                "success_url": "https://office.example/done",
            },
        ).json()
        events = {
            event["type"]: event
            for event in http.get("/v1/events", params={"type": "checkout.session.*"}).json()["data"]
        }

        assert raw_open["object"] == "checkout.session"
        assert shape_mismatches(fixtures["checkout.session"], raw_open, open_nullable) == []
        for event_type in ("checkout.session.completed", "checkout.session.expired"):
            event = events[event_type]
            assert shape_mismatches(fixtures["event"], event, NULL_WHERE_STRIPE_RETURNS_NULL["event"]) == []
            obj = event["data"]["object"]
            allowed = nullable if event_type.endswith("completed") else open_nullable
            assert shape_mismatches(fixtures["checkout.session"], obj, allowed) == [], event_type
        item = http.get(f"/v1/checkout/sessions/{raw_open['id']}/line_items").json()["data"][0]
        assert shape_mismatches(fixtures["item"], item, NULL_WHERE_STRIPE_RETURNS_NULL["item"]) == []


class TestKeptAcrossRestarts:
    def test_a_session_created_before_a_restart_pays_after_it(self, tmp_path):
        state = tmp_path / "stripe-emulator.json"
        with EmulatorServer(state=state) as first:
            client = sdk_client(first)
            session = family_session(client, key="family-42-v1")
            expires_at = session.expires_at

        with EmulatorServer(state=state) as second:
            client = sdk_client(second)
            again = client.v1.checkout.sessions.retrieve(session.id)
            assert (again.status, again.url, again.expires_at) == ("open", session.url, expires_at)
            assert len(client.v1.checkout.sessions.line_items.list(session.id).data) == 2

            paid = httpx.post(session.url)

            assert paid.status_code == 200 and "Thanks for your payment" in paid.text
            intent = client.v1.payment_intents.retrieve(
                client.v1.checkout.sessions.retrieve(session.id).payment_intent
            )
            assert (intent.amount, intent.description, intent.metadata.to_dict()) == (
                9500,
                "Alvarez family fees",
                {"family": "42"},
            )

        with EmulatorServer(state=state) as third:
            client = sdk_client(third)
            assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
            assert httpx.post(session.url).status_code == 409

    def test_an_open_session_expires_after_a_restart_when_its_time_is_up(self, tmp_path):
        state = tmp_path / "stripe-emulator.json"
        with EmulatorServer(state=state) as first:
            session = family_session(sdk_client(first))

        with EmulatorServer(state=state) as second:
            second.emulator.clock = lambda: session.expires_at
            assert httpx.post(session.url).status_code == 410
            assert sdk_client(second).v1.checkout.sessions.retrieve(session.id).status == "expired"

    def test_a_state_file_from_before_sessions_could_be_created_still_loads(self, tmp_path):
        state = tmp_path / "stripe-emulator.json"
        with EmulatorServer(state=state) as first:
            link_price = create_price(sdk_client(first))
            link = sdk_client(first).v1.payment_links.create(
                params={"line_items": [{"price": link_price.id, "quantity": 1}]}
            )
        kept = json.loads(state.read_text())
        for book in kept["books"]:
            del book["collections"]["session_payment_intent_data"]
        state.write_text(json.dumps(kept))

        with EmulatorServer(state=state) as second:
            assert pay(link.url).json()["payment_status"] == "paid"
            session = family_session(sdk_client(second))
            assert httpx.post(session.url).status_code == 200

    def test_an_expiry_a_read_found_is_kept_by_the_next_sweep(self, tmp_path):
        state = tmp_path / "stripe-emulator.json"
        with EmulatorServer(state=state) as server:
            client = sdk_client(server)
            session = family_session(client)
            server.emulator.clock = lambda: session.expires_at
            assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"  # a GET: no write
            deadline = time.monotonic() + 5
            while (
                json.loads(state.read_text())["books"][0]["collections"]["checkout_sessions"][session.id][
                    "status"
                ]
                != "expired"
            ):
                assert time.monotonic() < deadline, "the sweep did not keep the expiry"
                time.sleep(0.1)
            expired_events = client.v1.events.list(params={"type": "checkout.session.expired"}).data
        assert len(expired_events) == 1
