"""Running the emulator: in a background thread for tests and the demo, or in the foreground for the CLI.

Both keep uvicorn quiet (warnings only, no access log) and leave the process's logging setup
alone, so the emulator adds no noise to the demo's output. With a state file (`state=PATH`) the
emulator comes back as it was, on the port its links point at unless told another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from .app import create_app
from .faults import FaultConfig
from .persistence import state_file
from .state import Emulator
from .webhooks import WebhookConfig

logger = logging.getLogger(__name__)

_STARTUP_TIMEOUT_SECONDS = 10.0
_SHUTDOWN_TIMEOUT_SECONDS = 5.0
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


class EmulatorServer:
    """The emulator on a real loopback port, served by uvicorn in a daemon thread.

    `port=0` picks a free port; `url` is the bound address once started. Use as a context
    manager, or call `start()` and `stop()`. With `webhook_url` and `webhook_secret`, every event
    is also POSTed there, signed, from a background thread (retried `webhook_max_attempts` times,
    `webhook_backoff_seconds` apart and doubling).

    `state` is a file the state is kept in (read at once, written after every change; see
    `persistence.py`), or None / `:memory:` to keep nothing. `port=None` is the port the kept
    links point at, or a free one.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        latency_ms: int = 0,
        rate_limit_rps: float | None = None,
        fail_rate: float = 0.0,
        api_key: str | None = None,
        seed: int | None = None,
        link_create_rps: float | None = None,
        account_id: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_max_attempts: int = WebhookConfig.max_attempts,
        webhook_backoff_seconds: float = WebhookConfig.backoff_seconds,
        state: str | os.PathLike[str] | None = None,
    ) -> None:
        self.emulator = _emulator(
            FaultConfig(
                latency_ms=latency_ms,
                rate_limit_rps=rate_limit_rps,
                fail_rate=fail_rate,
                seed=seed,
                link_create_rps=link_create_rps,
            ),
            api_key=api_key,
            account_id=account_id,
            webhooks=_webhook_config(
                webhook_url, webhook_secret, webhook_max_attempts, webhook_backoff_seconds
            ),
            state=state,
        )
        self.host = host
        self.port = (remembered_port(self.emulator) or 0) if port is None else port
        self._server: _StoppableUvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("EmulatorServer is not running: call start() or use it as a context manager")
        # A wildcard bind is reached through loopback; links minted from it must be followable.
        host = "127.0.0.1" if self.host in _WILDCARD_HOSTS else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            raise RuntimeError("EmulatorServer is already running")
        # Bind here rather than in uvicorn so the real port is known before the thread starts.
        self._socket = _bound_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        self.emulator.base_url = self.url
        self._server = _StoppableUvicorn(_quiet_config(create_app(self.emulator)), self.emulator)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="stripe-emulator", daemon=True
        )
        self._thread.start()
        self._wait_until_serving()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=_SHUTDOWN_TIMEOUT_SECONDS)
        if self._socket is not None:
            self._socket.close()
        self.emulator.close()
        self.emulator.keep()  # what only reads changed (request counts, webhook deliveries)
        self._server = self._thread = self._socket = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_until_serving(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"Stripe emulator failed to start on {self.host}:{self.port}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Stripe emulator did not start within {_STARTUP_TIMEOUT_SECONDS:.0f}s")
            time.sleep(0.01)


class _StoppableUvicorn(uvicorn.Server):
    """uvicorn that stops as soon as `request_stop` is called from another thread, and expires the
    emulator's checkout sessions whose time is up about once a second.

    Plain uvicorn notices `should_exit` on its next 0.1 s tick; tests start and stop a server per
    test, so waking the loop at once is worth it. Ticks still run, to keep the Date header fresh.
    The sweep is how Stripe's background expiry looks here: `checkout.session.expired` reaches a
    webhook endpoint without anyone reading the session (reads expire due sessions first anyway).
    """

    _TICK_SECONDS = 0.1
    _TICKS_PER_SWEEP = 10

    def __init__(self, config: uvicorn.Config, emulator: Emulator) -> None:
        super().__init__(config)
        self.emulator = emulator

    async def on_tick(self, counter: int) -> bool:
        if counter % self._TICKS_PER_SWEEP == 0:
            await asyncio.to_thread(self._sweep)
        return await super().on_tick(counter)

    def _sweep(self) -> None:
        try:
            if self.emulator.expire_due_sessions():
                self.emulator.keep()
        except Exception:  # the sweep must never take the server down; the next one tries again
            logger.exception("local Stripe emulator failed to expire checkout sessions")

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Made before `started` turns true, so `request_stop` always finds them.
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        await super().startup(sockets=sockets)

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), timeout=self._TICK_SECONDS)

    def request_stop(self) -> None:
        self.should_exit = True
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may close between the check and the call
                loop.call_soon_threadsafe(self._stop_requested.set)


def serve(
    host: str,
    port: int,
    latency_ms: int = 0,
    rate_limit_rps: float | None = None,
    fail_rate: float = 0.0,
    api_key: str | None = None,
    link_create_rps: float | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    state: str | os.PathLike[str] | None = None,
) -> None:
    """Serve the emulator in the foreground until interrupted (`paylinks stripe-emulator --port`)."""
    emulator = _emulator(
        FaultConfig(
            latency_ms=latency_ms,
            rate_limit_rps=rate_limit_rps,
            fail_rate=fail_rate,
            link_create_rps=link_create_rps,
        ),
        api_key=api_key,
        account_id=None,
        webhooks=_webhook_config(
            webhook_url, webhook_secret, WebhookConfig.max_attempts, WebhookConfig.backoff_seconds
        ),
        state=state,
    )
    public_host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    emulator.base_url = f"http://{public_host}:{port}"
    try:
        _StoppableUvicorn(_quiet_config(create_app(emulator), host=host, port=port), emulator).run()
    finally:
        emulator.close()
        emulator.keep()


def remembered_port(emulator: Emulator) -> int | None:
    """The port of the url the emulator's kept links were minted on (None for a new emulator)."""
    try:
        return urlsplit(emulator.base_url).port
    except ValueError:
        return None


def _emulator(
    faults: FaultConfig,
    *,
    api_key: str | None,
    account_id: str | None,
    webhooks: WebhookConfig | None,
    state: str | os.PathLike[str] | None,
) -> Emulator:
    faults.validate()
    if webhooks is not None:
        webhooks.validate()
    emulator = Emulator(faults=faults, api_key=api_key, account_id=account_id, webhooks=webhooks)
    kept = state_file(state)
    if kept is not None:
        try:
            kept.load_into(emulator, account_id=account_id)
        except BaseException:
            emulator.close()  # no webhook thread outlives an emulator that never started
            raise
    return emulator


def _webhook_config(
    url: str | None, secret: str | None, max_attempts: int, backoff_seconds: float
) -> WebhookConfig | None:
    """Webhook delivery settings, or None without a url; a url without a secret is refused."""
    if url is None:
        if secret is not None:
            raise ValueError("a webhook secret was given without a webhook url to deliver to")
        return None
    return WebhookConfig(
        url=url, secret=secret or "", max_attempts=max_attempts, backoff_seconds=backoff_seconds
    )


def _quiet_config(app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,  # leave the host process's logging configuration untouched
        lifespan="off",
        timeout_graceful_shutdown=2,
    )


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose protocol says TCP,
    # and without it every response waits ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
