"""The admin's page over HTTP: balances by team, the CSV of open items, refunds due and their
resolution, and the blast panel's three steps (preview, test send, send naming its count)."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
import sqlalchemy as sa

from paylinks.store.tables import audit_log, payment_links, payments
from paylinks.vocabulary import AuditAction, PaymentLinkStatus, RefundResolution
from tests.office.conftest import ADMIN, TENANT

# The tests marked `storage` run on PostgreSQL too (the team balances and open-items SQL, the
# refunds-due SQL and its resolution, once); the rest on SQLite.


@pytest.mark.storage  # the team balances query and the open-items SQL
def test_balances_by_team_and_the_csv_of_open_items(minted_club, engine, admin):
    with engine.connect() as connection:
        open_rows = connection.execute(
            sa.select(payment_links.c.amount_cents, payment_links.c.stripe_payment_link_url).where(
                payment_links.c.tenant_id == minted_club[0].id, payment_links.c.status == "pending"
            )
        ).all()
    page = admin.get(f"/t/{TENANT}/admin")
    assert page.status_code == 200 and "Balances by team" in page.text
    total = sum(r.amount_cents for r in open_rows)
    assert f"${total // 100:,}.{total % 100:02d}" in page.text  # the owed total over all teams

    export = admin.get(f"/t/{TENANT}/admin/open-items.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(export.text)))
    assert len(lines) == len(open_rows)
    assert set(lines[0]) >= {"player", "parent", "email", "product", "amount", "status", "link"}
    assert {line["link"] for line in lines} == {r.stripe_payment_link_url for r in open_rows}
    assert sum(int(line["amount"].replace(".", "")) for line in lines) == total


@pytest.mark.storage  # the refunds-due SQL; resolved once by a conditional update
def test_a_refund_due_is_listed_and_resolved_with_a_note(minted_club, engine, admin):
    with engine.begin() as connection:
        row = (
            connection.execute(sa.select(payment_links).where(payment_links.c.tenant_id == minted_club[0].id))
            .mappings()
            .first()
        )
        payment_id = connection.execute(
            sa.insert(payments).values(
                tenant_id=row["tenant_id"],
                payment_link_row_id=row["id"],
                stripe_payment_link_id="plink_x",
                checkout_session_id="cs_test_refund_due",
                amount_cents=4500,
                currency="usd",
                status="succeeded",
                refund_due=True,
                refund_due_reason="paid after the bill was cancelled",
            )
        ).inserted_primary_key[0]
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(status=PaymentLinkStatus.refund_due)
        )
    page = admin.get(f"/t/{TENANT}/admin")
    assert "paid after the bill was cancelled" in page.text and "$45.00" in page.text
    done = admin.submit(
        f"/t/{TENANT}/admin",
        f"/t/{TENANT}/refunds/{payment_id}/resolve",
        {"resolution": "kept as credit", "note": "credit towards spring dues"},
    )
    assert done.status_code == 303
    after = admin.get(done.headers["location"])
    assert "Nothing to give back" in after.text
    with engine.connect() as connection:
        resolved = connection.execute(sa.select(payments).where(payments.c.id == payment_id)).mappings().one()
    assert resolved["resolved_by"] == ADMIN and resolved["resolved_at"] is not None
    assert resolved["resolution"] == RefundResolution.kept_as_credit
    assert resolved["resolution_note"] == "credit towards spring dues"
    with engine.connect() as connection:
        status = connection.execute(
            sa.select(payment_links.c.status).where(payment_links.c.id == row["id"])
        ).scalar_one()
    # Nothing more is owed back and no payment of its own paid it: the bill is closed, not chased.
    assert status == PaymentLinkStatus.cancelled
    again = admin.submit(
        f"/t/{TENANT}/admin", f"/t/{TENANT}/refunds/{payment_id}/resolve", {"resolution": "kept as credit"}
    )
    assert again.status_code == 404


def test_the_blast_panel_previews_tests_then_sends_to_the_number_it_names(
    minted_club, engine, admin, mailroom
):
    preview = admin.get(f"/t/{TENANT}/blast")
    assert preview.status_code == 200 and "<iframe" in preview.text and "srcdoc=" in preview.text
    reachable = int(re.search(r"<strong>(\d+)</strong> of them have an email address", preview.text).group(1))
    assert reachable > 0 and mailroom.messages == []

    tested = admin.submit(f"/t/{TENANT}/blast", f"/t/{TENANT}/blast/test", {"test_email": "me@example.com"})
    assert tested.status_code == 200 and "Test email sent to me@example.com" in tested.text
    assert f"Send to {reachable} parents" in tested.text
    assert mailroom.recipients() == ["me@example.com"]

    stale = admin.submit(f"/t/{TENANT}/blast", f"/t/{TENANT}/blast/send", {"parents": str(reachable + 1)})
    assert stale.status_code == 409 and "changed since you looked" in stale.text
    assert len(mailroom.messages) == 1

    sent = admin.submit(f"/t/{TENANT}/blast", f"/t/{TENANT}/blast/send", {"parents": str(reachable)})
    assert sent.status_code == 303 and "/runs/" in sent.headers["location"]
    deadline = time.monotonic() + 120
    while len(mailroom.messages) < reachable + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(mailroom.messages) == reachable + 1
    run_page = admin.get(sent.headers["location"])
    assert run_page.status_code == 200 and "Outstanding-balance email" in run_page.text
    with engine.connect() as connection:
        actions = connection.execute(sa.select(audit_log.c.action).order_by(audit_log.c.id)).scalars().all()
    assert actions[-2:] == [AuditAction.blast_test, AuditAction.blast_send]


@pytest.mark.storage  # the refunds-due SQL's unmatched refunds; the pick on a locked payment
def test_a_refund_of_pay_all_that_matches_no_one_item_is_listed_and_the_admin_picks_the_items(
    minted_club, engine, admin, emulator, stripe_client
):
    from flows.reconcile_payments import reconcile_payments
    from paylinks.store.tables import payment_allocations
    from tests.family_checkouts import open_family_checkout
    from tests.flows.test_family_money import family_rows, pay, statuses

    bills = family_rows(engine, at_least=2)[:2]
    checkout = open_family_checkout(engine, emulator.url, "sk_test_paylinks_tests", [b["id"] for b in bills])
    intent = pay(checkout.url)["payment_intent"]
    reconcile_payments(tenant=TENANT)
    # The treasurer refunds both items at once, plus a little: no set of items adds up to it.
    both = sum(b["amount_cents"] for b in bills)
    stripe_client.v1.refunds.create(params={"payment_intent": intent, "amount": both - 1})
    reconcile_payments(tenant=TENANT)

    page = admin.get(f"/t/{TENANT}/admin")
    assert "not matched to whole items" in page.text and 'name="item"' in page.text
    with engine.connect() as connection:
        payment_id = connection.execute(sa.select(payments.c.id)).scalar_one()
    too_much = admin.submit(
        f"/t/{TENANT}/admin", f"/t/{TENANT}/refunds/{payment_id}/pick", {"item": str(bills[0]["id"])}
    )
    assert too_much.status_code == 303  # one item fits in what was refunded
    assert statuses(engine, [bills[0]["id"]]) == {bills[0]["id"]: "refunded"}
    again = admin.submit(
        f"/t/{TENANT}/admin", f"/t/{TENANT}/refunds/{payment_id}/pick", {"item": str(bills[0]["id"])}
    )
    assert again.status_code == 422  # its money is already back
    with engine.connect() as connection:
        left = connection.execute(
            sa.select(payments.c.unallocated_refund_cents).where(payments.c.id == payment_id)
        ).scalar_one()
        on_items = connection.execute(
            sa.select(sa.func.sum(payment_allocations.c.refunded_cents)).where(
                payment_allocations.c.payment_id == payment_id
            )
        ).scalar_one()
    assert (left, on_items) == (both - 1 - bills[0]["amount_cents"], bills[0]["amount_cents"])
    assert statuses(engine, [bills[1]["id"]]) == {bills[1]["id"]: "paid"}
