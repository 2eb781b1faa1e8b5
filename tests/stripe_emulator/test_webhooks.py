"""Signed webhook delivery, checked by a receiver on loopback that verifies with the real SDK."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from paylinks.settings import PROJECT_ROOT
from stripe_emulator import EmulatorServer
from tests.helpers import PAYLINKS
from tests.stripe_emulator.support import API_KEY, create_link, create_price, pay, sdk_client

pytestmark = pytest.mark.slow

SECRET = "whsec_emulatorTestSecret0001"
FAST_RETRIES = {"webhook_max_attempts": 3, "webhook_backoff_seconds": 0.05}


class Receiver:
    """An endpoint that checks each delivery's signature as paylinks would, and keeps the events.

    `fail_first` answers that many requests with a 500 before accepting any.
    """

    def __init__(self, secret: str = SECRET, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.answers: list[int] = []
        self.events: list[stripe.Event] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                payload = self.rfile.read(int(self.headers["Content-Length"])).decode()
                status = receiver.receive(payload, self.headers.get("Stripe-Signature", ""))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, payload: str, signature: str) -> int:
        with self._arrived:
            if len(self.answers) < self.fail_first:
                status = 500
            else:
                try:
                    self.events.append(stripe.Webhook.construct_event(payload, signature, self.secret))
                    status = 200
                except (stripe.SignatureVerificationError, ValueError):
                    status = 400
            self.answers.append(status)
            self._arrived.notify_all()
            return status

    def wait_for(self, count: int, timeout: float = 10.0) -> list[stripe.Event]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.events) < count and time.monotonic() < deadline:
                self._arrived.wait(deadline - time.monotonic())
            return list(self.events)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def deliveries(server: EmulatorServer) -> list[dict[str, Any]]:
    return httpx.get(f"{server.url}/_emulator/webhook_deliveries").json()["data"]


def test_every_event_arrives_signed_and_verifiable(receiver):
    with EmulatorServer(webhook_url=receiver.url, webhook_secret=SECRET, **FAST_RETRIES) as server:
        client = sdk_client(server)
        link = create_link(client, create_price(client).id)
        session = pay(link.url).json()

        expected = [event.id for event in reversed(client.v1.events.list(params={"limit": 100}).data)]
        received = receiver.wait_for(len(expected))

        assert sorted(event.id for event in received) == sorted(expected)
        completed = next(event for event in received if event.type == "checkout.session.completed")
        assert completed.data.object.id == session["id"]
        assert server.emulator.webhooks.wait_until_idle(5)
        assert {delivery["status"] for delivery in deliveries(server)} == {"delivered"}
        assert client.v1.events.retrieve(completed.id).pending_webhooks == 0


def test_a_receiver_with_another_secret_refuses_every_delivery():
    stranger = Receiver(secret="whsec_someoneElsesSecret")
    try:
        with EmulatorServer(webhook_url=stranger.url, webhook_secret=SECRET, **FAST_RETRIES) as server:
            sdk_client(server).v1.products.create(params={"name": "Fee"})
            assert server.emulator.webhooks.wait_until_idle(5)
            (delivery,) = deliveries(server)
            assert delivery["status"] == "failed" and [a["status"] for a in delivery["attempts"]] == [400] * 3
            assert stranger.events == []
    finally:
        stranger.close()


def test_a_refused_delivery_is_retried_with_backoff_until_accepted():
    flaky = Receiver(fail_first=2)
    try:
        with EmulatorServer(webhook_url=flaky.url, webhook_secret=SECRET, **FAST_RETRIES) as server:
            product = sdk_client(server).v1.products.create(params={"name": "Fee"})
            (event,) = flaky.wait_for(1)

            assert event.data.object.id == product.id
            assert server.emulator.webhooks.wait_until_idle(5)
            (delivery,) = deliveries(server)
            assert delivery["status"] == "delivered" and delivery["event"] == event.id
            attempts = delivery["attempts"]
            assert [attempt["status"] for attempt in attempts] == [500, 500, 200]
    finally:
        flaky.close()


def test_an_unreachable_endpoint_never_slows_the_api_and_gives_up_after_a_few_tries():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}/stripe/webhook"
    with EmulatorServer(
        webhook_url=url, webhook_secret=SECRET, webhook_max_attempts=3, webhook_backoff_seconds=1.0
    ) as server:
        client = sdk_client(server)

        started = time.monotonic()
        client.v1.products.create(params={"name": "Fee"})
        assert time.monotonic() - started < 1.5  # the call did not wait for delivery (3 s of backoff)

        assert server.emulator.webhooks.wait_until_idle(10)
        (delivery,) = deliveries(server)
        assert delivery["status"] == "failed" and len(delivery["attempts"]) == 3
        assert all(
            attempt["status"] is None and "Connect" in attempt["error"] for attempt in delivery["attempts"]
        )
        assert client.v1.events.list().data[0].pending_webhooks == 1


def test_a_connected_accounts_events_carry_the_account(receiver):
    with EmulatorServer(webhook_url=receiver.url, webhook_secret=SECRET, **FAST_RETRIES) as server:
        account_id = httpx.post(f"{server.url}/_emulator/accounts").json()["id"]
        sdk_client(server, stripe_account=account_id).v1.products.create(params={"name": "Fee"})

        (event,) = receiver.wait_for(1)

        assert (event.type, event.account) == ("product.created", account_id)


def test_a_webhook_url_without_a_secret_is_refused():
    with pytest.raises(ValueError, match="secret"):
        EmulatorServer(webhook_url="http://127.0.0.1:9/hook")


def test_the_command_delivers_webhooks_signed_with_the_secret_from_settings(receiver):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = PAYLINKS + [
        *("stripe-emulator", "--port", str(port), "--state", ":memory:"),
        *("--webhook-url", receiver.url, "--link-create-rate", "25"),
    ]
    # The secret comes from the process's settings, kept off its command line.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PAYLINKS_", "PREFECT_"))}
    env["PAYLINKS_STRIPE_WEBHOOK_SECRET"] = SECRET
    process = subprocess.Popen(
        command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # the `paylinks` command imports Prefect: slow on a busy machine
        while True:
            try:
                httpx.get(f"{url}/_emulator/counts")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the emulator command did not start"
                time.sleep(0.1)
        client = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
        product = client.v1.products.create(params={"name": "Fee"})

        (event,) = receiver.wait_for(1)

        assert (event.type, event.data.object.id) == ("product.created", product.id)
        assert httpx.get(f"{url}/_emulator/faults").json()["link_create_rps"] == 25
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
