"""outstanding-balance-email: one branded email per parent with everything they owe.

read the Stripe context → extract balances (checked against the club's data now, only links
minted in this Stripe account and mode) → each parent's family page link → render every email → then one of: preview (nothing
sent), a test send of the fullest email to `test_email` only (its buttons take no payment), or
(`send`) one email per parent, sent in batches (a task run per `PAYLINKS_BLAST_BATCH_SIZE`
parents, default 50, each over one mail connection, one log line per parent, a progress artifact
updated as batches finish), each parent claimed in email_log under the blast's key and transport
before its send, so neither a rerun nor a blast racing it mails anyone twice. A parent
another blast emailed within the hold window (24 hours by default) is held back unless
`include_recent`; a test email is never held back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from pydantic import Field

from flows.in_flight import in_order
from flows.run_names import blast_run_name, from_parameters
from paylinks.club.balances import BalanceSheet
from paylinks.club.clock import club_zone, now_utc
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.messaging.blasts import BlastRun, hold_since, hold_window_hours
from paylinks.messaging.claims import SendOutcome, SendResult
from paylinks.messaging.prepare import PreparedEmail, blast_skips
from paylinks.messaging.reports import BlastMode, BlastReport
from paylinks.messaging.transports import MailDeliveryError
from paylinks.params import EmailAddress, TenantSlug
from paylinks.present.blast import nothing_sent_line
from paylinks.settings import EmailTransportName, Settings
from paylinks.vocabulary import EmailType
from tasks.common import check_configuration, find_tenants
from tasks.email import (
    batch_name,
    check_links_can_be_mailed,
    extract_outstanding_balances,
    extract_recently_emailed,
    extract_reminder_optouts,
    extract_sent_parents,
    find_blast,
    find_family_links,
    finish_blast,
    mail_connections,
    read_last_blast,
    read_stripe_context,
    render_balance_emails,
    render_test_email,
    send_email,
    send_email_batch,
    show_progress,
    start_blast,
    start_progress,
)
from tasks.inputs import whole
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
    include_recent: bool = False,
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
        include_recent: Also email parents another blast emailed within the hold window (the
            tenant's recent_email_hold_hours, else PAYLINKS_RECENT_EMAIL_HOLD_HOURS, default 24),
            who are otherwise held back.
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
    # Only a send makes family page addresses; a preview or a test shows the preview of each page.
    links = find_family_links(settings, club, [b.parent_id for b in sheet.balances], preview=not send)
    emails = render_balance_emails(club, whole(sheet), whole(links))
    last = read_last_blast(settings, club)
    since = (
        None
        if include_recent or test_email
        else hold_since(club, settings.recent_email_hold_hours, now_utc())
    )
    recent = (
        extract_recently_emailed(settings, club, since, blast.run_key if blast else None) if since else {}
    )
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
        timezone=club_zone(club.timezone, settings.club_timezone).key,
        last_blast=last,
        hold_hours=hold_window_hours(club, settings.recent_email_hold_hours),
        include_recent=include_recent,
        recently_emailed=dict(recent),
        opted_out=frozenset(extract_reminder_optouts(settings, club, [e.parent_id for e in emails])),
    )

    if test_email:
        _send_sample(settings, club, report, sheet, str(test_email))
    elif send:
        assert blast is not None  # start_blast always returns the blast it started or resumed
        _send_to_every_parent(settings, club, report, blast, since)

    publish_blast_summary(whole(report))
    get_run_logger().info(
        "blast %s (%s): %d sent, %d skipped (%d emailed recently), %d failed, %d items held back",
        report.run_key or "new",
        mode.value,
        len(report.sent),
        len(report.skipped),
        len(report.held_back_parents),
        len(report.failed),
        len(report.held_back),
    )
    if report.sends_nothing_because_recent:
        get_run_logger().info("%s", nothing_sent_line(report, "include_recent=true"))
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


def _send_to_every_parent(
    settings: Settings, club: Tenant, report: BlastReport, blast: BlastRun, since: datetime | None
) -> None:
    """A send task per batch of the parents the blast does not skip (a parent emailed since
    `since` by another blast is held back); the blast is finished once all are reached."""
    check_links_can_be_mailed(settings, whole(report.emails), to_test_address=False)
    already = extract_sent_parents(settings, club, blast.run_key)
    skips = blast_skips(report.emails, already, report.recently_emailed)
    sends: list[tuple[PreparedEmail, str]] = []
    for email in report.emails:
        if email.parent_id in skips:
            report.skipped[email.parent_id] = skips[email.parent_id]
            continue
        assert email.address is not None  # a parent without an address is skipped
        sends.append((email, email.address))
    size = settings.blast_batch_size
    progress = start_progress(len(sends))

    def send(start: int) -> PrefectFuture[list[SendOutcome]]:
        batch = sends[start : start + size]
        return send_email_batch.submit(
            settings,
            club,
            EmailType.outstanding_balance,
            blast.run_key,
            whole(batch),
            batch_name(start + 1, start + len(batch), len(sends)),
            hold_since=since,
        )

    # Batches go `mail_connections` at a time, each over its own connection (see flows.in_flight).
    for start, sent in in_order(send, range(0, len(sends), size), mail_connections(settings)):
        batch = sends[start : start + size]
        _collect(report, batch, sent.state)
        show_progress(progress, start + len(batch), len(sends))
    if report.reached_everyone:
        finish_blast(settings, club, blast)


def flow_run_key() -> str:
    from prefect.runtime import flow_run

    return flow_run.get_id() or "local"


def _collect(report: BlastReport, batch: list[tuple[PreparedEmail, str]], state) -> None:
    if state.is_completed():
        for outcome in state.result():
            assert outcome.parent_id is not None  # a blast's sends each name their parent
            if outcome.result is SendResult.failed:
                report.failed.append(outcome)
            else:
                report.add_send(outcome.parent_id, outcome)
        return
    # The batch itself broke (not one parent's delivery): every parent in it is reported failed;
    # their claims let the rerun tell who was in fact sent.
    error = state.result(raise_on_failure=False)
    detail = str(error) if isinstance(error, (MailDeliveryError, PaylinksError)) else state.message
    for email, address in batch:
        report.failed.append(SendOutcome(email.parent_id, address, SendResult.failed, detail))
