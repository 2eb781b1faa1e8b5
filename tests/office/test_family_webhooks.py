"""A family's "Pay all" checkout reported by Stripe's signed webhook: every bill paid within
seconds, their own links dead, one receipt; with the mail server down the payment is still
applied and the receipt, logged as failed, goes out with the next reconcile. A checkout naming
another tenant changes nothing of this one."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import sqlalchemy as sa

from flows.reconcile_payments import reconcile_payments
from paylinks.store.tables import email_log, parents, payments, tenants
from tests.family_checkouts import open_family_checkout
from tests.flows.test_family_money import family_rows, pay, statuses
from tests.helpers import TENANT, stripe_signed_headers, wait_for
from tests.office.conftest import OTHER_TENANT, WEBHOOK_SECRET

pytestmark = pytest.mark.slow


def receipt_log(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [
            (r.run_key, r.status.value)
            for r in connection.execute(sa.select(email_log).where(email_log.c.email_type == "receipt"))
        ]


def deliver(office, emulator, event_type: str = "checkout.session.completed") -> dict:
    """Stripe's latest event of this type, delivered signed to the office's webhook receiver."""
    event = httpx.get(
        f"{emulator.url}/v1/events",
        params={"type": event_type, "limit": 1},
        headers={"Authorization": "Bearer sk_test_paylinks_tests"},
    ).json()["data"][0]
    payload = json.dumps(event)
    answer = httpx.post(
        f"{office.url}/stripe/webhook",
        content=payload,
        headers=stripe_signed_headers(payload, WEBHOOK_SECRET),
    )
    assert answer.status_code == 200
    return event


def test_pay_all_by_webhook_pays_every_bill_at_once_and_sends_one_receipt(
    minted_club, engine, emulator, office, mailroom, stripe_client
):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    checkout = open_family_checkout(engine, emulator.url, "sk_test_paylinks_tests", row_ids)

    pay(checkout.url)
    started = time.monotonic()
    event = deliver(office, emulator)

    assert wait_for(lambda: set(statuses(engine, row_ids).values()) == {"paid"}, timeout=10)
    assert time.monotonic() - started < 5
    assert wait_for(lambda: receipt_log(engine) == [(f"payment-{payment_id(engine)}", "sent")])
    for bill in bills:  # their own links were closed at Stripe by the same webhook
        assert wait_for(
            lambda bill=bill: (
                not stripe_client.v1.payment_links.retrieve(bill["stripe_payment_link_id"]).active
            )
        )
        page = httpx.post(bill["stripe_payment_link_url"], headers={"Accept": "application/json"})
        assert page.status_code != 200  # the bill's own page takes no second payment
    deliver(office, emulator)  # Stripe retries: nothing more happens, no second receipt
    time.sleep(0.5)
    assert len(receipt_log(engine)) == 1 and len(mailroom.messages) == 1
    assert event["data"]["object"]["metadata"]["paylinks_family_checkout"] == str(checkout.id)


def payment_id(engine: sa.Engine) -> int | None:
    with engine.connect() as connection:
        return connection.execute(sa.select(payments.c.id)).scalar_one_or_none()


def test_mail_down_the_payment_still_applies_and_reconcile_sends_the_receipt_later(
    minted_club, engine, emulator, office, mailroom
):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    with engine.connect() as connection:
        address = connection.execute(
            sa.select(parents.c.email).where(parents.c.id == bills[0]["parent_id"])
        ).scalar_one()
    mailroom.refuse.add(address.lower())  # the parent's mailbox refuses for now
    checkout = open_family_checkout(engine, emulator.url, "sk_test_paylinks_tests", row_ids)

    pay(checkout.url)
    deliver(office, emulator)

    assert wait_for(lambda: set(statuses(engine, row_ids).values()) == {"paid"}, timeout=10)
    assert wait_for(lambda: [s for _, s in receipt_log(engine)] == ["failed"])
    with engine.connect() as connection:
        assert connection.execute(sa.select(payments.c.receipt_due)).scalar_one() is True

    mailroom.refuse.clear()
    reconcile_payments(tenant=TENANT)
    assert [s for _, s in receipt_log(engine)] == ["sent"]
    reconcile_payments(tenant=TENANT)
    assert len([m for rcpt, m in mailroom.messages if address in rcpt]) == 1


def test_a_checkout_naming_another_tenant_or_account_changes_nothing(settings, minted_club, engine, emulator):
    from paylinks.payments.ledger import apply_event

    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    checkout = open_family_checkout(engine, emulator.url, "sk_test_paylinks_tests", row_ids)
    pay(checkout.url)
    event = httpx.get(
        f"{emulator.url}/v1/events",
        params={"type": "checkout.session.completed"},
        headers={"Authorization": "Bearer sk_test_paylinks_tests"},
    ).json()["data"][0]
    with engine.connect() as connection:
        other = connection.execute(sa.select(tenants.c.id).where(tenants.c.slug == OTHER_TENANT)).scalar_one()

    forged = json.loads(json.dumps(event))  # its metadata names another tenant
    forged["id"] += "_other_tenant"
    forged["data"]["object"]["metadata"]["paylinks_tenant"] = str(other)
    elsewhere = json.loads(json.dumps(event))  # the same session, reported by another account
    elsewhere["id"] += "_other_account"
    elsewhere["account"] = "acct_someone_else"
    apply_event(engine, forged, source="webhook", account=None)
    apply_event(engine, elsewhere, source="webhook", account="acct_someone_else")

    assert set(statuses(engine, row_ids).values()) == {"pending"}
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(payments)).scalar_one() == 0

    apply_event(engine, event, source="webhook", account=None)  # the real one pays
    assert set(statuses(engine, row_ids).values()) == {"paid"}
