"""The admin endpoint's limits, over HTTP: test emails per API token per hour (429 with
Retry-After, counted in the database), and one send to every parent running per tenant (a second
answers 409 saying which send is running; once it is over, the next may start)."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from paylinks.access.accounts import create_api_token, user_by_email
from paylinks.access.audit import COMMAND_LINE
from paylinks.club.tenants import tenant_by_slug
from tests.helpers import wait_for
from tests.office.conftest import ADMIN, TENANT

# Every test here is marked `storage` and runs on PostgreSQL too: the limits are kept by upserts and
# a claim's unique key, with stored times compared.

ENDPOINT = "/admin/email/outstanding-balance"


def token_for(engine) -> str:
    with engine.begin() as connection:
        holder = user_by_email(connection, ADMIN)
        return create_api_token(connection, holder, [tenant_by_slug(connection, TENANT)], actor=COMMAND_LINE)


def call(office, token: str, **params: str) -> httpx.Response:
    return httpx.post(
        office.url + ENDPOINT, params=params, headers={"authorization": f"Bearer {token}"}, timeout=60
    )


def run_is_over(flow_run_id: str) -> bool:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(uuid.UUID(flow_run_id)).state
    return state is not None and state.is_final()


@pytest.fixture
def two_test_sends_an_hour(use_settings) -> None:
    use_settings(office_test_sends_per_hour=2)


@pytest.mark.storage  # counted by one upsert; the hour compared with stored times
def test_test_emails_are_limited_per_token(two_test_sends_an_hour, minted_club, engine, office, mailroom):
    token, other = token_for(engine), token_for(engine)
    started = [call(office, token, test_email=f"t{n}@example.com") for n in range(2)]
    assert [r.status_code for r in started] == [202, 202]
    refused = call(office, token, test_email="t3@example.com")
    assert refused.status_code == 429
    assert 3500 <= int(refused.headers["retry-after"]) <= 3601
    assert "2 test emails in the last hour" in refused.json()["detail"]
    assert "try again in 60 minutes" in refused.json()["detail"]
    assert call(office, other, test_email="t4@example.com").status_code == 202  # another token's own hour
    assert call(office, token).status_code == 202  # a preview sends nothing and is not counted
    assert wait_for(lambda: len(mailroom.messages) >= 3, timeout=90)
    time.sleep(1)
    assert sorted(mailroom.recipients()) == ["t0@example.com", "t1@example.com", "t4@example.com"]


@pytest.mark.storage  # the tenant's claim: its unique key, taken over by a conditional update
def test_one_send_to_every_parent_at_a_time(minted_club, engine, office, mailroom):
    token = token_for(engine)
    mailroom.stall_after = 1  # the send hangs on its second email
    first = call(office, token, send="true", blast_key="first")
    assert first.status_code == 202
    run_id = first.json()["flow_run_id"]
    assert mailroom.stalled.wait(timeout=120), "the send never reached its second email"

    second = call(office, token, send="true", blast_key="second")
    assert second.status_code == 409
    detail = second.json()["detail"]
    assert "a send to every parent of Riverside Hoops Club is still running" in detail
    assert ADMIN in detail and run_id in detail and "wait for it to finish" in detail
    assert call(office, token, test_email="t@example.com").status_code == 202  # a test email may go

    mailroom.stall_after = None
    assert wait_for(lambda: run_is_over(run_id), timeout=240), "the first send never finished"
    third = call(office, token, send="true", blast_key="third")
    assert third.status_code == 202
    assert wait_for(lambda: run_is_over(third.json()["flow_run_id"]), timeout=240)


@pytest.mark.storage  # the tenant's claim's unique key refuses the panel
def test_the_panel_waits_for_a_send_the_endpoint_started_and_says_whose_it_is(
    minted_club, engine, office, admin, mailroom
):
    token = token_for(engine)
    mailroom.stall_after = 1  # the endpoint's send hangs on its second email
    first = call(office, token, send="true", blast_key="first")
    assert first.status_code == 202
    assert mailroom.stalled.wait(timeout=120), "the send never reached its second email"

    preview = admin.get(f"/t/{TENANT}/blast")
    reachable = re.search(r"<strong>(\d+)</strong> of them have an email address", preview.text).group(1)
    pressed = admin.submit(f"/t/{TENANT}/blast", f"/t/{TENANT}/blast/send", {"parents": reachable})
    assert pressed.status_code == 409
    assert "A send to every parent is still running" in pressed.text
    assert ADMIN in pressed.text and 'class="error"' in pressed.text
    assert "Wait for it to finish" in pressed.text

    mailroom.stall_after = None
    assert wait_for(lambda: run_is_over(first.json()["flow_run_id"]), timeout=240)
    received = len(mailroom.messages)
    assert received == int(reachable)  # the endpoint's send, once each; the panel started nothing
