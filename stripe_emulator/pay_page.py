"""The hosted page behind each payment link's `url`: what a parent sees before and after paying.

Plain HTML built here with every caller-supplied string escaped (product names come from club
admins). It stands in for Stripe Checkout only far enough to show what is owed and to pay it.
"""

from __future__ import annotations

from html import escape
from typing import Any

# Currencies Stripe counts in whole units rather than cents.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
_CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$", "nzd": "NZ$", "jpy": "¥"}

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; color: #1a1f36; }
table { width: 100%; border-collapse: collapse; margin: 1.5rem 0; }
td, th { padding: .5rem 0; text-align: left; }
td.amount, th.amount { text-align: right; }
tr.total { border-top: 1px solid #e3e8ee; font-weight: 600; }
button { width: 100%; padding: .75rem; font-size: 1rem; color: #fff; background: #635bff; border: 0;
         border-radius: .375rem; cursor: pointer; }
p.note { color: #697386; font-size: .8rem; }
"""

_EMULATOR_NOTE = '<p class="note">Local Stripe emulator: no real money moves.</p>'


def format_amount(amount: int, currency: str) -> str:
    """`4500, "usd"` → `$45.00`; currencies without a symbol here read `45.00 SEK`."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL_CURRENCIES:
        number = f"{amount:,}"
    else:
        sign = "-" if amount < 0 else ""
        major, minor = divmod(abs(amount), 100)
        number = f"{sign}{major:,}.{minor:02d}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def checkout_page(link: dict[str, Any], line_items: list[dict[str, Any]]) -> str:
    """What the link's `url` shows: each item, the total, and a Pay button posting back to the url."""
    currency = link["currency"]
    total = format_amount(sum(item["amount_total"] for item in line_items), currency)
    rows = "".join(
        "<tr>"
        f"<td>{escape(item['description'])}</td>"
        f"<td>&times; {item['quantity']}</td>"
        f'<td class="amount">{format_amount(item["amount_total"], currency)}</td>'
        "</tr>"
        for item in line_items
    )
    body = (
        "<h1>Checkout</h1>"
        f"<table>{rows}"
        f'<tr class="total"><th>Total</th><td></td><td class="amount">{total}</td></tr></table>'
        # No action attribute: the form posts to the page's own url, whatever host and port served it.
        f'<form method="post"><button type="submit">Pay {total}</button></form>'
        f"{_EMULATOR_NOTE}"
    )
    return _page("Checkout", body)


def completed_page(session: dict[str, Any], link: dict[str, Any]) -> str:
    """The confirmation after paying: Stripe's hosted confirmation, or the link's redirect target."""
    amount = format_amount(session["amount_total"], session["currency"])
    if session["payment_status"] == "paid":
        heading, status = "Thanks for your payment", f"{amount} paid."
    else:
        heading, status = "Payment processing", f"{amount} will be confirmed when the payment clears."
    after = link["after_completion"]
    if after["type"] == "redirect":
        follow_up = f'<p><a href="{escape(after["redirect"]["url"])}">Continue</a></p>'
    else:
        custom_message = after["hosted_confirmation"]["custom_message"]
        follow_up = f"<p>{escape(custom_message)}</p>" if custom_message else ""
    body = (
        f"<h1>{escape(heading)}</h1><p>{escape(status)}</p>{follow_up}"
        f'<p class="note">Reference {escape(session["id"])}</p>{_EMULATOR_NOTE}'
    )
    return _page(heading, body)


def unavailable_page(message: str) -> str:
    """Shown for an inactive or unknown link."""
    return _page("Link unavailable", f"<h1>Link unavailable</h1><p>{escape(message)}</p>{_EMULATOR_NOTE}")


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
