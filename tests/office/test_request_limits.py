"""What the office accepts before it reads a request: a body of at most 1 MiB on every route
(refused with 413 as it streams in, or at once when Content-Length says so), the webhook's
signature before its body, and the headers every answer carries (Permissions-Policy; HSTS when a
proxy we are told of says the request came over https)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import stripe_signed_headers
from tests.office.conftest import WEBHOOK_SECRET, csrf_of

MIB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)
HUGE = 150 * MIB
# Loopback socket buffers hold a few MiB: a server that stops reading leaves the client stuck far below this.
UNREAD = 32 * MIB


class Stream:
    """A body of `total` bytes sent in chunks as the server takes them (chunked, no Content-Length),
    counting how many the client managed to hand over."""

    def __init__(self, total: int = HUGE, first: bytes = b"") -> None:
        self.total = total
        self.first = first
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        if self.first:
            self.sent += len(self.first)
            yield self.first
        while self.sent < self.total:
            self.sent += len(CHUNK)
            yield CHUNK


def post_stream(url: str, stream: Stream, headers: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = httpx.post(url, content=iter(stream), headers=headers, timeout=60)
    return answer, time.monotonic() - started


def test_an_unsigned_stream_to_the_webhook_is_refused_before_its_body_is_read(office):
    stream = Stream()
    answer, took = post_stream(f"{office.url}/stripe/webhook", stream, {"content-type": "application/json"})
    assert answer.status_code == 400 and "Stripe-Signature" in answer.json()["detail"]
    assert stream.sent < UNREAD, f"the office read {stream.sent // MIB} MiB of an unsigned request"
    assert took < 5


def test_a_signed_stream_over_a_mebibyte_is_refused_as_it_arrives(office):
    stream = Stream(first=b'{"id": "evt_big", "type": "charge.succeeded", "pad": "')
    headers = stripe_signed_headers("whatever the body", WEBHOOK_SECRET)  # checked only once it is read
    answer, took = post_stream(f"{office.url}/stripe/webhook", stream, headers)
    assert answer.status_code == 413 and "1 MiB" in answer.json()["detail"]
    assert stream.sent < UNREAD, f"the office read {stream.sent // MIB} MiB before refusing"
    assert took < 5


def test_a_signed_body_of_two_mebibytes_is_refused_413(office):
    payload = json.dumps({"id": "evt_big", "type": "charge.succeeded", "pad": "x" * (2 * MIB)})
    answer = httpx.post(
        f"{office.url}/stripe/webhook",
        content=payload,
        headers=stripe_signed_headers(payload, WEBHOOK_SECRET),
        timeout=30,
    )
    assert answer.status_code == 413 and "1 MiB" in answer.json()["detail"]


def test_every_page_refuses_a_body_over_a_mebibyte(office):
    with office.client() as client:
        token = csrf_of(client.get("/login").text)
        declared = client.post(
            "/login", data={"csrf_token": token, "email": "a@b.example", "pad": "x" * (2 * MIB)}
        )
        assert declared.status_code == 413
        assert "text/html" in declared.headers["content-type"] and "too large" in declared.text
        stream = Stream(first=f"csrf_token={token}&email=a%40b.example&pad=".encode())
        started = time.monotonic()
        streamed = client.post(
            "/login",
            content=iter(stream),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert streamed.status_code == 413 and "too large" in streamed.text
        assert stream.sent < UNREAD and time.monotonic() - started < 5
        assert client.get("/login").status_code == 200  # a fresh request after the refusal is served


@pytest.mark.parametrize("path", ["/login", "/healthz", "/static/office.css", "/t/no-such-club"])
def test_every_answer_carries_a_permissions_policy_and_no_hsts_over_plain_http(office, path):
    answer = httpx.get(f"{office.url}{path}", headers={"x-forwarded-proto": "https"}, timeout=30)
    policy = answer.headers.get("permissions-policy", "")
    assert "camera=()" in policy and "geolocation=()" in policy and "payment=()" in policy
    # Not behind a proxy we were told of: X-Forwarded-Proto is anyone's say-so.
    assert "strict-transport-security" not in answer.headers


def test_behind_the_proxy_https_answers_carry_hsts(office, use_settings):
    from office.server import OfficeServer
    from tests.helpers import current_settings

    use_settings(office_behind_proxy=True)
    with OfficeServer(current_settings()) as server:
        over_https = httpx.get(f"{server.url}/login", headers={"x-forwarded-proto": "https"}, timeout=30)
        over_http = httpx.get(f"{server.url}/login", headers={"x-forwarded-proto": "http"}, timeout=30)
    assert over_https.headers["strict-transport-security"].startswith("max-age=")
    assert "permissions-policy" in over_https.headers
    assert "strict-transport-security" not in over_http.headers
