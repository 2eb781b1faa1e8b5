"""Links whose bill went away, changed, or moved: deactivated at Stripe and let go of by their
row (before a re-mint), and links minted before paylinks recorded the account, confirmed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.billing.plan import Action, Step
from paylinks.billing.report import Finding, FindingKind, RetireOutcome
from paylinks.club.tenants import Tenant
from paylinks.store.tables import payment_links, utcnow
from paylinks.stripe_api.gateway import StripeContext, StripeGateway, StripeNotFoundError
from paylinks.vocabulary import PaymentLinkStatus


def retire_stale_links(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, where: StripeContext, steps: Iterable[Step]
) -> RetireOutcome:
    """Let go of links whose bill went away (row → cancelled), changed amount or was minted in
    another account or mode (before their re-mint), and confirm links minted before paylinks
    recorded the account.

    A link that Stripe shows as already paid is left alone: reconcile accounts for the payment.
    A link Stripe does not have is a finding, not a crash.
    """
    outcome = RetireOutcome()
    for step in steps:
        row = step.row
        assert row is not None and step.row_id is not None
        link_id = row["stripe_payment_link_id"]
        if step.action is Action.remint_elsewhere:
            # Another account's link cannot be reached with this key; it takes no payment here.
            outcome.findings.append(Finding(FindingKind.minted_elsewhere, step.row_id, link_id))
            outcome.replaced.append(step.row_id)
            continue
        if step.action is Action.verify:
            _verify(engine, gateway, where, step, outcome)
            continue
        if link_id:
            try:
                link = gateway.retrieve_payment_link(link_id)
            except StripeNotFoundError:
                outcome.findings.append(Finding(FindingKind.link_missing_at_stripe, step.row_id, link_id))
            else:
                if link.completed_sessions > 0:
                    outcome.findings.append(Finding(FindingKind.paid_at_stripe, step.row_id, link_id))
                    outcome.left_alone.add(step.row_id)
                    continue
                if link.active:
                    gateway.deactivate_payment_link(link_id, inactive_message=_inactive_message(tenant, step))
        with engine.begin() as connection:
            if step.action is Action.retire:
                connection.execute(
                    sa.update(payment_links)
                    .where(
                        payment_links.c.id == step.row_id, payment_links.c.status == PaymentLinkStatus.pending
                    )
                    .values(status=PaymentLinkStatus.cancelled, updated_at=utcnow())
                )
                outcome.retired.append(step.row_id)
            else:  # re-mint: the row forgets the old link and waits for the new one
                connection.execute(
                    sa.update(payment_links)
                    .where(
                        payment_links.c.id == step.row_id, payment_links.c.status == PaymentLinkStatus.pending
                    )
                    .values(stripe_payment_link_id=None, stripe_payment_link_url=None, updated_at=utcnow())
                )
                outcome.replaced.append(step.row_id)
    return outcome


def _verify(
    engine: Engine, gateway: StripeGateway, where: StripeContext, step: Step, outcome: RetireOutcome
) -> None:
    assert step.row is not None and step.row_id is not None, "only a minted row is verified"
    row_id, link_id = step.row_id, str(step.row["stripe_payment_link_id"])
    try:
        gateway.retrieve_payment_link(link_id)
    except StripeNotFoundError:
        # Not in this account and mode: minted elsewhere, so it is re-minted here.
        outcome.findings.append(Finding(FindingKind.minted_elsewhere, row_id, link_id))
        outcome.to_remint.append(dataclasses.replace(step, action=Action.remint_elsewhere, relink=False))
        return
    with engine.begin() as connection:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row_id, payment_links.c.stripe_account.is_(None))
            .values(stripe_account=where.account, livemode=where.livemode, updated_at=utcnow())
        )
    outcome.verified.append(row_id)


def _inactive_message(tenant: Tenant, step: Step) -> str:
    if step.action is Action.retire:
        return f"This bill was cancelled by {tenant.name}. Questions? Write to {tenant.reply_to_email}."
    return f"This bill was updated by {tenant.name}; please use the newest link we sent you."
