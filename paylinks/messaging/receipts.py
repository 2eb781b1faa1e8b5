"""Receipts: after a payment (a link's, a family checkout's, or one marked paid offline) the
parent gets one email saying what it paid, what of it the club owes back, and what is still
open now, with the family page when there is one. Stripe's own receipt is not relied on.

Each receipt is claimed in `email_log` (type `receipt`, run key `payment-<id>` or
`offline-<audit id>`, one per parent) like a blast's email, so it is never sent twice. The
ledger marks a payment `receipt_due` in the transaction that applies it; the webhook receiver
sends at once, and reconcile sends every receipt still due (mail that was down is tried again),
never failing the payment's application.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.club.balances import brand_of, outstanding_balances
from paylinks.club.tenants import Tenant, tenant_from_row
from paylinks.errors import PaylinksError
from paylinks.family.links import family_links
from paylinks.messaging import claims
from paylinks.messaging.prepare import PreparedEmail
from paylinks.messaging.render import PaidItem, Receipt, StillOpen, render_receipt
from paylinks.messaging.transports import (
    MailDeliveryError,
    MailTransport,
    UnsafeLinkError,
    check_links_mailable,
)
from paylinks.params import is_valid_address
from paylinks.settings import Settings
from paylinks.store.tables import (
    family_checkouts,
    parents,
    payment_allocations,
    payment_links,
    payments,
    players,
    tenants,
)
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import AllocationStatus, EmailType, PaidMethod

logger = logging.getLogger("paylinks.messaging")

# The parent's family page address for a receipt (tenant, parent id), or None.
FamilyPageUrl = Callable[[Connection, Tenant, int], str | None]
STRIPE_METHOD = "by card or bank, through Stripe"  # a payment recorded before paylinks kept how
PAID_AT_STRIPE_HOW = {
    PaidMethod.card: "by card, through Stripe",
    PaidMethod.bank_debit: "by bank debit, through Stripe",
}


def family_page_url(settings: Settings) -> FamilyPageUrl:
    """What every caller passes as `family_url`: a parent's page address
    (`PAYLINKS_OFFICE_URL/f/<token>`, its token made on first need, so it is called inside a
    transaction that commits)."""

    def url(connection: Connection, tenant: Tenant, parent_id: int) -> str | None:
        return family_links(connection, settings, tenant.id, [parent_id]).get(parent_id)

    return url


@dataclass(frozen=True)
class ReceiptOutcome:
    key: str  # the email_log run key: payment-<id> or offline-<audit id>
    parent_id: int | None
    result: claims.SendResult | None  # None: nothing to send (no address, nothing paid)
    error: str | None = None


def send_due_receipts(
    engine: Engine,
    settings: Settings,
    transport: MailTransport,
    *,
    payment_ids: Iterable[int] | None = None,
    tenant_ids: Iterable[int] | None = None,
    family_url: FamilyPageUrl | None = None,
) -> list[ReceiptOutcome]:
    """Send every receipt still due (of these payments, or these tenants' payments, or all);
    a failure is logged in email_log and the receipt stays due for the next try."""
    where = [payments.c.receipt_due.is_(True)]
    if payment_ids is not None:
        where.append(payments.c.id.in_(sorted(set(payment_ids))))
    if tenant_ids is not None:
        where.append(payments.c.tenant_id.in_(sorted(set(tenant_ids))))
    with engine.connect() as connection:
        due = connection.execute(
            sa.select(payments.c.id, payments.c.tenant_id).where(*where).order_by(payments.c.id)
        ).all()
        clubs = {
            row["id"]: tenant_from_row(row)
            for row in connection.execute(
                sa.select(tenants).where(tenants.c.id.in_({d.tenant_id for d in due}))
            ).mappings()
        }
    outcomes = []
    for payment_id, tenant_id in due:
        tenant = clubs[tenant_id]
        with engine.begin() as connection:  # a family page token made on first need is kept
            receipt = receipt_for_payment(connection, tenant, payment_id, family_url)
        outcome = _send(engine, settings, transport, tenant, f"payment-{payment_id}", receipt)
        # Sent, or nothing to send: no longer due. A failure (or another run sending it now, which
        # may fail) stays due, and the claim keeps a second send out.
        if outcome.result in (None, claims.SendResult.sent, claims.SendResult.already_sent):
            with engine.begin() as connection:
                connection.execute(
                    sa.update(payments).where(payments.c.id == payment_id).values(receipt_due=False)
                )
        outcomes.append(outcome)
    return outcomes


def send_offline_receipt(
    engine: Engine,
    settings: Settings,
    transport: MailTransport,
    tenant: Tenant,
    row_id: int,
    audit_id: int,
    method: PaidMethod,
    *,
    family_url: FamilyPageUrl | None = None,
) -> ReceiptOutcome:
    """The receipt of a bill an admin marked paid offline (cash, cheque, other)."""
    with engine.begin() as connection:  # a family page token made on first need is kept
        paid = _paid_items(
            connection,
            sa.select(payment_links.c.id).where(
                payment_links.c.id == row_id, payment_links.c.tenant_id == tenant.id
            ),
        )
        parent_id = connection.execute(
            sa.select(payment_links.c.parent_id).where(payment_links.c.id == row_id)
        ).scalar_one_or_none()
        receipt = _receipt(connection, tenant, parent_id, paid, method.label.lower(), 0, family_url)
    return _send(engine, settings, transport, tenant, f"offline-{audit_id}", receipt)


# -- what a receipt says -----------------------------------------------------------------------------
def receipt_for_payment(
    connection: Connection, tenant: Tenant, payment_id: int, family_url: FamilyPageUrl | None = None
) -> Receipt | None:
    """The receipt of one payment, as things stand now (what is still open is read now)."""
    record = connection.execute(sa.select(payments).where(payments.c.id == payment_id)).mappings().one()
    mine = sa.select(payment_allocations.c.payment_link_row_id).where(
        payment_allocations.c.payment_id == payment_id, payment_allocations.c.status == AllocationStatus.paid
    )
    paid = _paid_items(connection, mine, payment_id=payment_id)
    owed_back = connection.execute(
        sa.select(sa.func.coalesce(sa.func.sum(payment_allocations.c.amount_cents), 0)).where(
            payment_allocations.c.payment_id == payment_id,
            payment_allocations.c.status == AllocationStatus.refund_due,
        )
    ).scalar_one()
    if record["family_checkout_id"] is not None:
        parent_id = connection.execute(
            sa.select(family_checkouts.c.parent_id).where(
                family_checkouts.c.id == record["family_checkout_id"]
            )
        ).scalar_one_or_none()
    else:
        parent_id = connection.execute(
            sa.select(payment_links.c.parent_id).where(payment_links.c.id == record["payment_link_row_id"])
        ).scalar_one_or_none()
    method = record["paid_method"]
    how = PAID_AT_STRIPE_HOW.get(PaidMethod(method), STRIPE_METHOD) if method else STRIPE_METHOD
    return _receipt(connection, tenant, parent_id, paid, how, int(owed_back), family_url)


def _paid_items(
    connection: Connection, row_ids: sa.Select, payment_id: int | None = None
) -> tuple[tuple[PaidItem, ...], tuple[str | None, bool | None]]:
    """What was paid (each bill, at what this payment gave it), and where those bills' links
    were minted (the account and mode the parent's other links are read in)."""
    amount = (
        sa.select(payment_allocations.c.amount_cents)
        .where(
            payment_allocations.c.payment_id == payment_id,
            payment_allocations.c.payment_link_row_id == payment_links.c.id,
        )
        .scalar_subquery()
        if payment_id is not None
        else payment_links.c.amount_cents
    )
    found = connection.execute(
        sa.select(
            players.c.first_name,
            players.c.last_name,
            payment_links.c.description,
            amount.label("amount_cents"),
            payment_links.c.stripe_account,
            payment_links.c.livemode,
        )
        .join(players, players.c.id == payment_links.c.player_id)
        .where(payment_links.c.id.in_(row_ids))
        .order_by(payment_links.c.id)
    ).all()
    items = tuple(
        PaidItem(f"{r.first_name} {r.last_name}", r.description, int(r.amount_cents)) for r in found
    )
    where = next(((r.stripe_account, r.livemode) for r in found if r.stripe_account), (None, None))
    return items, where


def _receipt(
    connection: Connection,
    tenant: Tenant,
    parent_id: int | None,
    paid: tuple[tuple[PaidItem, ...], tuple[str | None, bool | None]],
    method: str,
    owed_back_cents: int,
    family_url: FamilyPageUrl | None,
) -> Receipt | None:
    items, (account, livemode) = paid
    if parent_id is None or not items:
        return None
    parent = connection.execute(sa.select(parents).where(parents.c.id == parent_id)).mappings().first()
    if parent is None:
        return None
    still_open: tuple[StillOpen, ...] = ()
    if account is not None:
        sheet = outstanding_balances(connection, tenant, StripeContext(account, bool(livemode)))
        balance = next((b for b in sheet.balances if b.parent_id == parent_id), None)
        if balance is not None:
            still_open = tuple(
                StillOpen(i.player_name, i.description, i.amount_cents, i.url) for i in balance.items
            )
    return Receipt(
        parent_id=parent_id,
        parent_name=f"{parent['first_name']} {parent['last_name']}",
        email=parent["email"],
        paid=items,
        method=method,
        still_open=still_open,
        owed_back_cents=owed_back_cents,
        family_page_url=_family_link(connection, tenant, parent_id, family_url),
    )


def _family_link(
    connection: Connection, tenant: Tenant, parent_id: int, family_url: FamilyPageUrl | None
) -> str | None:
    if family_url is None:
        return None
    try:
        return family_url(connection, tenant, parent_id)
    except PaylinksError as error:  # no family secret configured, say: the receipt goes without it
        logger.warning("receipt for parent %s without the family page: %s", parent_id, error)
        return None


# -- sending -----------------------------------------------------------------------------------------
def _send(
    engine: Engine,
    settings: Settings,
    transport: MailTransport,
    tenant: Tenant,
    key: str,
    receipt: Receipt | None,
) -> ReceiptOutcome:
    if receipt is None or not receipt.email or not is_valid_address(receipt.email):
        return ReceiptOutcome(key, receipt.parent_id if receipt else None, None)
    address = receipt.email
    try:
        check_links_mailable(
            [i.url for i in receipt.still_open if i.url]
            + ([receipt.family_page_url] if receipt.family_page_url else []),
            transport=transport,
            recipient_is_test_address=False,
            allow_test_links=settings.allow_test_links,
        )
    except UnsafeLinkError:
        # The receipt still goes; links that may not reach a real parent stay out of it.
        receipt = replace(
            receipt,
            still_open=tuple(replace(i, url=None) for i in receipt.still_open),
            family_page_url=None,
        )
    rendered = render_receipt(brand_of(tenant), receipt)
    email = PreparedEmail(
        parent_id=receipt.parent_id,
        parent_name=receipt.parent_name,
        address=receipt.email,
        rendered=rendered,
        item_count=len(receipt.paid),
        total_cents=receipt.paid_cents,
        urls=tuple(i.url for i in receipt.still_open if i.url),
    )
    try:
        sent = claims.send_logged(
            engine,
            transport,
            settings,
            tenant,
            EmailType.receipt,
            key,
            email,
            address,
            receipt.parent_id,
        )
    except MailDeliveryError as error:
        logger.warning("receipt %s for parent %s not sent: %s", key, receipt.parent_id, error)
        return ReceiptOutcome(key, receipt.parent_id, claims.SendResult.failed, str(error))
    return ReceiptOutcome(key, receipt.parent_id, sent.result)
