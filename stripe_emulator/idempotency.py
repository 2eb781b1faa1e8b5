"""Idempotency keys with Stripe's semantics.

The first response to a POST carrying `Idempotency-Key` is stored with a fingerprint of the
request (method, path, params). The same key with the same request replays that response; with
a different request it is an `idempotency_error` (400); while the first request is still running
it is a 409 conflict. Keys are scoped per API key, as Stripe scopes them per account; the store
holds a digest of the API key, never the key, so a state file written from it holds no key.

Only successful responses are stored: an error releases the key so a corrected or retried
request runs for real. (Stripe also stores errors raised once an endpoint has started executing;
the emulator's handlers fail only on validation, which Stripe does not store either.)
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from .errors import EmulatorError

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]
    request_id: str


@dataclass
class _KeyRecord:
    fingerprint: str
    response: StoredResponse | None = None  # None while the first request is in flight


def request_fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    return json.dumps([method.upper(), path, params], sort_keys=True, separators=(",", ":"))


def _scope(api_key: str) -> str:
    """What the store keeps of an API key: enough to tell keys apart, nothing to act with."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


class IdempotencyStore:
    """Stored responses by (API key, idempotency key), guarded by the emulator's lock."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._records: dict[tuple[str, str], _KeyRecord] = {}  # (digest of API key, key) → record

    def snapshot(self) -> list[list[Any]]:
        """The answered keys as JSON-ready rows (call with the lock held); keys in flight are left
        out, as their request's answer never reached anyone."""
        return [
            [scope, key, record.fingerprint, stored.status_code, stored.body, stored.request_id]
            for (scope, key), record in self._records.items()
            if (stored := record.response) is not None
        ]

    def restore(self, rows: list[list[Any]]) -> None:
        """Take back the rows of `snapshot()` (call with the lock held)."""
        self._records = {
            (scope, key): _KeyRecord(fingerprint, StoredResponse(status_code, body, request_id))
            for scope, key, fingerprint, status_code, body, request_id in rows
        }

    def forget(self) -> None:
        """Drop every stored key, as Stripe prunes keys after about 24 hours."""
        with self._lock:
            self._records.clear()

    def begin(self, api_key: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim `key` for this request, or return the response to replay.

        Raises the Stripe errors for a key reused with other params, or still in flight.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise EmulatorError(
                400,
                f"Idempotency keys must be at most {MAX_KEY_LENGTH} characters long.",
                type="idempotency_error",
            )
        with self._lock:
            record = self._records.get((_scope(api_key), key))
            if record is None:
                self._records[(_scope(api_key), key)] = _KeyRecord(fingerprint)
                return None
            if record.fingerprint != fingerprint:
                raise EmulatorError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            if record.response is None:
                raise EmulatorError(
                    409,
                    "There is currently another in-progress request using this Idempotency-Key (that probably "
                    "means you submitted twice, and the other request is still going through): "
                    f"'{key}'. Please try again later.",
                    type="idempotency_error",
                )
            return record.response

    def complete(self, api_key: str, key: str, response: StoredResponse) -> None:
        with self._lock:
            self._records[(_scope(api_key), key)].response = response

    def release(self, api_key: str, key: str) -> None:
        """Forget a claimed key whose request failed, so a retry executes."""
        with self._lock:
            self._records.pop((_scope(api_key), key), None)
