"""The emails on a phone (390 px wide) and on a desktop, in headless Chromium: nothing scrolls
sideways and every "Pay Now" button is on screen, whatever the names and however many items."""

from __future__ import annotations

import json

import pytest

from paylinks.messaging.render import Brand, EmailType, OpenItem, ParentBalance, render_email
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
