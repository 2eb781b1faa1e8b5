"""outstanding-balance-email: one branded email per parent with everything they owe.

extract balances → render every email → then one of: preview (nothing sent), a test send of
the fullest email to `test_email` only, or (`send`) one email per parent, each its own task run,
each logged in email_log under the blast key so a rerun never mails anyone twice.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from prefect import flow, get_run_logger
from pydantic import Field

from flows.run_names import blast_run_name, from_parameters
from paylinks.db import EmailType
from paylinks.emailing import BlastReport, SendOutcome
from paylinks.errors import PaylinksError
from paylinks.mail import MailDeliveryError
from paylinks.params import EmailAddress, TenantSlug
from tasks.prefect_support import flow_settings
from tasks.common import check_configuration, find_tenants
from tasks.email import (
    check_links_can_be_mailed,
    extract_outstanding_balances,
    extract_sent_parents,
    render_balance_emails,
    render_test_email,
    send_email,
)
from tasks.reports import publish_blast_summary


class BlastFailedError(PaylinksError):
    """Some parents could not be emailed; the others were."""


@flow(
    name="outstanding-balance-email",
    description=__doc__.split("\n\n")[0],
    flow_run_name=from_parameters(blast_run_name),
)
def outstanding_balance_email(
    tenant: TenantSlug,
    test_email: EmailAddress | None = None,
    send: bool = False,
    blast_key: Annotated[str, Field(min_length=1, max_length=150)] | None = None,
) -> BlastReport:
    """Email each parent of a tenant everything they owe, one Pay Now link per item.

    Args:
        tenant: Tenant slug.
        test_email: Send one sample (the parent with the most items, marked [TEST]) to this
            address only; nothing is recorded as sent to a parent.
        send: Email every parent with a balance. With neither this nor test_email, a preview
            that sends nothing.
        blast_key: Names this blast; a rerun with the same key skips parents already sent.
            Default: the tenant and today's date.
    """
    if test_email and send:
        # Which one was meant is anyone's guess, and one of the guesses mails every parent.
        raise PaylinksError("choose test_email (one sample to that address) or send (every parent), not both")
    settings = flow_settings()
    check_configuration(settings, needs_stripe=False)
    club = find_tenants(settings, tenant)[0]
    run_key = blast_key or f"{club.slug}-{date.today().isoformat()}"
    sheet = extract_outstanding_balances(settings, club)
    emails = render_balance_emails(club, sheet)
    mode = "test" if test_email else "send" if send else "preview"
    report = BlastReport(
        tenant=club.slug,
        mode=mode,
        run_key=run_key,
        emails=emails,
        sent=[],
        skipped={},
        failed=[],
        unminted_items=len(sheet.unminted),
        currency=club.currency,
    )

    if test_email:
        sample = sheet.sample()
        if sample is not None:
            email = render_test_email(club, EmailType.outstanding_balance, sample)
            check_links_can_be_mailed(settings, [email], to_test_address=True)
            outcome = send_email(
                settings,
                club,
                EmailType.outstanding_balance,
                f"test:{run_key}",
                email,
                str(test_email),
                log_parent=False,
                to_name=None,
            )
            report.sent.append(outcome)
    elif send:
        check_links_can_be_mailed(settings, emails, to_test_address=False)
        already = extract_sent_parents(settings, club, run_key)
        for email in emails:
            if email.address is None:
                report.skipped[email.parent_id] = "no email address on file (unreachable)"
            elif email.parent_id in already:
                report.skipped[email.parent_id] = "already sent in this blast"
            else:
                state = send_email(
                    settings,
                    club,
                    EmailType.outstanding_balance,
                    run_key,
                    email,
                    email.address,
                    return_state=True,
                )
                _collect(report, email.parent_id, email.address, state)

    publish_blast_summary(report)
    get_run_logger().info("blast %s: %s", run_key, report.summary())
    if report.failed:
        names = ", ".join(o.recipient for o in report.failed)
        raise BlastFailedError(
            f"{len(report.failed)} email(s) not delivered ({names}); see email_log and the artifact"
        )
    return report


def _collect(report: BlastReport, parent_id: int, address: str, state) -> None:
    if state.is_completed():
        outcome: SendOutcome = state.result()
        if outcome.status == "already sent":
            report.skipped[parent_id] = "already sent in this blast"
        else:
            report.sent.append(outcome)
        return
    error = state.result(raise_on_failure=False)
    detail = str(error) if isinstance(error, (MailDeliveryError, PaylinksError)) else state.message
    report.failed.append(SendOutcome(parent_id, address, "failed", detail))
