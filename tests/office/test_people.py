"""The admin's People page, over HTTP: a disabled person is logged out and their token answers
401 at once, a reset password is a one-time password shown once, tokens are revoked, all audited;
an admin cannot disable themselves nor change an account another club relies on."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa

from paylinks.access.accounts import create_api_token, user_by_email
from paylinks.access.audit import COMMAND_LINE
from paylinks.club.tenants import tenant_by_slug
from paylinks.store.tables import audit_log, users
from paylinks.vocabulary import AuditAction, Role
from tests.office.conftest import ADMIN, COACH, OTHER_COACH, OTHER_TENANT, PASSWORD, TENANT, make_user

PEOPLE = f"/t/{TENANT}/people"
ENDPOINT = "/admin/email/outstanding-balance"


def user_id(engine, email: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(users.c.id).where(users.c.email == email)).scalar_one()


def token_for(engine, email: str) -> str:
    with engine.begin() as connection:
        holder = user_by_email(connection, email)
        return create_api_token(connection, holder, [tenant_by_slug(connection, TENANT)], actor=COMMAND_LINE)


def call(office, token: str) -> httpx.Response:
    """The admin endpoint with a query it refuses (so no run starts) once the token is accepted."""
    return httpx.post(
        office.url + ENDPOINT, params={"send": "perhaps"}, headers={"authorization": f"Bearer {token}"}
    )


def actions(engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [
            (r.action, r.actor)
            for r in connection.execute(
                sa.select(audit_log.c.action, audit_log.c.actor).order_by(audit_log.c.id)
            )
        ]


def test_a_disabled_coach_is_logged_out_and_their_token_refused_at_once(engine, office, admin, coach):
    token = token_for(engine, COACH)
    assert call(office, token).status_code == 403  # a valid token, of a coach
    assert coach.get(f"/t/{TENANT}").status_code == 200
    page = admin.get(PEOPLE)
    assert page.status_code == 200 and COACH in page.text and "active" in page.text
    assert admin.get(f"/t/{TENANT}/admin").text.count(f'href="{PEOPLE}"') == 1  # in the navigation

    coach_id = user_id(engine, COACH)
    done = admin.submit(PEOPLE, f"{PEOPLE}/{coach_id}/disable")
    assert done.status_code == 200 and f"{COACH} can no longer log in" in done.text
    assert "disabled: cannot log in" in done.text

    assert coach.get(f"/t/{TENANT}").status_code == 303  # the session ended
    refused = call(office, token)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    with office.client() as again:
        assert again.login(COACH).status_code != 303
    assert (AuditAction.user_disabled, ADMIN) in actions(engine)

    enabled = admin.submit(PEOPLE, f"{PEOPLE}/{coach_id}/enable")
    assert enabled.status_code == 200 and f"{COACH} can log in again" in enabled.text
    with office.client() as again:
        assert again.login(COACH).status_code == 303
    assert (AuditAction.user_enabled, ADMIN) in actions(engine)


def test_a_reset_password_is_shown_once_and_ends_the_sessions(engine, office, admin, coach):
    coach_id = user_id(engine, COACH)
    reset = admin.submit(PEOPLE, f"{PEOPLE}/{coach_id}/reset-password")
    assert reset.status_code == 200 and reset.headers["cache-control"] == "no-store"
    password = re.search(r'<code class="secret">([^<]+)</code>', reset.text).group(1)
    assert password not in admin.get(PEOPLE).text  # shown only on the answer
    assert coach.get(f"/t/{TENANT}").status_code == 303
    with office.client() as fresh:
        assert fresh.login(COACH).status_code != 303  # the old password is gone
        first = fresh.login(COACH, password)
        assert first.status_code == 303 and fresh.get(f"/t/{TENANT}").headers["location"] == "/password"
    with engine.connect() as connection:
        details = (
            connection.execute(
                sa.select(audit_log.c.detail).where(audit_log.c.action == AuditAction.password_reset)
            )
            .scalars()
            .all()
        )
    assert details and all(password not in d for d in details)


def test_revoking_a_persons_tokens_refuses_them_at_once(engine, office, admin):
    token, other = token_for(engine, COACH), token_for(engine, COACH)
    assert call(office, token).status_code == 403 and call(office, other).status_code == 403
    assert "Revoke API tokens" in admin.get(PEOPLE).text
    revoked = admin.submit(PEOPLE, f"{PEOPLE}/{user_id(engine, COACH)}/revoke-tokens")
    assert revoked.status_code == 200 and f"2 API tokens of {COACH} revoked" in revoked.text
    assert call(office, token).status_code == 401 and call(office, other).status_code == 401
    assert actions(engine).count((AuditAction.token_revoked, ADMIN)) == 2


def test_an_admin_cannot_disable_themselves_nor_take_over_another_clubs_person(engine, office, admin, coach):
    own = admin.submit(PEOPLE, f"{PEOPLE}/{user_id(engine, ADMIN)}/disable")
    assert own.status_code == 409 and "Nothing was changed" in own.text and "your own account" in own.text
    # Northside's coach also coaches here: a Riverside admin may not reset or disable that account.
    with engine.begin() as connection:
        from paylinks.access.accounts import add_user

        add_user(connection, OTHER_COACH, tenant_by_slug(connection, TENANT), Role.coach, actor=COMMAND_LINE)
    other_id = user_id(engine, OTHER_COACH)
    for action in ("disable", "reset-password"):
        refused = admin.submit(PEOPLE, f"{PEOPLE}/{other_id}/{action}")
        assert refused.status_code == 409 and "also works for Northside" in refused.text, action
    with office.client() as them:
        assert them.login(OTHER_COACH).status_code == 303  # their account is as it was
    assert coach.get(PEOPLE).status_code == 403  # a coach has no People page
    # Someone of another club only: not on this page, and not to be acted on from it.
    make_user(engine, "solo@northside.example", OTHER_TENANT, Role.admin, PASSWORD)
    stranger = admin.submit(PEOPLE, f"{PEOPLE}/{user_id(engine, 'solo@northside.example')}/disable")
    assert stranger.status_code == 404
    assert admin.submit(PEOPLE, f"{PEOPLE}/99999999999999999999/disable").status_code == 404
    performed = [a for a, _ in actions(engine)]
    assert AuditAction.user_disabled not in performed and AuditAction.password_reset not in performed
