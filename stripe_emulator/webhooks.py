"""Webhook delivery as Stripe does it: each event POSTed to an endpoint, signed, retried on failure.

The body is the event's JSON; `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" keyed with the endpoint secret>` lets the receiver check it with
`stripe.Webhook.construct_event`. Delivery runs on one background thread, so the API call that
caused an event never waits for it; a non-2xx answer or a connection error is retried with
exponential backoff up to `max_attempts`, and other events are delivered meanwhile (Stripe does
not promise order either). Every attempt is recorded for `GET /_emulator/webhook_deliveries`.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass(frozen=True)
class WebhookConfig:
    """Where and how to deliver events. The secret is Stripe's `whsec_…` endpoint secret."""

    url: str
    secret: str = field(repr=False)  # never shown, not even in a repr
    max_attempts: int = 5
    backoff_seconds: float = 1.0  # before the 2nd attempt; doubled before each later one
    timeout_seconds: float = 5.0

    def validate(self) -> None:
        """Raise ValueError naming the first setting that makes no sense."""
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {self.url!r}")
        if not self.secret:
            raise ValueError("a webhook url needs a webhook secret (whsec_...) to sign events with")
        if self.max_attempts < 1:
            raise ValueError(f"webhook max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_seconds < 0 or self.timeout_seconds <= 0:
            raise ValueError("webhook backoff must be >= 0 and timeout > 0 seconds")


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """Stripe's `Stripe-Signature` value for `payload` sent at `timestamp`."""
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class _Delivery:
    event_id: str
    event_type: str
    account: str | None
    payload: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "pending"  # pending → delivered | failed

    def report(self) -> dict[str, Any]:
        return {
            "event": self.event_id,
            "type": self.event_type,
            "account": self.account,
            "status": self.status,
            "attempts": [dict(attempt) for attempt in self.attempts],
        }


class WebhookDispatcher:
    """Delivers events to one endpoint from a daemon thread; `stop()` ends it."""

    def __init__(self, config: WebhookConfig, on_delivered: Callable[[str], None] | None = None) -> None:
        config.validate()
        self.config = config
        self._on_delivered = on_delivered
        self._condition = threading.Condition()
        self._due: list[tuple[float, int, _Delivery]] = []  # heap of (when, tie-breaker, delivery)
        self._sequence = itertools.count()
        self._deliveries: list[_Delivery] = []
        self._in_flight = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def enqueue(self, event: dict[str, Any]) -> None:
        """Schedule `event` for delivery now; never blocks on the network."""
        delivery = _Delivery(
            event_id=event["id"],
            event_type=event["type"],
            account=event.get("account"),
            payload=json.dumps(event, indent=2),
        )
        with self._condition:
            self._deliveries.append(delivery)
            heapq.heappush(self._due, (time.monotonic(), next(self._sequence), delivery))
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._run, name="stripe-emulator-webhooks", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def deliveries(self) -> list[dict[str, Any]]:
        """Every event handed over so far, oldest first, with its attempts."""
        with self._condition:
            return [delivery.report() for delivery in self._deliveries]

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until nothing is pending (delivered or given up); False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._due or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=self.config.timeout_seconds) as client:
            while True:
                delivery = self._next_due()
                if delivery is None:
                    return
                attempt = self._attempt(client, delivery)
                self._record(delivery, attempt)

    def _next_due(self) -> _Delivery | None:
        with self._condition:
            while not self._stopping:
                if self._due:
                    wait = self._due[0][0] - time.monotonic()
                    if wait <= 0:
                        self._in_flight += 1
                        return heapq.heappop(self._due)[2]
                    self._condition.wait(wait)
                else:
                    self._condition.wait()
            return None

    def _attempt(self, client: httpx.Client, delivery: _Delivery) -> dict[str, Any]:
        timestamp = int(time.time())  # wall time: receivers check it against their own clock
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(delivery.payload, self.config.secret, timestamp),
            "User-Agent": USER_AGENT,
        }
        try:
            response = client.post(self.config.url, content=delivery.payload.encode(), headers=headers)
        except httpx.HTTPError as error:
            return {"at": timestamp, "status": None, "error": f"{type(error).__name__}: {error}"}
        return {"at": timestamp, "status": response.status_code, "error": None}

    def _record(self, delivery: _Delivery, attempt: dict[str, Any]) -> None:
        delivered = attempt["status"] is not None and 200 <= attempt["status"] < 300
        with self._condition:
            self._in_flight -= 1
            delivery.attempts.append(attempt)
            if delivered:
                delivery.status = "delivered"
            elif len(delivery.attempts) >= self.config.max_attempts:
                delivery.status = "failed"
            else:
                delay = self.config.backoff_seconds * 2 ** (len(delivery.attempts) - 1)
                heapq.heappush(self._due, (time.monotonic() + delay, next(self._sequence), delivery))
            self._condition.notify_all()
        if delivered and self._on_delivered is not None:
            self._on_delivered(delivery.event_id)
