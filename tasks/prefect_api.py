"""One Prefect API client per process and API address, opened on first use and kept.

Opening a client costs tens of milliseconds of CPU (its HTTP pool and TLS context) where a call on
an open one costs one or two: the pacer, the fan-out and the office's pages each used to open one
per call, which on a busy machine was most of what reading a limit or a run cost.
"""

from __future__ import annotations

import atexit
import threading
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
