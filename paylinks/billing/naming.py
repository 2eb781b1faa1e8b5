"""Links minted before paylinks named the player on the checkout (or whose bill, player or club
was renamed since) are updated in place — `POST /v1/payment_links/{id}`, no new link, no new key —
so every checkout page and receipt says what it is for. A link Stripe no longer has is re-minted
in the same run instead."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.billing.mint import link_metadata
from paylinks.billing.plan import Action, Step
from paylinks.billing.report import Finding, FindingKind
from paylinks.club.tenants import Tenant
from paylinks.store.tables import payment_links, utcnow
from paylinks.stripe_api.gateway import StripeGateway, StripeNotFoundError
from paylinks.vocabulary import PaymentLinkStatus


@dataclass
class NamingOutcome:
    named: list[int] = field(default_factory=list)  # rows whose link now says what it is for
    to_remint: list[Step] = field(default_factory=list)  # links Stripe no longer has
    findings: list[Finding] = field(default_factory=list)


def name_players_on_checkouts(
    engine: Engine, gateway: StripeGateway, tenant: Tenant, steps: Iterable[Step]
) -> NamingOutcome:
    """Update each step's link to say its `checkout_text` (one request each), then its row.

    Stripe first, then the row: a crash in between leaves the row's text older than its link's,
    so the next run sends the same update again (harmless)."""
    outcome = NamingOutcome()
    for step in steps:
        row = step.row
        assert row is not None and step.row_id is not None and step.checkout_text
        link_id = str(row["stripe_payment_link_id"])
        metadata = link_metadata(tenant.id, row, step.row_id, int(row["mint_version"]))
        try:
            gateway.name_payment_link(link_id, step.checkout_text, metadata)
        except StripeNotFoundError:
            # Stripe has no such link in this account and mode (its objects were lost): the row
            # was never really minted here, so it is minted now, at a fresh idempotency key.
            outcome.findings.append(Finding(FindingKind.link_missing_at_stripe, step.row_id, link_id))
            outcome.to_remint.append(
                dataclasses.replace(step, action=Action.remint_missing, relink=False, name_on_checkout=False)
            )
            continue
        with engine.begin() as connection:
            connection.execute(
                sa.update(payment_links)
                .where(
                    payment_links.c.id == step.row_id,
                    payment_links.c.stripe_payment_link_id == link_id,
                    payment_links.c.status == PaymentLinkStatus.pending,
                )
                .values(checkout_text=step.checkout_text, updated_at=utcnow())
            )
        outcome.named.append(step.row_id)
    return outcome
