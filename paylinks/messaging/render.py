"""Branded emails: what a parent reads, and the MIME message that carries it.

Each email type is three Jinja templates under `templates/email/<type>/` (subject, text body,
HTML body) that extend one brand wrapper. The wrapper paints the club's name, colour and logo;
`brand.css` is the one stylesheet, inlined into `style` attributes at render time because most
mail clients ignore `<style>` and never load external CSS. Names come from the club's database
and are untrusted: HTML escapes them, and nothing here lets them add or break a mail header.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from urllib.parse import urlsplit

import css_inline
import jinja2

from paylinks.messaging.headers import header_text, mailbox, mailbox_from, set_verified, single_line
from paylinks.messaging.mime import BOUNDARY, POLICY
from paylinks.money import format_money
from paylinks.settings import PROJECT_ROOT

# EmailType lives with the email_log table; each of its values names a template folder.
from paylinks.vocabulary import EmailType

__all__ = [
    "Brand",
    "EmailType",
    "OpenItem",
    "PaidItem",
    "ParentBalance",
    "Receipt",
    "RenderedEmail",
    "build_message",
    "format_money",
    "render_email",
    "render_receipt",
]

TEMPLATE_DIR = PROJECT_ROOT / "templates" / "email"

# Used when a tenant's brand_color is missing or not a plain hex colour: the colour is pasted
# into CSS, so anything else could smuggle in CSS of its own.
DEFAULT_BRAND_COLOR = "#1f6feb"
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


@dataclass(frozen=True)
class Brand:
    """One tenant's look and voice."""

    name: str
    reply_to_email: str
    brand_color: str
    logo_url: str | None
    currency: str = "usd"


@dataclass(frozen=True)
class OpenItem:
    """One thing a parent owes, with its own pay link."""

    player_name: str
    description: str
    amount_cents: int
    url: str
    payment_link_id: int | None = None  # the payment_links row (a test email's preview link names it)


@dataclass(frozen=True)
class ParentBalance:
    """Everything one parent owes, siblings together."""

    parent_id: int
    parent_name: str
    email: str | None
    items: tuple[OpenItem, ...]

    @property
    def total_cents(self) -> int:
        return sum(item.amount_cents for item in self.items)

    @property
    def players(self) -> tuple[str, ...]:
        """Distinct player names, in the order their items appear."""
        return tuple(dict.fromkeys(item.player_name for item in self.items))


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


# --- text helpers ------------------------------------------------------------------------


_LINE_BREAKING = "\x00-\x1f\x7f-\x9f\u2028\u2029"  # control characters and Unicode's line breaks
_BREAK_RUN = re.compile(f"[ {_LINE_BREAKING}]*[{_LINE_BREAKING}][ {_LINE_BREAKING}]*")


def one_line(value: object) -> object:
    """Every template expression's output: a run of line breaks or control characters becomes one
    space, so no value (a name, a description, a club's name) starts a line of its own."""
    return _BREAK_RUN.sub(" ", value) if isinstance(value, str) else value


def human_join(names: Iterable[str]) -> str:
    """["Ava"] -> "Ava"; ["Ava", "Ben", "Cy"] -> "Ava, Ben and Cy"."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


# Whitespace (Unicode's, as str.isspace has it) or a control character (category Cc: U+0000–U+001F,
# U+007F–U+009F): never in a link a parent is sent. One regular expression, not a test per character.
_NOT_IN_A_LINK = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def _is_web_url(url: str | None) -> bool:
    if not url or _NOT_IN_A_LINK.search(url):
        return False
    return urlsplit(url).scheme in ("http", "https")


def _brand_color(brand: Brand) -> str:
    color = (brand.brand_color or "").strip()
    return color if _HEX_COLOR.fullmatch(color) else DEFAULT_BRAND_COLOR


def brand_colors(brand_color: str | None) -> tuple[str, str]:
    """The club's colour (a plain hex colour, else the default) and the text colour that reads on it."""
    color = (brand_color or "").strip()
    color = color if _HEX_COLOR.fullmatch(color) else DEFAULT_BRAND_COLOR
    return color, _readable_text_color(color)


def _readable_text_color(background: str) -> str:
    """White or near-black, whichever reads better on the brand colour (buttons, header)."""
    hex_digits = background.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(digit * 2 for digit in hex_digits)
    red, green, blue = (int(hex_digits[i : i + 2], 16) for i in (0, 2, 4))
    # Perceived brightness (ITU-R BT.601 weights); above the midpoint, dark text wins.
    brightness = (299 * red + 587 * green + 114 * blue) // 1000
    return "#111111" if brightness > 150 else "#ffffff"


# --- rendering ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        # Escape HTML templates only: a text body must show "Smith & Sons", not "&amp;".
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # No value may break a line: a name holding "\nPay Now: https://evil…" stays inside its own.
        finalize=one_line,
        # The templates ship with the code and never change under a running process: no file's
        # modification time is read again for every email (two thirds of a blast's stat calls).
        auto_reload=False,
    )
    env.filters["money"] = format_money
    env.filters["human_join"] = human_join
    return env


def _check_renderable(balance: ParentBalance) -> None:
    if not balance.items:
        raise ValueError(f"parent {balance.parent_id} has no open items; there is nothing to email")
    for item in balance.items:
        # A javascript: or data: link must never become a "Pay Now" button.
        if not _is_web_url(item.url):
            raise ValueError(f"item {item.description!r} for {item.player_name!r} has no http(s) pay link")


def render_email(
    email_type: EmailType | str,
    *,
    brand: Brand,
    balance: ParentBalance,
    test_recipient_note: str | None = None,
    forwarded_for: str | None = None,
    family_url: str | None = None,
    due: Mapping[int, str] | None = None,
    stop_url: str | None = None,
) -> RenderedEmail:
    """Render one email's subject, text and HTML for one parent.

    `due` (a reminder's): each item's due state in words ("overdue by 3 days") by its
    payment_link_id; `stop_url`: the page where the parent stops reminders.

    `test_recipient_note` names who the real recipient would be (e.g. "Jane Doe
    <jane@example.com>"); when set, both bodies carry a visible "Test send" banner saying its
    buttons take no payment, and the subject starts with "[TEST]". `forwarded_for` names the
    parent whose items these are when the email goes to another address (a coach's `to`).
    `family_url`: the parent's family page ("See everything and pay all at once"), beside the
    items' own buttons.
    """
    email_type = EmailType(email_type)
    _check_renderable(balance)
    if family_url is not None and not _is_web_url(family_url):
        raise ValueError(f"the family page link for parent {balance.parent_id} is not an http(s) link")
    brand, balance = _one_line_names(brand, balance)
    env = _environment()
    brand_color = _brand_color(brand)
    context = {
        "brand": brand,
        "balance": balance,
        "items": balance.items,
        "currency": brand.currency,
        "brand_color": brand_color,
        "brand_text_color": _readable_text_color(brand_color),
        "logo_url": brand.logo_url if _is_web_url(brand.logo_url) else None,
        # The bare address, so a "Club <treasurer@club.org>" value still makes a clean mailto:.
        "reply_to_address": _bare_address(brand.reply_to_email),
        "test_recipient_note": single_line(test_recipient_note) if test_recipient_note else None,
        "forwarded_for": single_line(forwarded_for) if forwarded_for else None,
        "family_url": family_url,
        "due": dict(due or {}),
        "stop_url": stop_url if _is_web_url(stop_url) else None,
    }
    folder = email_type.value
    subject = env.get_template(f"{folder}/subject.txt").render(context)
    if forwarded_for:
        subject = f"{subject} (for {forwarded_for})"
    if test_recipient_note:
        subject = f"[TEST] {subject}"
    context["subject"] = subject = header_text(subject)
    text = env.get_template(f"{folder}/body.txt").render(context).strip() + "\n"
    html = _inline_css(env.get_template(f"{folder}/body.html").render(context), context).strip() + "\n"
    return RenderedEmail(subject=subject, text=text, html=html)


def _one_line_names(brand: Brand, balance: ParentBalance) -> tuple[Brand, ParentBalance]:
    """The club's, the parent's, the players' names and the descriptions, each on one line."""
    items = tuple(
        replace(item, player_name=single_line(item.player_name), description=single_line(item.description))
        for item in balance.items
    )
    return (
        replace(brand, name=single_line(brand.name)),
        replace(balance, parent_name=single_line(balance.parent_name), items=items),
    )


def _inline_css(html: str, context: dict) -> str:
    """Move brand.css into style attributes; the sent HTML then needs no stylesheet at all."""
    css = _brand_css(context["brand_color"], context["brand_text_color"])
    return css_inline.inline(
        html,
        extra_css=css,
        # Never fetch a stylesheet over the network while rendering.
        load_remote_stylesheets=False,
        keep_link_tags=False,
    )


@lru_cache(maxsize=64)
def _brand_css(brand_color: str, brand_text_color: str) -> str:
    """brand.css in a club's colours: the same for every email of a blast, so made once (the
    template sees only these two values; StrictUndefined fails it if it ever asks for more)."""
    return (
        _environment()
        .get_template("brand.css")
        .render(brand_color=brand_color, brand_text_color=brand_text_color)
    )


# --- receipts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PaidItem:
    """One bill a payment paid."""

    player_name: str
    description: str
    amount_cents: int


@dataclass(frozen=True)
class StillOpen:
    """One bill still owed after the payment; `url` None when it is not to be mailed."""

    player_name: str
    description: str
    amount_cents: int
    url: str | None


@dataclass(frozen=True)
class Receipt:
    """What a parent reads after a payment: what it paid (and how), what of it the club owes
    back, what is still open now, and the family page when there is one."""

    parent_id: int
    parent_name: str
    email: str | None
    paid: tuple[PaidItem, ...]
    method: str  # how it was paid, in words: "card or bank (Stripe)", "cash"
    still_open: tuple[StillOpen, ...] = ()
    owed_back_cents: int = 0
    family_page_url: str | None = None

    @property
    def paid_cents(self) -> int:
        return sum(item.amount_cents for item in self.paid)

    @property
    def open_cents(self) -> int:
        return sum(item.amount_cents for item in self.still_open)


def render_receipt(brand: Brand, receipt: Receipt) -> RenderedEmail:
    """Render a receipt's subject, text and HTML (`templates/email/receipt/`)."""
    if not receipt.paid:
        raise ValueError(f"parent {receipt.parent_id}'s receipt pays nothing; there is nothing to email")
    brand = replace(brand, name=single_line(brand.name))
    receipt = replace(
        receipt,
        parent_name=single_line(receipt.parent_name),
        paid=tuple(
            replace(i, player_name=single_line(i.player_name), description=single_line(i.description))
            for i in receipt.paid
        ),
        still_open=tuple(
            replace(
                i,
                player_name=single_line(i.player_name),
                description=single_line(i.description),
                url=i.url if _is_web_url(i.url) else None,
            )
            for i in receipt.still_open
        ),
        family_page_url=receipt.family_page_url if _is_web_url(receipt.family_page_url) else None,
    )
    env = _environment()
    brand_color = _brand_color(brand)
    context = {
        "brand": brand,
        "receipt": receipt,
        "currency": brand.currency,
        "brand_color": brand_color,
        "brand_text_color": _readable_text_color(brand_color),
        "logo_url": brand.logo_url if _is_web_url(brand.logo_url) else None,
        "reply_to_address": _bare_address(brand.reply_to_email),
        "test_recipient_note": None,
        "forwarded_for": None,
    }
    subject = header_text(env.get_template("receipt/subject.txt").render(context))
    context["subject"] = subject
    text = env.get_template("receipt/body.txt").render(context).strip() + "\n"
    html = _inline_css(env.get_template("receipt/body.html").render(context), context).strip() + "\n"
    return RenderedEmail(subject=subject, text=text, html=html)


# --- MIME --------------------------------------------------------------------------------


@lru_cache(maxsize=256)  # a club's few addresses, email after email
def _bare_address(value: str) -> str:
    """The address of `Name <address>`: a clean mailto: whichever way the club wrote it."""
    return parseaddr(value)[1] or value


@lru_cache(maxsize=256)
def _message_id_domain(sender: str) -> str:
    # Defaulting to the sender's domain avoids make_msgid's socket.getfqdn(), which can stall
    # on DNS, and keeps Message-IDs recognisably ours.
    return _bare_address(sender).rpartition("@")[2] or "paylinks.example"


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to_name: str | None,
    to_address: str,
    reply_to: str,
    message_id_domain: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """Wrap a rendered email in a multipart/alternative message (text first, then HTML).

    Addresses with CR/LF, and a sender or reply-to that is not exactly one address, raise
    ValueError. Every header is built and read back by `headers` (see there): re-parsing the
    sent bytes gives exactly one `To` address, the intended one, and no header of the data's own.
    """
    if "\r" in to_address or "\n" in to_address:
        raise ValueError(f"to_address must not contain CR or LF: {to_address!r}")
    message = EmailMessage(policy=POLICY)
    # Each address was folded and read back when it was made (the sender's and the club's once).
    message["From"] = mailbox_from(sender, "the sender (email_from)", header="From")
    message["To"] = mailbox(to_name, to_address)
    message["Reply-To"] = mailbox_from(reply_to, "the club's reply-to address", header="Reply-To")
    set_verified(message, "Subject", rendered.subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=message_id_domain or _message_id_domain(sender))
    for header, value in extra_headers:  # ours (List-Unsubscribe): never a club's data
        set_verified(message, header, value)
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = f'multipart/alternative; boundary="{BOUNDARY}"'
    message.attach(_text_part(rendered.text, "plain"))
    message.attach(_text_part(rendered.html, "html"))
    return message


def _text_part(text: str, subtype: str) -> EmailMessage:
    """A UTF-8 text part, quoted-printable: every line 7-bit and short, which any SMTP relay
    accepts. The same part `set_content(text, cte="quoted-printable")` makes, encoded by
    binascii's C quoted-printable encoder rather than the email package's Python one (a tenth of
    a message's time)."""
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    # Lines end at CR, LF or CRLF only (as the email package splits them: bytes, not str, whose
    # splitlines also breaks at U+2028 and the like), with one kind of line end and a last one.
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    part.set_payload(binascii.b2a_qp(body, istext=True).decode("ascii"))
    return part
