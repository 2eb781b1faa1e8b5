"""The receipt a parent reads after a payment: what was paid and how, anything owed back, what is
still open with its own Pay Now links, the family page; names escaped in HTML, verbatim in text."""

from __future__ import annotations

import pytest

from paylinks.messaging.render import Brand, PaidItem, Receipt, StillOpen, render_receipt

BRAND = Brand("Riverside <FC>", "treasurer@riverside.example", "#1f4e8c", None, "usd")


def receipt(**changes) -> Receipt:
    values = dict(
        parent_id=1,
        parent_name="O'Brien <b>",
        email="ob@example.com",
        paid=(
            PaidItem('<script>alert("x")</script>', "Season dues & fees", 12000),
            PaidItem("Ava\r\nBcc: evil@x.com", "Uniform", 4500),
        ),
        method="by card or bank, through Stripe",
        still_open=(StillOpen("Ben Okafor", "Tournament", 3000, "https://buy.stripe.com/test_x"),),
        owed_back_cents=0,
        family_page_url="https://office.example/f/abc",
    )
    return Receipt(**(values | changes))


def test_a_receipt_says_what_was_paid_what_is_still_open_and_links_the_family_page():
    rendered = render_receipt(BRAND, receipt())

    assert rendered.subject == "Riverside <FC>: paid $165.00 — thank you"
    for part in (rendered.text, rendered.html):
        assert "$165.00" in part and "$30.00" in part and "thank you" in part.lower()
        assert "https://buy.stripe.com/test_x" in part and "https://office.example/f/abc" in part
    assert "Paid:" in rendered.text and "Still open:" in rendered.text
    assert "Pay Now: https://buy.stripe.com/test_x" in rendered.text
    assert "See everything and pay all at once: https://office.example/f/abc" in rendered.text


def test_names_are_escaped_in_html_verbatim_in_text_and_never_break_a_line():
    rendered = render_receipt(BRAND, receipt())

    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert '<script>alert("x")</script>' in rendered.text and "Season dues & fees" in rendered.text
    assert "\nBcc:" not in rendered.text


def test_money_owed_back_is_said_and_a_parent_all_paid_up_is_told_so():
    rendered = render_receipt(BRAND, receipt(still_open=(), owed_back_cents=4500, family_page_url=None))

    assert "$45.00 of this payment was for items that had already been paid or had changed" in rendered.text
    assert "all paid up" in rendered.text and "all paid up" in rendered.html
    assert "pay all at once" not in rendered.text


def test_a_receipt_of_nothing_paid_is_refused_and_a_non_web_link_is_left_out():
    with pytest.raises(ValueError):
        render_receipt(BRAND, receipt(paid=()))
    rendered = render_receipt(
        BRAND,
        receipt(still_open=(StillOpen("Ben", "Camp", 100, "javascript:alert(1)"),), family_page_url="data:x"),
    )
    assert "javascript:" not in rendered.html and "data:x" not in rendered.html
