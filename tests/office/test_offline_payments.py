"""Marking a bill paid offline: its link is deactivated first, so paying it then fails; a link
paid at Stripe meanwhile is refused, and the page says why."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa

from paylinks.store.tables import audit_log, orders, payment_links
from paylinks.vocabulary import AuditAction
from tests.office.conftest import ADMIN, TENANT


def an_open_row(engine, with_order: bool) -> sa.RowMapping:
    with engine.connect() as connection:
        return (
            connection.execute(
                sa.select(payment_links).where(
                    payment_links.c.status == "pending",
                    payment_links.c.stripe_payment_link_url.is_not(None),
                    payment_links.c.order_id.is_not(None)
                    if with_order
                    else payment_links.c.order_id.is_(None),
                )
            )
            .mappings()
            .first()
        )


def test_marked_paid_offline_deactivates_the_link_and_paying_it_then_fails(minted_club, engine, admin):
    row = an_open_row(engine, with_order=True)
    page = f"/t/{TENANT}/players/{row['player_id']}"
    response = admin.submit(
        page, f"/t/{TENANT}/rows/{row['id']}/paid-offline", {"method": "cheque", "note": "cheque #1042"}
    )
    assert response.status_code == 303
    notice = admin.get(response.headers["location"]).text
    assert "paid by cheque" in notice and "deactivated" in notice

    with engine.connect() as connection:
        marked = (
            connection.execute(sa.select(payment_links).where(payment_links.c.id == row["id"]))
            .mappings()
            .one()
        )
        order = connection.execute(sa.select(orders).where(orders.c.id == row["order_id"])).mappings().one()
        entry = connection.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).mappings().first()
    assert marked["status"] == "paid" and marked["paid_method"] == "cheque"
    assert (
        marked["paid_by"] == ADMIN and marked["paid_note"] == "cheque #1042" and marked["paid_at"] is not None
    )
    assert order["status"] == "paid" and order["paid_at"] is not None
    assert entry["action"] == AuditAction.mark_paid_offline and entry["actor"] == ADMIN

    link_page = httpx.get(row["stripe_payment_link_url"])
    assert link_page.status_code == 410 and "has been paid" in link_page.text
    assert httpx.post(row["stripe_payment_link_url"]).status_code != 200


def test_a_link_paid_at_stripe_meanwhile_is_refused_and_the_page_says_why(minted_club, engine, admin):
    row = an_open_row(engine, with_order=False)
    assert httpx.post(row["stripe_payment_link_url"]).status_code == 200  # the parent paid a moment ago
    page = f"/t/{TENANT}/players/{row['player_id']}"
    refused = admin.submit(page, f"/t/{TENANT}/rows/{row['id']}/paid-offline", {"method": "cash"})
    assert refused.status_code == 409
    assert re.search(r"Not marked paid: .*paid at Stripe in the meantime", refused.text)
    with engine.connect() as connection:
        status = connection.execute(
            sa.select(payment_links.c.status).where(payment_links.c.id == row["id"])
        ).scalar()
    assert status == "pending"  # reconcile (or the webhook) records the Stripe payment
