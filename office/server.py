"""Serving the office with uvicorn: in the foreground (`paylinks serve`) or in a background thread
(tests, the benchmark).

X-Forwarded-* headers are believed only with PAYLINKS_OFFICE_BEHIND_PROXY: uvicorn's own proxy
header handling is off, and the office reads them itself when told.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

from office.app import create_app
from paylinks.settings import Settings


def _config(app: Callable[..., Any], host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted. ConfigurationError (one line) when the office cannot run."""
    uvicorn.Server(_config(create_app(settings), host, port)).run()


class OfficeServer:
    """The office on a loopback port in a daemon thread; `url` once started."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(settings)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> OfficeServer:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(_config(self.app, self.host, self.port))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="office", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the office did not start on {self.url}")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
