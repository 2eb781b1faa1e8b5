"""The hosted pages behind each payment link's and checkout session's `url`: what a parent sees
before and after paying.

Plain HTML built here with every caller-supplied string escaped (product names come from club
admins). It stands in for Stripe Checkout only far enough to show what is owed and to pay it:
the items, the payment's description (`payment_intent_data[description]`, which the receipt
carries) and the `custom_text[submit][message]` beside the pay button.
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
button.secondary { margin-top: .5rem; color: #635bff; background: #fff; border: 1px solid #635bff; }
p.note { color: #697386; font-size: .8rem; }
p.for, p.submit-text { overflow-wrap: anywhere; white-space: pre-line; }
p.for { font-weight: 600; }
p.submit-text { color: #3c4257; font-size: .9rem; }
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


def checkout_page(
    line_items: list[dict[str, Any]],
    *,
    currency: str,
    description: str | None,
    submit_text: str | None,
    offer_card: bool = True,
    offer_bank_debit: bool = False,
) -> str:
    """What a link's or a session's `url` shows: each item, the total, and a Pay button posting
    back to the url (by card), and a button paying by bank debit where the checkout takes one."""
    total = format_amount(sum(item["amount_total"] for item in line_items), currency)
    rows = "".join(
        "<tr>"
        f"<td>{escape(item['description'])}</td>"
        f"<td>&times; {item['quantity']}</td>"
        f'<td class="amount">{format_amount(item["amount_total"], currency)}</td>'
        "</tr>"
        for item in line_items
    )
    buttons = f'<button type="submit">Pay {total}</button>' if offer_card else ""
    if offer_bank_debit:
        label, style = (
            ("Pay by bank debit", ' class="secondary"') if offer_card else (f"Pay {total} by bank debit", "")
        )
        buttons += f'<button type="submit" name="payment_method" value="bank_debit"{style}>{label}</button>'

    body = (
        "<h1>Checkout</h1>"
        + (f'<p class="for">{escape(description)}</p>' if description else "")
        + f"<table>{rows}"
        f'<tr class="total"><th>Total</th><td></td><td class="amount">{total}</td></tr></table>'
        + (f'<p class="submit-text">{escape(submit_text)}</p>' if submit_text else "")
        # No action attribute: the form posts to the page's own url, whatever host and port served it.
        + f'<form method="post">{buttons}</form>'
        f"{_EMULATOR_NOTE}"
    )
    return _page("Checkout", body)


def payment_description(payment_intent_data: dict[str, Any] | None) -> str | None:
    """What a checkout's payment says it is for (its PaymentIntent's and receipt's description)."""
    return (payment_intent_data or {}).get("description") or None


def submit_message(custom_text: dict[str, Any] | None) -> str | None:
    """`custom_text[submit][message]`: the line shown beside the Pay button."""
    return ((custom_text or {}).get("submit") or {}).get("message")


def completed_page(
    session: dict[str, Any],
    *,
    description: str | None,
    continue_url: str | None = None,
    message: str | None = None,
) -> str:
    """The confirmation after paying: Stripe's hosted confirmation (with `message`), or a link on
    to where the checkout sends the customer next (`continue_url`)."""
    amount = format_amount(session["amount_total"], session["currency"])
    if session["payment_status"] == "paid":
        heading, status = "Thanks for your payment", f"{amount} paid."
    else:
        heading, status = "Payment processing", f"{amount} will be confirmed when the payment clears."
    if continue_url:
        follow_up = f'<p><a href="{escape(continue_url)}">Continue</a></p>'
    else:
        follow_up = f"<p>{escape(message)}</p>" if message else ""
    paid_for = f'<p class="for">{escape(description)}</p>' if description else ""
    body = (
        f"<h1>{escape(heading)}</h1>{paid_for}<p>{escape(status)}</p>{follow_up}"
        f'<p class="note">Reference {escape(session["id"])}</p>{_EMULATOR_NOTE}'
    )
    return _page(heading, body)


def unavailable_page(message: str, title: str = "Link unavailable") -> str:
    """Shown for an inactive or unknown link, or a checkout that can no longer be paid."""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>{_EMULATOR_NOTE}")


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
