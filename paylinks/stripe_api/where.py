"""Where the configured key acts: its Stripe account and mode, remembered by the key's hash."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.settings import Settings
from paylinks.store.tables import stripe_key_accounts
from paylinks.stripe_api.gateway import StripeContext, StripeGateway


def stripe_where(engine: Engine, gateway: StripeGateway, settings: Settings) -> StripeContext:
    """The account and mode the configured key acts in; remembered by the key's hash, so a run
    with nothing to do asks Stripe nothing."""
    # The key names the account; the API base tells one Stripe (or emulator) from another.
    # A connected account (`Stripe-Account`) is part of where: one key acts in many of them.
    where_to = f"{settings.stripe_api_base or 'stripe'}\n{gateway.api_key}"
    if gateway.account:
        where_to += f"\n{gateway.account}"
    digest = hashlib.sha256(where_to.encode()).hexdigest()
    with engine.connect() as connection:
        known = (
            connection.execute(
                sa.select(stripe_key_accounts).where(stripe_key_accounts.c.key_sha256 == digest)
            )
            .mappings()
            .first()
        )
    if known is not None:
        return StripeContext(account=known["stripe_account"], livemode=bool(known["livemode"]))
    context = gateway.context()
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(stripe_key_accounts).values(
                    key_sha256=digest, stripe_account=context.account, livemode=context.livemode
                )
            )
    except sa.exc.IntegrityError:
        pass  # another run recorded the same key a moment ago
    return context
