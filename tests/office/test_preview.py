"""A test email's Pay Now buttons lead to the office's preview of the bill, which cannot take
payment and is shown only to people of the bill's club."""

from __future__ import annotations

import re

import sqlalchemy as sa

from paylinks.store.tables import payment_links
from tests.office.conftest import OTHER_COACH, TENANT


def test_a_test_emails_buttons_open_a_preview_that_cannot_pay(minted_club, engine, office, admin, mailroom):
    from flows.outstanding_balance_email import outstanding_balance_email

    outstanding_balance_email(tenant=TENANT, test_email="ada.admin@riverside.example")
    ((_, message),) = mailroom.messages
    html = message.get_body(("html",)).get_content()
    previews = re.findall(r'href="(http[^"]*/preview/payment-links/(\d+))"', html)
    assert previews, "the test email links to previews"
    _url, row_id = previews[0]
    with engine.connect() as connection:
        row = (
            connection.execute(sa.select(payment_links).where(payment_links.c.id == int(row_id)))
            .mappings()
            .one()
        )

    page = admin.get(f"/preview/payment-links/{row_id}")

    assert page.status_code == 200
    assert "Preview only: nothing can be paid here" in page.text
    assert row["description"] in page.text
    assert row["stripe_payment_link_url"] not in page.text  # no way to the payable page from here
    with office.client() as stranger:
        assert stranger.get(f"/preview/payment-links/{row_id}").status_code == 303  # log in first
        assert stranger.login(OTHER_COACH).status_code == 303
        assert stranger.get(f"/preview/payment-links/{row_id}").status_code == 404  # another club's bill
