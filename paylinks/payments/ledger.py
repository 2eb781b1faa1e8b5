"""Money news from Stripe, applied one way: by reconcile and by webhooks alike.

Each `News` fact (see `news`) is applied to the `payments` ledger (one record per checkout
session) and to the bill's row, as `transitions` decides. Facts are applied idempotently (a
session's record only moves forward; refunded amounts are Stripe's running totals), and each
event id is applied once (`stripe_events`), so a webhook and reconcile can both see an event, in
any order, and the outcome is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.club.owed import Bill, still_owed
from paylinks.payments import charges, transitions
from paylinks.payments.news import (
    News,
    RefundNews,
    SessionNews,
    SessionState,
    Skipped,
    news_from_event,
)
from paylinks.payments.transitions import Applied, ApplyResult, Outcome
from paylinks.store.tables import (
    minted_links,
    orders,
    payment_links,
    payments,
    players,
    products,
    stripe_events,
    tenants,
    utcnow,
)
from paylinks.vocabulary import OrderStatus, PaidMethod, PaymentLinkStatus, PaymentStatus


# -- applying ----------------------------------------------------------------------------------
def apply_event(
    engine: Engine,
    event: Mapping[str, Any],
    *,
    source: str,
    tenant_id: int | None = None,
    account: str | None = None,
) -> ApplyResult | Skipped | None:
    """Apply one Stripe event, once: None when this event id was applied before.

    `tenant_id` limits it to one tenant's rows (reconcile of one tenant); the event is then
    recorded as applied only if it concerned that tenant, so the other tenant's run applies it.
    """
    news = news_from_event(event, account=account)
    if isinstance(news, Skipped):
        return news
    with engine.begin() as connection:
        event_id = str(event["id"])
        if connection.execute(
            sa.select(stripe_events.c.event_id).where(stripe_events.c.event_id == event_id)
        ).first():
            return None
        result = apply_news(connection, news, tenant_id=tenant_id, account=account)
        # Another tenant's event is theirs to apply; a refund or dispute of a payment not yet
        # recorded (its session is applied later: another tenant's run, an event read out of
        # order) is applied when it is read again, after the payment.
        if not result.of(Outcome.other_tenant, Outcome.unknown_payment):
            connection.execute(
                sa.insert(stripe_events).values(
                    event_id=event_id,
                    stripe_account=account,
                    event_type=str(event.get("type")),
                    stripe_created=int(event["created"]),
                    source=source,
                )
            )
        return result


def apply_news(
    connection: Connection, news: News, *, tenant_id: int | None = None, account: str | None = None
) -> ApplyResult:
    """Apply one fact. `account`: the connected account Stripe reported it from (an event's
    `account`; None: the platform's own). It applies only to rows and payments minted there."""
    if isinstance(news, SessionNews):
        return _apply_session(connection, news, tenant_id, account)
    record = (
        connection.execute(sa.select(payments).where(payments.c.payment_intent_id == news.payment_intent_id))
        .mappings()
        .first()
    )
    if record is None or not _minted_in(connection, record, account):
        return ApplyResult([Applied(Outcome.unknown_payment, detail=news.payment_intent_id)])
    if tenant_id is not None and record["tenant_id"] != tenant_id:
        return ApplyResult([Applied(Outcome.other_tenant)])
    if isinstance(news, RefundNews):
        return charges.apply_refund(connection, record, news)
    return charges.apply_dispute(connection, record, news)


def _row_for_link(connection: Connection, link_id: str) -> sa.RowMapping | None:
    row_id = connection.execute(
        sa.select(minted_links.c.payment_link_row_id).where(minted_links.c.stripe_payment_link_id == link_id)
    ).scalar_one_or_none()
    if row_id is None:  # minted before links were remembered: the row's current link
        return (
            connection.execute(
                sa.select(payment_links).where(payment_links.c.stripe_payment_link_id == link_id)
            )
            .mappings()
            .first()
        )
    return connection.execute(sa.select(payment_links).where(payment_links.c.id == row_id)).mappings().first()


def _minted_in(connection: Connection, row: Mapping[Any, Any], account: str | None) -> bool:
    """Whether a row (or payment) belongs to news from `account`: a connected account's news
    only to what was minted in that account; the platform's to anything but what was minted in
    its tenant's connected account (a row minted before the tenant moved keeps its platform link)."""
    if account is not None:
        return row["stripe_account"] == account
    connected = connection.execute(
        sa.select(tenants.c.stripe_account).where(tenants.c.id == row["tenant_id"])
    ).scalar_one_or_none()
    return connected is None or row["stripe_account"] != connected


def _apply_session(
    connection: Connection, news: SessionNews, tenant_id: int | None, account: str | None = None
) -> ApplyResult:
    row = _row_for_link(connection, news.payment_link_id)
    if row is not None and not _minted_in(connection, row, account):
        row = None  # a link of the same id in another account is not ours
    if row is None:
        if news.state is SessionState.paid:
            return ApplyResult(
                [
                    Applied(
                        Outcome.unknown_link,
                        session_id=news.session_id,
                        amount_cents=news.amount_cents,
                        detail=news.payment_link_id,
                    )
                ]
            )
        return ApplyResult()
    if tenant_id is not None and row["tenant_id"] != tenant_id:
        return ApplyResult([Applied(Outcome.other_tenant)])
    status = transitions.payment_status(news.state)
    record = (
        connection.execute(sa.select(payments).where(payments.c.checkout_session_id == news.session_id))
        .mappings()
        .first()
    )
    at = datetime.fromtimestamp(news.at, tz=UTC)
    amount = news.amount_cents if news.amount_cents is not None else int(row["amount_cents"])
    if record is None:
        connection.execute(
            sa.insert(payments).values(
                tenant_id=row["tenant_id"],
                payment_link_row_id=row["id"],
                stripe_account=row["stripe_account"],
                stripe_payment_link_id=news.payment_link_id,
                checkout_session_id=news.session_id,
                payment_intent_id=news.payment_intent_id,
                amount_cents=amount,
                currency=(news.currency or "usd").lower(),
                status=status,
                paid_at=at if status is PaymentStatus.succeeded else None,
            )
        )
    else:
        if not transitions.moves_forward(PaymentStatus(record["status"]), status):
            return ApplyResult([Applied(Outcome.already_known, row["id"], row["tenant_id"], news.session_id)])
        connection.execute(
            sa.update(payments)
            .where(payments.c.id == record["id"])
            .values(
                status=status,
                payment_intent_id=news.payment_intent_id or record["payment_intent_id"],
                paid_at=at if status is PaymentStatus.succeeded else None,
                updated_at=utcnow(),
            )
        )
    if status is PaymentStatus.processing:
        return _awaiting(connection, row, news)
    if status is PaymentStatus.failed:
        return _failed(connection, row, news)
    return _money_arrived(connection, row, news, amount, at)


def _awaiting(connection: Connection, row: Mapping[Any, Any], news: SessionNews) -> ApplyResult:
    if transitions.on_awaiting(PaymentLinkStatus(row["status"])) is not None:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"], payment_links.c.status == PaymentLinkStatus.pending)
            .values(
                status=PaymentLinkStatus.processing,
                stripe_checkout_session_id=news.session_id,
                updated_at=utcnow(),
            )
        )
    return ApplyResult(
        [Applied(Outcome.processing, row["id"], row["tenant_id"], news.session_id, news.amount_cents)]
    )


def _failed(connection: Connection, row: Mapping[Any, Any], news: SessionNews) -> ApplyResult:
    """The slow payment failed: no money moved. The row owes again, with a fresh link to mint
    (the spent one took its single completion and can never take payment)."""
    applied = Applied(
        Outcome.slow_payment_failed, row["id"], row["tenant_id"], news.session_id, news.amount_cents
    )
    move = transitions.on_failed(
        PaymentLinkStatus(row["status"]), spent=row["stripe_payment_link_id"] == news.payment_link_id
    )
    if move.status is None:
        return ApplyResult([applied])
    values: dict[str, Any] = dict(status=move.status, stripe_checkout_session_id=None, updated_at=utcnow())
    if move.remint:
        values |= dict(
            mint_version=int(row["mint_version"]) + 1,
            stripe_payment_link_id=None,
            stripe_payment_link_url=None,
            reserved_at=utcnow(),
        )
    connection.execute(sa.update(payment_links).where(payment_links.c.id == row["id"]).values(**values))
    return ApplyResult([applied], remint=[row["id"]] if move.remint else [])


def bill_still_owed(connection: Connection, row: Mapping[str, Any]) -> bool:
    """Whether the club's data, right now, still bills this row (rule: nothing gone is chased,
    and money for a bill that went away is owed back)."""
    if row["order_id"] is not None:
        facts = connection.execute(
            sa.select(
                orders.c.status,
                players.c.status.label("player_status"),
                products.c.active,
                products.c.bill_signed_players,
            )
            .join(players, players.c.id == orders.c.player_id)
            .join(products, products.c.id == orders.c.product_id)
            .where(orders.c.id == row["order_id"])
        ).first()
    else:
        facts = connection.execute(
            sa.select(
                sa.null().label("status"),
                players.c.status.label("player_status"),
                products.c.active,
                products.c.bill_signed_players,
            )
            .select_from(players)
            .join(products, products.c.id == row["product_id"])
            .where(players.c.id == row["player_id"])
        ).first()
    if facts is None:
        return False  # its order, player or product no longer exists
    bill = Bill(
        is_order=row["order_id"] is not None,
        order_status=facts.status,
        player_status=facts.player_status,
        product_active=bool(facts.active),
        product_bills_signed_players=bool(facts.bill_signed_players),
    )
    return still_owed(bill, money_arrived=True)


def _money_arrived(
    connection: Connection, row: Mapping[Any, Any], news: SessionNews, amount: int, at: datetime
) -> ApplyResult:
    result = ApplyResult()
    status = PaymentLinkStatus(row["status"])
    move = transitions.on_money(
        status,
        row_session=row["stripe_checkout_session_id"],
        session=news.session_id,
        bill_stands=status in transitions.OWED and bill_still_owed(connection, row),
    )
    if move.outcome is Outcome.already_known:
        return ApplyResult([Applied(Outcome.already_known, row["id"], row["tenant_id"], news.session_id)])
    if move.outcome is Outcome.marked_paid:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(
                status=PaymentLinkStatus.paid,
                paid_at=at,
                paid_amount_cents=amount,
                paid_method=PaidMethod.stripe,
                stripe_checkout_session_id=news.session_id,
                updated_at=utcnow(),
            )
        )
        result.applied.append(
            Applied(Outcome.marked_paid, row["id"], row["tenant_id"], news.session_id, amount)
        )
        if amount != int(row["amount_cents"]):
            result.applied.append(
                Applied(
                    Outcome.amount_differs,
                    row["id"],
                    row["tenant_id"],
                    news.session_id,
                    amount,
                    detail=f"billed {row['amount_cents']}, paid {amount}",
                )
            )
        if row["order_id"] is not None:
            updated = connection.execute(
                sa.update(orders)
                .where(orders.c.id == row["order_id"], orders.c.status == OrderStatus.pending)
                .values(status=OrderStatus.paid, paid_at=at)
            ).rowcount
            if updated:
                result.orders_paid.append(int(row["order_id"]))
        return result
    # The money arrived for a bill that went away, or was already paid: the club owes it back.
    reason = move.refund_reason or ""
    connection.execute(
        sa.update(payments)
        .where(payments.c.checkout_session_id == news.session_id)
        .values(refund_due=True, refund_due_reason=reason, updated_at=utcnow())
    )
    connection.execute(
        sa.update(payment_links)
        .where(payment_links.c.id == row["id"])
        .values(status=PaymentLinkStatus.refund_due, updated_at=utcnow())
    )
    result.applied.append(
        Applied(Outcome.refund_due, row["id"], row["tenant_id"], news.session_id, amount, detail=reason)
    )
    return result
