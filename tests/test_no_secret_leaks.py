"""No secret is written anywhere: after a whole `paylinks demo`, a backfill whose key Stripe rejects
and a blast whose SMTP password the server rejects, neither the Stripe key, the SMTP password nor
the family link secret appears in the console, the Prefect API's database (logs, artifacts, run
parameters, states and their exception texts), any other file under PREFECT_HOME, the outbox, or
the paylinks database; and no family page address the emails carry is anywhere but in them.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from paylinks.settings import PROJECT_ROOT

STRIPE_KEY = f"sk_test_LeakCanary{secrets.token_hex(12)}"
SMTP_PASSWORD = f"smtp-LeakCanary-{secrets.token_hex(12)}"
FAMILY_LINK_SECRET = f"family-LeakCanary-{secrets.token_hex(16)}"
# The distinctive part alone too: a key cut, masked at its start or re-encoded must not show it.
NEEDLES = [
    STRIPE_KEY,
    STRIPE_KEY.removeprefix("sk_test_"),
    SMTP_PASSWORD,
    SMTP_PASSWORD.removeprefix("smtp-"),
    FAMILY_LINK_SECRET,
    FAMILY_LINK_SECRET.removeprefix("family-"),
]


def paylinks(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def prefect_server(env: dict[str, str]) -> Iterator[str]:
    """One Prefect API for every command of the test, as the ephemeral API each would start: in
    their environment (secrets included), its database under their PREFECT_HOME. Stopped (and its
    last task runs recorded) before the test searches what it kept. Starting one server instead of
    one per command saves most of the test's time."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env | {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"},
        cwd=PROJECT_ROOT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, "the Prefect server exited at its start"
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not answer within 90 s"
            time.sleep(0.2)
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)


class RefusesEveryPassword:
    async def handle_DATA(self, server, session, envelope):  # pragma: no cover - never reached
        return "250 OK"


def refuse_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


@contextmanager
def smtp_server_refusing_logins() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        RefusesEveryPassword(),
        hostname="127.0.0.1",
        port=port,
        server_hostname="mail.test",
        authenticator=refuse_login,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def found_in(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def files_holding_a_secret(folder: Path) -> dict[str, list[str]]:
    """Every file under `folder` (databases, their journals, results, logs) searched as bytes."""
    hits = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found = [
                needle for needle in NEEDLES if needle.encode() in data or needle.encode("utf-16-le") in data
            ]
            if found:
                hits[str(path.relative_to(folder))] = found
    return hits


def prefect_records(prefect_db: Path) -> dict[str, list[str]]:
    """What the Prefect API kept: log lines, artifacts, run parameters, states and their messages."""
    queries = {
        "logs": "SELECT message FROM log",
        "artifacts": "SELECT coalesce(key, '') || ' ' || coalesce(description, '') || ' ' || coalesce(CAST(data AS TEXT), '') FROM artifact",
        "flow run parameters": "SELECT name || ' ' || coalesce(CAST(parameters AS TEXT), '') FROM flow_run",
        "task run inputs": "SELECT name || ' ' || coalesce(CAST(task_inputs AS TEXT), '') FROM task_run",
        "flow run states": "SELECT coalesce(message, '') || ' ' || coalesce(CAST(data AS TEXT), '') FROM flow_run_state",
        "task run states": "SELECT coalesce(message, '') || ' ' || coalesce(CAST(data AS TEXT), '') FROM task_run_state",
    }
    with sqlite3.connect(prefect_db) as connection:
        return {what: [str(row[0]) for row in connection.execute(sql)] for what, sql in queries.items()}


def paylinks_rows(database_url: str) -> list[str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            return [
                f"{name}: {tuple(row)!r}"
                for name, table in metadata.tables.items()
                for row in connection.execute(sa.select(table))
            ]
    finally:
        engine.dispose()


def run_everything(env: dict[str, str], console: dict[str, str]) -> None:
    """The demo, a backfill whose key Stripe refuses, a blast whose SMTP password the server
    refuses: each command's console kept in `console`."""
    from stripe_emulator import EmulatorServer

    demo = paylinks(["demo", "--reset-database"], env)
    console["demo"] = demo.stdout + demo.stderr
    assert demo.returncode == 0, console["demo"]

    # Stripe refuses the key: the failure is recorded by the Prefect API, with its exception text.
    with EmulatorServer(host="127.0.0.1", port=0, api_key="sk_test_the_only_key_it_takes") as strict:
        refused = paylinks(
            ["backfill", "--tenant", "riverside-hoops", "--commit"],
            env | {"PAYLINKS_STRIPE_API_BASE": strict.url},
        )
    console["rejected key"] = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Stripe rejected the API key" in console["rejected key"]

    # The SMTP server refuses the password: every parent's send fails, and each failure is recorded.
    with EmulatorServer(host="127.0.0.1", port=0) as emulator, smtp_server_refusing_logins() as smtp_port:
        smtp_env = env | {
            "PAYLINKS_STRIPE_API_BASE": emulator.url,
            "PAYLINKS_EMAIL_TRANSPORT": "smtp",
            "PAYLINKS_SMTP_HOST": "127.0.0.1",
            "PAYLINKS_SMTP_PORT": str(smtp_port),
            "PAYLINKS_SMTP_TIMEOUT_S": "5",
            "PAYLINKS_ALLOW_TEST_LINKS": "true",
        }
        minted = paylinks(["backfill", "--tenant", "riverside-hoops", "--commit"], smtp_env)
        console["backfill"] = minted.stdout + minted.stderr
        assert minted.returncode == 0, console["backfill"]
        blast = paylinks(
            ["blast", "--tenant", "riverside-hoops", "--send", "--blast-key", "leak-check"], smtp_env
        )
    console["refused password"] = blast.stdout + blast.stderr
    assert blast.returncode != 0 and "not delivered" in console["refused password"], console[
        "refused password"
    ]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.xdist_group("demo-port")  # see tests/test_local_club.py
def test_no_secret_is_written_anywhere_by_the_demo_and_failed_runs(tmp_path):
    prefect_home, outbox = tmp_path / "prefect", tmp_path / "outbox"
    database_url = f"sqlite:///{tmp_path / 'paylinks.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYLINKS_", "PREFECT_"))}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PAYLINKS_DATABASE_URL=database_url,
        PAYLINKS_OUTBOX_DIR=str(outbox),
        PAYLINKS_STRIPE_API_KEY=STRIPE_KEY,
        PAYLINKS_SMTP_USERNAME="club-mailer",
        PAYLINKS_SMTP_PASSWORD=SMTP_PASSWORD,
        PAYLINKS_FAMILY_LINK_SECRET=FAMILY_LINK_SECRET,
        COLUMNS="120",
    )
    console: dict[str, str] = {}
    with prefect_server(env) as api:
        env["PREFECT_API_URL"] = api
        run_everything(env, console)

    leaks = {what: found_in(text) for what, text in console.items() if found_in(text)}

    prefect_db = prefect_home / "prefect.db"
    assert prefect_db.is_file(), sorted(p.name for p in prefect_home.iterdir())
    records = prefect_records(prefect_db)
    # The search reads real records: the runs' logs, artifacts, parameters and failures are there.
    assert records["logs"] and records["artifacts"] and records["task run inputs"]
    assert any("riverside-hoops" in p for p in records["flow run parameters"])
    states = " ".join(records["flow run states"] + records["task run states"])
    # A batch of sends reports each parent's refusal in its log lines, not as a failed task run.
    assert "Stripe rejected the API key" in states and "535" in states + " ".join(records["logs"])
    leaks |= {
        f"Prefect {what}": found_in(" ".join(rows))
        for what, rows in records.items()
        if found_in(" ".join(rows))
    }
    leaks |= {f"PREFECT_HOME/{path}": found for path, found in files_holding_a_secret(prefect_home).items()}

    assert len(list(outbox.glob("*.eml"))) > 2
    leaks |= {f"outbox/{path}": found for path, found in files_holding_a_secret(outbox).items()}

    # The family pages' addresses are in the parents' emails, and nowhere else.
    tokens = {
        token
        for path in outbox.glob("*.html")  # each email's HTML part, decoded, beside its .eml
        for token in re.findall(r"/f/([A-Za-z0-9_-]{32})(?![A-Za-z0-9_-])", path.read_text(errors="replace"))
    }
    assert tokens, "the demo's blast carries family page links"
    NEEDLES.extend(tokens)
    leaks |= {what: found_in(text) for what, text in console.items() if found_in(text)}
    leaks |= {
        f"Prefect {what}": found_in(" ".join(rows))
        for what, rows in records.items()
        if found_in(" ".join(rows))
    }
    leaks |= {f"PREFECT_HOME/{path}": found for path, found in files_holding_a_secret(prefect_home).items()}

    rows = paylinks_rows(database_url)
    assert any("535" in row for row in rows if row.startswith("email_log"))  # failures logged, in words
    leaks |= {"paylinks database rows": found_in("\n".join(rows))} if found_in("\n".join(rows)) else {}
    leaks |= {
        f"database file {path}": found
        for path, found in files_holding_a_secret(tmp_path).items()
        if path.startswith("paylinks.db")
    }

    assert leaks == {}
