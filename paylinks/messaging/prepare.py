"""An email per parent, ready to send: rendered from their balance, a test sample whose buttons
take no payment, the message a transport delivers, and which parents a blast does not try.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from email.message import EmailMessage

from paylinks.club.balances import BalanceSheet, brand_of
from paylinks.club.tenants import Tenant
from paylinks.family.links import family_preview_url
from paylinks.messaging.render import ParentBalance, RenderedEmail, build_message, render_email
from paylinks.params import is_valid_address
from paylinks.settings import Settings
from paylinks.vocabulary import EmailType, StrLabelEnum


class SkipReason(StrLabelEnum):
    """Why a parent with a balance got no email from this run."""

    no_address = "no_address", "no email address on file (unreachable)"
    invalid_address = (
        "invalid_address",
        "the email address on file is not a valid address; fix it in the club's records",
    )
    already_sent = "already_sent", "already sent in this blast"
    claimed_elsewhere = "claimed_elsewhere", "another run of this blast is sending it now"
    recently_emailed = "recently_emailed", "held back: emailed recently"


@dataclass(frozen=True)
class PreparedEmail:
    """One rendered email for one parent, ready to send (or to show in a preview)."""

    parent_id: int
    parent_name: str
    address: str | None
    rendered: RenderedEmail
    item_count: int
    total_cents: int
    urls: tuple[str, ...]
    family_url: str | None = None  # the parent's family page (or, in a test, its preview)
    headers: tuple[tuple[str, str], ...] = ()  # added to the message (a reminder's List-Unsubscribe)


def prepare_email(
    tenant: Tenant,
    email_type: EmailType,
    balance: ParentBalance,
    test_recipient_note: str | None = None,
    forwarded_for: str | None = None,
    family_url: str | None = None,
) -> PreparedEmail:
    rendered = render_email(
        email_type,
        brand=brand_of(tenant),
        balance=balance,
        test_recipient_note=test_recipient_note,
        forwarded_for=forwarded_for,
        family_url=family_url,
    )
    return PreparedEmail(
        parent_id=balance.parent_id,
        parent_name=balance.parent_name,
        address=balance.email,
        rendered=rendered,
        item_count=len(balance.items),
        total_cents=balance.total_cents,
        urls=tuple(item.url for item in balance.items),
        family_url=family_url,
    )


def prepare_balance_emails(
    tenant: Tenant, sheet: BalanceSheet, family_urls: Mapping[int, str] | None = None
) -> list[PreparedEmail]:
    """Every parent's balance email, each with their family page link when `family_urls` has it."""
    links = family_urls or {}
    return [
        prepare_email(tenant, EmailType.outstanding_balance, balance, family_url=links.get(balance.parent_id))
        for balance in sheet.balances
    ]


def preview_link(office_url: str, payment_link_id: int | None) -> str:
    """The office's non-payable preview of one row's link: what a test email's buttons open."""
    return f"{office_url.rstrip('/')}/preview/payment-links/{payment_link_id}"


def prepare_test_email(
    tenant: Tenant, email_type: EmailType, balance: ParentBalance, office_url: str
) -> PreparedEmail:
    """The sample of a blast: the real layout, names and amounts, but every Pay Now button (and
    the family page link) leads to a preview that takes no payment, so a tester's click cannot
    settle a family's bill."""
    real = (
        f"{balance.parent_name} <{balance.email}>"
        if balance.email
        else f"{balance.parent_name} (no email on file)"
    )
    harmless = replace(
        balance,
        items=tuple(
            replace(item, url=preview_link(office_url, item.payment_link_id)) for item in balance.items
        ),
    )
    return prepare_email(
        tenant,
        email_type,
        harmless,
        test_recipient_note=real,
        family_url=family_preview_url(office_url, balance.parent_id),
    )


def message_for(
    settings: Settings, tenant: Tenant, email: PreparedEmail, to_address: str, to_name: str | None = None
) -> EmailMessage:
    return build_message(
        email.rendered,
        sender=settings.email_from,
        to_name=to_name or email.parent_name,
        to_address=to_address,
        reply_to=tenant.reply_to_email,
        extra_headers=email.headers,
    )


def blast_skips(
    emails: Iterable[PreparedEmail], already_sent: set[int], recently_emailed: Collection[int] = ()
) -> dict[int, SkipReason]:
    """Parents a blast does not try to mail, and why: no address, an address that is not one (the
    club's data is at fault: named in the report, never tried, nothing logged), already sent in
    this blast, or emailed recently by another (held back). Every other parent's email is claimed
    and sent."""
    skips: dict[int, SkipReason] = {}
    for email in emails:
        if email.address is None:
            skips[email.parent_id] = SkipReason.no_address
        elif not is_valid_address(email.address):
            skips[email.parent_id] = SkipReason.invalid_address
        elif email.parent_id in already_sent:
            skips[email.parent_id] = SkipReason.already_sent
        elif email.parent_id in recently_emailed:
            skips[email.parent_id] = SkipReason.recently_emailed
    return skips
