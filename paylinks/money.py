"""Money: amounts are integer minor units (cents); how many digits each currency has, how it reads.

Integer arithmetic only, so no amount is ever off by a float's rounding.
"""

from __future__ import annotations

# Stripe refuses a unit_amount above eight digits in the currency's minor unit.
STRIPE_MAX_AMOUNT = 99_999_999

_CURRENCY_SYMBOLS = {
    "usd": "$",
    "eur": "€",
    "gbp": "£",
    "cad": "CA$",
    "aud": "A$",
    "nzd": "NZ$",
    "jpy": "¥",
    "inr": "₹",
    "mxn": "MX$",
}

# Stripe counts these currencies in whole units, not hundredths (an amount of 500 JPY is ¥500).
_ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
# Stripe counts these in thousandths: 5124 "kwd" is 5.124 KWD.
_THREE_DECIMAL_CURRENCIES = frozenset("bhd jod kwd omr tnd".split())


def minor_unit_digits(currency: str) -> int:
    """How many decimals the currency's minor unit has, as Stripe counts amounts."""
    code = currency.lower()
    if code in _ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if code in _THREE_DECIMAL_CURRENCIES else 2


def format_money(amount_cents: int, currency: str = "usd") -> str:
    """Format an amount in the currency's minor units: 123450, "usd" -> "$1,234.50".

    Integer arithmetic only, so no amount is ever off by a float's rounding.
    Unknown currencies read "1,234.50 XYZ".
    """
    code = currency.lower()
    sign = "-" if amount_cents < 0 else ""
    number = _group_digits(abs(amount_cents), decimals=minor_unit_digits(code))
    symbol = _CURRENCY_SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{number} {code.upper()}"
    return f"{sign}{symbol}{number}"


def _group_digits(amount: int, *, decimals: int) -> str:
    """12345678, decimals=2 -> "123,456.78"."""
    if decimals == 0:
        return f"{amount:,}"
    whole, minor = divmod(amount, 10**decimals)
    return f"{whole:,}.{minor:0{decimals}d}"
