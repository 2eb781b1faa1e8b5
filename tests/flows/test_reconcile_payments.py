"""Reconcile: links paid through the emulator's pages become paid rows, and stop being owed."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from flows.outstanding_balance_email import outstanding_balance_email
from flows.reconcile_payments import reconcile_payments
from paylinks.payments.reconcile import NewsSource
from paylinks.payments.transitions import Outcome
from paylinks.store.tables import orders, reconcile_cursors
from tests.helpers import TENANT, rows


def order_status(engine: sa.Engine) -> dict[int, tuple[str, object]]:
    with engine.connect() as connection:
        return {r.id: (r.status, r.paid_at) for r in connection.execute(sa.select(orders))}


def pay_as_a_parent(url: str, **form: str) -> None:
    """What a parent does: open the link's page, press Pay."""
    with httpx.Client() as client:
        assert client.get(url).status_code == 200
        response = client.post(url, data=form)
        assert response.status_code == 200, response.text


def pick_rows(engine: sa.Engine, count: int, with_order: bool) -> list[sa.RowMapping]:
    candidates = [r for r in rows(engine).values() if (r["order_id"] is not None) == with_order]
    return candidates[:count]


def test_paid_links_and_their_orders_are_marked_and_the_blast_total_drops(
    settings, engine, emulator, minted_club
):
    preview_before = outstanding_balance_email(tenant=TENANT)
    paid = pick_rows(engine, 2, with_order=True) + pick_rows(engine, 2, with_order=False)
    for row in paid:
        pay_as_a_parent(row["stripe_payment_link_url"])
    orders_before = order_status(engine)

    (report,) = reconcile_payments(tenant=TENANT)

    after = rows(engine)
    paid_ids = {r["id"] for r in paid}
    assert {i for i, r in after.items() if r["status"].value == "paid"} == paid_ids
    assert all(after[i]["paid_at"] is not None for i in paid_ids)
    assert sorted(report.rows(Outcome.marked_paid)) == sorted(paid_ids)
    orders_after = order_status(engine)
    paid_orders = {r["order_id"] for r in paid if r["order_id"]}
    assert {i for i, (status, _) in orders_after.items() if status == "paid"} == paid_orders | {
        i for i, (status, _) in orders_before.items() if status == "paid"
    }
    assert all(orders_after[i][1] is not None for i in paid_orders)

    # A second run changes nothing.
    (second,) = reconcile_payments(tenant=TENANT)
    assert second.rows(Outcome.marked_paid) == [] and rows(engine) == after

    preview_after = outstanding_balance_email(tenant=TENANT)
    paid_urls = {r["stripe_payment_link_url"] for r in paid}
    assert not any(
        url in preview_after.emails[i].urls for i in range(len(preview_after.emails)) for url in paid_urls
    )
    assert preview_before.total_cents - preview_after.total_cents == sum(r["amount_cents"] for r in paid)


def test_first_run_scans_sessions_then_later_runs_read_events(settings, engine, emulator, minted_club):
    first_payment = pick_rows(engine, 1, with_order=False)[0]
    pay_as_a_parent(first_payment["stripe_payment_link_url"])
    (first,) = reconcile_payments(tenant=TENANT)
    assert first.source is NewsSource.session_scan and first.rows(Outcome.marked_paid) == [
        first_payment["id"]
    ]
    with engine.connect() as connection:
        assert connection.execute(sa.select(reconcile_cursors)).first() is not None

    later_payment = pick_rows(engine, 2, with_order=False)[1]
    pay_as_a_parent(later_payment["stripe_payment_link_url"])
    (second,) = reconcile_payments(tenant=TENANT)
    assert second.source is NewsSource.events and second.rows(Outcome.marked_paid) == [later_payment["id"]]


def test_a_complete_but_unpaid_session_is_processing_until_it_settles(
    settings, engine, emulator, minted_club
):
    row = pick_rows(engine, 1, with_order=True)[0]
    reconcile_payments(tenant=TENANT)  # set the cursor: the news now comes from events
    pay_as_a_parent(row["stripe_payment_link_url"], payment_status="unpaid")

    (waiting,) = reconcile_payments(tenant=TENANT)
    assert rows(engine)[row["id"]]["status"].value == "processing"  # not chased meanwhile
    assert waiting.rows(Outcome.processing) == [row["id"]]
    preview = outstanding_balance_email(tenant=TENANT)
    assert not any(row["stripe_payment_link_url"] in email.urls for email in preview.emails)

    emulator.emulator.settle(_session_of(emulator, row["stripe_payment_link_id"]))
    (settled,) = reconcile_payments(tenant=TENANT)
    assert settled.rows(Outcome.marked_paid) == [row["id"]]
    assert rows(engine)[row["id"]]["status"].value == "paid"
    assert rows(engine)[row["id"]]["paid_method"].value == "bank_debit"
    assert order_status(engine)[row["order_id"]][0] == "paid"


def test_a_first_runs_scan_tells_a_card_from_a_settled_bank_debit(settings, engine, emulator, minted_club):
    by_card, by_debit = pick_rows(engine, 2, with_order=False)
    pay_as_a_parent(by_card["stripe_payment_link_url"])
    pay_as_a_parent(by_debit["stripe_payment_link_url"], payment_status="unpaid")  # a bank debit
    emulator.emulator.settle(_session_of(emulator, by_debit["stripe_payment_link_id"]))

    (report,) = reconcile_payments(tenant=TENANT)  # both sessions now read paid

    assert report.source is NewsSource.session_scan
    after = rows(engine)
    assert (after[by_card["id"]]["status"].value, after[by_card["id"]]["paid_method"].value) == (
        "paid",
        "card",
    )
    assert (after[by_debit["id"]]["status"].value, after[by_debit["id"]]["paid_method"].value) == (
        "paid",
        "bank_debit",
    )


def _session_of(emulator, link_id: str) -> str:
    import stripe

    client = stripe.StripeClient("sk_test_paylinks_tests", base_addresses={"api": emulator.url})
    (session,) = client.v1.checkout.sessions.list(params={"payment_link": link_id}).data
    return session.id


def test_a_different_paid_amount_and_an_unknown_link_are_drift(
    settings, engine, emulator, minted_club, stripe_client
):
    row = pick_rows(engine, 1, with_order=False)[0]
    reconcile_payments(tenant=TENANT)
    pay_as_a_parent(row["stripe_payment_link_url"], amount_total=str(row["amount_cents"] - 500))
    # A link made outside paylinks (no row points to it), paid.
    price = stripe_client.v1.prices.list(params={"limit": 1}).data[0]
    stranger = stripe_client.v1.payment_links.create(
        params={"line_items": [{"price": price.id, "quantity": 1}]}
    )
    pay_as_a_parent(stranger.url)

    (report,) = reconcile_payments(tenant=TENANT)

    findings = {(a.outcome, a.row_id, a.detail) for a in report.result.applied}
    assert (
        Outcome.amount_differs,
        row["id"],
        f"billed {row['amount_cents']}, paid {row['amount_cents'] - 500}",
    ) in findings
    assert (Outcome.unknown_link, None, stranger.id) in findings
    paid_row = rows(engine)[row["id"]]
    assert paid_row["status"].value == "paid" and paid_row["paid_amount_cents"] == row["amount_cents"] - 500


def test_stripe_unreachable_fails_clearly_and_marks_nothing(
    settings, engine, emulator, minted_club, monkeypatch, use_settings
):
    row = pick_rows(engine, 1, with_order=False)[0]
    pay_as_a_parent(row["stripe_payment_link_url"])
    use_settings(stripe_api_base="http://127.0.0.1:9", stripe_max_retries=1)  # nothing listens there
    from tasks.reconcile import fetch_stripe_news

    monkeypatch.setattr(fetch_stripe_news, "retries", 0)
    state = reconcile_payments(tenant=TENANT, return_state=True)
    assert state.is_failed()
    assert "cannot reach Stripe at" in str(state.result(raise_on_failure=False))
    assert all(r["status"].value == "pending" for r in rows(engine).values())
