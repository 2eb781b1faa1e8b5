"""How each bill was paid, over HTTP at the local Stripe emulator with signed webhooks: a family's
"Pay all" paid by card reads "by card" on the family page, the coach's player card and the
receipt; one paid by bank debit is processing until the bank settles it, then "by bank debit";
a bill paid through its own link by card says so too."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa

from paylinks.store.tables import payment_links, payments
from tests.flows.test_family_money import pay, statuses
from tests.helpers import TENANT, wait_for
from tests.office.test_family_page import busiest_parent, family_address
from tests.office.test_family_pay_all import open_page
from tests.office.test_family_webhooks import deliver

pytestmark = pytest.mark.slow

PAID_ON = r"Paid [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M E[SD]T"


def press_pay_all(office, path: str) -> tuple[str, list[int]]:
    """The parent presses "Pay all": the checkout's url, and the bills it covers."""
    _, shown = open_page(office, path)
    with office.client() as parent:
        pressed = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
    assert pressed.status_code == 303, pressed.text
    return pressed.headers["location"], [int(value.split(":")[0]) for value in shown]


def settled_lines(office, path: str) -> list[str]:
    with office.client() as parent:
        page = parent.get(path)
    assert page.status_code == 200
    return re.findall(r'<li class="item settled">.*?</li>', page.text, flags=re.S)


def methods_recorded(engine: sa.Engine, row_ids: list[int]) -> set[str]:
    with engine.connect() as connection:
        return {
            m.value
            for m in connection.execute(
                sa.select(payment_links.c.paid_method).where(payment_links.c.id.in_(row_ids))
            ).scalars()
        }


def test_pay_all_by_card_reads_by_card_on_the_page_the_player_card_and_the_receipt(
    minted_club, engine, emulator, office, mailroom, coach
):
    path = family_address(engine, busiest_parent(engine))
    url, row_ids = press_pay_all(office, path)

    pay(url, payment_method="card")
    deliver(office, emulator)

    assert wait_for(lambda: set(statuses(engine, row_ids).values()) == {"paid"})
    assert methods_recorded(engine, row_ids) == {"card"}
    lines = settled_lines(office, path)
    assert len(lines) == len(row_ids)
    assert all(re.search(PAID_ON + ", by card", line) for line in lines), lines
    with engine.connect() as connection:
        assert connection.execute(sa.select(payments.c.paid_method)).scalar_one().value == "card"
        player_id = connection.execute(
            sa.select(payment_links.c.player_id).where(payment_links.c.id == row_ids[0])
        ).scalar_one()
    card = coach.get(f"/t/{TENANT}/players/{player_id}")
    assert card.status_code == 200 and "(card)" in card.text
    assert wait_for(lambda: len(mailroom.messages) == 1)
    ((_, message),) = mailroom.messages
    assert "by card, through Stripe" in message.get_body(("plain",)).get_content()


def test_pay_all_by_bank_debit_is_processing_until_it_settles_then_reads_by_bank_debit(
    minted_club, engine, emulator, office, mailroom
):
    path = family_address(engine, busiest_parent(engine))
    url, row_ids = press_pay_all(office, path)

    pay(url, payment_method="bank_debit")
    deliver(office, emulator)
    assert wait_for(lambda: set(statuses(engine, row_ids).values()) == {"processing"})
    with office.client() as parent:
        assert "your bank payment is on its way" in parent.get(path).text
    assert not settled_lines(office, path)

    session_id = url.rsplit("/", 1)[-1]
    settled = httpx.post(f"{emulator.url}/_emulator/checkout_sessions/{session_id}/settle")
    assert settled.status_code == 200, settled.text
    deliver(office, emulator, "checkout.session.async_payment_succeeded")

    assert wait_for(lambda: set(statuses(engine, row_ids).values()) == {"paid"})
    assert methods_recorded(engine, row_ids) == {"bank_debit"}
    lines = settled_lines(office, path)
    assert len(lines) == len(row_ids)
    assert all(re.search(PAID_ON + ", by bank debit", line) for line in lines), lines
    assert wait_for(lambda: len(mailroom.messages) == 1)
    ((_, message),) = mailroom.messages
    assert "by bank debit, through Stripe" in message.get_body(("plain",)).get_content()


def test_a_bill_paid_by_its_own_link_by_card_says_so(minted_club, engine, emulator, office):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    with engine.connect() as connection:
        bill = (
            connection.execute(
                sa.select(payment_links)
                .where(payment_links.c.parent_id == parent_id, payment_links.c.status == "pending")
                .order_by(payment_links.c.id)
            )
            .mappings()
            .first()
        )
    assert bill is not None and bill["stripe_payment_link_url"]

    pay(bill["stripe_payment_link_url"], payment_method="card")
    deliver(office, emulator)

    assert wait_for(lambda: statuses(engine, [bill["id"]]) == {bill["id"]: "paid"})
    (line,) = settled_lines(office, path)
    assert bill["description"] in line and re.search(PAID_ON + ", by card", line)
