"""Sessions and CSRF for the office: a signed cookie, and a token tied to it on every form.

The cookie holds no secret: the user's id, the session epoch it was signed for (bumped on logout
and password change), a random nonce and its issue time, signed with HMAC-SHA256 under a key
derived from the session secret. It is HttpOnly, SameSite=Lax, and Secure when the office is
reached over https (X-Forwarded-Proto is believed only when the office is told it is behind a
proxy). The CSRF token is an HMAC of the session's nonce under another derived key; a login
rotates the nonce, so a token seen before login is worthless after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from typing import cast

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE_NAME = "paylinks_office"
CSRF_FIELD = "csrf_token"
# Browsers remember for a year to come back over https only (sent only on a request that came over https).
HSTS = "max-age=31536000"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    user_id: int | None
    epoch: int
    nonce: str
    issued_at: int

    @classmethod
    def anonymous(cls) -> Session:
        return cls(None, 0, secrets.token_urlsafe(18), int(time.time()))

    def logged_in(self, user_id: int, epoch: int) -> Session:
        # A fresh nonce: a session id (and CSRF token) planted before login is useless after it.
        return replace(Session.anonymous(), user_id=user_id, epoch=epoch)


class SessionSigner:
    """Signs and checks session cookies and CSRF tokens with keys derived from one secret."""

    def __init__(self, secret: str, max_age_s: int) -> None:
        root = secret.encode("utf-8")
        self._cookie_key = hmac.new(root, b"paylinks-office-session", hashlib.sha256).digest()
        self._csrf_key = hmac.new(root, b"paylinks-office-csrf", hashlib.sha256).digest()
        self.max_age_s = max_age_s

    def dumps(self, session: Session) -> str:
        payload = _b64(
            json.dumps(
                {"u": session.user_id, "e": session.epoch, "n": session.nonce, "t": session.issued_at},
                separators=(",", ":"),
            ).encode()
        )
        signature = _b64(hmac.new(self._cookie_key, payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{signature}"

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a cookie this office signed and that has not expired; None otherwise."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        expected = _b64(hmac.new(self._cookie_key, payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(
                user_id=None if data["u"] is None else int(data["u"]),
                epoch=int(data["e"]),
                nonce=str(data["n"]),
                issued_at=int(data["t"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if time.time() - session.issued_at > self.max_age_s:
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return _b64(hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).digest())

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(
            cast(str, token).encode(), self.csrf_token(session).encode()
        )


class SessionState:
    """The request's session, which handlers may replace (login, logout)."""

    def __init__(self, session: Session, dirty: bool) -> None:
        self.session = session
        self.dirty = dirty

    def replace(self, session: Session) -> None:
        self.session = session
        self.dirty = True


def is_https(connection: HTTPConnection, behind_proxy: bool) -> bool:
    if behind_proxy:
        forwarded = connection.headers.get("x-forwarded-proto", "")
        if forwarded:
            return forwarded.split(",")[0].strip().lower() == "https"
    return connection.url.scheme == "https"


def client_address(connection: HTTPConnection, behind_proxy: bool) -> str:
    """Where the request came from: the peer, or (behind our proxy) the address the proxy saw."""
    if behind_proxy:
        forwarded = [part.strip() for part in connection.headers.get("x-forwarded-for", "").split(",")]
        # The last entry is the one our own proxy appended; earlier ones are the client's say-so.
        if forwarded and forwarded[-1]:
            return forwarded[-1][:100]
    return connection.client.host if connection.client else "unknown"


class SessionMiddleware:
    """Reads the session cookie into `request.state.office_session`, and writes it back when changed;
    adds `extra_headers` (the security headers) to every response, no-store to all but /static/, and
    Strict-Transport-Security to those of a request that came over https."""

    def __init__(
        self, app: ASGIApp, signer: SessionSigner, behind_proxy: bool, extra_headers: dict[str, str]
    ) -> None:
        self.app = app
        self.signer = signer
        self.behind_proxy = behind_proxy
        self.extra_headers = extra_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        session = self.signer.loads(connection.cookies.get(COOKIE_NAME))
        state = SessionState(session or Session.anonymous(), dirty=session is None)
        scope.setdefault("state", {})["office_session"] = state
        secure = is_https(connection, self.behind_proxy)

        cacheable = scope["path"].startswith("/static/")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.extra_headers.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("cache-control", "no-store")
                if secure:
                    headers.setdefault("strict-transport-security", HSTS)
            if message["type"] == "http.response.start" and state.dirty:
                headers = MutableHeaders(scope=message)
                cookie = (
                    f"{COOKIE_NAME}={self.signer.dumps(state.session)}; Path=/; HttpOnly; SameSite=Lax; "
                    f"Max-Age={self.signer.max_age_s}"
                )
                headers.append("set-cookie", cookie + ("; Secure" if secure else ""))
            await send(message)

        await self.app(scope, receive, send_with_cookie)
