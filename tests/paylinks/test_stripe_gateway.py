"""The Stripe gateway's pure parts: which failures are worth another try, and the pacer."""

from __future__ import annotations

import pytest
import stripe

from paylinks.errors import StripeKeyRejectedError
from paylinks.settings import Settings
from paylinks.stripe_api.gateway import (
    StripeGateway,
    StripeNotFoundError,
    StripeRequestError,
    StripeTransientError,
    is_transient,
)
from paylinks.stripe_api.pacers import RateLimiter

KEY = "sk_test_gateway_unit_4242"
RETRIES = 3


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def gateway(waits: list[float]) -> StripeGateway:
    """A gateway whose waits are recorded, not slept; no request here reaches the network."""
    settings = Settings(
        stripe_api_base="http://127.0.0.1:9",
        stripe_api_key=KEY,
        stripe_max_retries=RETRIES,
        stripe_max_rps=100,
    )
    return StripeGateway(settings, sleep=waits.append)


def failing(*errors: Exception, then: object = None):
    """A request that raises each error in turn, then returns `then`; counts its calls."""
    remaining = list(errors)
    calls = []

    def request():
        calls.append(1)
        if remaining:
            raise remaining.pop(0)
        return then

    request.calls = calls
    return request


TRANSIENT = {
    "429 rate limited": stripe.RateLimitError("Too many requests", http_status=429),
    "409 lock timeout": stripe.InvalidRequestError("Request conflicts", None, http_status=409),
    "500 server error": stripe.APIError("Internal error", http_status=500),
    "503 unavailable": stripe.APIError("Service unavailable", http_status=503),
    "connection refused": stripe.APIConnectionError("Could not connect"),
}

REFUSED = {
    "400 invalid request": (
        stripe.InvalidRequestError("No such price", "price", http_status=400),
        StripeRequestError,
    ),
    "402 card error": (
        stripe.CardError("Declined", None, "card_declined", http_status=402),
        StripeRequestError,
    ),
    "403 permission": (stripe.PermissionError("Not allowed", http_status=403), StripeRequestError),
    "404 not found": (
        stripe.InvalidRequestError("No such payment link", "id", http_status=404),
        StripeNotFoundError,
    ),
    "400 idempotency mismatch": (
        stripe.IdempotencyError(
            "Keys for idempotent requests can only be used with the same parameters", http_status=400
        ),
        StripeRequestError,
    ),
}


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failures_are_retried_until_one_succeeds(gateway, waits, error):
    request = failing(error, error, then="plink_1")
    assert gateway.call("minting a link", request) == "plink_1"
    assert len(request.calls) == 3 and gateway.retries == 2
    assert all(0 <= wait <= 8.0 for wait in waits)


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failures_give_up_after_the_configured_retries(gateway, error):
    request = failing(*[error] * (RETRIES + 5))
    # A connection that never opens names Stripe's address instead (the URL and its setting).
    expected = (
        "cannot reach Stripe at"
        if isinstance(error, stripe.APIConnectionError)
        else f"Stripe kept failing minting a link after {RETRIES + 1} tries"
    )
    with pytest.raises(StripeTransientError, match=expected) as raised:
        gateway.call("minting a link", request)
    assert len(request.calls) == RETRIES + 1
    assert is_transient(raised.value)


@pytest.mark.parametrize(("error", "kind"), REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_request_is_not_retried_and_says_what_stripe_said(gateway, error, kind):
    request = failing(error)
    with pytest.raises(kind, match="Stripe refused reading payment link plink_1") as raised:
        gateway.call("reading payment link plink_1", request)
    assert len(request.calls) == 1 and gateway.retries == 0
    assert not is_transient(raised.value)
    assert str(error.user_message or error._message) in str(raised.value)


def test_a_rejected_key_stops_at_once_and_never_shows_the_key(gateway):
    error = stripe.AuthenticationError(f"Invalid API Key provided: {KEY}", http_status=401)
    request = failing(error)
    with pytest.raises(StripeKeyRejectedError) as raised:
        gateway.call("reading the Stripe account", request)
    assert len(request.calls) == 1
    assert KEY not in str(raised.value) and "PAYLINKS_STRIPE_API_KEY" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is not None  # cause hidden
    assert not is_transient(raised.value)


@pytest.mark.parametrize(
    "error", [TRANSIENT["500 server error"], TRANSIENT["429 rate limited"]], ids=["5xx", "429"]
)
def test_backoff_is_full_jitter_that_grows_with_each_attempt_up_to_eight_seconds(gateway, error):
    base = 0.5 if isinstance(error, stripe.RateLimitError) else 0.25
    for attempt in range(1, 12):
        ceiling = min(8.0, base * 2 ** (attempt - 1))
        waits = [gateway._backoff(attempt, error) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2  # spread over the whole window, not stuck near zero


class FakeClock:
    """Time that moves only when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_permits_are_evenly_spaced_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    granted = []
    for _ in range(25):
        limiter.acquire()
        granted.append(clock.now)
    gaps = [round(b - a, 9) for a, b in zip(granted, granted[1:], strict=False)]
    assert gaps == [0.1] * 24
    # Never more than `rate` permits in any one-second window.
    assert max(sum(1 for t in granted if start <= t < start + 1) for start in granted) == 10


def test_an_idle_pacer_saves_up_no_burst():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 60  # a minute with no calls
    limiter.acquire()
    limiter.acquire()
    assert clock.slept == [0.25]


def test_the_first_permit_is_immediate_and_a_slow_caller_never_waits():
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
        clock.now += 1.0  # each call takes longer than the interval
    assert clock.slept == []
