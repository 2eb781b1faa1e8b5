"""What a parent sees in a paylinks email, and what the built MIME message lets through."""

from __future__ import annotations

import email
import html
import re
from email import policy

import pytest

from paylinks.messaging.render import (
    DEFAULT_BRAND_COLOR,
    Brand,
    EmailType,
    OpenItem,
    ParentBalance,
    build_message,
    render_email,
)
from paylinks.money import format_money

BRAND = Brand(
    name="Riverside FC",
    reply_to_email="treasurer@riverside.example",
    brand_color="#0a7d4f",
    logo_url="https://riverside.example/logo.png",
)
SENDER = "paylinks <billing@paylinks.example>"

AVA_SPRING = OpenItem("Ava Lee", "Spring season fees", 12000, "https://buy.stripe.com/test_ava_spring")
BEN_UNIFORM = OpenItem("Ben Lee", "Uniform kit", 4550, "https://buy.stripe.com/test_ben_uniform")
AVA_TOURNAMENT = OpenItem("Ava Lee", "Summer tournament", 2500, "https://buy.stripe.com/test_ava_tournament")
TWO_CHILDREN = ParentBalance(
    parent_id=7,
    parent_name="Jane Lee",
    email="jane@example.com",
    items=(AVA_SPRING, BEN_UNIFORM, AVA_TOURNAMENT),
)


def parse(message) -> email.message.EmailMessage:
    """Read a built message back the way a receiving mail server would."""
    return email.message_from_bytes(message.as_bytes(), policy=policy.default)


@pytest.mark.parametrize(
    ("amount_cents", "currency", "expected"),
    [
        (123450, "usd", "$1,234.50"),
        (0, "usd", "$0.00"),
        (5, "usd", "$0.05"),
        (-123450, "usd", "-$1,234.50"),
        (100000000, "usd", "$1,000,000.00"),
        (999, "eur", "€9.99"),
        (2000, "GBP", "£20.00"),
        (123450, "cad", "CA$1,234.50"),
        (500, "jpy", "¥500"),
        (123450, "xyz", "1,234.50 XYZ"),
        (-7, "xyz", "-0.07 XYZ"),
    ],
)
def test_format_money(amount_cents, currency, expected):
    assert format_money(amount_cents, currency) == expected


def test_balance_totals_and_lists_each_player_once():
    assert TWO_CHILDREN.total_cents == 19050
    assert TWO_CHILDREN.players == ("Ava Lee", "Ben Lee")


def test_outstanding_balance_lists_every_item_with_its_own_link_in_both_parts():
    rendered = render_email(EmailType.outstanding_balance, brand=BRAND, balance=TWO_CHILDREN)

    assert rendered.subject == "Riverside FC: you have $190.50 outstanding"
    for part in (rendered.text, rendered.html):
        assert "Jane Lee" in part
        assert "Total due: $190.50" in part
        for item in TWO_CHILDREN.items:
            assert item.player_name in part
            assert item.description in part
            assert format_money(item.amount_cents) in part
    for item in TWO_CHILDREN.items:
        assert f"Pay Now: {item.url}\n" in rendered.text  # its own line, so it is clickable
        assert f'href="{item.url}"' in rendered.html
    assert rendered.html.count(">Pay Now</a>") == 3
    assert "Questions? Reply to this email or write to treasurer@riverside.example" in rendered.text


def test_html_is_branded_with_inlined_styles_and_no_stylesheet():
    rendered = render_email("outstanding_balance", brand=BRAND, balance=TWO_CHILDREN)

    assert re.search(r'style="[^"]*background-color: #0a7d4f', rendered.html)
    assert (
        '<img class="logo"' in rendered.html and 'src="https://riverside.example/logo.png"' in rendered.html
    )
    assert "<link" not in rendered.html
    assert "<style" not in rendered.html


def test_without_a_logo_the_header_shows_the_club_name():
    rendered = render_email(
        "outstanding_balance",
        brand=Brand("Riverside FC", "t@r.example", "#0a7d4f", None),
        balance=TWO_CHILDREN,
    )
    assert "<img" not in rendered.html
    assert "Riverside FC" in rendered.html


def test_a_brand_color_that_is_not_a_hex_colour_cannot_inject_css():
    brand = Brand("Riverside FC", "t@r.example", "red; background-image: url(https://evil.example/x)", None)
    rendered = render_email("outstanding_balance", brand=brand, balance=TWO_CHILDREN)
    assert "evil.example" not in rendered.html
    assert DEFAULT_BRAND_COLOR in rendered.html


def test_names_are_escaped_in_html_and_verbatim_in_text():
    hostile = OpenItem('<script>alert("x")</script>', "Fees & dues", 1000, "https://buy.stripe.com/test_x")
    balance = ParentBalance(1, "O'Brien <b>", "ob@example.com", (hostile,))
    rendered = render_email("outstanding_balance", brand=BRAND, balance=balance)

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<b>" not in rendered.html
    assert '<script>alert("x")</script>' in rendered.text
    assert "Fees & dues" in rendered.text
    assert "O'Brien <b>" in rendered.text


def test_a_name_with_line_breaks_cannot_add_a_mail_header():
    sneaky_player = OpenItem("Ava\r\nBcc: evil@x.com", "Fees", 1000, "https://buy.stripe.com/test_x")
    balance = ParentBalance(1, "Jane\r\nBcc: evil@x.com", "jane@example.com", (sneaky_player,))
    rendered = render_email("payment_link", brand=BRAND, balance=balance)
    message = build_message(
        rendered,
        sender=SENDER,
        to_name=balance.parent_name,
        to_address="jane@example.com",
        reply_to=BRAND.reply_to_email,
    )

    received = parse(message)
    assert received["Bcc"] is None
    assert [a.addr_spec for a in received["To"].addresses] == ["jane@example.com"]
    assert received["Subject"] == "Riverside FC: payment links for Ava Bcc: evil@x.com"
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


@pytest.mark.parametrize("field", ["to_address", "reply_to", "sender"])
def test_an_address_with_line_breaks_is_refused(field):
    rendered = render_email("outstanding_balance", brand=BRAND, balance=TWO_CHILDREN)
    arguments = {"sender": SENDER, "to_address": "jane@example.com", "reply_to": BRAND.reply_to_email}
    arguments[field] = "jane@example.com\r\nBcc: evil@x.com"
    with pytest.raises(ValueError, match="CR or LF"):
        build_message(rendered, to_name="Jane", **arguments)


def test_built_message_is_text_then_html_with_the_expected_headers():
    rendered = render_email("outstanding_balance", brand=BRAND, balance=TWO_CHILDREN)
    message = build_message(
        rendered,
        sender=SENDER,
        to_name='Zoë Müller "Mom" <home>',
        to_address="zoe@example.com",
        reply_to=BRAND.reply_to_email,
    )

    received = parse(message)
    assert received.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in received.iter_parts()] == ["text/plain", "text/html"]
    to = received["To"].addresses
    assert len(to) == 1
    assert (to[0].display_name, to[0].addr_spec) == ('Zoë Müller "Mom" <home>', "zoe@example.com")
    assert received["From"].addresses[0].addr_spec == "billing@paylinks.example"
    assert received["Reply-To"].addresses[0].addr_spec == "treasurer@riverside.example"
    assert received["Subject"] == rendered.subject
    assert received["Date"].datetime is not None
    assert received["Message-ID"].endswith("@paylinks.example>")
    text_part, html_part = received.iter_parts()
    # On the wire lines end in CRLF; a mail client shows the same text.
    assert text_part.get_content().replace("\r\n", "\n") == rendered.text
    assert html_part.get_content().replace("\r\n", "\n") == rendered.html


def test_test_send_banner_names_the_real_recipient():
    note = "Jane Lee <jane@example.com>"
    rendered = render_email(
        "outstanding_balance", brand=BRAND, balance=TWO_CHILDREN, test_recipient_note=note
    )

    assert rendered.subject.startswith("[TEST] ")
    assert f"Test send — the real recipient would be {note}" in rendered.text
    assert f"Test send — the real recipient would be {html.escape(note)}" in rendered.html

    real = render_email("outstanding_balance", brand=BRAND, balance=TWO_CHILDREN)
    assert "Test send" not in real.text + real.html
    assert not real.subject.startswith("[TEST]")


def test_payment_link_email_for_one_player():
    balance = ParentBalance(7, "Jane Lee", "jane@example.com", (AVA_SPRING, AVA_TOURNAMENT))
    rendered = render_email(EmailType.payment_link, brand=BRAND, balance=balance)

    assert rendered.subject == "Riverside FC: payment links for Ava Lee"
    for part in (rendered.text, rendered.html):
        assert "Here are the payment links for Ava Lee" in part
        assert "Total due: $145.00" in part
    assert f'href="{AVA_SPRING.url}"' in rendered.html
    assert f"Pay Now: {AVA_TOURNAMENT.url}" in rendered.text


def test_nothing_owed_or_a_non_web_link_is_refused():
    with pytest.raises(ValueError, match="no open items"):
        render_email("outstanding_balance", brand=BRAND, balance=ParentBalance(1, "Jane", None, ()))
    script_link = OpenItem("Ava", "Fees", 100, "javascript:alert(1)")
    with pytest.raises(ValueError, match="http"):
        render_email(
            "outstanding_balance", brand=BRAND, balance=ParentBalance(1, "Jane", None, (script_link,))
        )


def test_unknown_email_type_is_refused():
    with pytest.raises(ValueError):
        render_email("newsletter", brand=BRAND, balance=TWO_CHILDREN)


FAMILY = "https://office.riverside.example/f/AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@pytest.mark.parametrize("email_type", [EmailType.outstanding_balance, EmailType.payment_link])
def test_the_family_page_link_sits_beside_the_items_in_both_parts(email_type):
    rendered = render_email(email_type, brand=BRAND, balance=TWO_CHILDREN, family_url=FAMILY)
    assert "See everything and pay all at once" in rendered.text
    assert re.search(r"See everything and pay all at once.*\n" + re.escape(FAMILY) + "\n", rendered.text)
    assert f'href="{FAMILY}"' in rendered.html and "See everything and pay all at once" in rendered.html
    # Beside, not instead: every item keeps its own Pay Now button.
    assert rendered.html.count(">Pay Now<") == len(TWO_CHILDREN.items)
    plain = render_email(email_type, brand=BRAND, balance=TWO_CHILDREN)
    assert "See everything" not in plain.text and "See everything" not in plain.html


def test_a_family_link_that_is_not_a_web_link_is_refused():
    with pytest.raises(ValueError, match="family page link"):
        render_email(
            EmailType.outstanding_balance, brand=BRAND, balance=TWO_CHILDREN, family_url="javascript:alert(1)"
        )
