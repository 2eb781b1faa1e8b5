"""Pacing calls to Stripe: its limits are per account and mode, so every gateway of a process
acting in the same account and mode shares one pacer (`LocalPacer`, at `PAYLINKS_STRIPE_MAX_RPS`,
and payment link creation also at `PAYLINKS_STRIPE_LINK_CREATE_RPS`). A `Pacer` passed to a
gateway instead (the Prefect tasks pass one over global concurrency limits, `tasks.pacing`)
shares the limit across processes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol

from paylinks.settings import Settings
from paylinks.stripe_api.keys import api_key


class RateLimiter:
    """A thread-safe pacer: hands out at most `rate` permits per second, evenly spaced.

    `reserve()` books the next slot and says how long to wait for it, so limiters can be shared
    by callers that sleep their own way (a test's fake sleep, say)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next_slot = clock()
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        """Hand out permits at `rate` from the next one on (the slot already booked stands)."""
        with self._lock:
            self.interval = 1.0 / rate

    def not_before(self, moment: float) -> None:
        """Hand out no further permit before `moment` (on this limiter's clock)."""
        with self._lock:
            self._next_slot = max(self._next_slot, moment)

    def reserve(self) -> float:
        with self._lock:
            now = self._clock()
            slot = max(self._next_slot, now)
            self._next_slot = slot + self.interval
        return slot - now

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)


# What a pacer is asked for: every request takes a "request" permit; creating a payment link
# also takes a "payment_link_create" one (Stripe limits link creation on its own, even in live mode).
REQUEST = "request"
PAYMENT_LINK_CREATE = "payment_link_create"
PACED_KINDS = (REQUEST, PAYMENT_LINK_CREATE)


class Pacer(Protocol):
    """Blocks until one more call of `kind` (REQUEST or PAYMENT_LINK_CREATE) may go to Stripe."""

    def acquire(self, kind: str) -> None: ...


# One RateLimiter per (account and mode, kind, rate) in this process: gateways are built per task
# call, and all of them acting in one account must share its limit.
_local_limiters: dict[tuple[str, str, float], RateLimiter] = {}
_local_limiters_lock = threading.Lock()


def local_limiter(where: str, kind: str, rate: float) -> RateLimiter:
    """The process-wide limiter of `kind` calls at `rate`/s for the account and mode `where` names."""
    key = (where, kind, float(rate))
    with _local_limiters_lock:
        limiter = _local_limiters.get(key)
        if limiter is None:
            limiter = _local_limiters[key] = RateLimiter(rate)
        return limiter


def pacing_key(settings: Settings, account: str | None) -> str:
    """Names the account and mode calls land in without asking Stripe: the API base, a hash of
    the key (one key acts in one account and mode) and the connected account, if any."""
    digest = hashlib.sha256(api_key(settings).encode()).hexdigest()[:16]
    return f"{settings.stripe_api_base or 'stripe'}|{digest}|{account or ''}"


class LocalPacer:
    """Paces one process: requests at `PAYLINKS_STRIPE_MAX_RPS`, link creations at
    `PAYLINKS_STRIPE_LINK_CREATE_RPS`, shared by every gateway of the process in the same
    account and mode. Other processes are not counted: see `tasks.pacing` for that."""

    def __init__(
        self, settings: Settings, account: str | None = None, sleep: Callable[[float], None] = time.sleep
    ):
        where = pacing_key(settings, account)
        self._limiters = {
            REQUEST: local_limiter(where, REQUEST, settings.stripe_max_rps),
            PAYMENT_LINK_CREATE: local_limiter(where, PAYMENT_LINK_CREATE, settings.stripe_link_create_rps),
        }
        self._sleep = sleep

    def acquire(self, kind: str) -> None:
        wait = self._limiters[kind].reserve()
        if wait > 0:
            self._sleep(wait)
