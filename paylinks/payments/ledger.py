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
    family_checkout_rows,
    family_checkouts,
    minted_links,
    orders,
    payment_allocations,
    payment_links,
    payments,
    players,
    products,
    stripe_events,
    tenants,
    utcnow,
)
from paylinks.vocabulary import (
    AllocationStatus,
    FamilyCheckoutStatus,
    OrderStatus,
    PaidMethod,
    PaymentLinkStatus,
    PaymentStatus,
)


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
    if news.is_family:
        return _apply_family_session(connection, news, tenant_id, account)
    assert news.payment_link_id is not None
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
    row = _locked_row(connection, int(row["id"]))
    amount = news.amount_cents if news.amount_cents is not None else int(row["amount_cents"])
    recorded = _record_payment(
        connection,
        news,
        tenant_id=int(row["tenant_id"]),
        stripe_account=row["stripe_account"],
        amount=amount,
    )
    if recorded is None:
        return ApplyResult([Applied(Outcome.already_known, row["id"], row["tenant_id"], news.session_id)])
    payment_id, method = recorded
    allocation_id = _allocation(connection, payment_id, row, amount)
    if news.state is SessionState.awaiting:
        return _awaiting(connection, row, news)
    if news.state is SessionState.failed:
        _set_allocation(connection, allocation_id, AllocationStatus.failed)
        return _failed(connection, row, news)
    at = datetime.fromtimestamp(news.at, tz=UTC)
    result = _money_arrived(connection, row, news, amount, at, payment_id, allocation_id, method)
    if result.of(Outcome.marked_paid):
        _receipt_due(connection, payment_id, result)
    return result


def _locked_row(connection: Connection, row_id: int) -> sa.RowMapping:
    """The bill's row, locked until this transaction ends: two payments of one bill applied at
    once (a webhook and reconcile, a link and a family checkout) decide in turn."""
    if connection.dialect.name == "sqlite":
        # SQLite locks no rows and reads outside a transaction until its first write: a write that
        # changes nothing takes the database's write lock first (the other payment's transaction
        # ends before it), so the read below sees every payment committed before this one.
        connection.execute(
            sa.update(payment_links).where(payment_links.c.id == row_id).values(id=payment_links.c.id)
        )
    return (
        connection.execute(sa.select(payment_links).where(payment_links.c.id == row_id).with_for_update())
        .mappings()
        .one()
    )


def _record_payment(
    connection: Connection,
    news: SessionNews,
    *,
    tenant_id: int,
    stripe_account: str | None,
    amount: int,
    family_checkout_id: int | None = None,
) -> tuple[int, PaidMethod] | None:
    """The session's record in the ledger, created or moved forward; its id and how it was paid,
    or None when the news is not newer than what the ledger knows."""
    status = transitions.payment_status(news.state)
    at = datetime.fromtimestamp(news.at, tz=UTC)
    record = (
        connection.execute(
            sa.select(payments).where(payments.c.checkout_session_id == news.session_id).with_for_update()
        )
        .mappings()
        .first()
    )
    if record is None:
        method = transitions.paid_method(None, news.method)
        payment_id = int(
            connection.execute(
                sa.insert(payments)
                .values(
                    tenant_id=tenant_id,
                    stripe_account=stripe_account,
                    stripe_payment_link_id=news.payment_link_id,
                    family_checkout_id=family_checkout_id,
                    checkout_session_id=news.session_id,
                    payment_intent_id=news.payment_intent_id,
                    amount_cents=amount,
                    currency=(news.currency or "usd").lower(),
                    status=status,
                    paid_at=at if status is PaymentStatus.succeeded else None,
                    paid_method=method,
                )
                .returning(payments.c.id)
            ).scalar_one()
        )
        return payment_id, method
    if not transitions.moves_forward(PaymentStatus(record["status"]), status):
        return None
    recorded = record["paid_method"]
    method = transitions.paid_method(PaidMethod(recorded) if recorded else None, news.method)
    connection.execute(
        sa.update(payments)
        .where(payments.c.id == record["id"])
        .values(
            status=status,
            payment_intent_id=news.payment_intent_id or record["payment_intent_id"],
            paid_at=at if status is PaymentStatus.succeeded else None,
            paid_method=method,
            updated_at=utcnow(),
        )
    )
    return int(record["id"]), method


def _allocation(connection: Connection, payment_id: int, row: Mapping[Any, Any], amount: int) -> int:
    """This payment's allocation to the bill: made on first news, as `processing`."""
    found = connection.execute(
        sa.select(payment_allocations.c.id).where(
            payment_allocations.c.payment_id == payment_id,
            payment_allocations.c.payment_link_row_id == row["id"],
        )
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    if (
        connection.execute(
            sa.select(payments.c.family_checkout_id).where(payments.c.id == payment_id)
        ).scalar_one_or_none()
        is None
    ):
        # A link's payment names its one bill on the record itself too (the office reads it).
        connection.execute(
            sa.update(payments).where(payments.c.id == payment_id).values(payment_link_row_id=row["id"])
        )
    return int(
        connection.execute(
            sa.insert(payment_allocations)
            .values(
                tenant_id=row["tenant_id"],
                payment_id=payment_id,
                payment_link_row_id=row["id"],
                amount_cents=amount,
                status=AllocationStatus.processing,
            )
            .returning(payment_allocations.c.id)
        ).scalar_one()
    )


def _set_allocation(
    connection: Connection, allocation_id: int, status: AllocationStatus, reason: str | None = None
) -> None:
    values: dict[str, Any] = dict(status=status, updated_at=utcnow())
    if reason is not None:
        values["refund_due_reason"] = reason
    connection.execute(
        sa.update(payment_allocations).where(payment_allocations.c.id == allocation_id).values(**values)
    )


def _receipt_due(connection: Connection, payment_id: int, result: ApplyResult) -> None:
    connection.execute(sa.update(payments).where(payments.c.id == payment_id).values(receipt_due=True))
    result.receipts.append(payment_id)


def _awaiting(connection: Connection, row: Mapping[Any, Any], news: SessionNews) -> ApplyResult:
    result = ApplyResult(
        [Applied(Outcome.processing, row["id"], row["tenant_id"], news.session_id, news.amount_cents)]
    )
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
    return result


def _failed(connection: Connection, row: Mapping[Any, Any], news: SessionNews) -> ApplyResult:
    """The slow payment failed: no money moved. The row owes again, with a fresh link to mint
    (the spent one took its single completion and can never take payment)."""
    move = transitions.on_failed(
        PaymentLinkStatus(row["status"]), spent=row["stripe_payment_link_id"] == news.payment_link_id
    )
    return _owes_again(connection, row, news, move)


def _owes_again(
    connection: Connection, row: Mapping[Any, Any], news: SessionNews, move: transitions.FailedMove
) -> ApplyResult:
    applied = Applied(
        Outcome.slow_payment_failed, row["id"], row["tenant_id"], news.session_id, news.amount_cents
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


# -- a family's "Pay all" checkout ----------------------------------------------------------------
def _apply_family_session(
    connection: Connection, news: SessionNews, tenant_id: int | None, account: str | None
) -> ApplyResult:
    """A family checkout's news, for each bill it covered at the terms it offered (its
    `family_checkout_rows`, never the session's metadata). A checkout of another account, or one
    whose metadata names another tenant or whose session is another, touches nothing here."""
    checkout = (
        connection.execute(
            sa.select(family_checkouts)
            .where(family_checkouts.c.id == news.family_checkout_id)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    ours = (
        checkout is not None
        and _minted_in(connection, checkout, account)
        and news.family_tenant_id in (None, checkout["tenant_id"])
        and checkout["checkout_session_id"] in (None, news.session_id)
    )
    if not ours or checkout is None:
        if news.state is SessionState.paid:
            return ApplyResult(
                [
                    Applied(
                        Outcome.unknown_link,
                        session_id=news.session_id,
                        amount_cents=news.amount_cents,
                        detail=f"family checkout {news.family_checkout_id}",
                    )
                ]
            )
        return ApplyResult()
    if tenant_id is not None and checkout["tenant_id"] != tenant_id:
        return ApplyResult([Applied(Outcome.other_tenant)])
    if news.state is SessionState.expired:
        connection.execute(
            sa.update(family_checkouts)
            .where(
                family_checkouts.c.id == checkout["id"],
                family_checkouts.c.status.in_([FamilyCheckoutStatus.reserved, FamilyCheckoutStatus.open]),
            )
            .values(status=FamilyCheckoutStatus.expired, updated_at=utcnow())
        )
        return ApplyResult()
    connection.execute(
        sa.update(family_checkouts)
        .where(family_checkouts.c.id == checkout["id"])
        .values(
            status=FamilyCheckoutStatus.complete, checkout_session_id=news.session_id, updated_at=utcnow()
        )
    )
    covered = connection.execute(
        sa.select(family_checkout_rows)
        .where(family_checkout_rows.c.family_checkout_id == checkout["id"])
        .order_by(family_checkout_rows.c.payment_link_row_id)
    ).all()
    offered = sum(int(c.amount_cents) for c in covered)
    amount = news.amount_cents if news.amount_cents is not None else offered
    recorded = _record_payment(
        connection,
        news,
        tenant_id=int(checkout["tenant_id"]),
        stripe_account=checkout["stripe_account"],
        amount=amount,
        family_checkout_id=int(checkout["id"]),
    )
    if recorded is None:
        return ApplyResult([Applied(Outcome.already_known, None, checkout["tenant_id"], news.session_id)])
    payment_id, method = recorded
    result = ApplyResult()
    if amount != offered:
        result.applied.append(
            Applied(
                Outcome.amount_differs,
                None,
                checkout["tenant_id"],
                news.session_id,
                amount,
                detail=f"offered {offered}, paid {amount}",
            )
        )
    at = datetime.fromtimestamp(news.at, tz=UTC)
    for terms in covered:
        row = _locked_row(connection, int(terms.payment_link_row_id))
        if row["tenant_id"] != checkout["tenant_id"]:
            continue  # never another tenant's bill, whatever a checkout row says
        allocation_id = _allocation(connection, payment_id, row, int(terms.amount_cents))
        if news.state is SessionState.awaiting:
            if transitions.on_awaiting(PaymentLinkStatus(row["status"])) is not None:
                _close_own_link(connection, allocation_id, row, news, result)
            result.extend(_awaiting(connection, row, news))
        elif news.state is SessionState.failed:
            _set_allocation(connection, allocation_id, AllocationStatus.failed)
            held = row["stripe_checkout_session_id"] == news.session_id
            move = transitions.on_family_failed(PaymentLinkStatus(row["status"]), held_by_this=held)
            result.extend(_owes_again(connection, row, news, move))
        else:
            changed = transitions.terms_changed(
                offered_cents=int(terms.amount_cents),
                offered_version=int(terms.mint_version),
                billed_cents=int(row["amount_cents"]),
                current_version=int(row["mint_version"]),
            )
            moved = _money_arrived(
                connection,
                row,
                news,
                int(terms.amount_cents),
                at,
                payment_id,
                allocation_id,
                method,
                changed,
            )
            if moved.of(Outcome.marked_paid):
                _close_own_link(connection, allocation_id, row, news, moved)
            result.extend(moved)
    if result.of(Outcome.marked_paid):
        _receipt_due(connection, payment_id, result)
    return result


def _close_own_link(
    connection: Connection,
    allocation_id: int,
    row: Mapping[Any, Any],
    news: SessionNews,
    result: ApplyResult,
) -> None:
    """A family checkout took this bill: its own link is to be deactivated at Stripe at once
    (by the caller, after this transaction: `family.close_paid_links`), so it cannot be paid
    twice; reconcile closes any the caller could not."""
    link_id = row["stripe_payment_link_id"]
    if not link_id:
        return
    connection.execute(
        sa.update(payment_allocations)
        .where(payment_allocations.c.id == allocation_id, payment_allocations.c.link_closed_at.is_(None))
        .values(stripe_payment_link_id=link_id)
    )
    result.close_links.append(allocation_id)


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
    connection: Connection,
    row: Mapping[Any, Any],
    news: SessionNews,
    amount: int,
    at: datetime,
    payment_id: int,
    allocation_id: int,
    method: PaidMethod,
    changed: str | None = None,
) -> ApplyResult:
    result = ApplyResult()
    status = PaymentLinkStatus(row["status"])
    move = transitions.on_money(
        status,
        row_session=row["stripe_checkout_session_id"],
        session=news.session_id,
        bill_stands=status in transitions.OWED and bill_still_owed(connection, row),
        changed=changed,
    )
    if move.outcome is Outcome.already_known:
        return ApplyResult([Applied(Outcome.already_known, row["id"], row["tenant_id"], news.session_id)])
    if move.outcome is Outcome.marked_paid:
        _set_allocation(connection, allocation_id, AllocationStatus.paid)
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(
                status=PaymentLinkStatus.paid,
                paid_at=at,
                paid_amount_cents=amount,
                paid_method=method,
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
    # The money arrived for a bill that went away, was already paid, or changed while a family
    # checkout was open: the club owes it back.
    reason = move.refund_reason or ""
    _set_allocation(connection, allocation_id, AllocationStatus.refund_due, reason)
    connection.execute(
        sa.update(payments)
        .where(payments.c.id == payment_id)
        .values(
            refund_due=True,
            refund_due_reason=reason,
            resolved_at=None,
            resolution=None,
            updated_at=utcnow(),
        )
    )
    if move.row_status is not None:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row["id"])
            .values(status=move.row_status, updated_at=utcnow())
        )
    result.applied.append(
        Applied(Outcome.refund_due, row["id"], row["tenant_id"], news.session_id, amount, detail=reason)
    )
    return result
