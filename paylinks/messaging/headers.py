"""Mail headers made from a club's data, built so that what a mail client reads back is what we meant.

Names come from the club's records and may hold anything. CPython 3.11's header folder mishandles
two kinds of value:

- a quoted display name too long for one line loses its quotes when folded, so
  `"Smith, attacker@evil.example, Jordan …" <jane@…>` goes out as three recipients;
- an encoded-word lookalike (`=?utf-8?b?…?=`) in a name or subject is decoded *before* folding,
  so one that encodes CR LF writes a header of its own (`Bcc:`, a second `Reply-To:`).

So every value is flattened to one line and has its encoded-word openers broken (`=?` becomes
`= ?`), a display name is at most `MAX_DISPLAY_NAME` characters, and each header is folded the
way it goes out (plain and SMTPUTF8) and read back before it is used: a name that does not come
back as one address, the intended one, is shortened until it does, or dropped.

Most values are plain (a name of letters, digits, spaces, hyphens and apostrophes; an everyday
address; a header that fits one line): such a header cannot fold and holds nothing a parser could
read otherwise, so it is used as is, without the read-back (which costs about a millisecond a
message, a third of a blast's time per parent). A test checks the two ways agree on plain values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import HeaderParser
from email.policy import EmailPolicy
from email.utils import getaddresses
from functools import lru_cache

__all__ = ["MAX_DISPLAY_NAME", "header_text", "mailbox", "mailbox_from", "set_verified", "single_line"]

# A name this long, quoted, still fits a 78-character line of its own, where folding never splits
# it; longer ones are cut at a word ("Alexandra Montgomery-Fitzgerald, Jordan..."), and the
# read-back shortens further any that still fold badly (one full of quotes to escape).
MAX_DISPLAY_NAME = 64
_ELLIPSIS = "..."  # ASCII: an ellipsis character would force the name into encoded words
_WIRE_POLICIES: tuple[EmailPolicy[EmailMessage], ...] = (policy.SMTP, policy.SMTPUTF8)

# Plain values (see above): RFC 5322 atoms and spaces for a name, no quoting needed; a dot-atom
# address of ASCII letters, digits and . _ % + - with a dotted domain; printable ASCII for text.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9'-]+(?: [A-Za-z0-9'-]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PLAIN_TEXT = re.compile(r"[ -~]*")  # printable ASCII; header_text already made it one line
_LINE = 78  # RFC 5322's recommended line length, the wire policies' max_line_length


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode's category Cc, exactly


def single_line(value: str) -> str:
    """Collapse every run of whitespace or control characters into one space."""
    return " ".join(_CONTROL.sub(" ", value).split())


def header_text(value: str) -> str:
    """A value fit for any header: one line, and never read as an RFC 2047 encoded word."""
    return single_line(value).replace("=?", "= ?")


def _shortened(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    cut = name[: limit - len(_ELLIPSIS)]
    at_word = cut.rpartition(" ")[0]
    # Cut at a word when one ends in the second half; a single huge word is cut where it is.
    cut = at_word if len(at_word) > limit // 2 else cut
    return cut.rstrip(" ,;:") + _ELLIPSIS


def _squeezed(text: str) -> str:
    # CPython's parser reads a space into a name where an encoded word was folded in two (RFC 2047
    # says there is none there); apart from whitespace the name must come back unchanged.
    return "".join(text.split())


def _read_back(header: str, value: str, wire: EmailPolicy[EmailMessage]) -> tuple[str, str] | None:
    """`value` folded for the wire and parsed again: the one header that comes back, and its text."""
    folded = wire.fold(header, value)
    parsed = HeaderParser(policy=policy.default).parsestr(folded + wire.linesep)
    if parsed.keys() != [header]:
        return None
    try:
        return parsed[header], folded.partition(":")[2]
    except (AttributeError, IndexError, ValueError):  # the parser's own trouble, e.g. with a group
        return None


def _wires_for(value: str) -> tuple[EmailPolicy[EmailMessage], ...]:
    # ASCII folds the same whether or not the server speaks SMTPUTF8.
    return _WIRE_POLICIES[:1] if value.isascii() else _WIRE_POLICIES


def _as_sent(text: str, wire: EmailPolicy[EmailMessage]) -> str:
    # Raw UTF-8 on the wire (SMTPUTF8) comes back from the parser as surrogate escapes.
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if wire.utf8 else text


def _reads_back_as(header: str, value: str, expected: Address) -> bool:
    """Whether the header parses back, on every wire, to exactly `expected` and nothing else."""
    for wire in _wires_for(value):
        read = _read_back(header, value, wire)
        if read is None:
            return False
        parsed, folded = read
        addresses: Sequence[Address] = getattr(parsed, "addresses", ())
        legacy = [address for _, address in getaddresses([folded])]
        if [a.addr_spec for a in addresses] != [expected.addr_spec] or legacy != [expected.addr_spec]:
            return False
        if _squeezed(_as_sent(addresses[0].display_name, wire)) != _squeezed(expected.display_name):
            return False
    return True


def _fits_one_line(header: str, value: str) -> bool:
    return len(header) + 2 + len(value) <= _LINE


def _plain_mailbox(header: str, display: str, addr_spec: str) -> Address | None:
    """The address as is, when it is plain and fits one line; None when it needs the read-back."""
    if not _PLAIN_ADDRESS.fullmatch(addr_spec) or (display and not _PLAIN_NAME.fullmatch(display)):
        return None
    candidate = Address(display_name=display, addr_spec=addr_spec)
    return candidate if _fits_one_line(header, str(candidate)) else None


def mailbox(name: str | None, address: str, *, header: str = "To") -> Address:
    """`name <address>` as one address that survives folding; the name shortened, or dropped, until it does."""
    addr_spec = address.strip()
    display = _shortened(header_text(name or ""), MAX_DISPLAY_NAME)
    return _plain_mailbox(header, display, addr_spec) or _read_back_mailbox(header, display, addr_spec)


def _read_back_mailbox(header: str, display: str, addr_spec: str) -> Address:
    scratch = EmailMessage(policy=policy.SMTP)
    for limit in (MAX_DISPLAY_NAME, 40, 24, 0):
        candidate = Address(display_name=_shortened(display, limit) if limit else "", addr_spec=addr_spec)
        del scratch[header]
        scratch[header] = candidate
        if _reads_back_as(header, scratch[header], candidate):
            return candidate
    raise ValueError(f"{addr_spec!r} does not make a {header} header that reads back as that one address")


@lru_cache(maxsize=256)  # the same few senders and reply-to addresses, message after message
def mailbox_from(value: str, what: str, *, header: str) -> Address:
    """Parse a configured `Name <address>` (or a bare address): exactly one, or a ValueError naming `what`."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain CR or LF: {value!r}")
    parsed = [(name, address) for name, address in getaddresses([value]) if name or address]
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise ValueError(f"{what} {value!r} must be one email address, such as Club <office@club.org>")
    name, address = parsed[0]
    try:
        return mailbox(name, address, header=header)
    except (ValueError, IndexError) as error:
        raise ValueError(f"{what} {value!r} must be one email address ({error})") from None


def set_verified(message: EmailMessage, header: str, value: str) -> None:
    """Set a text header (a subject), checking it folds back into itself alone, unchanged."""
    expected = header_text(value)
    message[header] = expected
    if _PLAIN_TEXT.fullmatch(expected) and _fits_one_line(header, expected):
        return  # one line of printable ASCII, no encoded word: it reads back as itself
    for wire in _wires_for(message[header]):
        read = _read_back(header, message[header], wire)
        if read is None or _squeezed(_as_sent(str(read[0]), wire)) != _squeezed(expected):
            raise ValueError(f"the {header} header would not read back as itself: {expected!r}")
