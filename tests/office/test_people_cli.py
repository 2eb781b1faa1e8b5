"""Taking access away from the command line, as an operator does: `paylinks user
list|disable|enable|remove-role` and `paylinks token list|revoke`, each audited; the office
answers a revoked token or a disabled account's token with 401 at once."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from paylinks.access.accounts import create_api_token, user_by_email
from paylinks.access.audit import COMMAND_LINE
from paylinks.club.tenants import tenant_by_slug
from paylinks.store.tables import audit_log
from paylinks.vocabulary import AuditAction
from tests.helpers import current_settings, settings_env
from tests.office.conftest import ADMIN, COACH, OTHER_COACH, TENANT

ENDPOINT = "/admin/email/outstanding-balance"


def paylinks(*args: str):
    result = CliRunner().invoke(app, list(args), env=settings_env(current_settings()))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def token_for(engine, email: str) -> str:
    with engine.begin() as connection:
        holder = user_by_email(connection, email)
        return create_api_token(connection, holder, [tenant_by_slug(connection, TENANT)], actor=COMMAND_LINE)


def answer(office, token: str) -> int:
    """The admin endpoint's status for the token, with a query it refuses once the token is accepted."""
    return httpx.post(
        office.url + ENDPOINT, params={"send": "perhaps"}, headers={"authorization": f"Bearer {token}"}
    ).status_code


def audited(engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(audit_log.c.action).where(audit_log.c.actor == "command line")
            ).scalars()
        )


def test_token_list_and_revoke(engine, office):
    token = token_for(engine, ADMIN)
    assert answer(office, token) == 422  # accepted, then its query refused
    listed = paylinks("token", "list")
    assert listed.exit_code == 0 and ADMIN in listed.stdout and "live" in listed.stdout
    assert "plk_" not in listed.stdout
    revoked = paylinks("token", "revoke", "1")
    assert revoked.exit_code == 0 and f"API token #1 of {ADMIN} is revoked" in revoked.stdout
    assert answer(office, token) == 401
    assert "revoked" in paylinks("token", "list", "--tenant", TENANT).stdout
    assert AuditAction.token_revoked in audited(engine)

    again = paylinks("token", "revoke", "1")
    assert again.exit_code == 2 and "already revoked" in again.stderr
    unknown = paylinks("token", "revoke", "999")
    assert unknown.exit_code == 2 and "no API token #999" in unknown.stderr


def test_user_list_disable_enable_and_remove_role(engine, office):
    token = token_for(engine, COACH)
    assert answer(office, token) == 403
    listed = paylinks("user", "list", "--tenant", TENANT)
    assert listed.exit_code == 0 and COACH in listed.stdout and OTHER_COACH not in listed.stdout

    disabled = paylinks("user", "disable", COACH.upper())
    assert disabled.exit_code == 0 and f"{COACH} is disabled" in disabled.stdout
    assert answer(office, token) == 401
    with office.client() as browser:
        assert browser.login(COACH).status_code != 303
    assert "disabled" in paylinks("user", "list").stdout

    enabled = paylinks("user", "enable", COACH)
    assert enabled.exit_code == 0 and answer(office, token) == 403
    with office.client() as browser:
        assert browser.login(COACH).status_code == 303

    removed = paylinks("user", "remove-role", COACH, "--tenant", TENANT)
    assert removed.exit_code == 0 and f"{COACH} no longer works for {TENANT}" in removed.stdout
    assert answer(office, token) == 401  # the token acted only here
    with office.client() as browser:
        browser.login(COACH)
        assert browser.get(f"/t/{TENANT}").status_code == 404
    assert audited(engine)[-3:] == [
        AuditAction.user_disabled,
        AuditAction.user_enabled,
        AuditAction.role_removed,
    ]


def test_the_last_admin_stays(engine, office):
    last = paylinks("user", "disable", ADMIN)
    assert last.exit_code == 2 and "the only admin of Riverside" in last.stderr
    gone = paylinks("user", "remove-role", ADMIN, "--tenant", TENANT)
    assert gone.exit_code == 2 and "the only admin of Riverside" in gone.stderr
    nobody = paylinks("user", "disable", "nobody@riverside.example")
    assert nobody.exit_code == 2 and "no office account for nobody@riverside.example" in nobody.stderr
    with office.client() as browser:
        assert browser.login(ADMIN).status_code == 303
    assert AuditAction.user_disabled not in audited(engine)
