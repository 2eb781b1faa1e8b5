"""'Pay all' over HTTP, at the local Stripe emulator: the press answers 303 to one Checkout Session
whose lines, amounts and metadata name every bill and its version; a double click opens the same
session with no second Stripe request; the session pays at its page and Stripe sends the parent
back to the thank-you notice; Stripe out of reach is a page saying what to do."""

from __future__ import annotations

import re
import socket
import time

import httpx
import pytest
import sqlalchemy as sa

from paylinks.store.tables import family_checkout_rows, family_checkouts, payment_links, players
from tests.helpers import current_settings
from tests.office.test_family_page import _BILL, busiest_parent, family_address


def open_page(office, path: str) -> tuple[httpx.Response, list[str]]:
    with office.client() as parent:
        page = parent.get(path)
    assert page.status_code == 200
    return page, re.findall(r'name="shown" value="([^"]+)"', page.text)


def test_pay_all_opens_one_session_naming_every_bill_and_its_version(
    minted_club, engine, office, emulator, stripe_client
):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    page, shown = open_page(office, path)
    bills = [tuple(int(part) for part in value.split(":")) for value in shown]
    before = sum(emulator.emulator.request_counts().values())
    with office.client() as parent:
        pressed = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
    assert pressed.status_code == 303, pressed.text
    url = pressed.headers["location"]
    assert url.startswith(f"{emulator.url}/checkout/cs_test_")
    assert pressed.headers["referrer-policy"] == "no-referrer"
    assert sum(emulator.emulator.request_counts().values()) - before == 1  # one Stripe request

    with engine.connect() as connection:
        checkout = connection.execute(sa.select(family_checkouts)).mappings().one()
        covered = (
            connection.execute(
                sa.select(family_checkout_rows).where(
                    family_checkout_rows.c.family_checkout_id == checkout["id"]
                )
            )
            .mappings()
            .all()
        )
        names = {
            r.id: (f"{r.description} — {r.first_name} {r.last_name}", r.amount_cents, r.stripe_price_id)
            for r in connection.execute(
                sa.select(
                    payment_links.c.id,
                    payment_links.c.description,
                    payment_links.c.amount_cents,
                    payment_links.c.stripe_price_id,
                    players.c.first_name,
                    players.c.last_name,
                )
                .join(players, players.c.id == payment_links.c.player_id)
                .where(payment_links.c.id.in_([row for row, _, _ in bills]))
            )
        }
    assert checkout["status"].value == "open" and checkout["url"] == url
    assert checkout["amount_total_cents"] == sum(amount for _, _, amount in bills)
    assert {(r["payment_link_row_id"], r["mint_version"], r["amount_cents"]) for r in covered} == set(bills)
    assert all(r["stripe_price_id"] == names[r["payment_link_row_id"]][2] for r in covered)

    session = stripe_client.v1.checkout.sessions.retrieve(checkout["checkout_session_id"])
    assert (session.mode, session.status, session.currency) == ("payment", "open", "usd")
    assert session.amount_total == checkout["amount_total_cents"]
    metadata = session.metadata.to_dict()
    assert metadata["paylinks_family_checkout"] == str(checkout["id"])
    assert metadata["paylinks_tenant"] == str(checkout["tenant_id"])
    pairs = ",".join(metadata[key] for key in sorted(k for k in metadata if k.startswith("paylinks_rows_")))
    assert sorted(pairs.split(",")) == sorted(f"{row}:{version}" for row, version, _ in bills)
    assert session.client_reference_id == f"paylinks-family-checkout-{checkout['id']}"
    office_url = current_settings().office_url.rstrip("/")
    assert session.success_url == f"{office_url}{path}?paid={checkout['id']}"
    assert session.cancel_url == f"{office_url}{path}"
    assert 30 * 60 <= session.expires_at - time.time() <= 32 * 60
    lines = stripe_client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 100}).data
    assert sorted((line.description, line.amount_total) for line in lines) == sorted(
        (names[row][0], amount) for row, _, amount in bills
    )

    # The parent pays at the session's page; Stripe sends them back to the thank-you notice.
    assert httpx.post(url, data={"payment_method": "card"}).status_code in (200, 303)
    with office.client() as parent:
        back = parent.get(f"{path}?paid={checkout['id']}")
    assert "Thank you — your payment is being processed." in back.text


@pytest.mark.storage  # the reservation's unique key decides between two presses
def test_a_double_click_opens_the_same_session_with_one_stripe_request(minted_club, engine, office, emulator):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    _, shown = open_page(office, path)
    before = sum(emulator.emulator.request_counts().values())
    with office.client() as parent:
        first = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
        second = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert sum(emulator.emulator.request_counts().values()) - before == 1
    assert emulator.emulator.counts()["checkout_sessions"] == 1
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(family_checkouts)).scalar() == 1


def test_the_checked_items_alone_make_another_session(minted_club, engine, office, emulator):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    page, shown = open_page(office, path)
    chosen = [f"{r}:{v}:{a}" for r, v, a in _BILL.findall(page.text)][:1]
    with office.client() as parent:
        everything = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
        one = parent.post(f"{path}/checkout", data={"pay": "chosen", "bill": chosen, "shown": shown})
        none = parent.post(f"{path}/checkout", data={"pay": "chosen", "shown": shown})
    assert everything.headers["location"] != one.headers["location"]
    with engine.connect() as connection:
        totals = sorted(connection.execute(sa.select(family_checkouts.c.amount_total_cents)).scalars())
    assert totals[0] == int(chosen[0].split(":")[2])
    assert none.status_code == 422 and "Choose at least one item to pay." in none.text


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_stripe_out_of_reach_is_a_page_saying_what_to_do(minted_club, engine, office, use_settings, caplog):
    from office.server import OfficeServer

    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    _, shown = open_page(office, path)
    dead = use_settings(
        stripe_api_base=f"http://127.0.0.1:{closed_port()}",
        stripe_max_retries=0,
        stripe_account_recheck_minutes=0,
    )
    with OfficeServer(dead) as server, httpx.Client(base_url=server.url) as parent:
        page = parent.get(path)
        pressed = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
    for answer in (page, pressed):
        assert answer.status_code == 503
        assert "Payments are not available right now" in answer.text
        assert "Nothing was charged" in answer.text and "try again in a few minutes" in answer.text
    assert path.removeprefix("/f/") not in page.text
    assert f'href="{path}">Back to your family page' in pressed.text  # the parent's own address only
    assert "cannot reach Stripe" in caplog.text  # the reason, for whoever runs the office
    assert path.removeprefix("/f/") not in caplog.text  # never the page's address


def test_no_stripe_key_is_a_page_too(minted_club, engine, office, use_settings):
    from office.server import OfficeServer

    path = family_address(engine, busiest_parent(engine))
    unset = use_settings(stripe_api_key=None, stripe_api_base=None)
    with OfficeServer(unset) as server, httpx.Client(base_url=server.url) as parent:
        page = parent.get(path)
    assert page.status_code == 503 and "Payments are not available right now" in page.text


@pytest.mark.storage
def test_two_presses_at_the_same_moment_open_one_session(minted_club, engine, office, emulator):
    from concurrent.futures import ThreadPoolExecutor

    path = family_address(engine, busiest_parent(engine))
    _, shown = open_page(office, path)

    def press(_: int) -> str:
        with office.client() as parent:
            answer = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        urls = set(pool.map(press, range(4)))
    assert len(urls) == 1
    assert emulator.emulator.counts()["checkout_sessions"] == 1
    with engine.connect() as connection:
        statuses = list(connection.execute(sa.select(family_checkouts.c.status)).scalars())
    assert [s.value for s in statuses] == ["open"]


def test_a_checkout_stripe_refuses_says_so_and_charges_nothing(minted_club, engine, office, emulator):
    from paylinks.store.tables import products

    parent_id = busiest_parent(engine)
    with engine.begin() as connection:  # bills whose total is above what one Stripe checkout takes
        rows = connection.execute(
            sa.select(payment_links.c.id, payment_links.c.product_id).where(
                payment_links.c.parent_id == parent_id, payment_links.c.order_id.is_(None)
            )
        ).all()
        for product_id in {r.product_id for r in rows}:
            connection.execute(
                sa.update(products).where(products.c.id == product_id).values(amount_cents=60_000_000)
            )
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id.in_([r.id for r in rows]))
            .values(amount_cents=60_000_000)
        )
    path = family_address(engine, parent_id)
    _, shown = open_page(office, path)
    with office.client() as parent:
        refused = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
    assert refused.status_code == 422, refused.text
    assert "These items cannot be paid together" in refused.text and "nothing was charged" in refused.text
    assert f'href="{path}"' in refused.text  # back to the page
    with engine.connect() as connection:
        (status,) = connection.execute(sa.select(family_checkouts.c.status)).scalars().all()
    assert status.value == "refused"
    assert emulator.emulator.counts()["checkout_sessions"] == 0
