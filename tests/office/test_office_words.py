"""The office in words for people, over HTTP: money in the club's currency, statuses as words,
times in the club's own zone (a club in America/Chicago), no run or Stripe ids outside a
"Details" disclosure; the admin lands on the balances; "Refresh from Stripe" starts a reconcile
run (audited) after which the card shows a payment made with no webhook to tell the office, and
no copyable link for it any more."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa

from paylinks.store.tables import audit_log, payment_links, players, tenants
from paylinks.vocabulary import AuditAction
from tests.helpers import wait_for
from tests.office.conftest import ADMIN, COACH, TENANT

CLUB_TIME = r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M C[SD]T"  # Dec 3, 2026, 11:14 AM CST
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STRIPE_ID = re.compile(r"\b(?:cs|plink|pi|price|prod|evt|acct)_[A-Za-z0-9_]{6,}")


def in_chicago(engine, tenant_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.update(tenants).where(tenants.c.id == tenant_id).values(timezone="America/Chicago")
        )


def words_only(html: str) -> str:
    """The page as a treasurer reads it: without what sits behind a Details disclosure, tags or attributes."""
    html = re.sub(r"<details>.*?</details>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def a_pending_row(engine, tenant_id: int) -> sa.Row:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(payment_links.c.id, payment_links.c.player_id, payment_links.c.stripe_payment_link_url)
            .join(players, players.c.id == payment_links.c.player_id)
            .where(
                payment_links.c.tenant_id == tenant_id,
                payment_links.c.status == "pending",
                payment_links.c.stripe_payment_link_url.is_not(None),
            )
            .order_by(payment_links.c.id)
        ).first()


def test_the_admin_lands_on_balances_in_words_and_club_time(
    minted_club, engine, office, admin, coach, mailroom
):
    club = minted_club[0]
    in_chicago(engine, club.id)
    landing = admin.get("/")
    assert landing.status_code == 303 and landing.headers["location"] == f"/t/{TENANT}/admin"
    assert coach.get("/").headers["location"] == f"/t/{TENANT}"  # a coach lands on the search

    row = a_pending_row(engine, club.id)
    card_path = f"/t/{TENANT}/players/{row.player_id}"
    assert coach.submit(card_path, f"{card_path}/resend").status_code == 303

    page = admin.get(f"/t/{TENANT}/admin")
    assert page.status_code == 200 and "<h1>Riverside Hoops Club: balances</h1>" in page.text
    text = words_only(page.text)
    assert re.search(r"\$\d[\d,]*\.\d\d", text)  # money as money, never cents
    assert "Not yet refreshed from Stripe" in text
    assert re.search(rf"{CLUB_TIME}\s+{re.escape(COACH)}\s+Links resent", " ".join(text.split()))
    assert not UUID.search(text) and not STRIPE_ID.search(text), "an id outside Details"
    assert "resend" not in text.lower().replace("links resent", "")  # the action's words, not its code
    for field in re.findall(r"<(?:input|select)\b[^>]*>", page.text):
        if 'type="hidden"' not in field:
            assert re.search(r"<label[^>]*>[^<]*" + re.escape(field), page.text), f"no label: {field}"

    card = coach.get(card_path)
    # Status and email type as words (an open bill's status may be followed by its due state).
    assert re.search(r">Pending[ <]", card.text) and "Payment links" in card.text
    assert re.search(CLUB_TIME, words_only(card.text))  # the email history, in Chicago's time
    assert not re.search(r"\d\d:\d\d UTC", card.text)


def test_refresh_from_stripe_shows_a_payment_no_webhook_reported(minted_club, engine, office, admin):
    club = minted_club[0]
    in_chicago(engine, club.id)
    row = a_pending_row(engine, club.id)
    card_path = f"/t/{TENANT}/players/{row.player_id}"
    with httpx.Client() as parent:  # a parent pays at the emulator; no webhook reaches the office
        assert parent.get(row.stripe_payment_link_url).status_code == 200
        assert parent.post(row.stripe_payment_link_url).status_code == 200
    before = admin.get(card_path).text
    assert f'data-copy="{row.stripe_payment_link_url}"' in before  # still offered: nobody told us yet

    started = admin.submit(f"/t/{TENANT}/admin", f"/t/{TENANT}/admin/refresh")
    assert started.status_code == 303 and re.fullmatch(
        rf"/t/{TENANT}/runs/{UUID.pattern}", started.headers["location"]
    )

    def paid_on_the_card() -> bool:
        return f'data-copy="{row.stripe_payment_link_url}"' not in admin.get(card_path).text

    assert wait_for(paid_on_the_card, timeout=90)
    card = admin.get(card_path).text
    assert ">Paid" in card and "none: nothing to pay" in card  # a paid row offers no link to copy
    assert re.search(rf"As of {CLUB_TIME}, the last refresh from Stripe", words_only(card))
    balances = admin.get(f"/t/{TENANT}/admin").text
    assert re.search(rf"As of {CLUB_TIME}, the last refresh from Stripe", words_only(balances))
    assert "Refreshed from Stripe" in balances  # audited, in words
    with engine.connect() as connection:
        entry = connection.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).mappings().first()
    assert entry["action"] == AuditAction.stripe_refresh and entry["actor"] == ADMIN
