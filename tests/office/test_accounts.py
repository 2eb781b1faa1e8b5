"""Logging in to the office: cookies, one-time passwords, CSRF, and the throttle on guessing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from paylinks.access.accounts import add_user
from paylinks.access.audit import COMMAND_LINE
from paylinks.club.tenants import tenant_by_slug
from paylinks.store.tables import audit_log, login_failures, users
from paylinks.vocabulary import Role
from tests.office.conftest import ADMIN, COACH, PASSWORD, SESSION_SECRET, TENANT, csrf_of

# The tests marked `storage` run on PostgreSQL too (the throttle: an upsert and windows compared with
# stored times); the rest on SQLite.


def test_a_coach_logs_in_with_a_signed_httponly_samesite_cookie_and_logs_out(office, engine):
    with office.client() as client:
        assert client.get("/t/riverside-hoops").headers["location"].startswith("/login")
        response = client.login(COACH)
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
        assert SESSION_SECRET not in cookie and PASSWORD not in cookie
        home = client.get("/", follow_redirects=True)
        assert home.status_code == 200 and "find a player" in home.text and COACH in home.text

        stolen = dict(client.cookies)
        client.post("/logout", data={"csrf_token": csrf_of(home.text)})
        assert client.get("/t/riverside-hoops").status_code == 303
    # A cookie copied before the logout no longer opens anything.
    with office.client() as thief:
        thief.cookies.update(stolen)
        assert thief.get("/t/riverside-hoops").status_code == 303


def test_a_tampered_cookie_is_ignored(office):
    with office.client() as client:
        client.login(COACH)
        ((name, value),) = dict(client.cookies).items()
        payload, signature = value.split(".")
        client.cookies.clear()
        client.cookies.set(name, payload + "x." + signature)
        assert client.get("/t/riverside-hoops").status_code == 303


def test_the_one_time_password_must_be_replaced_first(office, engine):
    with engine.begin() as connection:
        added = add_user(
            connection,
            "new.coach@riverside.example",
            tenant_by_slug(connection, TENANT),
            Role.coach,
            actor=COMMAND_LINE,
        )
    with office.client() as client:
        response = client.login("new.coach@riverside.example", added.one_time_password)
        assert response.headers["location"] == "/password"
        assert client.get("/t/riverside-hoops").headers["location"] == "/password"
        page = client.get("/password")
        changed = client.post(
            "/password",
            data={
                "csrf_token": csrf_of(page.text),
                "current_password": added.one_time_password,
                "new_password": "a brand new passphrase",
                "confirm_password": "a brand new passphrase",
            },
        )
        assert changed.status_code == 303
        assert client.get("/t/riverside-hoops").status_code == 200
    with office.client() as client:
        assert client.login("new.coach@riverside.example", added.one_time_password).status_code == 401
        assert client.login("new.coach@riverside.example", "a brand new passphrase").status_code == 303
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(users.c.password_hash).where(users.c.email == "new.coach@riverside.example")
        ).scalar()
    assert stored.startswith("$argon2id$") and "a brand new passphrase" not in stored


def test_a_post_without_the_csrf_token_is_refused(coach, engine):
    before = _audit_count(engine)
    for data in ({}, {"csrf_token": "forged"}):
        response = coach.post("/t/riverside-hoops/players/1/resend", data=data)
        assert response.status_code == 403
        assert "reload the page" in response.text
    # A login form without its token is refused too, before any password is checked.
    with coach.__class__(base_url=str(coach.base_url)) as stranger:
        assert stranger.post("/login", data={"email": COACH, "password": PASSWORD}).status_code == 403
    assert _audit_count(engine) == before


@pytest.mark.storage  # attempts counted by one upsert; the window compared with stored times
def test_repeated_wrong_passwords_are_throttled_per_account(office, engine):
    with office.client() as client:
        for _ in range(5):
            assert client.login(ADMIN, "wrong password!").status_code == 401
        refused = client.login(ADMIN)  # even the right password, for now
        assert refused.status_code == 429
        assert "Too many failed logins" in refused.text and int(refused.headers["retry-after"]) > 0
        # Another account from the same address still gets in.
        assert client.login(COACH).status_code == 303
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(login_failures)).scalar() == 5


@pytest.mark.storage  # failures counted per account since a stored time
def test_repeated_wrong_passwords_are_throttled_per_address(office, use_settings):
    with office.client() as client:
        for n in range(20):
            assert client.login(f"guess{n}@riverside.example", "wrong password!").status_code == 401
        assert client.login(COACH).status_code == 429


def _audit_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar()
