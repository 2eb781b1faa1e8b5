"""remind-outstanding-balances: each parent with a reminder step due gets one digest of everything
they owe, on the club's cadence, within its sending hours, never for a bill already paid.

per tenant (reminders on): plan who is due (bills and due dates, the cadence, the last step sent
to each parent, their last balance email, opt-outs; no Stripe request) → if anyone is due and
the run sends: apply Stripe's news for the club's account since its cursor (reconcile's one read
per account) and plan again, so a payment made minutes ago, even with its webhook lost, holds
its family back → render each digest (every item with its due state and Pay Now link, a
one-click "stop reminders" link) → send in batches over one mail connection, each parent
claimed in email_log under its step (`reminder:<date>`) before its send → publish the summary.
A club whose settings do not parse is skipped and reported; the others are reminded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture

from flows.fan_out import REMIND_CHILD, ChildRun, fan_out_per_tenant
from flows.in_flight import in_order
from flows.reconcile_payments import reconcile_account, tenants_by_account
from flows.run_names import from_parameters, remind_run_name
from paylinks.club.tenants import Tenant
from paylinks.errors import PaylinksError
from paylinks.messaging.cadence import HeldBack, Hold, paid_since, step_run_key
from paylinks.messaging.claims import SendOutcome, SendResult
from paylinks.messaging.prepare import PreparedEmail
from paylinks.messaging.reminders import (
    ReminderLine,
    ReminderReport,
    ReminderResult,
    ReminderSettingsError,
    TenantReminders,
    plan_lines,
    reminder_hold,
)
from paylinks.messaging.transports import MailDeliveryError
from paylinks.params import TenantSlug
from paylinks.settings import Settings
from paylinks.vocabulary import EmailType
from tasks.common import check_configuration, find_tenants
from tasks.email import (
    batch_name,
    check_links_can_be_mailed,
    mail_connections,
    read_stripe_context,
    send_email_batch,
)
from tasks.inputs import whole
from tasks.reminders import (
    find_clubs_near_a_step,
    plan_tenant_reminders,
    publish_quiet_clubs,
    publish_reminder_summary,
    read_remembered_context,
    render_reminders,
)
from tasks.run_settings import flow_settings

SEND_RESULTS = {
    SendResult.sent: ReminderResult.sent,
    SendResult.already_sent: ReminderResult.already_sent,
    SendResult.claimed_elsewhere: ReminderResult.claimed_elsewhere,
    SendResult.failed: ReminderResult.failed,
}


class RemindersIncompleteError(PaylinksError):
    """Some tenants were not reminded (a setting that does not parse, a failure); the others were."""

    def __init__(
        self, message: str, reports: list[ReminderReport], failed: dict[str, str], bad_input: bool
    ) -> None:
        super().__init__(message)
        self.reports = reports
        self.failed = failed
        self.exit_code = 2 if bad_input else 1  # only settings that do not parse: bad input


@flow(
    name="remind-outstanding-balances",
    description=__doc__.split("\n\n")[0],
    flow_run_name=from_parameters(remind_run_name),
)
def remind_outstanding_balances(
    tenant: TenantSlug | None = None,
    send: bool = False,
    as_of: datetime | None = None,
    fan_out: bool = False,
) -> list[ReminderReport] | list[ChildRun]:
    """Send each parent with a reminder step due one digest of everything they owe.

    Args:
        tenant: Tenant slug; leave empty for every tenant with reminders on.
        send: Email the digests. Off: a dry run that says who would get one and why others not.
        as_of: Run as if at this time (previews, tests); without an offset, the club's local time.
        fan_out: With every tenant: one flow run per tenant through the deployment
            remind-outstanding-balances/tenant, spread by the work pool over its workers.
    """
    settings = flow_settings()
    check_configuration(settings, needs_stripe=send)
    clubs = find_tenants(settings, tenant)
    quiet: list[ReminderReport] = []
    if not tenant:
        # One query finds the clubs with a step near today; the rest (most hours, most clubs)
        # cost no task run, no child run and no Stripe request, and share one summary.
        clubs = [club for club in clubs if club.reminders_enabled]
        near = find_clubs_near_a_step(settings, clubs, as_of) if clubs else set()
        quiet = [
            ReminderReport(tenant=club.slug, send=send, as_of=as_of, quiet=True)
            for club in clubs
            if club.slug not in near
        ]
        clubs = [club for club in clubs if club.slug in near]
        if quiet:
            publish_quiet_clubs(quiet)
    if fan_out and not tenant:
        return fan_out_per_tenant(
            "reminders",
            REMIND_CHILD,
            clubs,
            {"send": send, **({"as_of": as_of.isoformat()} if as_of else {})},
            lambda slug: remind_run_name(slug, send=send),
        )
    logger = get_run_logger()
    if quiet:
        logger.info("reminders: %d club(s) have no step today or yesterday", len(quiet))
    reports: list[ReminderReport] = list(quiet)
    failed: dict[str, str] = {}
    bad_input = True
    for club in clubs:
        try:
            report = remind_tenant(settings, club, send, as_of)
        except Exception as error:  # this club's trouble is its own: reported, the others still run
            bad_input = bad_input and isinstance(error, ReminderSettingsError)
            why = _first_line(error)
            failed[club.slug] = why
            report = ReminderReport(tenant=club.slug, send=send, as_of=as_of, problem=why)
            publish_reminder_summary(whole(report))
            logger.error("reminders of %s skipped: %s", club.slug, why)
        reports.append(report)
    if failed:
        raise RemindersIncompleteError(
            f"reminders skipped for {len(failed)} tenant(s): "
            + "; ".join(failed.values())
            + (
                f" (the other {len(reports) - len(failed)} were reminded)"
                if len(reports) > len(failed)
                else ""
            ),
            reports,
            failed,
            bad_input,
        )
    return reports


def remind_tenant(settings: Settings, club: Tenant, send: bool, as_of: datetime | None) -> ReminderReport:
    """One club's reminders: plan, (sending) Stripe's news and plan again, render, send, report."""
    logger = get_run_logger()
    before = plan_tenant_reminders(settings, club, read_remembered_context(settings, club), as_of)
    report = ReminderReport(
        tenant=club.slug,
        send=send,
        as_of=before.now,
        timezone=before.cadence.zone.key,
        enabled=before.cadence.enabled,
        hours=before.cadence.hours,
        days=before.cadence.days,
        in_hours=before.cadence.in_hours(before.now),
        currency=club.currency,
    )
    planned = before
    held_since: tuple[HeldBack, ...] = ()
    if send and before.plan.digests:
        report.stripe_news = apply_stripe_news_first(settings, club)
        planned = plan_tenant_reminders(settings, club, read_stripe_context(settings, club), as_of)
        held_since = paid_since(before.plan, planned.plan)
    elif before.plan.digests:
        report.stripe_news = "not read in a dry run (a send reads it first)"
    report.lines += plan_lines(planned, held_since)
    if planned.plan.digests:
        emails = render_reminders(settings, club, planned, send)
        report.emails = emails
        if send:
            _send_digests(settings, club, planned, emails, report)
        else:
            report.lines += [
                ReminderLine(e.parent_id, e.parent_name, e.address, ReminderResult.would_send, due)
                for e, due in zip(emails, planned.plan.digests, strict=True)
            ]
    publish_reminder_summary(whole(report))
    logger.info(
        "reminders of %s (%s): %d sent, %d would be sent, %d held back, %d failed",
        club.slug,
        "send" if send else "dry run",
        len(report.of(ReminderResult.sent)),
        len(report.of(ReminderResult.would_send)),
        len(report.of(ReminderResult.held_back)),
        len(report.of(ReminderResult.failed)),
    )
    return report


def apply_stripe_news_first(settings: Settings, club: Tenant) -> str:
    """Apply the news of the club's Stripe account since its cursor (reconcile's one read for
    every tenant on it) before anything is sent. A read that fails stops this club's send."""
    on_account = tenants_by_account(find_tenants(settings, None), [club])[club.stripe_account or None]
    reconcile_account(settings, on_account, report_on=[])
    return "applied (events since the account's cursor)"


def _send_digests(
    settings: Settings,
    club: Tenant,
    planned: TenantReminders,
    emails: list[PreparedEmail],
    report: ReminderReport,
) -> None:
    """Send each digest, claimed under its step; batches of PAYLINKS_BLAST_BATCH_SIZE per step."""
    check_links_can_be_mailed(settings, emails, to_test_address=False)
    hold_since = planned.now - reminder_hold(club, settings.recent_email_hold_hours)
    by_step: dict[str, list[tuple[PreparedEmail, str]]] = {}
    dues = {due.parent_id: due for due in planned.plan.digests}
    for email in emails:
        assert email.address is not None  # a parent without an address is held back by the plan
        by_step.setdefault(step_run_key(dues[email.parent_id].step), []).append((email, email.address))
    total = len(emails)
    size = settings.blast_batch_size
    batches: list[tuple[str, int, Sequence[tuple[PreparedEmail, str]]]] = []  # (step key, first, batch)
    done = 0
    for run_key, sends in sorted(by_step.items()):
        for start in range(0, len(sends), size):
            part = sends[start : start + size]
            batches.append((run_key, done, part))
            done += len(part)

    def send(
        numbered: tuple[str, int, Sequence[tuple[PreparedEmail, str]]],
    ) -> PrefectFuture[list[SendOutcome]]:
        run_key, first, batch = numbered
        return send_email_batch.submit(
            settings,
            club,
            EmailType.reminder,
            run_key,
            whole(batch),
            batch_name(first + 1, first + len(batch), total),
            hold_since=hold_since,
        )

    # Batches go `mail_connections` at a time, each over its own connection (see flows.in_flight).
    for (_, _, batch), sent in in_order(send, batches, mail_connections(settings)):
        _collect(report, batch, dues, sent.state)


def _collect(report: ReminderReport, batch: Sequence[tuple[PreparedEmail, str]], dues, state) -> None:
    if state.is_completed():
        outcomes: list[SendOutcome] = state.result()
    else:  # the batch itself broke: each parent in it failed (their claims tell a rerun who was sent)
        error = state.result(raise_on_failure=False)
        detail = str(error) if isinstance(error, (MailDeliveryError, PaylinksError)) else state.message
        outcomes = [SendOutcome(e.parent_id, address, SendResult.failed, detail) for e, address in batch]
    names = {email.parent_id: email.parent_name for email, _ in batch}
    for outcome in outcomes:
        assert outcome.parent_id is not None
        due = dues[outcome.parent_id]
        name = names[outcome.parent_id]
        if outcome.result is SendResult.held_back:
            at = outcome.emailed.at.isoformat() if outcome.emailed else None
            report.lines.append(
                ReminderLine(
                    outcome.parent_id,
                    name,
                    outcome.recipient,
                    ReminderResult.held_back,
                    due,
                    Hold.emailed_today,
                    at,
                )
            )
            continue
        report.lines.append(
            ReminderLine(
                outcome.parent_id,
                name,
                outcome.recipient,
                SEND_RESULTS[outcome.result],
                due,
                detail=outcome.error,
            )
        )


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
