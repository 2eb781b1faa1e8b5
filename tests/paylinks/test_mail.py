"""Mail transports against real receivers: the outbox folder, and an aiosmtpd server on loopback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from paylinks.messaging.render import Brand, OpenItem, ParentBalance, build_message, render_email
from paylinks.messaging.transports import (
    MailDeliveryError,
    OutboxTransport,
    SmtpTransport,
    UnsafeLinkError,
    check_links_mailable,
    is_stripe_hosted,
    transport_from_settings,
)
from paylinks.settings import Settings, SmtpSecurity

BRAND = Brand("Riverside FC", "treasurer@riverside.example", "#0a7d4f", None)
SMTP_USER = "club-mailer"
SMTP_PASSWORD = "hunter2-Sup3r-s3cret"


def make_message(to_address: str, parent_name: str = "Jane Lee", player: str = "Ava Lee"):
    item = OpenItem(player, "Spring season fees", 12000, "https://buy.stripe.com/test_spring")
    balance = ParentBalance(1, parent_name, to_address, (item,))
    rendered = render_email("outstanding_balance", brand=BRAND, balance=balance)
    return build_message(
        rendered,
        sender="paylinks <billing@paylinks.example>",
        to_name=parent_name,
        to_address=to_address,
        reply_to=BRAND.reply_to_email,
    )


# --- outbox ------------------------------------------------------------------------------


def test_outbox_writes_one_readable_eml_per_message_and_an_index(tmp_path):
    outbox_dir = tmp_path / "outbox"
    messages = [make_message(f"parent{n}@example.com", player=f"Player <{n}>") for n in range(3)]
    with OutboxTransport(outbox_dir) as outbox:
        for message in messages:
            outbox.send(message)

    files = sorted(outbox_dir.glob("*.eml"))
    assert len(files) == 3
    assert not [p for p in outbox_dir.iterdir() if p.name.endswith(".tmp")]
    index = (outbox_dir / "index.html").read_text(encoding="utf-8")
    for path in files:
        assert re.fullmatch(r"\d{8}-\d{6}-\d{6}-\d{4}-parent\d-example-com\.eml", path.name)
        assert f'href="{path.name}"' in index
        with path.open("rb") as file:
            received = BytesParser(policy=policy.default).parse(file)
        sent = next(
            m for m in messages if m["To"].addresses[0].addr_spec == received["To"].addresses[0].addr_spec
        )
        assert received["Subject"] == sent["Subject"]
        received_parts = {part.get_content_type(): part.get_content() for part in received.iter_parts()}
        sent_parts = {part.get_content_type(): part.get_content() for part in sent.iter_parts()}
        assert received_parts.keys() == {"text/plain", "text/html"}
        for content_type, content in sent_parts.items():
            assert received_parts[content_type].replace("\r\n", "\n") == content.replace("\r\n", "\n")
    # Newest first, and the subject (with its escaped player name) is listed.
    assert index.index(files[2].name) < index.index(files[0].name)
    assert "Riverside FC: you have $120.00 outstanding" in index


def test_outbox_is_safe_to_share_between_threads(tmp_path):
    messages = [make_message(f"parent{n}@example.com") for n in range(20)]
    with OutboxTransport(tmp_path) as outbox, ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(outbox.send, messages))

    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 20
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{path.name}"' in index for path in files)


def test_outbox_index_escapes_what_it_shows(tmp_path):
    with OutboxTransport(tmp_path) as outbox:
        outbox.send(make_message("a@example.com", parent_name="<script>alert(1)</script>"))
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in index
    assert "&lt;script&gt;" in index


# --- SMTP server on loopback -------------------------------------------------------------


class RecordingHandler:
    """Accepts mail like a real server, remembering each delivery and which connection it
    came on; recipients listed in `refusals` get that reply instead."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, list[str], bytes]] = []
        self.connections: set[tuple[str, int]] = set()
        self.refusals: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.connections.add(session.peer)
        self.deliveries.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"

    @property
    def recipients(self) -> list[str]:
        return [rcpt for _, rcpts, _ in self.deliveries for rcpt in rcpts]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_server(handler: RecordingHandler, port: int | None = None, **smtp_options):
    # server_hostname avoids aiosmtpd's socket.getfqdn(), which can stall on DNS.
    controller = Controller(
        handler, hostname="127.0.0.1", port=port or free_port(), server_hostname="mail.test", **smtp_options
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def smtp_transport(controller: Controller, **options) -> SmtpTransport:
    return SmtpTransport("127.0.0.1", controller.port, local_hostname="client.test", timeout_s=5, **options)


def only_the_club_mailer(server, session, envelope, mechanism, auth_data):
    valid = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=valid, handled=False)


@pytest.fixture(scope="module")
def tls_certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, so TLS is verified for real in the tests."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paylinks test SMTP")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_tls_context(tls_certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_certificate)
    return context


def client_tls_context(tls_certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_certificate[0]))


def all_text(error: BaseException) -> str:
    return str(error) + repr(error) + "".join(traceback.format_exception(error))


@pytest.mark.slow
def test_smtp_sends_many_messages_over_one_connection():
    handler = RecordingHandler()
    with smtp_server(handler) as server, smtp_transport(server) as transport:
        for n in range(3):
            transport.send(make_message(f"parent{n}@example.com"))

    assert handler.recipients == ["parent0@example.com", "parent1@example.com", "parent2@example.com"]
    assert len(handler.connections) == 1
    assert all(mail_from == "billing@paylinks.example" for mail_from, _, _ in handler.deliveries)
    assert b"Bcc" not in handler.deliveries[0][2]


@pytest.mark.slow
def test_smtp_a_blind_copy_is_delivered_and_never_shown():
    """paylinks' own messages never carry a Bcc; one that does (a message built elsewhere) still
    goes as the standard library sends it: to the copy's address too, without the header."""
    handler = RecordingHandler()
    message = make_message("parent@example.com")
    message["Bcc"] = "auditor@club.example"
    with smtp_server(handler) as server, smtp_transport(server) as transport:
        transport.send(message)

    assert handler.recipients == ["parent@example.com", "auditor@club.example"]
    assert b"auditor@club.example" not in handler.deliveries[0][2]


@pytest.mark.slow
def test_smtp_refused_recipient_fails_alone_and_permanently():
    handler = RecordingHandler()
    handler.refusals["gone@example.com"] = "550 5.1.1 No such mailbox"
    with smtp_server(handler) as server, smtp_transport(server) as transport:
        transport.send(make_message("first@example.com"))
        with pytest.raises(MailDeliveryError) as refused:
            transport.send(make_message("gone@example.com"))
        transport.send(make_message("last@example.com"))

    assert refused.value.permanent is True
    assert refused.value.recipient == "gone@example.com"
    assert "550" in str(refused.value) and "No such mailbox" in str(refused.value)
    assert handler.recipients == ["first@example.com", "last@example.com"]
    assert len(handler.connections) == 1


@pytest.mark.slow
def test_smtp_busy_mailbox_is_a_temporary_failure():
    handler = RecordingHandler()
    handler.refusals["busy@example.com"] = "450 4.2.1 Mailbox busy, try later"
    with smtp_server(handler) as server, smtp_transport(server) as transport:
        with pytest.raises(MailDeliveryError) as busy:
            transport.send(make_message("busy@example.com"))
    assert busy.value.permanent is False


@pytest.mark.slow
@pytest.mark.parametrize("checked_before_sending", [False, True], ids=["resend", "noop-check"])
def test_smtp_reconnects_after_the_server_restarts(monkeypatch, checked_before_sending):
    if checked_before_sending:
        # Pretend the connection sat idle long enough to be checked with NOOP first.
        monkeypatch.setattr("paylinks.messaging.transports._IDLE_CHECK_S", 0.0)
    first, second = RecordingHandler(), RecordingHandler()
    port = free_port()
    with smtp_transport_on(port) as transport:
        with smtp_server(first, port):
            transport.send(make_message("before@example.com"))
        with smtp_server(second, port):
            transport.send(make_message("after@example.com"))

    assert first.recipients == ["before@example.com"]
    assert second.recipients == ["after@example.com"]


@contextmanager
def smtp_transport_on(port: int):
    with SmtpTransport("127.0.0.1", port, local_hostname="client.test", timeout_s=5) as transport:
        yield transport


@pytest.mark.slow
def test_smtp_unreachable_server_is_a_temporary_failure():
    with smtp_transport_on(free_port()) as transport, pytest.raises(MailDeliveryError) as unreachable:
        transport.send(make_message("a@example.com"))
    assert unreachable.value.permanent is False


@pytest.mark.slow
def test_smtp_starttls_with_login(tls_certificate):
    handler = RecordingHandler()
    server_options = {
        "tls_context": server_tls_context(tls_certificate),
        "require_starttls": True,
        "authenticator": only_the_club_mailer,
        "auth_required": True,
    }
    with smtp_server(handler, **server_options) as server:
        transport = smtp_transport(
            server,
            security=SmtpSecurity.starttls,
            ssl_context=client_tls_context(tls_certificate),
            username=SMTP_USER,
            password=SMTP_PASSWORD,
        )
        with transport:
            transport.send(make_message("tls@example.com"))
    assert handler.recipients == ["tls@example.com"]


@pytest.mark.slow
def test_smtp_starttls_refuses_an_untrusted_certificate(tls_certificate):
    handler = RecordingHandler()
    with smtp_server(
        handler, tls_context=server_tls_context(tls_certificate), require_starttls=True
    ) as server:
        # The default context trusts only real CAs, so a self-signed server is refused.
        with (
            smtp_transport(server, security="starttls") as transport,
            pytest.raises(MailDeliveryError) as untrusted,
        ):
            transport.send(make_message("tls@example.com"))
    assert untrusted.value.permanent is True
    assert handler.recipients == []


@pytest.mark.slow
def test_smtp_implicit_tls(tls_certificate):
    handler = RecordingHandler()
    with smtp_server(handler, ssl_context=server_tls_context(tls_certificate)) as server:
        with smtp_transport(
            server, security="ssl", ssl_context=client_tls_context(tls_certificate)
        ) as transport:
            transport.send(make_message("ssl@example.com"))
    assert handler.recipients == ["ssl@example.com"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_plain_login_and_a_wrong_password_never_shows_it():
    handler = RecordingHandler()
    server_options = {"authenticator": only_the_club_mailer, "auth_required": True, "auth_require_tls": False}
    with smtp_server(handler, **server_options) as server:
        with smtp_transport(server, username=SMTP_USER, password=SMTP_PASSWORD) as transport:
            transport.send(make_message("authed@example.com"))
            assert SMTP_PASSWORD not in repr(transport)

        wrong_password = "Wr0ng-but-still-secret"
        with smtp_transport(server, username=SMTP_USER, password=wrong_password) as transport:
            with pytest.raises(MailDeliveryError) as rejected:
                transport.send(make_message("nobody@example.com"))

    assert handler.recipients == ["authed@example.com"]
    assert rejected.value.permanent is True
    assert "535" in str(rejected.value)
    assert wrong_password not in all_text(rejected.value)


# --- configuration -----------------------------------------------------------------------


def test_transport_from_settings_defaults_to_the_outbox(tmp_path):
    transport = transport_from_settings(Settings(email_transport="outbox", outbox_dir=tmp_path / "out"))
    assert isinstance(transport, OutboxTransport)
    assert transport.directory == tmp_path / "out"


def test_transport_from_settings_builds_smtp_without_showing_the_password():
    settings = Settings(
        email_transport="smtp",
        smtp_host="smtp.example.com",
        smtp_port=587,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_security="starttls",
    )
    transport = transport_from_settings(settings)
    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port, transport.security) == (
        "smtp.example.com",
        587,
        SmtpSecurity.starttls,
    )
    assert SMTP_PASSWORD not in repr(transport)


# --- link safety -------------------------------------------------------------------------

EMULATOR_LINK = "http://127.0.0.1:12111/pay/plink_123?token=abc"
STRIPE_LINK = "https://buy.stripe.com/test_14k5nB0"


@pytest.mark.parametrize(
    ("url", "hosted"),
    [
        (STRIPE_LINK, True),
        ("https://stripe.com/pay", True),
        ("http://buy.stripe.com/x", False),
        ("https://buy.stripe.com.evil.example/x", False),
        ("https://buy.stripe.com@evil.example/x", False),
        ("https://evilstripe.com/x", False),
        ("https://buy.stripe.com:8443/x", False),
        ("http://localhost:12111/x", False),
        (EMULATOR_LINK, False),
        ("not a url", False),
    ],
)
def test_is_stripe_hosted(url, hosted):
    assert is_stripe_hosted(url) is hosted


def test_emulator_link_to_a_parent_over_smtp_is_refused_naming_only_the_host():
    smtp = SmtpTransport("127.0.0.1", 25)
    with pytest.raises(UnsafeLinkError) as unsafe:
        check_links_mailable(
            [STRIPE_LINK, EMULATOR_LINK],
            transport=smtp,
            recipient_is_test_address=False,
            allow_test_links=False,
        )
    assert unsafe.value.host == "127.0.0.1:12111"
    assert "127.0.0.1:12111" in str(unsafe.value)
    assert "token=abc" not in str(unsafe.value)


@pytest.mark.parametrize(
    ("transport_kind", "test_address", "allow_test_links", "urls"),
    [
        ("smtp", True, False, [EMULATOR_LINK]),  # the admin's own test address
        ("smtp", False, True, [EMULATOR_LINK]),  # explicitly allowed
        ("outbox", False, False, [EMULATOR_LINK]),  # nothing leaves the machine
        ("smtp", False, False, [STRIPE_LINK]),  # real Stripe links go to parents
    ],
)
def test_mailable_links(tmp_path, transport_kind, test_address, allow_test_links, urls):
    transport = OutboxTransport(tmp_path) if transport_kind == "outbox" else SmtpTransport("127.0.0.1", 25)
    check_links_mailable(
        urls, transport=transport, recipient_is_test_address=test_address, allow_test_links=allow_test_links
    )
