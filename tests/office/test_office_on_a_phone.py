"""Every office page on a phone, in a real browser (headless Chromium at 390 px wide): nothing
scrolls sideways (`document.documentElement.scrollWidth <= 390`) on the login page, the home page,
the search with results, a player card, the admin page, People, the blast panel, a run's page
and an error page. Screenshots at 390 and 1280 px land in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from paylinks.store.tables import payment_links
from paylinks.vocabulary import Role
from tests.browser import ARTIFACTS_DIR
from tests.office.cdp import Browser
from tests.office.conftest import ADMIN, OTHER_TENANT, PASSWORD, TENANT, make_user

PHONE = 390


def at_width(browser: Browser, width: int) -> None:
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=844 if width == PHONE else 1000,
        deviceScaleFactor=1,
        mobile=width == PHONE,
    )


def widest(browser: Browser) -> int:
    return int(browser.js("document.documentElement.scrollWidth"))


@pytest.mark.slow
def test_no_office_page_scrolls_sideways_at_390_px(minted_club, engine, office, tmp_path):
    make_user(engine, ADMIN, OTHER_TENANT, Role.coach)  # two clubs: the home page lists them
    with engine.connect() as connection:
        player_id = connection.execute(
            sa.select(payment_links.c.player_id)
            .where(payment_links.c.tenant_id == minted_club[0].id, payment_links.c.status == "pending")
            .order_by(payment_links.c.id)
        ).scalar()

    widths: dict[str, dict[int, int]] = {}
    with Browser(tmp_path / "chromium") as browser:

        def look(name: str) -> None:
            for width in (1280, PHONE):
                at_width(browser, width)
                browser.wait_for("document.readyState === 'complete'")
                widths.setdefault(name, {})[width] = widest(browser)
                browser.screenshot(ARTIFACTS_DIR / f"office-{name}-{width}.png")

        at_width(browser, PHONE)
        browser.open(f"{office.url}/login")
        look("login")
        browser.type_into("input[name=email]", ADMIN)
        browser.type_into("input[name=password]", PASSWORD)
        browser.click("form[action='/login'] button[type=submit]")
        browser.wait_for("location.pathname === '/' && document.readyState === 'complete'")
        look("home")
        pages = {
            "search": f"/t/{TENANT}/players?q=a",
            "player": f"/t/{TENANT}/players/{player_id}",
            "admin": f"/t/{TENANT}/admin",
            "people": f"/t/{TENANT}/people",
            "blast": f"/t/{TENANT}/blast",
            "reminders": f"/t/{TENANT}/reminders",
            "error": "/t/no-such-club",
        }
        for name, path in pages.items():
            browser.open(office.url + path)
            assert browser.js("location.pathname") == path.split("?")[0], name
            look(name)
        browser.open(f"{office.url}/t/{TENANT}/admin")
        browser.click(f"form[action='/t/{TENANT}/admin/refresh'] button")  # leads to the run's page
        browser.wait_for(f"location.pathname.startsWith({json.dumps(f'/t/{TENANT}/runs/')})")
        look("run")

    too_wide = {name: seen[PHONE] for name, seen in widths.items() if seen[PHONE] > PHONE}
    assert not too_wide, f"pages wider than {PHONE} px on a phone: {too_wide} (all: {widths})"
    assert set(widths) == {"login", "home", *pages, "run"}
