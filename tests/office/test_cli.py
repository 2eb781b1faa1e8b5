"""The office's commands, as an operator runs them: user add, token create, and serve refusing to
start without a session secret."""

from __future__ import annotations

import re

import sqlalchemy as sa

from paylinks.store.tables import api_tokens, users
from tests.helpers import cli_env, run_cli


def test_user_add_prints_a_one_time_password_and_token_create_prints_the_token_once(
    demo_club, engine, tmp_path
):
    env = cli_env(tmp_path)
    added = run_cli(
        ["user", "add", "Coach@Riverside.example", "--tenant", "riverside-hoops", "--role", "coach"], env
    )
    assert added.returncode == 0, added.stderr
    password = re.search(r"one-time password: (\S+)", added.stdout).group(1)
    token_run = run_cli(["token", "create", "coach@riverside.example", "--tenant", "riverside-hoops"], env)
    assert token_run.returncode == 0, token_run.stderr
    token = re.search(r"(plk_\S+)", token_run.stdout).group(1)
    with engine.connect() as connection:
        stored_hash = connection.execute(sa.select(users.c.password_hash)).scalar()
        stored_tokens = connection.execute(sa.select(api_tokens.c.token_sha256)).scalars().all()
    assert password not in stored_hash and stored_hash.startswith("$argon2id$")
    assert token not in stored_tokens and len(stored_tokens) == 1

    bad_role = run_cli(
        ["user", "add", "x@riverside.example", "--tenant", "riverside-hoops", "--role", "owner"], env
    )
    assert bad_role.returncode == 2 and "--role must be admin or coach" in bad_role.stderr
    unknown = run_cli(["token", "create", "nobody@riverside.example", "--tenant", "riverside-hoops"], env)
    assert unknown.returncode == 2 and "no office account" in unknown.stderr


def test_serve_without_a_session_secret_is_one_clear_line(settings, tmp_path):
    result = run_cli(["serve", "--port", "18999"], cli_env(tmp_path), timeout=60)
    assert result.returncode == 2
    assert "PAYLINKS_OFFICE_SESSION_SECRET is not set" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
