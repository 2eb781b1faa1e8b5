"""Money as a parent reads it: amounts in the currency's minor units, as Stripe counts them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paylinks.money import format_money, minor_unit_digits


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # Zero-decimal: Stripe's 500 JPY is ¥500, not ¥5.00.
        (500, "jpy", "¥500"),
        (1234567, "JPY", "¥1,234,567"),
        (0, "jpy", "¥0"),
        (-1500, "jpy", "-¥1,500"),
        (15000, "krw", "15,000 KRW"),
        (99_999_999, "vnd", "99,999,999 VND"),
        # Three-decimal: Stripe's 5124 KWD is 5.124 KWD.
        (5124, "kwd", "5.124 KWD"),
        (5, "kwd", "0.005 KWD"),
        (1_000_000, "bhd", "1,000.000 BHD"),
        (-2050, "BHD", "-2.050 BHD"),
        (99_999_999, "kwd", "99,999.999 KWD"),
        # Two decimals, the common case, at Stripe's maximum.
        (99_999_999, "usd", "$999,999.99"),
    ],
)
def test_amounts_read_as_stripe_counts_them(amount, currency, expected):
    assert format_money(amount, currency) == expected


@pytest.mark.parametrize(("currency", "digits"), [("usd", 2), ("jpy", 0), ("JPY", 0), ("kwd", 3), ("bhd", 3)])
def test_minor_unit_digits(currency, digits):
    assert minor_unit_digits(currency) == digits


@given(
    amount=st.integers(min_value=-(10**12), max_value=10**12),
    currency=st.sampled_from(["usd", "eur", "jpy", "krw", "kwd", "bhd", "xyz"]),
)
def test_the_text_is_exactly_the_amount(amount, currency):
    """No rounding, ever: reading the digits back gives the amount in minor units."""
    text = format_money(amount, currency)
    digits = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    value = Decimal(digits) * 10 ** minor_unit_digits(currency)
    assert value == abs(amount)
    assert text.startswith("-") == (amount < 0)
