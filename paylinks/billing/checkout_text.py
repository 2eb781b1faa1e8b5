"""What a link's checkout page and the payment's receipt say the payment is for:
"Spring tournament — Eli Alvarez, Riverside Hoops", so siblings' checkouts never read the same.

It goes to Stripe as the PaymentIntent's `description` (on the receipt and the charge) and as the
link's `custom_text[submit][message]` (beside the pay button). Names come from the club's data:
here they become one line of plain text of bounded length (Stripe escapes it on its pages).
"""

from __future__ import annotations

import unicodedata

# Stripe takes up to 1,000 characters of a description and 1,200 of a custom text message;
# a checkout line longer than this helps nobody.
MAX_CHECKOUT_TEXT = 300
ELLIPSIS = "…"


def one_line(text: str) -> str:
    """`text` on one line: line breaks, tabs and other control characters become spaces, runs
    of spaces one; invisible format characters (a right-to-left override, say) are dropped."""
    text = str(text)
    if text.isascii() and text.isprintable():
        # Most names: no control or format character to look for (every one is outside printable
        # ASCII), only runs of spaces to fold. A backfill checks 10,000 of them each night.
        return " ".join(text.split())
    cleaned = "".join(
        " " if ch.isspace() or unicodedata.category(ch) == "Cc" else ch
        for ch in text
        if unicodedata.category(ch) != "Cf"
    )
    return " ".join(cleaned.split())


def checkout_text(description: str, player_name: str, club_name: str) -> str:
    """`Spring tournament — Eli Alvarez, Riverside Hoops`: the bill, the player, the club."""
    bill, player, club = one_line(description), one_line(player_name), one_line(club_name)
    text = f"{bill} — {player}" if player else bill
    if club:
        text = f"{text}, {club}"
    if len(text) <= MAX_CHECKOUT_TEXT:
        return text
    return text[: MAX_CHECKOUT_TEXT - len(ELLIPSIS)].rstrip() + ELLIPSIS
