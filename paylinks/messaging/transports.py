"""Mail transports: how a built message leaves paylinks, behind one small interface.

`OutboxTransport` (the embedded default) writes each message as an `.eml` file, its HTML part
beside it, and an `index.html` showing them as a parent would see them (`outbox_index`);
`SmtpTransport` delivers over one reused SMTP connection.
`transport_from_settings` picks one from configuration, so callers never branch on it.
`check_links_mailable` is the guard that keeps local-emulator links away from real parents.
"""

from __future__ import annotations

import functools
import io
import itertools
import logging
import os
import re
import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.utils import getaddresses
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from paylinks.errors import PaylinksError
from paylinks.messaging.outbox_index import OutboxPages, entry_of, write_view
from paylinks.settings import EmailTransportName, Settings, SmtpSecurity

logger = logging.getLogger(__name__)


class MailDeliveryError(PaylinksError):
    """One message could not be delivered; `permanent` says whether retrying can help.

    The text never carries the SMTP password: it names the recipient and what the server said.
    """

    def __init__(self, recipient: str, *, permanent: bool, detail: str) -> None:
        self.recipient = recipient
        self.permanent = permanent
        self.detail = detail
        kind = "permanent" if permanent else "temporary"
        super().__init__(f"{kind} delivery failure to {recipient}: {detail}")


@runtime_checkable
class MailTransport(Protocol):
    """Somewhere to send built messages. Transports may also set `reaches_real_inboxes`
    (False for the outbox); one that does not is assumed to reach real people."""

    name: str

    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class TransportBase:
    """Shared plumbing: `with transport: ...` closes it at the end."""

    name = "base"
    reaches_real_inboxes = True

    def send(self, message: EmailMessage) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; sending again afterwards reopens them."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _recipient_addresses(message: Message) -> list[str]:
    fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    return [address for _, address in getaddresses(fields) if address]


def _recipient_label(message: Message) -> str:
    return ", ".join(_recipient_addresses(message)) or "(no recipient)"


# --- outbox ------------------------------------------------------------------------------


def _slug(text: str, *, max_length: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "no-recipient"


class OutboxTransport(TransportBase):
    """Writes each message to `<directory>/<YYYYmmdd-HHMMSS-micros>-<seq>-<recipient>.eml`, its HTML part
    beside it as `.html` (safe to view: no scripts), and keeps `<directory>/index.html` showing
    them, newest first (see `outbox_index`). Nothing leaves the machine."""

    name = "outbox"
    reaches_real_inboxes = False

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self._pages = OutboxPages(self.directory)

    def send(self, message: EmailMessage) -> None:
        data = message.as_bytes(policy=policy.SMTP)
        recipients = _recipient_addresses(message)
        slug = _slug(recipients[0] if recipients else "")
        with self._lock:
            self._pages.before_writing()
            path = self._write_eml(data, slug)
            viewable = write_view(self.directory, path.name, message)
            self._pages.added(entry_of(path.name, message), viewable=viewable)
            self._pages.rewrite()
        logger.info("wrote %s", path)

    def _write_eml(self, data: bytes, slug: str) -> Path:
        temporary = self.directory / f".{uuid.uuid4().hex}.tmp"
        temporary.write_bytes(data)
        # To the microsecond, so names sort in the order they were written, across processes too.
        now = datetime.now(UTC)
        stamp = f"{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}"
        try:
            while True:
                path = self.directory / f"{stamp}-{next(self._sequence):04d}-{slug}.eml"
                # link() publishes the complete file atomically like rename(), but refuses to
                # overwrite: another process writing the same outbox can never clobber a file.
                try:
                    os.link(temporary, path)
                    return path
                except FileExistsError:
                    continue
        finally:
            temporary.unlink()


# --- SMTP --------------------------------------------------------------------------------

# After this long unused, check the connection with NOOP before sending: servers drop idle
# clients, and noticing before a transaction starts avoids any chance of a half-sent message.
_IDLE_CHECK_S = 10.0


@functools.cache
def system_tls_context() -> ssl.SSLContext:
    """The system's trusted certificates, loaded once a process: loading them takes about 40 ms,
    which a blast paid for every batch's connection, over TLS or not."""
    return ssl.create_default_context()


class SmtpTransport(TransportBase):
    """Delivers over SMTP, opening one connection lazily and reusing it for every message.

    A dropped connection is reopened once and the message resent. Refused recipients and 5xx
    replies raise a permanent MailDeliveryError, 4xx replies and network trouble a temporary
    one. Safe to share between threads.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        security: SmtpSecurity | str = SmtpSecurity.none,
        timeout_s: float = 30.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.security = SmtpSecurity(security)
        self.timeout_s = timeout_s
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context  # the system's trusted certificates when None
        self._connection: smtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SmtpTransport({self.host}:{self.port}, security={self.security.value}, "
            f"username={self.username!r})"
        )

    def send(self, message: EmailMessage) -> None:
        recipient = _recipient_label(message)
        with self._lock:
            try:
                refused = self._send_reconnecting_once(message)
            except smtplib.SMTPRecipientsRefused as exc:
                # smtplib already reset the transaction; the connection stays good for the next.
                raise self._refused_error(exc.recipients) from None
            except (smtplib.SMTPException, OSError) as exc:
                self._drop_connection()
                raise self._delivery_error(recipient, exc) from exc
            self._last_used = time.monotonic()
        if refused:
            raise self._refused_error(refused)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                try:
                    connection.quit()
                except (smtplib.SMTPException, OSError):
                    connection.close()

    def _send_reconnecting_once(self, message: EmailMessage) -> dict:
        try:
            return _send_message(self._live_connection(), message)
        except smtplib.SMTPServerDisconnected:
            # The server closed our reused connection (idle timeout, restart): one fresh try.
            # If it dropped us after accepting the data, the parent gets a duplicate; that is
            # rare and better than a silently lost bill.
            logger.info("SMTP connection to %s:%s was closed; reconnecting", self.host, self.port)
            self._drop_connection()
            return _send_message(self._live_connection(), message)

    def _live_connection(self) -> smtplib.SMTP:
        if self._connection is not None and time.monotonic() - self._last_used > _IDLE_CHECK_S:
            if not self._answers_noop(self._connection):
                self._drop_connection()
        if self._connection is None:
            self._connection = self._connect()
            self._last_used = time.monotonic()
        return self._connection

    def _tls(self) -> ssl.SSLContext:
        return self._ssl_context or system_tls_context()

    @staticmethod
    def _answers_noop(connection: smtplib.SMTP) -> bool:
        try:
            code, _ = connection.noop()
        except (smtplib.SMTPException, OSError):
            return False
        return code == 250

    def _connect(self) -> smtplib.SMTP:
        if self.security is SmtpSecurity.ssl:
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, self.local_hostname, timeout=self.timeout_s, context=self._tls()
            )
        else:
            connection = smtplib.SMTP(self.host, self.port, self.local_hostname, timeout=self.timeout_s)
        try:
            connection.ehlo()
            if self.security is SmtpSecurity.starttls:
                connection.starttls(context=self._tls())
                connection.ehlo()
            if self.username:
                connection.login(self.username, self._password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _delivery_error(self, recipient: str, exc: BaseException) -> MailDeliveryError:
        if isinstance(exc, smtplib.SMTPResponseException):
            reply = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            permanent = exc.smtp_code >= 500
            detail = f"{self.host}:{self.port} replied {exc.smtp_code} {reply}"
        else:
            # Missing server features and failed certificate checks will not fix themselves.
            permanent = isinstance(exc, (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError))
            detail = f"{self.host}:{self.port}: {type(exc).__name__}: {exc}"
        return MailDeliveryError(recipient, permanent=permanent, detail=self._scrub(detail))

    def _refused_error(self, refused: dict) -> MailDeliveryError:
        details = "; ".join(
            f"{address} refused with {code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
            for address, (code, reply) in refused.items()
        )
        permanent = any(code >= 500 for code, _ in refused.values())
        return MailDeliveryError(", ".join(refused), permanent=permanent, detail=self._scrub(details))

    def _scrub(self, text: str) -> str:
        # Belt and braces: no server reply should echo the password, but it must never show.
        return text.replace(self._password, "***") if self._password else text


def _send_message(connection: smtplib.SMTP, message: EmailMessage) -> dict:
    """What `connection.send_message(message)` does, the envelope taken from the addresses the
    message's headers already hold: smtplib writes each address header out and parses it again
    (a tenth of a message's time). Anything but a plain message (headers holding no parsed
    addresses; a Sender, Bcc or Resent- header; an address that needs SMTPUTF8) goes through
    smtplib's own."""
    senders = message.get_all("From") or []
    recipients = (message.get_all("To") or []) + (message.get_all("Cc") or [])
    if (
        len(senders) != 1
        or not all(hasattr(header, "addresses") for header in (*senders, *recipients))
        or any(name in message for name in ("Sender", "Bcc", "Resent-Date"))
    ):
        return connection.send_message(message)
    from_addr = senders[0].addresses[0].addr_spec
    to_addrs = [address.addr_spec for header in recipients for address in header.addresses]
    if not all(address.isascii() for address in (from_addr, *to_addrs)):
        return connection.send_message(message)
    with io.BytesIO() as data:
        BytesGenerator(data, policy=message.policy).flatten(message, linesep="\r\n")
        return connection.sendmail(from_addr, to_addrs, data.getvalue())


def transport_from_settings(settings: Settings) -> MailTransport:
    """The transport the configuration asks for: the outbox folder by default, or SMTP."""
    if settings.email_transport is EmailTransportName.smtp:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            security=settings.smtp_security,
            timeout_s=settings.smtp_timeout_s,
        )
    return OutboxTransport(settings.outbox_dir)


# --- link safety -------------------------------------------------------------------------


class UnsafeLinkError(PaylinksError):
    """A link that is not on Stripe's own domain was about to be mailed to a real parent."""

    exit_code = 2  # a configuration problem: fix the Stripe setting or send to a test address

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"refusing to email a payment link on {host!r} to a real parent: only links on "
            "stripe.com may go out over SMTP. Send to a test address (test_email), or set "
            "PAYLINKS_ALLOW_TEST_LINKS=true if these links really are meant for parents."
        )


class UnreachableFamilyLinkError(PaylinksError):
    """A family page link a parent could not open (the office on this machine) was about to go out."""

    exit_code = 2

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"refusing to email parents a family page link on {host!r}, which only this machine can "
            "open: set PAYLINKS_OFFICE_URL to the office's public address (https://…), send to a test "
            "address (test_email), or set PAYLINKS_ALLOW_TEST_LINKS=true if this is meant"
        )


def check_family_links_mailable(
    urls: Iterable[str],
    *,
    transport: MailTransport,
    recipient_is_test_address: bool,
    allow_test_links: bool,
) -> None:
    """Raise UnreachableFamilyLinkError if a family page link on a loopback address (the default
    PAYLINKS_OFFICE_URL) would reach a real parent's inbox; the outbox, a test address and
    `allow_test_links` are always fine."""
    from paylinks.settings import is_loopback_host

    reaches_real_inboxes = getattr(transport, "reaches_real_inboxes", True)
    if not reaches_real_inboxes or recipient_is_test_address or allow_test_links:
        return
    for url in urls:
        if is_loopback_host(urlsplit(url).hostname):
            raise UnreachableFamilyLinkError(_host_of(url))


def is_stripe_hosted(url: str) -> bool:
    """True for https links on stripe.com or a subdomain (buy.stripe.com) on the default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    on_stripe = host == "stripe.com" or host.endswith(".stripe.com")
    return parts.scheme == "https" and on_stripe and port in (None, 443)


def _host_of(url: str) -> str:
    # Only the host: a full link could carry a token, and the host is what needs fixing.
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    return netloc or "(no host)"


def check_links_mailable(
    urls: Iterable[str],
    *,
    transport: MailTransport,
    recipient_is_test_address: bool,
    allow_test_links: bool,
) -> None:
    """Raise UnsafeLinkError if a non-Stripe link would reach a real parent's inbox.

    The outbox, a test address and `allow_test_links` are always fine.
    """
    reaches_real_inboxes = getattr(transport, "reaches_real_inboxes", True)
    if not reaches_real_inboxes or recipient_is_test_address or allow_test_links:
        return
    for url in urls:
        if not is_stripe_hosted(url):
            raise UnsafeLinkError(_host_of(url))
