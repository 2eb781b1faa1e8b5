"""The emails on a phone (390 px wide) and on a desktop, in headless Chromium: nothing scrolls
sideways and every "Pay Now" button is on screen, whatever the names and however many items."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from paylinks.messaging.render import (
    Brand,
    EmailType,
    OpenItem,
    PaidItem,
    ParentBalance,
    Receipt,
    StillOpen,
    render_email,
    render_receipt,
)
from tests.browser import ARTIFACTS_DIR
from tests.office.cdp import Browser

CLUB = Brand(
    name="Riverside Hoops Club",
    reply_to_email="Riverside Hoops <treasurer@riversidehoops.example>",
    brand_color="#c0392b",
    logo_url=None,
)
FAMILY = ParentBalance(
    parent_id=7,
    parent_name="Dana O'Neil",
    email="dana@example.com",
    items=(
        OpenItem("Maya O'Neil", "Season dues 2025-26", 35000, "https://buy.stripe.com/test_maya_dues"),
        OpenItem("Maya O'Neil", "Tournament fee: Spring Classic", 7500, "https://buy.stripe.com/test_maya_t"),
        OpenItem("Leo O'Neil", "Season dues 2025-26 (scholarship)", 20000, "https://buy.stripe.com/test_leo"),
        OpenItem("Leo O'Neil", "Uniform & warm-up kit", 4550, "https://buy.stripe.com/test_leo_kit"),
    ),
)
# Words no line can break between spaces: names, a description, a club name and an address.
LONG = "Konstantinopolitanische-Wolfeschlegelsteinhausenbergerdorff" * 2
HOSTILE_CLUB = Brand(
    name="TheExtraordinarilyLongNamedRiversideHoopsAndBasketballAssociationOfTheGreaterArea",
    reply_to_email="averyveryverylongtreasureraddress@riversidehoopsandbasketballassociation.example",
    brand_color="#ffee00",
    logo_url=None,
)
HOSTILE_FAMILY = ParentBalance(
    parent_id=8,
    parent_name=f"{LONG} <script>alert(1)</script>",
    email="x@example.com",
    items=tuple(
        OpenItem(
            f"{LONG} {n}",
            "Tournament-fee-for-the-spring-classic-written-without-a-single-space" * 2,
            123456789,
            f"https://buy.stripe.com/test_{'x' * 80}{n}",
        )
        for n in range(15)
    ),
)
FAMILY_PAGE = "https://office.club.example/f/AbCdEfGhIjKlMnOpQrStUvWxYz012345"
CASES = {
    "ordinary": dict(brand=CLUB, balance=FAMILY, family_url=FAMILY_PAGE),
    "test-send": dict(
        brand=CLUB,
        balance=FAMILY,
        test_recipient_note="Dana O'Neil <dana.o.neil.at.home.long@example.com>",
        family_url="https://office.club.example/preview/family/7",
    ),
    "long-names": dict(
        brand=HOSTILE_CLUB,
        balance=HOSTILE_FAMILY,
        forwarded_for=f"{LONG} Parent",
        family_url=FAMILY_PAGE + "?" + "x" * 200,
    ),
}

# Every "Pay Now" button's right edge, and the page's width beyond the window.
MEASURE = """({
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  scrollWidth: document.documentElement.scrollWidth,
  buttons: [...document.querySelectorAll('a')].filter(a => a.innerText.trim() === 'Pay Now')
    .map(a => a.getBoundingClientRect().right),
})"""


@pytest.mark.slow
def test_every_email_fits_a_phone_and_a_desktop_without_scrolling_sideways(tmp_path):
    measured = {}
    with Browser(tmp_path / "chromium") as browser:
        for email_type in (EmailType.outstanding_balance, EmailType.payment_link):
            for case, arguments in CASES.items():
                rendered = render_email(email_type, **arguments)
                page = tmp_path / f"{email_type.value}-{case}.html"
                page.write_text(rendered.html, encoding="utf-8")
                for width in (390, 1280):
                    browser.send(
                        "Emulation.setDeviceMetricsOverride",
                        width=width,
                        height=900,
                        deviceScaleFactor=1,
                        mobile=width < 600,
                    )
                    browser.open(page.as_uri())
                    seen = browser.js(MEASURE)
                    measured[f"{email_type.value} {case} at {width} px"] = seen
                    assert len(seen["buttons"]) == len(arguments["balance"].items)
                    if case != "long-names":
                        browser.screenshot(ARTIFACTS_DIR / f"email-{email_type.value}-{case}-{width}px.png")

    for what, seen in measured.items():
        assert seen["overflow"] <= 0, f"{what}: {json.dumps(seen)}"
        width = int(what.rsplit(" ", 2)[1])
        assert all(right <= width for right in seen["buttons"]), f"{what}: a Pay Now button off screen"
        if width == 390:
            assert seen["scrollWidth"] <= 390, what


DUE_FAMILY = ParentBalance(
    parent_id=7,
    parent_name="Dana O'Neil",
    email="dana@example.com",
    items=tuple(replace(item, payment_link_id=n) for n, item in enumerate(FAMILY.items, start=1)),
)
DUE_WORDS = {1: "overdue by 3 days", 2: "due today", 3: "due in 7 days", 4: "overdue by 30 days"}
STOP_PAGE = "https://office.club.example/r/ZyXwVuTsRqPoNmLkJiHgFeDcBa987654"
RECEIPT = Receipt(
    parent_id=7,
    parent_name="Dana O'Neil",
    email="dana@example.com",
    paid=(
        PaidItem("Maya O'Neil", "Season dues 2025-26", 35000),
        PaidItem("Leo O'Neil", "Uniform & warm-up kit", 4550),
    ),
    method="by card, through Stripe",
    still_open=(
        StillOpen("Leo O'Neil", "Season dues 2025-26 (scholarship)", 20000, "https://buy.stripe.com/t_leo"),
    ),
    owed_back_cents=4550,
    family_page_url=FAMILY_PAGE,
)
HOSTILE_RECEIPT = replace(
    RECEIPT,
    parent_name=HOSTILE_FAMILY.parent_name,
    paid=tuple(
        PaidItem(item.player_name, item.description, item.amount_cents) for item in HOSTILE_FAMILY.items
    ),
    still_open=tuple(
        StillOpen(item.player_name, item.description, item.amount_cents, item.url)
        for item in HOSTILE_FAMILY.items
    ),
)
# Everything on the page: how far it reaches beyond the window.
MEASURE_PAGE = """({
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  scrollWidth: document.documentElement.scrollWidth,
  text: document.body.innerText,
})"""


@pytest.mark.slow
def test_a_reminder_and_a_receipt_fit_a_phone_and_a_desktop(tmp_path):
    pages = {
        "reminder-ordinary": render_email(
            EmailType.reminder,
            brand=CLUB,
            balance=DUE_FAMILY,
            family_url=FAMILY_PAGE,
            due=DUE_WORDS,
            stop_url=STOP_PAGE,
        ).html,
        "reminder-long-names": render_email(
            EmailType.reminder,
            brand=HOSTILE_CLUB,
            balance=HOSTILE_FAMILY,
            family_url=FAMILY_PAGE,
            due={},
            stop_url=STOP_PAGE + "?" + "x" * 200,
        ).html,
        "receipt-ordinary": render_receipt(CLUB, RECEIPT).html,
        "receipt-long-names": render_receipt(HOSTILE_CLUB, HOSTILE_RECEIPT).html,
    }
    measured = {}
    with Browser(tmp_path / "chromium") as browser:
        for name, html in pages.items():
            page = tmp_path / f"{name}.html"
            page.write_text(html, encoding="utf-8")
            for width in (390, 1280):
                browser.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=900,
                    deviceScaleFactor=1,
                    mobile=width < 600,
                )
                browser.open(page.as_uri())
                measured[(name, width)] = browser.js(MEASURE_PAGE)
                if "long-names" not in name:
                    browser.screenshot(ARTIFACTS_DIR / f"email-{name}-{width}px.png")

    for (name, width), seen in measured.items():
        assert seen["overflow"] <= 0 and seen["scrollWidth"] <= width, (
            f"{name} at {width} px scrolls sideways"
        )
    reminder = measured[("reminder-ordinary", 390)]["text"]
    assert all(words in reminder for words in DUE_WORDS.values()), "a bill's due date is not in words"
    assert "$670.50" in reminder  # the total of the four bills
    receipt = measured[("receipt-ordinary", 390)]["text"]
    assert "$395.50" in receipt and "$200.00" in receipt  # what was paid, and what is still open
