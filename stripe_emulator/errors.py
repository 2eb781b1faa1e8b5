"""Stripe-shaped errors: raised anywhere in the emulator, rendered once by the app.

Stripe answers every failure with `{"error": {"type", "message", "code"?, "param"?}}` and an
HTTP status; the `stripe` SDK picks its exception class from that status and `type`, so these
must match what Stripe sends for the SDK to raise the same exceptions it would in production.
"""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """One Stripe API error: HTTP status plus the fields of Stripe's `error` object."""

    def __init__(
        self,
        http_status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - Stripe's own field name
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def to_body(self) -> dict[str, Any]:
        """The JSON body Stripe would send; optional fields are left out when unset, as Stripe does."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def resource_missing(
    kind: str, object_id: str, *, param: str = "id", http_status: int = 404
) -> EmulatorError:
    """Stripe's answer for an id that names nothing: 404 on the path, 400 when it is a parameter."""
    return EmulatorError(http_status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def parameter_missing(param: str) -> EmulatorError:
    return EmulatorError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def parameter_unknown(param: str) -> EmulatorError:
    return EmulatorError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def parameter_invalid(param: str, message: str, *, code: str | None = None) -> EmulatorError:
    return EmulatorError(400, message, code=code, param=param)


def parameter_unsupported(param: str, what_is_supported: str) -> EmulatorError:
    """A parameter real Stripe accepts but the emulator does not model.

    Ignoring it would quietly give a different result from Stripe's, so the caller hears about it.
    """
    return EmulatorError(
        400,
        f"The local Stripe emulator does not support `{param}`: {what_is_supported}",
        code="parameter_unknown",
        param=param,
    )
