"""The mail policy that remembers repeated headers writes exactly the bytes the standard library's
SMTP policy writes, for any names, subject and club, on both wires (plain and SMTPUTF8), the first
message and every later one alike."""

from __future__ import annotations

import copy
import re
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paylinks.messaging import render
from paylinks.messaging.mime import BOUNDARY, POLICY
from paylinks.messaging.render import RenderedEmail, build_message
from tests.paylinks.test_hostile_names import HOSTILE_NAMES

_NAMES = st.one_of(st.sampled_from(sorted(HOSTILE_NAMES.values())), st.text(max_size=80))
_CLUBS = st.sampled_from(
    ["office@club.example", "Riverside FC <treasurer@riverside.example>", "Zoë's Club <zoe@club.example>"]
)


def _comparable(raw: bytes) -> bytes:
    # Each message has its own Date and Message-ID (the boundary is the same for all).
    return re.sub(rb"(?m)^(Date|Message-ID): .*\r\n", b"", raw)


def _message(monkeypatch, mail_policy, **values):
    monkeypatch.setattr(render, "POLICY", mail_policy)
    return build_message(
        RenderedEmail(subject=values["subject"], text=values["text"], html=f"<p>{values['text']}</p>"),
        sender=values["sender"],
        to_name=values["name"],
        to_address="jane.lee@example.com",
        reply_to=values["reply_to"],
        extra_headers=(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),),
    )


@settings(max_examples=80, deadline=None)
@given(
    name=_NAMES,
    subject=st.one_of(st.text(max_size=120), st.sampled_from(sorted(HOSTILE_NAMES.values()))),
    text=st.text(min_size=1, max_size=300),
    reply_to=_CLUBS,
    sender=_CLUBS,
)
def test_kept_headers_write_the_same_bytes_as_the_standard_policy(name, subject, text, reply_to, sender):
    values = dict(name=name, subject=subject, text=text, reply_to=reply_to, sender=sender)
    with pytest.MonkeyPatch.context() as monkeypatch:
        try:
            standard = _message(monkeypatch, policy.SMTP, **values)
        except ValueError:  # a subject that cannot be a header is refused either way
            with pytest.raises(ValueError):
                _message(monkeypatch, POLICY, **values)
            return
        kept = [_message(monkeypatch, POLICY, **values) for _ in range(2)]  # made, then remembered
    for wire in (policy.SMTP, policy.SMTPUTF8):
        expected = _comparable(standard.as_bytes(policy=wire))
        for message in kept:
            assert _comparable(message.as_bytes(policy=message.policy.clone(utf8=wire.utf8))) == expected


def test_a_message_copied_deeply_writes_the_same_bytes(monkeypatch):
    """The standard library deep-copies a message when it must re-encode a part; the kept headers'
    memory comes along as it is (one for every message), and the copy writes what the original does."""
    message = _message(
        monkeypatch,
        POLICY,
        name="Jane Lee",
        subject="Riverside FC: you have $140.00 outstanding",
        text="Season dues $120.00",
        reply_to="Riverside FC <treasurer@riverside.example>",
        sender="paylinks <billing@paylinks.example>",
    )
    copied = copy.deepcopy(message)

    assert copied.policy.header_factory is message.policy.header_factory
    assert copied.as_bytes() == message.as_bytes()


_BODIES = st.one_of(
    st.text(max_size=400),
    # What could break a multipart: the boundary's own line, "=" runs, bare CRs, long lines.
    st.lists(
        st.sampled_from(
            [
                f"--{BOUNDARY}",
                f"--{BOUNDARY}--",
                "=_",
                "==",
                "=3D",
                "\r",
                "\r\n",
                "\n",
                " ",
                "\t",
                ".",
                "From me",
                "é" * 50,
                "x" * 90,
                "🏀",
            ]
        ),
        max_size=30,
    ).map("".join),
)


@settings(max_examples=150, deadline=None)
@given(text=_BODIES, html=_BODIES)
def test_a_parent_reads_exactly_the_rendered_text_and_html_whatever_they_hold(text, html):
    """Both parts come back as rendered (line ends as the mail client's), the message stays two
    parts whatever the bodies hold (the shared boundary's own line included), and every line on
    the wire is 7-bit and at most 78 characters, which any relay accepts."""
    message = build_message(
        RenderedEmail(subject="Riverside FC: you have $140.00 outstanding", text=text, html=html),
        sender="paylinks <billing@paylinks.example>",
        to_name="Jane Lee",
        to_address="jane.lee@example.com",
        reply_to="Riverside FC <treasurer@riverside.example>",
    )
    wire = message.as_bytes(policy=policy.SMTP)
    assert wire.isascii() and max(len(line) for line in wire.split(b"\r\n")) <= 78
    read = BytesParser(policy=policy.default).parsebytes(wire)
    parts = list(read.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]

    def lines(body: str) -> list[str]:  # a mail body's lines end at CR, LF or CRLF, and it ends with one
        return re.split(r"\r\n|\r|\n", body if body.endswith(("\r", "\n")) else body + "\n")

    assert [lines(part.get_content()) for part in parts] == [lines(text), lines(html)]
