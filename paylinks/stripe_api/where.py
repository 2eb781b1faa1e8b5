"""Where the configured key acts: its Stripe account and mode, as Stripe says now, and what
paylinks remembers of it (by the key's hash) for the pacing of calls that need no answer.

A remembered account is never trusted against Stripe's word: a run confirms it once
(`stripe_where`: one `GET /v1/account`), and when the key now acts elsewhere (the emulator came
up as another account, the key was rotated to another one) the memory follows and the context
says where it was (`StripeContext.remembered`), so the run can say so in one line.

The backfill alone may take an answer confirmed a little while ago (`trust_for`, the setting
`stripe_account_recheck_minutes`, default 60): a nightly run with nothing to do then asks Stripe
nothing at all. A real key's account never changes; a local Stripe that came back empty answers
404 for the links it lost, and the run re-mints those at once (see `billing.retire`). Every other
part (lookup, the office, the emails, reconcile) asks each time.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from paylinks.settings import Settings
from paylinks.store.tables import stripe_key_accounts, utcnow
from paylinks.stripe_api.gateway import StripeContext, StripeGateway


def key_digest(gateway: StripeGateway, settings: Settings) -> str:
    """What the memory is keyed by: the API base, the key and the connected account (if any),
    hashed (the key is never stored)."""
    # The key names the account; the API base tells one Stripe (or emulator) from another.
    # A connected account (`Stripe-Account`) is part of where: one key acts in many of them.
    where_to = f"{settings.stripe_api_base or 'stripe'}\n{gateway.api_key}"
    if gateway.account:
        where_to += f"\n{gateway.account}"
    return hashlib.sha256(where_to.encode()).hexdigest()


def _recalled(engine: Engine, digest: str) -> StripeContext | None:
    known = _recalled_at(engine, digest)
    return known[0] if known else None


def _recalled_at(engine: Engine, digest: str) -> tuple[StripeContext, datetime] | None:
    with engine.connect() as connection:
        known = (
            connection.execute(
                sa.select(stripe_key_accounts).where(stripe_key_accounts.c.key_sha256 == digest)
            )
            .mappings()
            .first()
        )
    if known is None:
        return None
    context = StripeContext(account=known["stripe_account"], livemode=bool(known["livemode"]))
    return context, known["seen_at"]


def _remember(engine: Engine, digest: str, context: StripeContext, *, replace: bool) -> None:
    values = dict(stripe_account=context.account, livemode=context.livemode, seen_at=utcnow())
    try:
        with engine.begin() as connection:
            if replace:
                connection.execute(
                    sa.update(stripe_key_accounts)
                    .where(stripe_key_accounts.c.key_sha256 == digest)
                    .values(**values)
                )
            else:
                connection.execute(sa.insert(stripe_key_accounts).values(key_sha256=digest, **values))
    except sa.exc.IntegrityError:
        pass  # another run recorded the same key a moment ago


def stripe_where(
    engine: Engine, gateway: StripeGateway, settings: Settings, trust_for: timedelta | None = None
) -> StripeContext:
    """The account and mode the configured key acts in, as Stripe answers now (one request per
    gateway; the gateway keeps the answer). The memory follows Stripe's answer; when it said
    something else, the context returned carries it as `remembered` (see `moved_words`).
    `trust_for`: an answer Stripe gave this recently is taken without asking again."""
    digest = key_digest(gateway, settings)
    recalled = _recalled_at(engine, digest)
    if trust_for is not None and recalled is not None:
        context, seen_at = recalled
        if _aware(seen_at) > utcnow() - trust_for:
            return context
    answered = gateway.context()
    known = recalled[0] if recalled else None
    if known == answered:
        if trust_for is not None:
            _remember(engine, digest, answered, replace=True)  # confirmed now: trusted for a while
        return answered
    _remember(engine, digest, answered, replace=known is not None)
    if known is None:
        return answered
    return dataclasses.replace(answered, remembered=known)


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they are stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def remembered_where(engine: Engine, gateway: StripeGateway, settings: Settings) -> StripeContext:
    """Where the key acted when a run last asked, without asking (only a key never seen asks
    once): enough to name the shared limit its calls are paced by, never to decide what a row
    is worth at Stripe (that is `stripe_where`'s)."""
    digest = key_digest(gateway, settings)
    known = _recalled(engine, digest)
    if known is not None:
        return known
    context = gateway.context()
    _remember(engine, digest, context, replace=False)
    return context
