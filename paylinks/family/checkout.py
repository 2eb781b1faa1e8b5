"""'Pay all': the bills a parent chose, re-checked against the club's data now, paid in one Stripe
Checkout Session.

The page's form names each chosen bill at the terms it was shown (`row:mint_version:amount`). A
bill no longer owed, or changed, is never sent to Stripe: the parent is told which and why, and
presses again. Otherwise a `family_checkouts` row and its `family_checkout_rows` (each bill at
those terms) are committed before Stripe is asked, under an idempotency key derived from the
tenant, the parent and the sorted (row, mint_version) set, so a double click, a retry or a
crash at any instant ends with one session for that set. An open session of the same set is
handed out again while it has time left (no Stripe request); a complete one sends the parent to
the thank-you notice. The session's metadata names the checkout, the tenant and every row with
its version (`paylinks_rows_1`, `_2`, … "row:version,…", each at most 500 characters): what the
ledger applies a payment by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.billing.checkout_text import one_line
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.family.page import MAX_CHECKOUT_ITEMS, FamilyItem, FamilyPage, ItemState, family_page
from paylinks.money import format_money
from paylinks.store.tables import as_utc, family_checkout_rows, family_checkouts, utcnow
from paylinks.stripe_api.failures import StripeRequestError
from paylinks.stripe_api.gateway import CheckoutLine, StripeContext, StripeGateway
from paylinks.vocabulary import FamilyCheckoutStatus, StrLabelEnum

# Stripe takes expires_at from 30 minutes to 24 hours after it receives the request: a minute more
# than the least, so a slow request or a clock a little behind is never refused for it.
SESSION_LIFETIME = timedelta(minutes=31)
# An open session is handed out again only while the parent has this long left to pay in it.
REUSE_MARGIN = timedelta(minutes=5)
# A reservation Stripe may never have seen is retried with its own parameters only while its
# expires_at would still be accepted; after that a new attempt is made.
RETRY_WINDOW = timedelta(minutes=5)
METADATA_VALUE_MAX = 500  # Stripe's limit on one metadata value
LINE_NAME_MAX = 250
KEY_PREFIX = "paylinks-family"


@dataclass(frozen=True)
class ChosenBill:
    """One bill as the page offered it: its row, the link version and the amount shown."""

    row_id: int
    mint_version: int
    amount_cents: int

    @classmethod
    def parse(cls, value: str) -> ChosenBill | None:
        """`row:version:amount` from the form; None for anything else."""
        parts = value.strip().split(":")
        if len(parts) != 3 or not all(part.isdigit() and len(part) <= 12 for part in parts):
            return None
        row_id, version, amount = (int(part) for part in parts)
        return cls(row_id, version, amount)

    @property
    def form_value(self) -> str:
        return f"{self.row_id}:{self.mint_version}:{self.amount_cents}"


def form_value(item: FamilyItem) -> str:
    return ChosenBill(item.row_id, item.mint_version, item.amount_cents).form_value


class Unchanged(StrLabelEnum):
    """Why a chosen bill cannot be paid at the terms the page showed."""

    paid = "paid", "is already paid"
    processing = "processing", "is already being paid"
    gone = "gone", "is no longer owed"
    changed = "changed", "changed since the page was opened"


@dataclass(frozen=True)
class NotOffered:
    """A chosen bill that is not offered now, and why (words built at the edge)."""

    description: str
    player_name: str | None
    reason: Unchanged
    amount_now_cents: int | None = None


class NothingChosen(PaylinksError):
    """The form named no bill that could be paid."""


@dataclass(frozen=True)
class CheckoutRefused:
    """Nothing was sent to Stripe: some chosen bills are not offered at those terms any more."""

    not_offered: tuple[NotOffered, ...]


@dataclass(frozen=True)
class CheckoutReady:
    """Where to send the parent: the session's url (new or reused), or the thank-you notice of a
    checkout of this same set that is already complete (`paid_checkout_id`)."""

    family_checkout_id: int
    url: str | None
    reused: bool
    paid: bool = False


class StripeRefusedCheckout(PaylinksError):
    """Stripe refused to create the session (a 4xx): the reservation is `refused`."""


def check_choice(page: FamilyPage, chosen: Iterable[ChosenBill]) -> tuple[list[FamilyItem], list[NotOffered]]:
    """The chosen bills still offered at the terms shown (in the page's order, at most 100), and
    the ones that are not, with why."""
    offered = {item.row_id: item for item in page.owed}
    every = {item.row_id: item for child in page.children for item in child.items}
    keep: dict[int, FamilyItem] = {}
    problems: list[NotOffered] = []
    for bill in chosen:
        item = offered.get(bill.row_id)
        if item is not None and (item.mint_version, item.amount_cents) == (
            bill.mint_version,
            bill.amount_cents,
        ):
            keep[item.row_id] = item
            continue
        if item is not None:
            problems.append(
                NotOffered(item.description, item.player_name, Unchanged.changed, item.amount_cents)
            )
            continue
        shown = every.get(bill.row_id)
        if shown is None:
            problems.append(NotOffered("An item", None, Unchanged.gone))
        elif shown.state is ItemState.processing:
            problems.append(NotOffered(shown.description, shown.player_name, Unchanged.processing))
        else:
            problems.append(NotOffered(shown.description, shown.player_name, Unchanged.paid))
    ordered = [item for item in page.owed if item.row_id in keep][:MAX_CHECKOUT_ITEMS]
    return ordered, problems


def idempotency_base(tenant_id: int, parent_id: int, items: Sequence[FamilyItem]) -> str:
    """The part of the key the set of bills decides: tenant, parent, sorted (row, version)."""
    pairs = ",".join(f"{row}:{version}" for row, version in sorted((i.row_id, i.mint_version) for i in items))
    digest = hashlib.sha256(pairs.encode()).hexdigest()[:40]
    return f"{KEY_PREFIX}-{tenant_id}-{parent_id}-{digest}"


def rows_metadata(items: Sequence[FamilyItem]) -> dict[str, str]:
    """`paylinks_rows_1`, `_2`, …: "row:version,…", each value at most 500 characters."""
    chunks: list[str] = []
    current = ""
    for item in sorted(items, key=lambda i: i.row_id):
        pair = f"{item.row_id}:{item.mint_version}"
        candidate = f"{current},{pair}" if current else pair
        if len(candidate) > METADATA_VALUE_MAX:
            chunks.append(current)
            candidate = pair
        current = candidate
    if current:
        chunks.append(current)
    return {f"paylinks_rows_{index}": chunk for index, chunk in enumerate(chunks, start=1)}


def line_name(item: FamilyItem) -> str:
    """'Season dues — Eli Alvarez': which bill, for which child, on one line."""
    text = f"{one_line(item.description)} — {one_line(item.player_name)}"
    return text if len(text) <= LINE_NAME_MAX else text[: LINE_NAME_MAX - 1].rstrip() + "…"


def start_checkout(
    engine: Engine,
    gateway: StripeGateway,
    tenant: Tenant,
    parent_id: int,
    context: StripeContext,
    chosen: Sequence[ChosenBill],
    *,
    page_url: str,
    now: datetime | None = None,
) -> CheckoutReady | CheckoutRefused:
    """Re-check the chosen bills, reserve the checkout, then create (or reuse) its session.

    `page_url` is the family page's own address (Stripe sends the parent back there); it is never
    logged or put in an error. NothingChosen when the form named no bill; StripeRefusedCheckout
    when Stripe refused the session; Stripe's transient failures propagate (the reservation stays,
    and the next press retries it under the same key)."""
    now = now or utcnow()
    with engine.connect() as connection:
        page = family_page(connection, tenant, parent_id, context)
    if page is None:
        raise NothingChosen("nothing to pay on this page")
    items, problems = check_choice(page, chosen)
    if problems:
        return CheckoutRefused(tuple(problems))
    if not items:
        raise NothingChosen("choose at least one item to pay")
    base = idempotency_base(tenant.id, parent_id, items)
    for _ in range(3):  # another press of the same set may reserve it a moment before this one
        try:
            with engine.begin() as connection:
                decided = _reserve(connection, tenant, parent_id, context, items, base, now)
            break
        except sa.exc.IntegrityError:
            continue
    else:  # pragma: no cover - three lost races in a row
        raise PaylinksError("the checkout is being started by another press: try again in a moment")
    if isinstance(decided, CheckoutReady):
        return decided
    return _open_at_stripe(engine, gateway, tenant, parent_id, items, decided, page_url)


@dataclass(frozen=True)
class _Reservation:
    family_checkout_id: int
    idempotency_key: str
    expires_at: datetime


def _reserve(
    connection: Connection,
    tenant: Tenant,
    parent_id: int,
    context: StripeContext,
    items: Sequence[FamilyItem],
    base: str,
    now: datetime,
) -> CheckoutReady | _Reservation:
    """The checkout to use for this set: one complete or open with time left, a reservation
    Stripe may still accept, or a new attempt (its rows committed with it)."""
    attempts = list(
        connection.execute(
            sa.select(family_checkouts)
            .where(
                family_checkouts.c.tenant_id == tenant.id,
                family_checkouts.c.parent_id == parent_id,
                family_checkouts.c.idempotency_key.like(f"{base}-%"),
            )
            .order_by(family_checkouts.c.id.desc())
        ).mappings()
    )
    for attempt in attempts:
        status = FamilyCheckoutStatus(getattr(attempt["status"], "value", attempt["status"]))
        expires_at = as_utc(attempt["expires_at"]) if attempt["expires_at"] else None
        if status is FamilyCheckoutStatus.complete:
            return CheckoutReady(int(attempt["id"]), None, reused=True, paid=True)
        if status is FamilyCheckoutStatus.open and expires_at is not None:
            if expires_at - now > REUSE_MARGIN and attempt["url"]:
                return CheckoutReady(int(attempt["id"]), attempt["url"], reused=True)
            if expires_at <= now:  # Stripe expires a session at expires_at: it can no longer be paid
                connection.execute(
                    sa.update(family_checkouts)
                    .where(
                        family_checkouts.c.id == attempt["id"],
                        family_checkouts.c.status == FamilyCheckoutStatus.open.value,
                    )
                    .values(status=FamilyCheckoutStatus.expired, updated_at=now)
                )
        if (
            status is FamilyCheckoutStatus.reserved
            and expires_at is not None
            and expires_at - now > SESSION_LIFETIME - RETRY_WINDOW
        ):
            return _Reservation(int(attempt["id"]), attempt["idempotency_key"], expires_at)
    key = f"{base}-{len(attempts) + 1}"
    expires_at = now + SESSION_LIFETIME
    result = connection.execute(
        sa.insert(family_checkouts).values(
            tenant_id=tenant.id,
            parent_id=parent_id,
            idempotency_key=key,
            status=FamilyCheckoutStatus.reserved,
            stripe_account=context.account,
            livemode=context.livemode,
            amount_total_cents=sum(item.amount_cents for item in items),
            currency=tenant.currency,
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
        )
    )
    checkout_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    connection.execute(
        sa.insert(family_checkout_rows),
        [
            {
                "family_checkout_id": checkout_id,
                "payment_link_row_id": item.row_id,
                "mint_version": item.mint_version,
                "amount_cents": item.amount_cents,
                "stripe_price_id": item.stripe_price_id or "",
            }
            for item in items
        ],
    )
    return _Reservation(checkout_id, key, expires_at)


def _open_at_stripe(
    engine: Engine,
    gateway: StripeGateway,
    tenant: Tenant,
    parent_id: int,
    items: Sequence[FamilyItem],
    reservation: _Reservation,
    page_url: str,
) -> CheckoutReady:
    checkout_id = reservation.family_checkout_id
    # Every parameter is fixed by the reservation, so a retry under its key is the same request.
    with engine.connect() as connection:
        reserved = [
            (int(r.payment_link_row_id), int(r.mint_version), int(r.amount_cents))
            for r in connection.execute(
                sa.select(family_checkout_rows).where(
                    family_checkout_rows.c.family_checkout_id == checkout_id
                )
            )
        ]
    amounts = {row_id: amount for row_id, _, amount in reserved}
    lines_items = [item for item in items if item.row_id in amounts]  # the page's order
    metadata = {
        "paylinks_family_checkout": str(checkout_id),
        "paylinks_tenant": str(tenant.id),
        "paylinks_parent": str(parent_id),
        **rows_metadata(lines_items),
    }
    players = list(dict.fromkeys(one_line(item.player_name) for item in lines_items))
    try:
        opened = gateway.create_checkout_session(
            lines=[CheckoutLine(line_name(item), amounts[item.row_id]) for item in lines_items],
            currency=tenant.currency,
            metadata=metadata,
            client_reference_id=f"paylinks-family-checkout-{checkout_id}",
            success_url=f"{page_url}?paid={checkout_id}",
            cancel_url=page_url,
            expires_at=int(reservation.expires_at.timestamp()),
            idempotency_key=reservation.idempotency_key,
            description=one_line(f"{tenant.name}: {len(lines_items)} item(s) for {', '.join(players)}")[
                :1000
            ],
            describe=f"creating family checkout {checkout_id}",
        )
    except StripeRequestError as error:
        with engine.begin() as connection:
            connection.execute(
                sa.update(family_checkouts)
                .where(
                    family_checkouts.c.id == checkout_id,
                    family_checkouts.c.status == FamilyCheckoutStatus.reserved.value,
                )
                .values(status=FamilyCheckoutStatus.refused, updated_at=utcnow())
            )
        raise StripeRefusedCheckout(
            f"Stripe refused the checkout ({error.code or 'no reason given'}); nothing was charged"
        ) from None
    with engine.begin() as connection:
        connection.execute(
            sa.update(family_checkouts)
            .where(
                family_checkouts.c.id == checkout_id,
                family_checkouts.c.status == FamilyCheckoutStatus.reserved.value,
            )
            .values(
                status=FamilyCheckoutStatus.open,
                checkout_session_id=opened.id,
                url=opened.url,
                livemode=opened.livemode,
                updated_at=utcnow(),
            )
        )
    return CheckoutReady(checkout_id, opened.url, reused=False)


def describe_not_offered(problem: NotOffered, currency: str) -> str:
    """'Season dues for Eli Alvarez changed since the page was opened (now $260.00).'"""
    what = f"{problem.description} for {problem.player_name}" if problem.player_name else problem.description
    now = (
        f" (now {format_money(problem.amount_now_cents, currency)})"
        if problem.amount_now_cents is not None
        else ""
    )
    return f"{what} {problem.reason.label}{now}."
