"""The retry rule of every I/O task: retry only what a later try may fix."""

from __future__ import annotations

from typing import Any

from paylinks.messaging.transports import MailDeliveryError
from paylinks.stripe_api.gateway import is_transient


def is_worth_retrying(error: BaseException) -> bool:
    """A later try may succeed: Stripe's 429/5xx/network, a mail server's "try later", a dropped line."""
    if isinstance(error, MailDeliveryError):
        return not error.permanent
    return is_transient(error) or isinstance(error, (ConnectionError, TimeoutError))


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn` of every I/O task: retry only what a later try may fix."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # the result itself could not be read: do not guess, do not retry
        return False
    return isinstance(error, BaseException) and is_worth_retrying(error)
