"""Payments at the emulator as a bank produces them, read back through the real `stripe` SDK.

Parents pay through the link's page or through an opened checkout session (card or bank debit);
the bank settles or bounces a debit; the club refunds; a cardholder disputes. Every step is
seen the way paylinks sees it: sessions, PaymentIntents, charges, refunds, disputes and events.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from stripe_emulator import EmulatorServer
from tests.stripe_emulator.support import create_link, create_price, pay

pytestmark = pytest.mark.slow


def admin(server: EmulatorServer, path: str, **form: str) -> httpx.Response:
    """An `/_emulator` call: what a parent or a bank does."""
    return httpx.post(f"{server.url}/_emulator/{path}", data=form)


def one_time_link(
    client: stripe.StripeClient, unit_amount: int = 4500, **link_params: Any
) -> stripe.PaymentLink:
    """A link paid once, as paylinks mints them."""
    return create_link(
        client,
        create_price(client, unit_amount=unit_amount).id,
        restrictions={"completed_sessions": {"limit": 1}},
        **link_params,
    )


def event_types(client: stripe.StripeClient, object_id: str) -> list[str]:
    """Types of the events about `object_id`, oldest first."""
    events = client.v1.events.list(params={"limit": 100}).data
    return [event.type for event in reversed(events) if event.data.object.id == object_id]


class TestPaymentIntents:
    def test_a_paid_session_has_a_payment_intent_with_the_links_metadata_and_a_charge(self, client):
        link = one_time_link(client, payment_intent_data={"metadata": {"payment_link_row": "17"}})

        session = pay(link.url, email="parent@example.com").json()

        intent = client.v1.payment_intents.retrieve(session["payment_intent"])
        assert intent.id.startswith("pi_") and intent.status == "succeeded"
        assert (intent.amount, intent.amount_received, intent.currency) == (4500, 4500, "usd")
        assert intent.metadata.to_dict() == {"payment_link_row": "17"}
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert charge.id.startswith("ch_") and (charge.status, charge.paid) == ("succeeded", True)
        assert (charge.amount, charge.payment_intent, charge.amount_refunded) == (4500, intent.id, 0)
        assert charge.billing_details.email == "parent@example.com"

    def test_an_unknown_payment_intent_is_a_stripe_404(self, client):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.payment_intents.retrieve("pi_missing")
        assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")


class TestSessionsAParentOpens:
    def test_an_opened_session_is_open_until_paid_by_card(self, client, server):
        link = one_time_link(client)

        opened = admin(server, f"payment_links/{link.id}/open_session").json()
        listed = client.v1.checkout.sessions.list(params={"payment_link": link.id, "status": "open"})
        assert [session.id for session in listed.data] == [opened["id"]]
        assert (opened["payment_status"], opened["payment_intent"]) == ("unpaid", None)

        completed = admin(server, f"checkout_sessions/{opened['id']}/complete").json()

        assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
        assert client.v1.payment_intents.retrieve(completed["payment_intent"]).status == "succeeded"
        assert event_types(client, opened["id"]) == ["checkout.session.completed"]

    def test_a_session_opened_before_the_link_was_deactivated_can_still_pay(self, client, server):
        link = one_time_link(client)
        opened = admin(server, f"payment_links/{link.id}/open_session").json()
        client.v1.payment_links.update(link.id, params={"active": False, "inactive_message": "Cancelled."})

        completed = admin(server, f"checkout_sessions/{opened['id']}/complete").json()

        assert (completed["status"], completed["payment_status"]) == ("complete", "paid")
        assert client.v1.payment_links.retrieve(link.id).restrictions.completed_sessions.count == 1

    def test_two_sessions_opened_together_both_pay_a_link_meant_to_be_paid_once(self, client, server):
        link = one_time_link(client)
        first, second = (admin(server, f"payment_links/{link.id}/open_session").json() for _ in range(2))

        for opened in (first, second):
            completed = admin(server, f"checkout_sessions/{opened['id']}/complete").json()
            assert completed["payment_status"] == "paid"

        used_up = client.v1.payment_links.retrieve(link.id)
        assert used_up.active is False and used_up.restrictions.completed_sessions.count == 2
        assert pay(link.url).status_code == 410

    def test_an_inactive_link_cannot_be_opened_and_a_complete_session_cannot_pay_again(self, client, server):
        link = one_time_link(client)
        session = pay(link.url).json()

        assert admin(server, f"payment_links/{link.id}/open_session").status_code == 410
        again = admin(server, f"checkout_sessions/{session['id']}/complete")
        assert again.status_code == 400 and "is not open" in again.json()["error"]["message"]
        unknown = admin(server, f"checkout_sessions/{session['id']}/complete", payment_method="cheque")
        assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "payment_method"

    def test_the_session_page_pays_like_the_link_page(self, client, server):
        link = one_time_link(client)
        opened = admin(server, f"payment_links/{link.id}/open_session").json()

        page = httpx.get(opened["url"])
        paid = httpx.post(opened["url"])

        assert page.status_code == 200 and "$45.00" in page.text
        assert paid.status_code == 200 and "Thanks for your payment" in paid.text
        assert client.v1.checkout.sessions.retrieve(opened["id"]).payment_status == "paid"


class TestSlowPayments:
    def bank_debit(self, client, server) -> tuple[stripe.PaymentLink, dict[str, Any]]:
        link = one_time_link(client)
        opened = admin(server, f"payment_links/{link.id}/open_session").json()
        session = admin(
            server, f"checkout_sessions/{opened['id']}/complete", payment_method="bank_debit"
        ).json()
        return link, session

    def test_a_bank_debit_completes_unpaid_and_processing_then_settles_paid(self, client, server):
        link, session = self.bank_debit(client, server)
        assert (session["status"], session["payment_status"]) == ("complete", "unpaid")
        intent = client.v1.payment_intents.retrieve(session["payment_intent"])
        assert (intent.status, intent.payment_method_types) == ("processing", ["us_bank_account"])
        assert client.v1.charges.retrieve(intent.latest_charge).status == "pending"

        settled = admin(server, f"checkout_sessions/{session['id']}/settle", outcome="succeeded")

        assert settled.status_code == 200 and settled.json()["payment_status"] == "paid"
        intent = client.v1.payment_intents.retrieve(session["payment_intent"])
        assert (intent.status, intent.amount_received) == ("succeeded", 4500)
        assert client.v1.charges.retrieve(intent.latest_charge).paid is True
        assert event_types(client, session["id"]) == [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
        ]

    def test_a_failed_bank_debit_leaves_the_session_unpaid_and_the_link_spent(self, client, server):
        link, session = self.bank_debit(client, server)

        failed = admin(server, f"checkout_sessions/{session['id']}/settle", outcome="failed")

        assert failed.status_code == 200
        assert client.v1.checkout.sessions.retrieve(session["id"]).payment_status == "unpaid"
        assert event_types(client, session["id"]) == [
            "checkout.session.completed",
            "checkout.session.async_payment_failed",
        ]
        intent = client.v1.payment_intents.retrieve(session["payment_intent"])
        assert (intent.status, intent.last_payment_error.code) == (
            "requires_payment_method",
            "insufficient_funds",
        )
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert (charge.status, charge.paid, charge.failure_code) == ("failed", False, "insufficient_funds")
        spent = client.v1.payment_links.retrieve(link.id)
        assert spent.active is False and spent.restrictions.completed_sessions.count == 1
        # Nothing left to settle, and nothing was paid to refund.
        assert admin(server, f"checkout_sessions/{session['id']}/settle").status_code == 400
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.refunds.create(params={"payment_intent": intent.id})

    def test_settle_refuses_an_unknown_outcome(self, client, server):
        _, session = self.bank_debit(client, server)
        refused = admin(server, f"checkout_sessions/{session['id']}/settle", outcome="maybe")
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "outcome"


class TestRefunds:
    def test_partial_refunds_then_the_rest_then_nothing_left(self, client):
        session = pay(one_time_link(client).url).json()
        intent_id = session["payment_intent"]

        partial = client.v1.refunds.create(
            params={"payment_intent": intent_id, "amount": 1500, "metadata": {"row": "17"}}
        )
        rest = client.v1.refunds.create(
            params={"payment_intent": intent_id, "reason": "requested_by_customer"}
        )

        assert partial.id.startswith("re_") and (partial.amount, partial.status) == (1500, "succeeded")
        assert partial.metadata.to_dict() == {"row": "17"} and partial.payment_intent == intent_id
        assert (rest.amount, rest.reason) == (3000, "requested_by_customer")
        charge = client.v1.charges.retrieve(partial.charge)
        assert (charge.amount_refunded, charge.refunded) == (4500, True)
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.refunds.create(params={"payment_intent": intent_id})
        assert raised.value.code == "charge_already_refunded"

        assert client.v1.refunds.retrieve(partial.id).amount == 1500
        listed = client.v1.refunds.list(params={"payment_intent": intent_id})
        assert [refund.id for refund in listed.data] == [rest.id, partial.id]

    def test_each_refund_emits_charge_refunded_with_the_charge(self, client):
        session = pay(one_time_link(client).url).json()
        refund = client.v1.refunds.create(
            params={"payment_intent": session["payment_intent"], "amount": 1000}
        )

        (event,) = client.v1.events.list(params={"type": "charge.refunded"}).data

        assert event.data.object.object == "charge" and event.data.object.id == refund.charge
        assert (event.data.object.amount_refunded, event.data.object.refunded) == (1000, False)
        assert event.data.previous_attributes.amount_refunded == 0

    def test_refunding_more_than_is_left_is_refused_as_stripe_refuses_it(self, client, server):
        session = pay(one_time_link(client).url).json()
        client.v1.refunds.create(params={"payment_intent": session["payment_intent"], "amount": 4000})

        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.refunds.create(params={"payment_intent": session["payment_intent"], "amount": 1000})

        assert (raised.value.http_status, raised.value.code, raised.value.param) == (
            400,
            "amount_too_large",
            "amount",
        )
        assert "Refund amount ($10.00) is greater than unrefunded amount on charge ($5.00)" in str(
            raised.value
        )
        assert server.emulator.counts()["refunds"] == 1

    def test_bad_refund_requests_name_what_to_fix(self, client):
        session = pay(one_time_link(client).url).json()
        cases = [
            ({}, None),
            ({"payment_intent": "pi_missing"}, "payment_intent"),
            ({"payment_intent": session["payment_intent"], "reason": "changed_mind"}, "reason"),
            ({"payment_intent": session["payment_intent"], "amount": 0}, "amount"),
            ({"payment_intent": session["payment_intent"], "amout": 100}, "amout"),
        ]
        for params, param in cases:
            with pytest.raises(stripe.InvalidRequestError) as raised:
                client.v1.refunds.create(params=params)
            assert raised.value.http_status == 400 and raised.value.param == param


class TestDisputes:
    def test_an_open_dispute_then_lost(self, client, server):
        session = pay(one_time_link(client).url).json()
        intent_id = session["payment_intent"]

        opened = admin(server, f"payment_intents/{intent_id}/dispute").json()

        assert opened["id"].startswith("dp_") and opened["status"] == "needs_response"
        assert (opened["amount"], opened["payment_intent"]) == (4500, intent_id)
        charge = client.v1.charges.retrieve(opened["charge"])
        assert charge.disputed is True
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.refunds.create(params={"payment_intent": intent_id})
        assert raised.value.code == "charge_disputed"

        lost = admin(server, f"payment_intents/{intent_id}/dispute", status="lost").json()

        assert lost["status"] == "lost" and client.v1.disputes.retrieve(opened["id"]).status == "lost"
        assert event_types(client, opened["id"]) == ["charge.dispute.created", "charge.dispute.closed"]
        closed = client.v1.events.list(params={"type": "charge.dispute.closed"}).data[0]
        assert (closed.data.object.status, closed.data.object.charge) == ("lost", charge.id)
        assert admin(server, f"payment_intents/{intent_id}/dispute", status="won").status_code == 400

    def test_a_dispute_won_at_once_emits_both_events_and_leaves_the_charge_refundable(self, client, server):
        session = pay(one_time_link(client).url).json()

        won = admin(server, f"payment_intents/{session['payment_intent']}/dispute", status="won").json()

        assert won["status"] == "won"
        assert event_types(client, won["id"]) == ["charge.dispute.created", "charge.dispute.closed"]
        assert client.v1.refunds.create(params={"payment_intent": session["payment_intent"]}).amount == 4500
        assert [found.id for found in client.v1.disputes.list().data] == [won["id"]]

    def test_an_unpaid_or_unknown_payment_cannot_be_disputed(self, client, server):
        link = one_time_link(client)
        session = pay(link.url, payment_status="unpaid").json()
        assert admin(server, f"payment_intents/{session['payment_intent']}/dispute").status_code == 400
        assert admin(server, "payment_intents/pi_missing/dispute").status_code == 404
        assert (
            admin(server, f"payment_intents/{session['payment_intent']}/dispute", status="tied").status_code
            == 400
        )
