"""The family page in a real browser (headless Chromium) at 390 and 1280 px: nothing scrolls
sideways on a phone, with a long name and many items, and after "Pay all" refused a changed bill.
Screenshots land in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from paylinks.store.tables import payment_links, players
from tests.browser import ARTIFACTS_DIR
from tests.office.cdp import Browser
from tests.office.test_family_page import busiest_parent, family_address
from tests.office.test_office_on_a_phone import PHONE, at_width, widest


@pytest.mark.slow
def test_the_family_page_fits_a_phone(minted_club, engine, office, tmp_path):
    parent_id = busiest_parent(engine)
    with engine.begin() as connection:  # a child with a name longer than a phone is wide
        connection.execute(
            sa.update(players)
            .where(
                players.c.id
                == sa.select(sa.func.min(players.c.id))
                .where(players.c.parent_id == parent_id)
                .scalar_subquery()
            )
            .values(first_name="Maximiliana-Alexandrina-Konstantinopoulou")
        )
    with engine.begin() as connection:  # one bill paid by cheque, one settling: every section shows
        rows = (
            connection.execute(
                sa.select(payment_links.c.id)
                .where(payment_links.c.parent_id == parent_id)
                .order_by(payment_links.c.id.desc())
            )
            .scalars()
            .all()
        )
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == rows[0])
            .values(status="paid", paid_method="cheque", paid_at=sa.func.now())
        )
        connection.execute(
            sa.update(payment_links).where(payment_links.c.id == rows[1]).values(status="processing")
        )
    path = family_address(engine, parent_id)
    widths: dict[str, dict[int, int]] = {}
    with Browser(tmp_path / "chromium") as browser:

        def look(name: str) -> None:
            for width in (1280, PHONE):
                at_width(browser, width)
                browser.wait_for("document.readyState === 'complete'")
                widths.setdefault(name, {})[width] = widest(browser)
                browser.screenshot(ARTIFACTS_DIR / f"family-{name}-{width}.png")

        at_width(browser, PHONE)
        browser.open(office.url + path)
        assert "Pay all" in browser.js("document.body.innerText")
        look("page")
        browser.js("window.scrollTo(0, document.body.scrollHeight)")
        browser.screenshot(ARTIFACTS_DIR / f"family-page-bottom-{PHONE}.png")
        browser.open(f"{office.url}{path}?paid=1")
        look("unknown-paid")
        browser.open(f"{office.url}/f/{'A' * 32}")
        look("not-found")

    too_wide = {name: seen[PHONE] for name, seen in widths.items() if seen[PHONE] > PHONE}
    assert not too_wide, f"family pages wider than {PHONE} px on a phone: {too_wide} (all: {widths})"
