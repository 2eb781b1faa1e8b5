"""The blast panel says when the last blast went and whom a new one holds back; a send's run page
counts who was sent, held back and failed and names every parent not reached, and why. The real
office over HTTP (uvicorn on loopback), SMTP on loopback (aiosmtpd), the emulator over HTTP,
SQLite (and PostgreSQL)."""

from __future__ import annotations

import re
import time

import httpx
import sqlalchemy as sa
from markupsafe import escape

from flows.outstanding_balance_email import outstanding_balance_email
from paylinks.access.accounts import create_api_token, user_by_email
from paylinks.access.audit import COMMAND_LINE
from paylinks.club.tenants import tenant_by_slug
from paylinks.store.tables import parents, tenants
from tests.office.conftest import ADMIN, TENANT

PANEL = f"/t/{TENANT}/blast"
SEND = f"/t/{TENANT}/blast/send"


def reachable_count(panel_html: str) -> int:
    return int(re.search(r"<strong>(\d+)</strong> of them have an email address", panel_html).group(1))


def finished_run_page(admin, location: str, timeout: float = 180) -> str:
    """The run page once the run has ended (it stops refreshing itself)."""
    deadline = time.monotonic() + timeout
    while True:
        page = admin.get(location)
        assert page.status_code == 200
        if 'http-equiv="refresh"' not in page.text or time.monotonic() > deadline:
            return page.text
        time.sleep(0.3)


def count_on(page: str, what: str) -> int:
    return int(re.search(rf"<strong>(\d+)</strong> {re.escape(what)}", page).group(1))


def without_address(engine) -> str:
    """The name of TENANT's parent who owes something but has no email address (the demo has one)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(parents.c.first_name, parents.c.last_name)
            .join(tenants, tenants.c.id == parents.c.tenant_id)
            .where(tenants.c.slug == TENANT, parents.c.email.is_(None))
        ).first()
    return f"{row.first_name} {row.last_name}"


def test_the_panel_says_when_the_last_blast_went_and_a_second_send_holds_everyone_back(
    minted_club, engine, admin, mailroom
):
    panel = admin.get(PANEL).text
    assert "Last blast: none yet." in panel
    first = outstanding_balance_email(tenant=TENANT, send=True)
    reachable = len(first.sent)
    assert reachable > 0 and len(mailroom.messages) == reachable

    panel = admin.get(PANEL).text

    assert re.search(
        rf"Last blast: <strong>\w{{3}} \d+, \d{{4}}, \d+:\d\d [AP]M E[SD]T, {reachable} parents</strong>",
        panel,
    )
    held = re.search(r'<div class="warn" id="held-back">(.*?)</div>', panel, re.S).group(1)
    assert f"<strong>{reachable}</strong> parents were emailed in the last 24 hours" in held
    for email in first.emails:
        if email.address:
            assert re.search(rf"{escape(email.parent_name)} — emailed \w{{3}} \d+, \d{{4}}", held)

    # Send again without ticking the box: nobody is mailed, and the run page says why.
    sent = admin.submit(PANEL, SEND, {"parents": str(reachable_count(panel))})
    assert sent.status_code == 303
    page = finished_run_page(admin, sent.headers["location"])
    assert len(mailroom.messages) == reachable
    assert "Finished." in page and count_on(page, "sent") == 0
    assert count_on(page, "held back (emailed recently)") == reachable
    not_reached = re.search(r'<table id="not-reached">(.*?)</table>', page, re.S).group(1)
    assert not_reached.count("held back: emailed ") == reachable
    assert (
        f"<td>{escape(without_address(engine))}</td><td>none on file</td><td>no email address on file</td>"
        in not_reached
    )

    # Ticked: everyone is mailed again.
    again = admin.submit(PANEL, SEND, {"parents": str(reachable_count(panel)), "include_recent": "yes"})
    page = finished_run_page(admin, again.headers["location"])
    assert len(mailroom.messages) == 2 * reachable
    assert count_on(page, "sent") == reachable and count_on(page, "held back (emailed recently)") == 0
    assert "included on request" in page


def test_a_failed_send_is_shown_as_a_failure_naming_who_bounced_and_why(minted_club, engine, admin, mailroom):
    preview = outstanding_balance_email(tenant=TENANT)
    bounced = next(e for e in preview.emails if e.address)
    mailroom.refuse = {bounced.address}
    panel = admin.get(PANEL).text

    sent = admin.submit(PANEL, SEND, {"parents": str(reachable_count(panel))})
    page = finished_run_page(admin, sent.headers["location"])

    assert '<div class="error" role="alert" id="run-outcome"><p><strong>This run failed.</strong>' in page
    assert 'class="notice"' not in page and "Finished." not in page
    assert count_on(page, "failed") == 1 and count_on(page, "sent") == len(mailroom.messages)
    row = re.search(rf"<tr><td>{re.escape(str(escape(bounced.parent_name)))}</td>.*?</tr>", page).group(0)
    assert bounced.address in row and "bounced by the mail server" in row and "550" in row
    assert "no email address on file" in page
    # Ids only behind the details; the Prefect UI is linked (with a note when it does not answer).
    run_id = sent.headers["location"].rsplit("/", 1)[1]
    before_details = page.split("<details>", 1)[0]
    assert run_id not in before_details.replace(f"/runs/flow-run/{run_id}", "")
    assert f"/runs/flow-run/{run_id}" in page and "Prefect UI" in page


def test_the_admin_endpoint_holds_back_the_recently_emailed_unless_asked(
    minted_club, engine, office, mailroom
):
    with engine.begin() as connection:
        token = create_api_token(
            connection,
            user_by_email(connection, ADMIN),
            [tenant_by_slug(connection, TENANT)],
            actor=COMMAND_LINE,
        )
    first = outstanding_balance_email(tenant=TENANT, send=True)
    reachable = len(first.sent)

    def send(**params: str) -> None:
        response = httpx.post(
            office.url + "/admin/email/outstanding-balance",
            params={"send": "true", **params},
            headers={"authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        with office.client() as admin:
            assert admin.login(ADMIN).status_code == 303
            finished_run_page(admin, f"/t/{TENANT}/runs/{response.json()['flow_run_id']}")

    send()
    assert len(mailroom.messages) == reachable
    send(include_recent="true")
    assert len(mailroom.messages) == 2 * reachable
    bad = httpx.post(
        office.url + "/admin/email/outstanding-balance",
        params={"send": "true", "include_recent": "perhaps"},
        headers={"authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert bad.status_code == 422 and "include_recent must be true or false" in bad.text
