"""resend-payment-link: a coach answers "how do I pay?" by resending a player's open links.

find the player (id or part of the name; several matches → list them, send nothing) → read
their open links → render one email → send it to the parent (or `to`), logged as payment_link.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from flows.run_names import from_parameters, resend_run_name
from paylinks.db import EmailType
from paylinks.emailing import ResendReport
from paylinks.params import EmailAddress, TenantSlug
from tasks.prefect_support import flow_settings
from tasks.common import check_configuration, find_tenants
from tasks.email import (
    check_links_can_be_mailed,
    extract_player_balance,
    find_player_to_resend,
    render_payment_link_email,
    send_email,
)
from tasks.reports import publish_resend_summary


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
    """Resend a player's open payment links to their parent.

    Args:
        tenant: Tenant slug.
        player: Player id, or any part of the player's name (case-insensitive). Several
            matches are listed and nothing is sent.
        to: Send here instead of to the parent's address.
        dry_run: Render and show the email; send nothing.
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=False)
    club = find_tenants(settings, tenant)[0]
    match = find_player_to_resend(settings, club, player)
    balance = extract_player_balance(settings, club, match.player_id)
    recipient = str(to) if to else match.parent_email
    if balance is None:
        report = ResendReport(club.slug, match, recipient, None, "nothing owed")
    else:
        email = render_payment_link_email(club, balance)
        if dry_run:
            report = ResendReport(club.slug, match, recipient, email, "dry run")
        elif recipient is None:
            report = ResendReport(
                club.slug, match, None, email, "unreachable: the parent has no email on file"
            )
        else:
            # `to` may be any real inbox (another parent address), so it gets no test-address leeway.
            check_links_can_be_mailed(settings, [email], to_test_address=False)
            run_key = f"resend-{flow_run.get_id() or 'local'}"
            outcome = send_email(
                settings,
                club,
                EmailType.payment_link,
                run_key,
                email,
                recipient,
                log_parent=True,
                to_name=None if to else match.parent_name,
            )
            report = ResendReport(club.slug, match, recipient, email, "sent", outcome)
    publish_resend_summary(report)
    get_run_logger().info("resend for %s: %s", match.describe(), report.outcome)
    return report
