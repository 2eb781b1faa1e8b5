"""How a Stripe call fails, as errors a person can act on: a refusal (4xx), a failure a later try may
fix (429, 5xx, network), and Stripe out of reach, which names its URL and the setting that names it.
`check_stripe_reachable` finds the last before a command starts any work.
"""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlsplit

import stripe

from paylinks.errors import PaylinksError
from paylinks.settings import Settings


class StripeTransientError(PaylinksError):
    """Stripe kept failing in a way a later try may fix (429, 5xx, network)."""


class StripeUnreachableError(StripeTransientError):
    """No connection to Stripe's API at all: its URL and the setting that names it, in one line."""

    exit_code = 2

    def __init__(self, settings: Settings, reason: str, doing: str = ""):
        url = stripe_api_url(settings)
        where = (
            "set by PAYLINKS_STRIPE_API_BASE"
            if settings.stripe_api_base
            else "real Stripe, as PAYLINKS_STRIPE_API_BASE is unset"
        )
        super().__init__(f"cannot reach Stripe at {url} ({where}){doing}: {reason}")


def stripe_api_url(settings: Settings) -> str:
    """Where calls go: the emulator PAYLINKS_STRIPE_API_BASE names, else Stripe's own API."""
    return (settings.stripe_api_base or stripe.DEFAULT_API_BASE).rstrip("/")


def check_stripe_reachable(settings: Settings) -> None:
    """Fail before any work when nothing answers at Stripe's address: one TCP connection, no request
    (nothing reaches Stripe's logs or limits). Skipped when a proxy would carry the calls."""
    parts = urlsplit(stripe_api_url(settings))
    host = parts.hostname or ""
    # Only a proxy for this scheme counts: getproxies() reads every *_PROXY variable, so even
    # PAYLINKS_OFFICE_BEHIND_PROXY would otherwise look like one.
    proxies = urllib.request.getproxies()
    if (proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host):
        return  # the SDK goes through the proxy; a direct connection says nothing
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=min(settings.stripe_timeout_s, 10.0)) as probe:
            if probe.getsockname() == probe.getpeername():  # a free local port "answered" itself
                raise ConnectionRefusedError()
    except OSError as error:
        raise StripeUnreachableError(settings, network_reason(error)) from None


def network_reason(error: BaseException) -> str:
    """A connection failure in words, without the library's internals."""
    if isinstance(error, socket.gaierror):
        return "no such host"
    if isinstance(error, ConnectionRefusedError):
        return "nothing listens there (connection refused)"
    if isinstance(error, TimeoutError | socket.timeout):
        return "no answer (timed out)"
    return getattr(error, "strerror", None) or type(error).__name__


class StripeRequestError(PaylinksError):
    """Stripe refused the request itself (4xx): trying again would fail the same way. `code` and
    `param` are Stripe's (`resource_missing`, `line_items[0][price]`), when it gave them."""

    def __init__(self, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param

    @property
    def names_a_missing_object(self) -> bool:
        """Stripe has no object the request names (a price, a product) in this account and mode."""
        return self.code == "resource_missing"


class StripeNotFoundError(StripeRequestError):
    """Stripe has no such object in this account and mode (404): a finding, not a crash."""


def connection_reason(error: stripe.APIConnectionError) -> str:
    """What went wrong with the connection, from the cause the SDK wraps (never its long message)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and not cause.__cause__ and not cause.__context__:
            return network_reason(cause)
        cause = cause.__cause__ or cause.__context__
    text = str(error)
    if "Connection refused" in text:
        return "nothing listens there (connection refused)"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "no answer (timed out)"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "no such host"
    return "the connection failed"
