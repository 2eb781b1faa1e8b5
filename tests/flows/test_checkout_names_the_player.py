"""Each link's checkout page and its payment's receipt say which child and club a fee is for
("Spring tournament — Eli Alvarez, Riverside Hoops"): minted so, and links minted before that
updated once in place. Real parts: the flows, the emulator over HTTP (its pay page fetched and
paid as a parent would, its objects read back with the real SDK), SQLite."""

from __future__ import annotations

from html import escape

import httpx
import pytest
import sqlalchemy as sa
import stripe

from flows.backfill_payment_links import backfill_payment_links
from paylinks.billing.plan import Action
from paylinks.store.tables import payment_links, players, tenants
from tests.helpers import TENANT


def open_links(engine) -> list[sa.RowMapping]:
    """TENANT's pending rows with what their checkout should say, by id."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(
                    payment_links,
                    players.c.first_name,
                    players.c.last_name,
                    tenants.c.name.label("club"),
                )
                .join(players, players.c.id == payment_links.c.player_id)
                .join(tenants, tenants.c.id == payment_links.c.tenant_id)
                .where(tenants.c.slug == TENANT, payment_links.c.status == "pending")
                .order_by(payment_links.c.id)
            ).mappings()
        )


def says(row) -> str:
    return f"{row['description']} — {row['first_name']} {row['last_name']}, {row['club']}"


def test_the_checkout_page_and_the_receipt_name_the_player_and_the_club(
    settings, engine, minted_club, stripe_client
):
    row = open_links(engine)[0]
    text = says(row)
    link = stripe_client.v1.payment_links.retrieve(row["stripe_payment_link_id"])
    assert link.custom_text.submit.message == text
    assert link.payment_intent_data.description == text
    assert row["checkout_text"] == text

    with httpx.Client() as client:
        page = client.get(row["stripe_payment_link_url"])
        assert page.status_code == 200 and page.text.count(escape(text)) == 2  # above and by the button
        paid = client.post(row["stripe_payment_link_url"])
        assert paid.status_code == 200 and escape(text) in paid.text

    (session,) = stripe_client.v1.checkout.sessions.list(
        params={"payment_link": row["stripe_payment_link_id"]}
    ).data
    assert session.custom_text.submit.message == text
    intent = stripe_client.v1.payment_intents.retrieve(str(session.payment_intent))
    assert intent.description == text
    assert stripe_client.v1.charges.retrieve(str(intent.latest_charge)).description == text


def test_links_minted_before_are_named_once_in_place_and_follow_a_renamed_player(
    settings, engine, emulator, minted_club, stripe_client
):
    before = open_links(engine)
    # As links minted before paylinks named the player: nothing on the page, no description.
    for row in before:
        stripe_client.v1.payment_links.update(
            row["stripe_payment_link_id"],
            params={"custom_text": {"submit": ""}, "payment_intent_data": {"description": ""}},
        )
    with engine.begin() as connection:
        connection.execute(sa.update(payment_links).values(checkout_text=None))
    platform = emulator.emulator.platform_account_id
    links = emulator.emulator.counts()["payment_links"]
    requests = emulator.emulator.request_counts()[platform]

    (report,) = backfill_payment_links(tenant=TENANT, commit=True)

    assert {s.row_id for s in report.plan.steps_for(Action.name_player)} == {r["id"] for r in before}
    # One update per link (where the key acts was confirmed by the backfill moments ago, so it is
    # not asked again): nothing minted again.
    assert emulator.emulator.request_counts()[platform] == requests + len(before)
    assert emulator.emulator.counts()["payment_links"] == links and report.minted == 0
    after = open_links(engine)
    assert [r["stripe_payment_link_id"] for r in after] == [r["stripe_payment_link_id"] for r in before]
    for row in after:
        link = stripe_client.v1.payment_links.retrieve(row["stripe_payment_link_id"])
        assert link.custom_text.submit.message == link.payment_intent_data.description == says(row)
        assert link.payment_intent_data.metadata["payment_link_row_id"] == str(row["id"])
        assert row["checkout_text"] == says(row)

    # Nothing changed: the next nightly run updates nothing and asks Stripe nothing.
    requests = emulator.emulator.request_counts()[platform]
    (again,) = backfill_payment_links(tenant=TENANT, commit=True)
    assert not again.plan.steps_for(Action.name_player)
    assert emulator.emulator.request_counts()[platform] == requests

    # A player renamed (with a name nobody should trust): only that player's links are updated,
    # and the page shows the name as text on one line.
    renamed = after[0]
    hostile = '<script>alert("x")</script>\r\nBcc: all@evil.test'
    with engine.begin() as connection:
        connection.execute(
            sa.update(players)
            .where(players.c.id == renamed["player_id"])
            .values(first_name=hostile, last_name="Alvarez" * 200)
        )
    theirs = [r["id"] for r in after if r["player_id"] == renamed["player_id"]]

    (third,) = backfill_payment_links(tenant=TENANT, commit=True)

    assert sorted(s.row_id for s in third.plan.steps_for(Action.name_player)) == sorted(theirs)
    text = next(r for r in open_links(engine) if r["id"] == renamed["id"])["checkout_text"]
    assert "\n" not in text and "\r" not in text and len(text) <= 300 and text.endswith("…")
    assert text.startswith(
        f'{renamed["description"]} — <script>alert("x")</script> Bcc: all@evil.test Alvarez'
    )
    link = stripe_client.v1.payment_links.retrieve(renamed["stripe_payment_link_id"])
    assert link.payment_intent_data.description == link.custom_text.submit.message == text
    with httpx.Client() as client:
        page = client.get(renamed["stripe_payment_link_url"]).text
    assert "<script>" not in page and escape(text) in page


def test_the_emulator_keeps_custom_text_as_stripe_does(emulator, stripe_client):
    product = stripe_client.v1.products.create(params={"name": "Kit"})
    price = stripe_client.v1.prices.create(
        params={"product": product.id, "unit_amount": 6500, "currency": "usd"}
    )
    made = {"line_items": [{"price": price.id, "quantity": 1}]}
    link = stripe_client.v1.payment_links.create(
        params={**made, "custom_text": {"submit": {"message": "For Ruby <3"}}}
    )
    assert link.custom_text.submit.message == "For Ruby <3" and link.custom_text.after_submit is None
    cleared = stripe_client.v1.payment_links.update(link.id, params={"custom_text": {"submit": ""}})
    assert cleared.custom_text.submit is None
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_links.create(
            params={**made, "custom_text": {"submit": {"message": "x" * 1201}}}
        )
    assert refused.value.param == "custom_text[submit][message]"
