"""Injected faults: latency, rate limiting and failed calls, so retry logic meets what Stripe does.

`FaultConfig` is the knob set (mutable: tests and `/_emulator/faults` change it live);
`FaultInjector` applies latency and failures to each `/v1` request, and each account counts its
own requests in `RateWindow`s, since Stripe's limits are per account. A failure either happens
before the request does anything (nothing written, like a refused connection) or, for writes,
after the write was committed and stored under its idempotency key (the response is lost on the
way back) — the case an idempotency key exists to make safe.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class FaultConfig:
    """What to inflict on `/v1` requests. A rate of None means no limit.

    `rate_limit_rps` caps each account's requests; `link_create_rps` separately caps each
    account's payment link creations, as Stripe limits some operations on their own.
    """

    latency_ms: int = 0
    rate_limit_rps: float | None = None
    fail_rate: float = 0.0
    seed: int | None = None
    link_create_rps: float | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first setting that makes no sense."""
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")
        for name in ("rate_limit_rps", "link_create_rps"):
            rate = getattr(self, name)
            if rate is not None and rate <= 0:
                raise ValueError(f"{name} must be > 0 (or None for no limit), got {rate}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be between 0.0 and 1.0, got {self.fail_rate}")


class FailurePoint(enum.Enum):
    BEFORE_HANDLING = "before_handling"
    AFTER_WRITE = "after_write"


class RateWindow:
    """Requests admitted in the last second, for one limit of one account."""

    WINDOW_SECONDS = 1.0

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._admitted_at: deque[float] = deque()

    def admit(self, limit: float | None) -> bool:
        """Count a request against the sliding one-second window; False means answer 429.

        Monotonic time, not the emulator clock: tests that move the clock to shape `created`
        timestamps must not freeze or flood the rate limiter.
        """
        now = time.monotonic()
        with self._lock:
            while self._admitted_at and now - self._admitted_at[0] >= self.WINDOW_SECONDS:
                self._admitted_at.popleft()
            if limit is not None and len(self._admitted_at) >= limit:
                return False
            self._admitted_at.append(now)
            return True


class FaultInjector:
    """Decides, per request, whether it fails and how long it waits, under the emulator's lock."""

    def __init__(self, current_config: Callable[[], FaultConfig], lock: threading.Lock) -> None:
        # A callable rather than the config itself, so replacing `emulator.faults` wholesale works too.
        self._current_config = current_config
        self._lock = lock
        self._random = random.Random()
        self._random_seed: object = object()  # a sentinel no real seed equals, to seed on first use

    def pick_failure(self, is_write: bool) -> FailurePoint | None:
        """Roll against `fail_rate`; half the failures of writes land after the write."""
        config = self._current_config()
        if config.fail_rate <= 0:
            return None
        with self._lock:
            if config.seed != self._random_seed:
                self._random = random.Random(config.seed)
                self._random_seed = config.seed
            roll = self._random.random()
        if roll >= config.fail_rate:
            return None
        # The lower half of the failing range fails early, the upper half late: one roll decides both.
        if is_write and roll >= config.fail_rate / 2:
            return FailurePoint.AFTER_WRITE
        return FailurePoint.BEFORE_HANDLING

    def latency_seconds(self) -> float:
        return max(self._current_config().latency_ms, 0) / 1000
