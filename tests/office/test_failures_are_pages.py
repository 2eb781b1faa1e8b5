"""What the office answers when something a person can fix is missing or down: a styled page (or
the card's error box) naming what to set, with a status that says so, never a bare 500 and never
in the green box that success uses. The office in process (TestClient), on the test's settings
with one part taken away: the Stripe key, Stripe itself, the mail server, the Prefect API."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from fastapi.testclient import TestClient

from paylinks.settings import Settings
from paylinks.store.tables import audit_log
from paylinks.vocabulary import AuditAction
from tests.helpers import TENANT, current_settings
from tests.office.conftest import ADMIN, COACH, SESSION_SECRET, OfficeClient
from tests.office.test_coach import a_player_who_owes


class LocalOffice(TestClient):
    """The office in this process, answering as a browser sees it (a fault is a page, not raised)."""

    login = OfficeClient.login
    submit = OfficeClient.submit


@contextmanager
def office_with(**changes: object) -> Iterator[Settings]:
    """The test's settings with `changes`: the office and the flows it starts both use them."""
    from tasks.run_settings import settings_for_runs

    changed = Settings(
        **(current_settings().model_dump() | {"office_session_secret": SESSION_SECRET} | changes)
    )
    with settings_for_runs(changed):
        yield changed


def signed_in(settings: Settings, email: str) -> LocalOffice:
    from office.app import create_app

    client = LocalOffice(create_app(settings, resolve_secrets=False), raise_server_exceptions=False)
    client.follow_redirects = False
    assert client.login(email).status_code == 303
    return client


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def error_box(html: str) -> str:
    match = re.search(r'class="error"[^>]*>(.*?)</p>', html, re.S)
    assert match, html[:3000]
    return " ".join(match.group(1).split())


def test_without_a_stripe_key_the_blast_resend_and_refresh_name_the_setting(
    minted_club, engine, office_people
):
    # The demo's links were minted at the emulator; this office has no key and real Stripe's address.
    with office_with(stripe_api_key=None, stripe_api_base=None) as settings:
        admin, coach = signed_in(settings, ADMIN), signed_in(settings, COACH)

        panel = admin.get(f"/t/{TENANT}/blast")
        assert panel.status_code == 503, panel.text[:500]
        assert "Internal Server Error" not in panel.text and "<h1>Stripe is not set up</h1>" in panel.text
        assert "set PAYLINKS_STRIPE_API_KEY" in error_box(panel.text) and "make office" in panel.text
        assert 'href="/static/office.css"' in panel.text  # the office's own page, with its bar

        refresh = admin.submit(f"/t/{TENANT}/admin", f"/t/{TENANT}/admin/refresh")
        assert refresh.status_code == 503 and "PAYLINKS_STRIPE_API_KEY" in error_box(refresh.text)

        player = a_player_who_owes(engine)
        card = f"/t/{TENANT}/players/{player['id']}"
        resend = coach.submit(card, f"{card}/resend")
        assert resend.status_code == 503
        assert error_box(resend.text).startswith("Nothing sent: Stripe is not set up for this office")
        assert 'class="notice"' not in resend.text  # never in the success style

    with engine.connect() as connection:
        entry = connection.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).mappings().first()
    assert entry["action"] == AuditAction.resend and "Nothing sent" in entry["detail"]


def test_stripe_out_of_reach_is_a_page_naming_its_address(minted_club, office_people):
    port = closed_port()
    with office_with(stripe_api_base=f"http://127.0.0.1:{port}") as settings:
        admin = signed_in(settings, ADMIN)
        refresh = admin.submit(f"/t/{TENANT}/admin", f"/t/{TENANT}/admin/refresh")
    assert refresh.status_code == 503 and "<h1>Stripe cannot be reached</h1>" in refresh.text
    words = error_box(refresh.text)
    assert f"127.0.0.1:{port}" in words and "PAYLINKS_STRIPE_API_BASE" in words


def test_a_mail_server_that_is_down_is_an_error_on_the_card_not_a_notice(minted_club, engine, office_people):
    with office_with(
        email_transport="smtp", smtp_host="127.0.0.1", smtp_port=closed_port(), allow_test_links=True
    ) as settings:
        coach = signed_in(settings, COACH)
        player = a_player_who_owes(engine)
        card = f"/t/{TENANT}/players/{player['id']}"
        resend = coach.submit(card, f"{card}/resend")
    assert resend.status_code == 503, resend.text[:2000]
    assert f"Not sent to {player['email']}" in error_box(resend.text)
    assert 'class="notice"' not in resend.text


def test_a_prefect_server_that_is_down_is_a_page_naming_prefect_api_url(minted_club, engine, office_people):
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    down = f"http://127.0.0.1:{closed_port()}/api"
    with office_with() as settings:
        coach, admin = signed_in(settings, COACH), signed_in(settings, ADMIN)
        with temporary_settings({PREFECT_API_URL: down, PREFECT_CLIENT_MAX_RETRIES: 0}):
            player = a_player_who_owes(engine)
            card = f"/t/{TENANT}/players/{player['id']}"
            resend = coach.submit(card, f"{card}/resend")
            page = admin.get(f"/t/{TENANT}/admin")
    assert resend.status_code == 503 and down in error_box(resend.text) and "PREFECT_API_URL" in resend.text
    assert page.status_code == 200 and "Balances by team" in page.text  # the rest of the page still helps
    assert "PREFECT_API_URL" in error_box(page.text)


def test_a_fault_of_the_office_itself_is_a_styled_500_page(minted_club, office_people, monkeypatch):
    from paylinks.club import office as club_office

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    with office_with() as settings:
        admin = signed_in(settings, ADMIN)
        monkeypatch.setattr(club_office, "team_balances", broken)  # a bug: nothing a person can fix
        page = admin.get(f"/t/{TENANT}/admin")
    assert page.status_code == 500 and "<h1>Something went wrong</h1>" in page.text
    assert "a bug" not in page.text  # the reason is for the office's log
