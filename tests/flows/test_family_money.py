"""Two ways to pay one bill, one charge: a family's "Pay all" checkout and each bill's own link,
as a parent and the treasurer see it after reconcile (the emulator over HTTP, the real SDK, real
SMTP). Every cent a family paid is on a bill, or owed back, or listed for the admin."""

from __future__ import annotations

from collections import defaultdict

import httpx
import pytest
import sqlalchemy as sa

from flows.backfill_payment_links import backfill_payment_links
from flows.reconcile_payments import reconcile_payments
from paylinks.club.office import refunds_due
from paylinks.club.tenants import tenant_by_slug
from paylinks.payments import refunds
from paylinks.store.tables import (
    family_checkouts,
    orders,
    parents,
    payment_allocations,
    payment_links,
    payments,
)
from paylinks.vocabulary import RefundResolution
from tests.family_checkouts import FamilyCheckout, open_family_checkout
from tests.helpers import TENANT, current_settings, rows

pytestmark = pytest.mark.slow


def family_rows(engine: sa.Engine, at_least: int = 2) -> list[sa.RowMapping]:
    """The pending, minted rows of the parent (with an address) who owes the most of them."""
    by_parent: dict[int, list[sa.RowMapping]] = defaultdict(list)
    with engine.connect() as connection:
        reachable = set(
            connection.execute(sa.select(parents.c.id).where(parents.c.email.is_not(None))).scalars()
        )
    for row in rows(engine).values():
        if row["status"] == "pending" and row["stripe_payment_link_id"] and row["parent_id"] in reachable:
            by_parent[row["parent_id"]].append(row)
    best = max(by_parent.values(), key=len)
    assert len(best) >= at_least, "the demo club has a parent with several open bills"
    return sorted(best, key=lambda r: r["id"])


def open_checkout(engine: sa.Engine, row_ids: list[int]) -> FamilyCheckout:
    settings = current_settings()
    return open_family_checkout(
        engine, str(settings.stripe_api_base), settings.stripe_api_key.get_secret_value(), row_ids
    )


def pay(url: str, **form: str) -> dict:
    answer = httpx.post(url, data=form, headers={"Accept": "application/json"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def statuses(engine: sa.Engine, row_ids) -> dict[int, str]:
    found = rows(engine)
    return {row_id: found[row_id]["status"].value for row_id in row_ids}


def allocations(engine: sa.Engine, session_id: str) -> dict[int, tuple[str, int, str | None]]:
    with engine.connect() as connection:
        return {
            a.payment_link_row_id: (a.status.value, a.amount_cents, a.refund_due_reason)
            for a in connection.execute(
                sa.select(payment_allocations)
                .join(payments, payments.c.id == payment_allocations.c.payment_id)
                .where(payments.c.checkout_session_id == session_id)
            )
        }


def owed_back(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        return refunds_due(connection, tenant_by_slug(connection, TENANT))


def receipts_to(mailroom, address: str) -> list:
    return [m for rcpt, m in mailroom.messages if address in rcpt and "paid" in str(m["Subject"]).lower()]


def parent_address(engine: sa.Engine, parent_id: int) -> str:
    with engine.connect() as connection:
        return connection.execute(sa.select(parents.c.email).where(parents.c.id == parent_id)).scalar_one()


def test_pay_all_pays_every_bill_closes_their_own_links_and_sends_one_receipt(
    settings, minted_club, engine, emulator, stripe_client, mailroom
):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    checkout = open_checkout(engine, row_ids)

    pay(checkout.url)
    reconcile_payments(tenant=TENANT)

    assert set(statuses(engine, row_ids).values()) == {"paid"}
    assert {r: a[:2] for r, a in allocations(engine, checkout.session_id).items()} == {
        b["id"]: ("paid", b["amount_cents"]) for b in bills
    }
    for bill in bills:  # each bill's own link no longer takes payment, and its page says so
        link = stripe_client.v1.payment_links.retrieve(bill["stripe_payment_link_id"])
        assert link.active is False
        assert httpx.post(bill["stripe_payment_link_url"]).status_code != 200
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(family_checkouts.c.status).where(family_checkouts.c.id == checkout.id)
            )
            .scalar_one()
            .value
            == "complete"
        )
    address = parent_address(engine, bills[0]["parent_id"])
    (receipt,) = receipts_to(mailroom, address)
    text = receipt.get_body(("plain",)).get_content()
    assert "Paid:" in text and "thank you" in text
    for bill in bills:
        assert bill["description"] in text
    assert "Still open" in text or "all paid up" in text

    reconcile_payments(tenant=TENANT)  # nothing new: no second receipt
    assert len(receipts_to(mailroom, address)) == 1
    assert owed_back(engine) == []


def test_a_bill_paid_by_its_own_link_and_by_pay_all_is_owed_back_once(
    settings, minted_club, engine, emulator
):
    bills = family_rows(engine, at_least=2)
    checkout = open_checkout(engine, [b["id"] for b in bills])
    first = bills[0]

    pay(first["stripe_payment_link_url"])  # the racing tab: its own link, a moment before
    pay(checkout.url)
    reconcile_payments(tenant=TENANT)

    # Whichever of the two payments Stripe's history shows first pays the bill (a first reconcile
    # reads sessions by when they were opened, so within a second either may); the other's money
    # for it is owed back, exactly that amount, and the checkout's other items are paid.
    with engine.connect() as connection:
        first_bill = connection.execute(
            sa.select(
                payments.c.payment_intent_id, payment_allocations.c.status, payment_allocations.c.amount_cents
            )
            .join(payments, payments.c.id == payment_allocations.c.payment_id)
            .where(payment_allocations.c.payment_link_row_id == first["id"])
        ).all()
    assert sorted((a.status.value, a.amount_cents) for a in first_bill) == [
        ("paid", first["amount_cents"]),
        ("refund_due", first["amount_cents"]),
    ]
    found = allocations(engine, checkout.session_id)
    assert all(found[b["id"]][0] == "paid" for b in bills[1:])
    assert statuses(engine, [first["id"]]) == {first["id"]: "refund_due"}
    (listed,) = owed_back(engine)
    assert (listed.row_id, listed.outstanding_cents) == (first["id"], first["amount_cents"])

    # The treasurer refunds exactly that item at Stripe: the bill is paid once, nothing owed back.
    (intent,) = [a.payment_intent_id for a in first_bill if a.status.value == "refund_due"]
    stripe_client = __import__("stripe").StripeClient(
        "sk_test_paylinks_tests", base_addresses={"api": emulator.url}, max_network_retries=0
    )
    stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": first["amount_cents"]})
    reconcile_payments(tenant=TENANT)
    assert statuses(engine, [b["id"] for b in bills]) == {b["id"]: "paid" for b in bills}
    assert owed_back(engine) == []


def test_two_tabs_pay_all_twice_and_the_second_is_owed_back_in_full(settings, minted_club, engine, emulator):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    first = open_checkout(engine, row_ids)
    second = open_checkout(engine, row_ids)

    pay(first.url)
    pay(second.url)
    reconcile_payments(tenant=TENANT)

    assert set(statuses(engine, row_ids).values()) <= {"refund_due"}
    # Whichever is applied first pays every bill; the other is owed back in full.
    outcomes = {
        frozenset(a[0] for a in allocations(engine, checkout.session_id).values()): checkout
        for checkout in (first, second)
    }
    assert set(outcomes) == {frozenset({"paid"}), frozenset({"refund_due"})}
    second = outcomes[frozenset({"refund_due"})]
    assert sum(line.outstanding_cents for line in owed_back(engine)) == second.amount_cents

    # The treasurer gives it back by hand: every bill is paid (once), nothing is owed back.
    with engine.begin() as connection:
        payment_id = connection.execute(
            sa.select(payments.c.id).where(payments.c.checkout_session_id == second.session_id)
        ).scalar_one()
        tenant = tenant_by_slug(connection, TENANT)
        assert refunds.resolve_refund_due(
            connection, tenant.id, payment_id, RefundResolution.refunded_by_hand, resolved_by="treasurer"
        )
    assert set(statuses(engine, row_ids).values()) == {"paid"}
    assert owed_back(engine) == []


def test_pay_all_after_a_bill_was_marked_paid_offline_or_its_amount_changed(
    settings, minted_club, engine, emulator
):
    from office.routes.refunds import offline_payments  # the office's own path
    from paylinks.access.audit import Actor
    from paylinks.stripe_api.gateway import StripeGateway
    from paylinks.vocabulary import PaidMethod

    bills = family_rows(engine, at_least=2)
    checkout = open_checkout(engine, [b["id"] for b in bills])
    cash, changed = bills[0], bills[1]
    with engine.connect() as connection:
        tenant = tenant_by_slug(connection, TENANT)
    offline_payments.mark_paid_offline(
        engine,
        lambda: StripeGateway(current_settings(), account=tenant.stripe_account),
        tenant,
        cash["id"],
        PaidMethod.cash,
        "paid at practice",
        actor=Actor(None, "treasurer@example.org"),
    )
    with engine.begin() as connection:  # the club changes the other bill's amount meanwhile
        if changed["order_id"] is not None:
            connection.execute(
                sa.update(orders).where(orders.c.id == changed["order_id"]).values(amount_cents=1234)
            )
        else:
            connection.execute(
                sa.update(payment_links)
                .where(payment_links.c.id == changed["id"])
                .values(mint_version=payment_links.c.mint_version + 1)
            )
    backfill_payment_links(tenant=TENANT, commit=True)

    pay(checkout.url)
    reconcile_payments(tenant=TENANT)

    found = allocations(engine, checkout.session_id)
    assert found[cash["id"]][:3] == ("refund_due", cash["amount_cents"], "a second payment of a paid bill")
    assert found[changed["id"]][0] == "refund_due"
    assert found[changed["id"]][2].startswith("the bill changed while the family checkout was open")
    after = statuses(engine, [cash["id"], changed["id"]])
    assert after[cash["id"]] == "refund_due"
    assert after[changed["id"]] == "pending"  # still owed, at its new terms
    listed = {line.row_id: line.outstanding_cents for line in owed_back(engine)}
    assert listed == {cash["id"]: cash["amount_cents"], changed["id"]: changed["amount_cents"]}


def test_a_partial_refund_matching_one_item_refunds_it_and_an_unmatched_one_is_listed(
    settings, minted_club, engine, emulator, stripe_client
):
    bills = family_rows(engine, at_least=2)
    checkout = open_checkout(engine, [b["id"] for b in bills])
    pay(checkout.url)
    reconcile_payments(tenant=TENANT)
    with engine.connect() as connection:
        intent, payment_id = connection.execute(
            sa.select(payments.c.payment_intent_id, payments.c.id).where(
                payments.c.checkout_session_id == checkout.session_id
            )
        ).one()
    amounts = [b["amount_cents"] for b in bills]
    unique = next((b for b in bills if amounts.count(b["amount_cents"]) == 1), None)
    if unique is not None:
        stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": unique["amount_cents"]})
        reconcile_payments(tenant=TENANT)
        assert statuses(engine, [unique["id"]]) == {unique["id"]: "refunded"}
        assert allocations(engine, checkout.session_id)[unique["id"]][0] == "refunded"

    stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": 7})  # no item costs 7 cents
    reconcile_payments(tenant=TENANT)
    (listed,) = owed_back(engine)
    assert (listed.payment_id, listed.unmatched_refund_cents, listed.row_id) == (payment_id, 7, None)
    still_paid = [b for b in bills if b is not unique]
    assert set(statuses(engine, [b["id"] for b in still_paid]).values()) == {"paid"}
    with engine.connect() as connection:
        record = connection.execute(sa.select(payments).where(payments.c.id == payment_id)).mappings().one()
        on_items = connection.execute(
            sa.select(sa.func.sum(payment_allocations.c.refunded_cents)).where(
                payment_allocations.c.payment_id == payment_id
            )
        ).scalar_one()
    # Every refunded cent is on an item or listed on the payment.
    assert record["refunded_cents"] == on_items + record["unallocated_refund_cents"]


def test_a_failed_family_bank_debit_puts_every_bill_back_to_pending_with_a_fresh_link(
    settings, minted_club, engine, emulator, stripe_client
):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    checkout = open_checkout(engine, row_ids)

    pay(checkout.url, payment_method="bank_debit")
    reconcile_payments(tenant=TENANT)
    assert set(statuses(engine, row_ids).values()) == {"processing"}
    for bill in bills:  # while the debit settles, nobody pays the bills again by their own links
        assert stripe_client.v1.payment_links.retrieve(bill["stripe_payment_link_id"]).active is False

    settled = httpx.post(
        f"{emulator.url}/_emulator/checkout_sessions/{checkout.session_id}/settle", data={"outcome": "failed"}
    )
    assert settled.status_code == 200
    reconcile_payments(tenant=TENANT)

    after = rows(engine)
    for bill in bills:
        row = after[bill["id"]]
        assert row["status"].value == "pending"
        assert row["mint_version"] == bill["mint_version"] + 1
        assert row["stripe_payment_link_id"] not in (None, bill["stripe_payment_link_id"])
        assert stripe_client.v1.payment_links.retrieve(row["stripe_payment_link_id"]).active is True
    assert {a[0] for a in allocations(engine, checkout.session_id).values()} == {"failed"}


def test_a_lost_dispute_takes_back_every_bill_of_the_checkout(settings, minted_club, engine, emulator):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    checkout = open_checkout(engine, row_ids)
    paid = pay(checkout.url)
    intent = paid["payment_intent"]
    reconcile_payments(tenant=TENANT)

    for status in ("", "lost"):
        httpx.post(
            f"{emulator.url}/_emulator/payment_intents/{intent}/dispute",
            data={"status": status} if status else {},
        ).raise_for_status()
    reconcile_payments(tenant=TENANT)

    assert set(statuses(engine, row_ids).values()) == {"refunded"}
    assert {a[0] for a in allocations(engine, checkout.session_id).values()} == {"refunded"}


def test_an_expired_checkout_is_recorded_and_pays_nothing(
    settings, minted_club, engine, emulator, stripe_client
):
    bills = family_rows(engine, at_least=2)
    row_ids = [b["id"] for b in bills]
    checkout = open_checkout(engine, row_ids)

    stripe_client.v1.checkout.sessions.expire(checkout.session_id)
    reconcile_payments(tenant=TENANT)

    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(family_checkouts.c.status).where(family_checkouts.c.id == checkout.id)
            )
            .scalar_one()
            .value
            == "expired"
        )
        assert connection.execute(sa.select(sa.func.count()).select_from(payments)).scalar_one() == 0
    assert set(statuses(engine, row_ids).values()) == {"pending"}


def test_a_links_payment_and_an_offline_one_each_send_one_receipt_with_what_is_still_open(
    settings, minted_club, engine, emulator, mailroom
):
    from contextlib import closing

    from office.routes.refunds import offline_payments
    from paylinks.access.audit import Actor
    from paylinks.messaging.receipts import send_offline_receipt
    from paylinks.runtime import mail_transport
    from paylinks.stripe_api.gateway import StripeGateway
    from paylinks.vocabulary import PaidMethod

    bills = family_rows(engine, at_least=2)
    address = parent_address(engine, bills[0]["parent_id"])
    pay(bills[0]["stripe_payment_link_url"])
    reconcile_payments(tenant=TENANT)
    reconcile_payments(tenant=TENANT)

    (by_link,) = receipts_to(mailroom, address)
    text = by_link.get_body(("plain",)).get_content()
    paid_part, _, open_part = text.partition("Still open:")
    assert bills[0]["description"] in paid_part and "through Stripe" in paid_part
    assert bills[1]["description"] in open_part and "Pay Now:" in open_part

    with engine.connect() as connection:
        tenant = tenant_by_slug(connection, TENANT)
    done = offline_payments.mark_paid_offline(
        engine,
        lambda: StripeGateway(current_settings(), account=tenant.stripe_account),
        tenant,
        bills[1]["id"],
        PaidMethod.cheque,
        "",
        actor=Actor(None, "treasurer@example.org"),
    )
    settings_now = current_settings()
    for _ in range(2):  # asked twice (a double click): one receipt
        with closing(mail_transport(settings_now)) as transport:
            send_offline_receipt(
                engine, settings_now, transport, tenant, done.row_id, done.audit_id, done.method
            )
    by_cheque = receipts_to(mailroom, address)[1:]
    assert len(by_cheque) == 1
    text = by_cheque[0].get_body(("plain",)).get_content()
    assert bills[1]["description"] in text.partition("Still open")[0] and "(cheque)" in text
