"""resend-payment-link: a coach answers "how do I pay?" by resending a player's open links.

find the player (id or part of the name; several matches → list them, send nothing) → read
their open links as the club's data stands now → one email per parent who owes some of them,
addressed and greeted to that parent with only their items and their family page link → send each to its parent (or all
to `to`, each labelled with the parent it is for), logged as payment_link.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from flows.run_names import from_parameters, resend_run_name
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.messaging.prepare import PreparedEmail
from paylinks.messaging.reports import ResendOutcome, ResendReport, ResendToParent
from paylinks.messaging.transports import MailDeliveryError
from paylinks.params import EmailAddress, TenantSlug
from paylinks.settings import Settings
from paylinks.vocabulary import EmailType
from tasks.common import check_configuration, find_tenants
from tasks.email import (
    check_links_can_be_mailed,
    extract_player_balances,
    find_family_links,
    find_player_to_resend,
    read_stripe_context,
    render_payment_link_email,
    send_email,
)
from tasks.reports import publish_resend_summary
from tasks.run_settings import flow_settings


class ResendFailedError(PaylinksError):
    """Some of the player's parents could not be emailed: `report` says who, and why."""

    def __init__(self, message: str, report: ResendReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@flow(
    name="resend-payment-link",
    description=__doc__.split("\n\n")[0],
    flow_run_name=from_parameters(resend_run_name),
)
def resend_payment_link(
    tenant: TenantSlug,
    player: Annotated[str, Field(min_length=1, max_length=200)],
    to: EmailAddress | None = None,
    dry_run: bool = False,
) -> ResendReport:
    """Resend a player's open payment links: each parent who owes some of them gets their own email.

    Args:
        tenant: Tenant slug.
        player: Player id, or any part of the player's name (case-insensitive). Several
            matches are listed and nothing is sent.
        to: Send every parent's email here instead, each labelled with the parent it is for.
        dry_run: Render and show the emails; send nothing.
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=True)
    club = find_tenants(settings, tenant)[0]
    match = find_player_to_resend(settings, club, player)
    context = read_stripe_context(settings, club)
    sheet = extract_player_balances(settings, club, match.player_id, context)
    report = ResendReport(
        tenant=club.slug,
        currency=club.currency,
        player=match,
        to=str(to) if to else None,
        dry_run=dry_run,
        held_back=sheet.held_back,
    )
    links = find_family_links(settings, club, [b.parent_id for b in sheet.balances], preview=dry_run)
    emails = [
        render_payment_link_email(
            club,
            balance,
            forwarded_for=balance.parent_name if to else None,
            family_url=links.get(balance.parent_id),
        )
        for balance in sheet.balances
    ]
    if not dry_run:
        # `to` may be any real inbox (another parent's), so it gets no test-address leeway.
        check_links_can_be_mailed(settings, emails, to_test_address=False)
    run_key = f"resend-{flow_run.get_id() or 'local'}"
    for email in emails:
        report.parents.append(_resend_one(settings, club, run_key, email, to, dry_run))
    publish_resend_summary(report)
    get_run_logger().info(
        "resend for %s: %d parent(s), %d sent, %d items held back",
        match.describe(),
        len(report.parents),
        report.count(ResendOutcome.sent),
        len(report.held_back),
    )
    failed = [parent for parent in report.parents if parent.outcome is ResendOutcome.failed]
    if failed:
        raise ResendFailedError(
            f"{len(failed)} email(s) not delivered ({', '.join(p.recipient or '' for p in failed)}); see email_log",
            report,
        )
    return report


def _resend_one(
    settings: Settings,
    club: Tenant,
    run_key: str,
    email: PreparedEmail,
    to: EmailAddress | None,
    dry_run: bool,
) -> ResendToParent:
    """One parent's email: sent (a task run), or why not."""
    recipient = str(to) if to else email.address
    if dry_run or recipient is None:
        outcome = ResendOutcome.dry_run if dry_run else ResendOutcome.unreachable
        return ResendToParent(email.parent_id, email.parent_name, recipient, email, outcome)
    state = send_email(
        settings,
        club,
        EmailType.payment_link,
        run_key,
        email,
        recipient,
        log_parent=True,
        to_name=None if to else email.parent_name,
        return_state=True,
    )
    if state.is_completed():
        return ResendToParent(email.parent_id, email.parent_name, recipient, email, ResendOutcome.sent)
    error = state.result(raise_on_failure=False)
    detail = str(error) if isinstance(error, (MailDeliveryError, PaylinksError)) else state.message
    return ResendToParent(email.parent_id, email.parent_name, recipient, email, ResendOutcome.failed, detail)
