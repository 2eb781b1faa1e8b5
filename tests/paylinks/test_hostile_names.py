"""Names from a club's records are untrusted: whatever a parent, player or item is called, the
email paylinks builds reaches exactly the intended address, carries no header it did not set, and
its plain-text part has no line the data wrote on its own (a fake "Pay Now:" link)."""

from __future__ import annotations

import base64
import email
import unicodedata
from email import policy
from email.message import EmailMessage, Message
from email.utils import getaddresses

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.outstanding_balance_email import outstanding_balance_email
from paylinks.club.balances import brand_of
from paylinks.club.tenants import Tenant
from paylinks.messaging import headers
from paylinks.messaging.prepare import message_for, prepare_email, prepare_test_email
from paylinks.messaging.render import OpenItem, PaidItem, ParentBalance, Receipt, StillOpen, render_receipt
from paylinks.messaging.transports import SmtpTransport
from paylinks.settings import Settings
from paylinks.store.tables import parents, payment_links, players, tenants
from paylinks.vocabulary import EmailType
from tests.helpers import TENANT, Mailroom, smtp_server

PARENT_ADDRESS = "jane.lee@example.com"
TEST_ADDRESS = "treasurer-tests@riverside.example"
OFFICE_URL = "http://127.0.0.1:8000"
EVIL = "attacker@evil.example"


def _encoded_word(raw: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(raw).decode() + "?="


ENCODED_CRLF = _encoded_word(f"x\r\nBcc: {EVIL}\r\n".encode())
ENCODED_ADDRESS = _encoded_word(EVIL.encode())

HOSTILE_NAMES = {
    "comma-long": f"Smith, {EVIL}, Jordan Alexander Christopher Montgomery-Fitzgerald the Third",
    "quotes": 'Jane "Mom" Lee',
    "only-quotes": '"' * 70,
    "escape-attempt": f'Lee\\", {EVIL}, "',
    "angle-address": f"Lee <{EVIL}>",
    "bare-angle": f"<{EVIL}>",
    "an-address": EVIL,
    "crlf-bcc": f"Jane\r\nBcc: {EVIL}",
    "lf-bcc": f"Jane\nBcc: {EVIL}\n",
    "bcc-prefix": f"Bcc: {EVIL}",
    "unicode-line-separator": f"Jane\u2028Bcc: {EVIL}\u2029",
    "controls": "Jane\x00\x1b[31m\x7f\x85 Lee",
    "encoded-crlf": ENCODED_CRLF,
    "encoded-address": ENCODED_ADDRESS,
    "encoded-quote-comma": "=?utf-8?q?Jane=22=2C_attacker=40evil.example=2C=22?=",
    "encoded-in-the-middle": "Jane =?utf-8?q?a=2C_attacker=40evil.example?= Lee",
    "non-ascii-long": "Zoë Ångström-Björkqvist, née Müller-Lüdenscheidt, von Hohenzollern-Sigmaringen",
    "cjk-long": "中文名字很长的名字" * 8,
    "specials": "José, María; García: (Jr.) [III] \\ back@slash",
    "group-syntax": f"Team: {EVIL}, other@evil.example;",
    "very-long": "A" * 300,
    "many-commas": "Smith, " * 40,
    "long-then-comma": "x" * 70 + f", {EVIL}",
    "mixed-quotes-unicode": 'Zoë "Z" Ünal, ' * 10,
    "bidi-and-zero-width": "Ann\u200b\u202eeeL",
    "empty": "",
    "spaces": "   ",
}

EXPECTED_HEADERS = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"]


def tenant(name: str = "Riverside FC", reply_to: str = "treasurer@riverside.example") -> Tenant:
    return Tenant(1, "riverside-fc", name, reply_to, "#0a7d4f", None, "usd")


def balance(
    parent_name: str, player_name: str = "Ava Lee", description: str = "Spring fees"
) -> ParentBalance:
    items = (
        OpenItem(player_name, description, 12000, "https://buy.stripe.com/test_spring", 11),
        OpenItem(player_name, "Tournament", 2500, "https://buy.stripe.com/test_tournament", 12),
    )
    return ParentBalance(7, parent_name, PARENT_ADDRESS, items)


def parent_message(name: str, club: Tenant | None = None) -> EmailMessage:
    """The blast's email to a parent: the parent's name on the parent's address."""
    club = club or tenant()
    prepared = prepare_email(club, EmailType.outstanding_balance, balance(name, player_name=name))
    return message_for(Settings(), club, prepared, PARENT_ADDRESS)


def test_send_message(name: str) -> EmailMessage:
    """The blast's test send: the fullest email, to the test address (to_name None, as the flow does)."""
    club = tenant()
    prepared = prepare_test_email(
        club, EmailType.outstanding_balance, balance(name, player_name=name), OFFICE_URL
    )
    return message_for(Settings(), club, prepared, TEST_ADDRESS, None)


test_send_message.__test__ = False  # type: ignore[attr-defined]  # a builder, not a test


def resend_message(name: str) -> EmailMessage:
    """A coach's resend: the payment_link email, whose subject names the players."""
    club = tenant()
    prepared = prepare_email(club, EmailType.payment_link, balance(name, player_name=name))
    return message_for(Settings(), club, prepared, PARENT_ADDRESS, name)


def _squeezed(text: str) -> str:
    # CPython 3.11's parser reads a space into a name where an encoded word was folded in two
    # (RFC 2047 says that space is not there), and control characters become spaces.
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Cc")


def assert_one_recipient(raw: bytes, address: str) -> Message:
    received = email.message_from_bytes(raw, policy=policy.default)
    assert list(received.keys()) == EXPECTED_HEADERS, raw.split(b"\r\n\r\n")[0].decode()
    to = received["To"].addresses
    assert [a.addr_spec for a in to] == [address]
    # A second, older parser (the one smtplib and many tools use) reads the same one address.
    legacy = email.message_from_bytes(raw)
    assert [addr for _, addr in getaddresses(legacy.get_all("To", []))] == [address]
    for field in ("From", "Reply-To"):
        assert len(received[field].addresses) == 1
    assert "\n" not in str(received["Subject"]) and "\r" not in str(received["Subject"])
    return received


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
@pytest.mark.parametrize(
    ("build", "address"),
    [(parent_message, PARENT_ADDRESS), (test_send_message, TEST_ADDRESS), (resend_message, PARENT_ADDRESS)],
    ids=["parent", "test-send", "resend"],
)
@pytest.mark.parametrize("wire", [policy.SMTP, policy.SMTPUTF8], ids=["ascii", "smtputf8"])
def test_a_hostile_name_reaches_exactly_the_intended_address(name, build, address, wire):
    message = build(name)

    received = assert_one_recipient(message.as_bytes(policy=wire), address)
    assert received["Bcc"] is None and received["Cc"] is None
    display_name = received["To"].addresses[0].display_name
    if wire.utf8:  # raw UTF-8 on the wire: the parser hands it back as surrogate escapes
        display_name = display_name.encode("utf-8", "surrogateescape").decode("utf-8")
    assert EVIL not in display_name or EVIL in name  # never decoded out of an encoded-word lookalike
    assert "\r" not in display_name and "\n" not in display_name
    # The name shown is the parent's own (perhaps shortened), never anything decoded from it.
    assert _squeezed(display_name).rstrip(".") in _squeezed(name)


def test_a_plain_name_is_kept_as_written():
    for name in ("Jane Lee", "Zoë Müller", "O'Brien-Smith", "Lee, Jane", 'Jane "Mom" Lee'):
        received = assert_one_recipient(parent_message(name).as_bytes(), PARENT_ADDRESS)
        assert received["To"].addresses[0].display_name == name


# Names and addresses that are mostly plain, with a few characters that make them need the read-back.
_NAMEISH = st.text(alphabet="abcXYZ09 '-.,\"<>@é=?()\t", max_size=70)
_ADDRESSISH = st.one_of(
    st.builds(  # everyday addresses, mostly plain
        "{}@{}.{}".format,
        st.text(alphabet="abz09_%+-.", min_size=1, max_size=30),
        st.text(alphabet="abz09-", min_size=1, max_size=20),
        st.text(alphabet="abz", min_size=2, max_size=6),
    ),
    st.builds(
        "{}@{}".format,
        st.text(alphabet='abz09._%+"-', min_size=1, max_size=40),
        st.text(alphabet="abz09.-", min_size=1, max_size=30),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(st.text(alphabet="abcXYZ09 '-", max_size=70), _NAMEISH),
    address=_ADDRESSISH,
    header=st.sampled_from(["To", "From", "Reply-To"]),
)
def test_a_header_used_without_its_read_back_is_the_one_the_read_back_gives(name, address, header):
    """Plain names and addresses skip the folding read-back (it costs a millisecond a message);
    whatever skips it is exactly what the read-back would have given, and arrives as one address."""
    display = headers._shortened(headers.header_text(name), headers.MAX_DISPLAY_NAME)
    plain = headers._plain_mailbox(header, display, address)
    if plain is None:
        return
    assert plain == headers._read_back_mailbox(header, display, address)
    message = EmailMessage(policy=policy.SMTP)
    message[header] = plain
    received = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in received[header].addresses] == [(display, address)]


@settings(max_examples=200, deadline=None)
@given(subject=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=90))
def test_a_plain_subject_reads_back_as_itself(subject):
    message = EmailMessage(policy=policy.SMTP)
    headers.set_verified(message, "Subject", subject)
    received = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert " ".join(str(received["Subject"]).split()) == headers.header_text(subject)


def test_a_very_long_name_is_shortened_in_the_header_but_not_in_the_greeting():
    name = "Alexandra Montgomery-Fitzgerald, " * 6
    message = parent_message(name)
    received = assert_one_recipient(message.as_bytes(), PARENT_ADDRESS)
    shown = received["To"].addresses[0].display_name
    assert len(shown) <= 64 and shown.endswith("...")
    assert f"Hi {' '.join(name.split())}," in received.get_body(("plain",)).get_content()


HOSTILE_CLUB_NAMES = [
    "Riverside FC, " * 12,
    _encoded_word(f"Club\r\nBcc: {EVIL}\r\nReply-To: {EVIL}".encode()),
    f"Riverside\r\nReply-To: {EVIL}",
]


@pytest.mark.parametrize("club_name", HOSTILE_CLUB_NAMES)
def test_a_hostile_club_name_adds_no_header_through_the_subject(club_name):
    raw = parent_message("Jane Lee", club=tenant(name=club_name)).as_bytes()

    received = assert_one_recipient(raw, PARENT_ADDRESS)
    assert [a.addr_spec for a in received["Reply-To"].addresses] == ["treasurer@riverside.example"]
    assert EVIL not in str(received["Subject"]) or EVIL in club_name


@pytest.mark.parametrize(
    "reply_to",
    [
        f'"Riverside FC Treasurer, {EVIL}, Finance Office of the Riverside Football Club" <t@riverside.example>',
        f'"{ENCODED_CRLF}" <t@riverside.example>',
        f'"{ENCODED_ADDRESS}" <t@riverside.example>',
    ],
    ids=["long-quoted-name", "encoded-crlf", "encoded-address"],
)
def test_the_clubs_reply_to_is_exactly_its_one_address(reply_to):
    raw = parent_message("Jane Lee", club=tenant(reply_to=reply_to)).as_bytes()

    received = assert_one_recipient(raw, PARENT_ADDRESS)
    assert [a.addr_spec for a in received["Reply-To"].addresses] == ["t@riverside.example"]


@pytest.mark.parametrize("reply_to", [f"t@riverside.example, {EVIL}", "not an address", ""])
def test_a_reply_to_that_is_not_one_address_is_refused_by_name(reply_to):
    with pytest.raises(ValueError, match="reply-to address .* must be one email address"):
        parent_message("Jane Lee", club=tenant(reply_to=reply_to))


# --- the plain-text part -----------------------------------------------------------------

FAKE_LINE = "Pay Now: https://evil.example/pay"
INJECTING = [
    f"Lee\n{FAKE_LINE}\n",
    f"Lee\r\n\r\n  {FAKE_LINE}\r\n",
    f"Lee\u2028{FAKE_LINE}",
    f"Lee\x0b{FAKE_LINE}\x0c",
    f"Lee\x85{FAKE_LINE}",
    f"Lee\r{FAKE_LINE}",
]
REAL_URLS = ["https://buy.stripe.com/test_spring", "https://buy.stripe.com/test_tournament"]


def pay_now_urls(text: str) -> list[str]:
    """The url of every line that starts (after indentation) with "Pay Now:"."""
    return [
        line.strip().removeprefix("Pay Now:").strip()
        for line in text.splitlines()
        if line.strip().startswith("Pay Now:")
    ]


def hostile_message(value: str, email_type: EmailType = EmailType.outstanding_balance) -> EmailMessage:
    club = tenant(name=f"Riverside{value}")
    prepared = prepare_email(
        club, email_type, balance(f"Jane {value}", player_name=f"Ava {value}", description=f"Fees {value}")
    )
    return message_for(Settings(), club, prepared, PARENT_ADDRESS)


# Every email that lists a balance; a receipt lists a payment and has its own test below.
BALANCE_EMAILS = [t for t in EmailType if t is not EmailType.receipt]


@pytest.mark.parametrize("value", INJECTING, ids=["lf", "crlf", "u2028", "vt-ff", "nel", "cr"])
@pytest.mark.parametrize("email_type", BALANCE_EMAILS, ids=lambda t: t.value)
def test_names_cannot_write_a_line_of_their_own_in_the_text_part(value, email_type):
    received = email.message_from_bytes(hostile_message(value, email_type).as_bytes(), policy=policy.default)
    text = received.get_body(("plain",)).get_content()

    assert pay_now_urls(text) == REAL_URLS
    for line in text.splitlines():
        assert not line.strip().startswith(("Bcc:", "Pay Now: https://evil"))
    html = received.get_body(("html",)).get_content()
    preheader = html.split('class="preheader"', 1)[1].split("</div>", 1)[0]
    assert not any(ch in preheader for ch in "\r\n\x0b\x0c\x85\u2028\u2029")


@pytest.mark.parametrize("value", INJECTING, ids=["lf", "crlf", "u2028", "vt-ff", "nel", "cr"])
def test_names_cannot_write_a_line_of_their_own_in_a_receipt(value):
    club = tenant(name=f"Riverside{value}")
    rendered = render_receipt(
        brand_of(club),
        Receipt(
            parent_id=7,
            parent_name=f"Jane {value}",
            email=PARENT_ADDRESS,
            paid=(PaidItem(f"Ava {value}", f"Fees {value}", 12000),),
            method="by card, through Stripe",
            still_open=tuple(StillOpen(f"Ava {value}", f"Camp {value}", 3000, url) for url in REAL_URLS),
            family_page_url=f"https://office.example/f/abc{value}",
        ),
    )

    assert pay_now_urls(rendered.text) == REAL_URLS
    for line in rendered.text.splitlines():
        assert not line.strip().startswith(("Bcc:", "Pay Now: https://evil"))
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    if 'class="preheader"' in rendered.html:
        preheader = rendered.html.split('class="preheader"', 1)[1].split("</div>", 1)[0]
        assert not any(ch in preheader for ch in "\r\n\x0b\x0c\x85\u2028\u2029")


def test_a_test_sends_text_links_are_the_previews_of_the_rows():
    club = tenant()
    prepared = prepare_test_email(
        club, EmailType.outstanding_balance, balance(f"Jane {INJECTING[0]}"), OFFICE_URL
    )
    text = message_for(Settings(), club, prepared, TEST_ADDRESS).get_body(("plain",)).get_content()
    assert pay_now_urls(text) == [
        f"{OFFICE_URL}/preview/payment-links/11",
        f"{OFFICE_URL}/preview/payment-links/12",
    ]


class RawMailroom(Mailroom):
    """Keeps the bytes as they arrived, too."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[tuple[list[str], bytes]] = []  # (envelope recipients, bytes received)

    async def handle_DATA(self, server, session, envelope):
        self.delivered.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return await super().handle_DATA(server, session, envelope)


def test_a_hostile_email_over_real_smtp_reaches_one_address_with_only_the_real_links():
    name = f"{HOSTILE_NAMES['comma-long']}\n{FAKE_LINE}\n{HOSTILE_NAMES['encoded-crlf']}"
    mailroom = RawMailroom()
    with smtp_server(mailroom) as port, SmtpTransport("127.0.0.1", port) as transport:
        transport.send(hostile_message(name))
        transport.send(parent_message(HOSTILE_NAMES["encoded-crlf"]))

    assert mailroom.recipients() == [PARENT_ADDRESS, PARENT_ADDRESS]
    for _, raw in mailroom.delivered:
        received = assert_one_recipient(raw, PARENT_ADDRESS)
        assert b"\nbcc:" not in raw.lower()
        assert pay_now_urls(received.get_body(("plain",)).get_content()) == REAL_URLS


# --- a real blast and its test send, over real SMTP --------------------------------------

SHORT_ENCODED_CRLF = _encoded_word(f"\r\nBcc: {EVIL}".encode())


@pytest.fixture
def raw_mailroom(use_settings):
    """A real SMTP server on loopback that keeps the bytes; the test's flows send through it."""
    handler = RawMailroom()
    with smtp_server(handler) as port:
        use_settings(email_transport="smtp", smtp_host="127.0.0.1", smtp_port=port, allow_test_links=True)
        yield handler


def make_every_name_hostile(engine: sa.Engine) -> None:
    """Every parent, player, item and the club itself named to break headers and write fake lines."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(parents).values(
                first_name=SHORT_ENCODED_CRLF, last_name=f"Smith, {EVIL}, Jordan\n{FAKE_LINE}"
            )
        )
        connection.execute(sa.update(players).values(last_name=f"Lee\r\n{FAKE_LINE}\r\n"))
        connection.execute(sa.update(payment_links).values(description=f"Fees\n  {FAKE_LINE}"))
        connection.execute(
            sa.update(tenants).where(tenants.c.slug == TENANT).values(name=f"Riverside\n{FAKE_LINE}")
        )


def urls_by_address(engine: sa.Engine) -> dict[str, set[str]]:
    """Each parent's minted, pending links, straight from the rows."""
    query = (
        sa.select(parents.c.email, payment_links.c.stripe_payment_link_url)
        .join(players, players.c.id == payment_links.c.player_id)
        .join(parents, parents.c.id == players.c.parent_id)
        .where(payment_links.c.status == "pending", payment_links.c.stripe_payment_link_url.is_not(None))
    )
    found: dict[str, set[str]] = {}
    with engine.connect() as connection:
        for address, url in connection.execute(query):
            found.setdefault(address, set()).add(url)
    return found


def test_a_blast_and_its_test_send_to_hostile_names_reach_one_address_each_with_only_real_links(
    settings, engine, minted_club, raw_mailroom
):
    make_every_name_hostile(engine)

    outstanding_balance_email(tenant=TENANT, test_email=TEST_ADDRESS)
    outstanding_balance_email(tenant=TENANT, send=True)

    rows = urls_by_address(engine)
    assert len(raw_mailroom.delivered) > 2
    for recipients, raw in raw_mailroom.delivered:
        (address,) = recipients
        received = assert_one_recipient(raw, address)
        assert b"\nbcc:" not in raw.lower()
        urls = pay_now_urls(received.get_body(("plain",)).get_content())
        assert urls and len(urls) == len(set(urls))
        if address == TEST_ADDRESS:
            assert all(url.startswith(f"{settings.office_url}/preview/payment-links/") for url in urls)
        else:
            assert set(urls) <= rows[address]
