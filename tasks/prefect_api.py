"""One Prefect API client per process and API address, opened on first use and kept.

Opening a client costs tens of milliseconds of CPU (its HTTP pool and TLS context) where a call on
an open one costs one or two: the pacer, the fan-out and the office's pages each used to open one
per call, which on a busy machine was most of what reading a limit or a run cost.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

_clients: dict[str | None, SyncPrefectClient] = {}
_lock = threading.Lock()


def prefect_client() -> SyncPrefectClient:
    """The open client for the Prefect API this process talks to now (PREFECT_API_URL, or the
    ephemeral API when it is unset). Safe to share between threads, as its HTTP client is."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    api = get_current_settings().api.url
    with _lock:
        client = _clients.get(api)
        if client is None:
            client = _clients[api] = get_client(sync_client=True).__enter__()
        return client


def _close_all() -> None:
    with _lock:
        while _clients:
            _, client = _clients.popitem()
            try:
                client.__exit__(None, None, None)
            except Exception:  # at exit, a server already gone is no news
                pass


atexit.register(_close_all)


# A command that runs and exits starts its own ephemeral Prefect API when PREFECT_API_URL is unset.
# Its task-run recorder flushes every `flush_interval` seconds, and when the process exits during a
# flush, Prefect cancels it and prints an error with a traceback (nothing is lost: the final flush
# at shutdown records the batch). Such an API records task runs when a batch fills and at exit.
ONE_SHOT_FLUSH_SECONDS = 3600.0


@contextmanager
def one_shot_api() -> Iterator[None]:
    """For a command that runs and exits: an ephemeral API it starts records task runs in batches
    and at exit, so its exit never interrupts a flush. A Prefect server of its own is left as set."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(
        updates={PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL: ONE_SHOT_FLUSH_SECONDS}
    ):
        yield
