"""outstanding-balance-email: one branded email per parent with everything they owe.

read the Stripe context → extract balances (checked against the club's data now, only links
minted in this Stripe account and mode) → render every email → then one of: preview (nothing
sent), a test send of the fullest email to `test_email` only (its buttons take no payment), or
(`send`) one email per parent, each its own task run, each claimed in email_log under the
blast's key and transport so neither a rerun nor a blast racing it mails anyone twice.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow, get_run_logger
from pydantic import Field

from flows.run_names import blast_run_name, from_parameters
from paylinks.club.balances import BalanceSheet
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.messaging.blasts import BlastRun
from paylinks.messaging.claims import SendOutcome, SendResult
from paylinks.messaging.prepare import blast_skips
from paylinks.messaging.reports import BlastMode, BlastReport
from paylinks.messaging.transports import MailDeliveryError
from paylinks.params import EmailAddress, TenantSlug
from paylinks.settings import EmailTransportName, Settings
from paylinks.vocabulary import EmailType
from tasks.common import check_configuration, find_tenants
from tasks.email import (
    check_links_can_be_mailed,
    extract_outstanding_balances,
    extract_sent_parents,
    find_blast,
    finish_blast,
    read_stripe_context,
    render_balance_emails,
    render_test_email,
    send_email,
    start_blast,
)
from tasks.reports import publish_blast_summary
from tasks.run_settings import flow_settings


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
        test_email: Send one sample (the parent with the most items, marked [TEST], its Pay Now
            buttons leading to a preview that takes no payment) to this address only; nothing is
            recorded as sent to a parent.
        send: Email every parent with a balance. With neither this nor test_email, a preview
            that sends nothing.
        blast_key: Names this blast; a rerun with the same key skips parents already sent.
            Default: resume the tenant's unfinished blast (any date), else start a new one.
    """
    if test_email and send:
        # Which one was meant is anyone's guess, and one of the guesses mails every parent.
        raise PaylinksError("choose test_email (one sample to that address) or send (every parent), not both")
    settings = flow_settings()
    check_configuration(settings, needs_stripe=True)
    club = find_tenants(settings, tenant)[0]
    mode = BlastMode.test if test_email else BlastMode.send if send else BlastMode.preview
    context = read_stripe_context(settings, club)
    blast = start_blast(settings, club, blast_key) if send else find_blast(settings, club, blast_key)
    sheet = extract_outstanding_balances(settings, club, context)
    emails = render_balance_emails(club, sheet)
    report = BlastReport(
        tenant=club.slug,
        mode=mode,
        currency=club.currency,
        transport=settings.email_transport,
        blast=blast,
        emails=emails,
        held_back=sheet.held_back,
        outbox_dir=str(settings.outbox_dir)
        if settings.email_transport is EmailTransportName.outbox
        else None,
        test_recipient=str(test_email) if test_email else None,
    )

    if test_email:
        _send_sample(settings, club, report, sheet, str(test_email))
    elif send:
        assert blast is not None  # start_blast always returns the blast it started or resumed
        _send_to_every_parent(settings, club, report, blast)

    publish_blast_summary(report)
    get_run_logger().info(
        "blast %s (%s): %d sent, %d skipped, %d failed, %d items held back",
        report.run_key or "new",
        mode.value,
        len(report.sent),
        len(report.skipped),
        len(report.failed),
        len(report.held_back),
    )
    if report.failed:
        names = ", ".join(o.recipient for o in report.failed)
        raise BlastFailedError(
            f"{len(report.failed)} email(s) not delivered ({names}); see email_log and the artifact"
        )
    return report


def _send_sample(
    settings: Settings, club: Tenant, report: BlastReport, sheet: BalanceSheet, test_email: str
) -> None:
    """The test send: the fullest email, its buttons not payable, to the test address only."""
    sample = sheet.sample()
    if sample is None:
        return
    email = render_test_email(settings, club, EmailType.outstanding_balance, sample)
    check_links_can_be_mailed(settings, [email], to_test_address=True)
    report.sample = email
    outcome = send_email(
        settings,
        club,
        EmailType.outstanding_balance,
        f"test:{flow_run_key()}",
        email,
        test_email,
        log_parent=False,
        to_name=None,
    )
    report.sent.append(outcome)


def _send_to_every_parent(settings: Settings, club: Tenant, report: BlastReport, blast: BlastRun) -> None:
    """One send task per parent the blast does not skip; the blast is finished once all are reached."""
    check_links_can_be_mailed(settings, report.emails, to_test_address=False)
    already = extract_sent_parents(settings, club, blast.run_key)
    skips = blast_skips(report.emails, already)
    for email in report.emails:
        if email.parent_id in skips:
            report.skipped[email.parent_id] = skips[email.parent_id]
            continue
        assert email.address is not None  # a parent without an address is skipped
        state = send_email(
            settings,
            club,
            EmailType.outstanding_balance,
            blast.run_key,
            email,
            email.address,
            return_state=True,
        )
        _collect(report, email.parent_id, email.address, state)
    if report.reached_everyone:
        finish_blast(settings, club, blast)


def flow_run_key() -> str:
    from prefect.runtime import flow_run

    return flow_run.get_id() or "local"


def _collect(report: BlastReport, parent_id: int, address: str, state) -> None:
    if state.is_completed():
        report.add_send(parent_id, state.result())
        return
    error = state.result(raise_on_failure=False)
    detail = str(error) if isinstance(error, (MailDeliveryError, PaylinksError)) else state.message
    report.failed.append(SendOutcome(parent_id, address, SendResult.failed, detail))
