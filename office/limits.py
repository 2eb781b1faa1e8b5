"""How much of a request the office reads: at most `MAX_BODY_BYTES` of body on every route.

A request whose Content-Length says more is refused (413) before the app sees it; a body sent
without one (chunked) is counted as it arrives, and the read that passes the limit raises
`BodyTooLarge`, a 413 the app answers like any other HTTP error. An answer sent before the
request's body was read to its end closes the connection, so the server never reads (or waits
for) the rest of a body nobody wanted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024  # Stripe's events are a few KiB; the office's forms are smaller still
TOO_LARGE = "This request is too large: the office accepts at most 1 MiB."


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, when it has a valid one."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


@dataclass
class _Reading:
    """How much of one request's body has arrived, and whether its answer has started."""

    bytes: int = 0
    done: bool = True
    started: bool = False


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, answered by `refuse` (the app's error page or JSON)
    when Content-Length says so up front, and by the app itself (BodyTooLarge) while one streams in."""

    def __init__(
        self,
        app: ASGIApp,
        refuse: Callable[[Scope, Receive, Send], Awaitable[None]],
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.refuse = refuse
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        has_body = (length or 0) > 0 or any(name == b"transfer-encoding" for name, _ in scope["headers"])
        read = _Reading(done=not has_body)

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                read.bytes += len(message.get("body", b""))
                read.done = not message.get("more_body", False)
                if read.bytes > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                read.started = True
                if not read.done:  # the rest of the body stays unread: end the connection with the answer
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        if length is not None and length > self.max_bytes:
            await self.refuse(scope, receive, closing_send)
            return
        try:
            await self.app(scope, counted_receive, closing_send)
        except BodyTooLarge:
            if read.started:
                raise
            await self.refuse(scope, receive, closing_send)  # it escaped the app's own handler
