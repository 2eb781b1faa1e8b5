"""Fixtures for the office's tests: the real office on a loopback port (uvicorn, over HTTP), the
demo club minted at the emulator, SMTP on loopback, and people with known passwords."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from paylinks.access.accounts import add_user, hash_password
from paylinks.access.audit import COMMAND_LINE
from paylinks.club.tenants import tenant_by_slug
from paylinks.store.tables import users
from paylinks.vocabulary import Role
from tests.helpers import TENANT, current_settings

OTHER_TENANT = "northside-eagles"
SESSION_SECRET = "test-office-session-secret-0123456789abcdef"
WEBHOOK_SECRET = "whsec_test_office_0123456789"
PASSWORD = "correct horse battery staple"

ADMIN = "ada.admin@riverside.example"
COACH = "cole.coach@riverside.example"
OTHER_COACH = "nia.coach@northside.example"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@functools.cache
def password_hash(password: str) -> str:
    """argon2id is slow on purpose: each test's people share one real hash per password."""
    return hash_password(password)


def make_user(engine: sa.Engine, email: str, slug: str, role: Role, password: str = PASSWORD) -> None:
    """An account with a role and a password of its own (its one-time password already replaced)."""
    with engine.begin() as connection:
        added = add_user(connection, email, tenant_by_slug(connection, slug), role, actor=COMMAND_LINE)
        connection.execute(
            sa.update(users)
            .where(users.c.id == added.user.id)
            .values(password_hash=password_hash(password), password_is_temporary=False)
        )


class OfficeClient(httpx.Client):
    """A browser's worth of HTTP: cookies kept, redirects not followed, forms posted with their CSRF token."""

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        page = self.get("/login")
        return self.post(
            "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
        )

    def submit(self, page_path: str, action: str, data: dict[str, str] | None = None) -> httpx.Response:
        """Open `page_path`, then post `data` to `action` with the page's CSRF token, as its form would."""
        page = self.get(page_path)
        assert page.status_code == 200, (page_path, page.status_code)
        return self.post(action, data={**(data or {}), "csrf_token": csrf_of(page.text)})


@dataclass
class Office:
    url: str
    settings: object

    def client(self) -> OfficeClient:
        return OfficeClient(base_url=self.url, follow_redirects=False, timeout=60)


@pytest.fixture
def office_people(engine, demo_club) -> None:
    make_user(engine, ADMIN, TENANT, Role.admin)
    make_user(engine, COACH, TENANT, Role.coach)
    make_user(engine, OTHER_COACH, OTHER_TENANT, Role.coach)


@pytest.fixture
def office(mailroom, use_settings, office_people) -> Iterator[Office]:
    """The office, served by uvicorn on a loopback port, with the test's settings (SMTP included)."""
    from office.server import OfficeServer

    use_settings(office_session_secret=SESSION_SECRET, stripe_webhook_secret=WEBHOOK_SECRET)
    settings = current_settings()
    with OfficeServer(settings) as server:
        yield Office(server.url, settings)


@pytest.fixture
def coach(office) -> Iterator[OfficeClient]:
    with office.client() as client:
        assert client.login(COACH).status_code == 303
        yield client


@pytest.fixture
def admin(office) -> Iterator[OfficeClient]:
    with office.client() as client:
        assert client.login(ADMIN).status_code == 303
        yield client
