"""The original requirement's endpoint: POST /admin/email/outstanding-balance with an admin's API
token starts the outstanding-balance flow (202), and refuses bad requests as the README says."""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa

from paylinks.access.accounts import create_api_token, user_by_email
from paylinks.access.audit import COMMAND_LINE
from paylinks.club.tenants import tenant_by_slug
from paylinks.store.tables import api_tokens, audit_log
from paylinks.vocabulary import AuditAction
from tests.office.conftest import ADMIN, COACH, OTHER_TENANT, TENANT

ENDPOINT = "/admin/email/outstanding-balance"


def token_for(engine, email: str, *slugs: str) -> str:
    with engine.begin() as connection:
        user = user_by_email(connection, email)
        return create_api_token(
            connection, user, [tenant_by_slug(connection, s) for s in slugs], actor=COMMAND_LINE
        )


@pytest.fixture
def admin_token(engine, office) -> str:
    return token_for(engine, ADMIN, TENANT)


def call(office, token: str | None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(office.url + ENDPOINT, params=params, headers=headers, timeout=60)


def test_a_test_email_run_starts_and_the_sample_arrives(minted_club, engine, office, admin_token, mailroom):
    response = call(office, admin_token, test_email="Treasurer@Example.com")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"flow_run_id", "ui_url"} and len(body["flow_run_id"]) == 36
    deadline = time.monotonic() + 60
    while not mailroom.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    ((rcpt, message),) = mailroom.messages
    assert rcpt == ["Treasurer@example.com"] and message["Subject"].startswith("[TEST]")

    with office.client() as admin:
        admin.login(ADMIN)
        run = admin.get(f"/t/{TENANT}/runs/{body['flow_run_id']}")
        assert run.status_code == 200 and "Treasurer@example.com" in run.text
    with engine.connect() as connection:
        entry = connection.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).mappings().first()
        stored = connection.execute(sa.select(api_tokens.c.token_sha256)).scalars().all()
    assert entry["action"] == AuditAction.blast_test and entry["actor"] == ADMIN
    assert admin_token not in entry["detail"] and admin_token not in stored


def test_refusals(minted_club, engine, office, admin_token, mailroom):
    coach_token = token_for(engine, COACH, TENANT)
    assert call(office, None).status_code == 401
    assert call(office, None).headers["www-authenticate"] == "Bearer"
    assert call(office, "plk_not-a-real-token").status_code == 401
    assert call(office, coach_token, test_email="a@example.com").status_code == 403
    bad_address = call(office, admin_token, test_email="not an address")
    assert bad_address.status_code == 422 and "test_email" in bad_address.json()["detail"]
    both = call(office, admin_token, test_email="a@example.com", send="true")
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    assert call(office, admin_token, tenant=OTHER_TENANT, test_email="a@example.com").status_code == 404
    assert call(office, admin_token, tenant="no-such-club").status_code == 404
    assert call(office, admin_token, send="perhaps").status_code == 422
    time.sleep(0.5)
    assert mailroom.messages == []
    with engine.connect() as connection:
        actions = connection.execute(sa.select(audit_log.c.action)).scalars().all()
    assert AuditAction.blast_test not in actions and AuditAction.blast_send not in actions


def test_a_token_of_several_tenants_names_one(minted_club, engine, office, use_settings):
    from paylinks.access.accounts import add_user
    from paylinks.vocabulary import Role

    with engine.begin() as connection:
        add_user(connection, ADMIN, tenant_by_slug(connection, OTHER_TENANT), Role.admin, actor=COMMAND_LINE)
    token = token_for(engine, ADMIN, TENANT, OTHER_TENANT)
    assert call(office, token).status_code == 422
    started = call(office, token, tenant=OTHER_TENANT)  # a preview: sends nothing
    assert started.status_code == 202
