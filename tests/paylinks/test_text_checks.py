"""What keeps a name on one line and a link a link, checked character by character: a control
character (category Cc) or any whitespace str.isspace knows breaks a name's line into one space and
makes a link not mailable, exactly as the per-character definitions say. Every character of the
Basic Multilingual Plane (where all of those live), and every 61st beyond it."""

from __future__ import annotations

import sys
import unicodedata

from paylinks.messaging.headers import single_line
from paylinks.messaging.render import _is_web_url


def test_every_character_is_judged_as_its_unicode_category_says():
    wrong_names, wrong_links = [], []
    for code in [*range(0x10000), *range(0x10000, sys.maxunicode + 1, 61)]:
        ch = chr(code)
        control = unicodedata.category(ch) == "Cc"
        breaks = control or ch.isspace()
        if single_line(f"Ava{ch}Lee") != ("Ava Lee" if breaks else f"Ava{ch}Lee"):
            wrong_names.append(hex(code))
        if _is_web_url(f"https://pay.example/{ch}x") is breaks:
            wrong_links.append(hex(code))
    assert wrong_names == [] and wrong_links == []
