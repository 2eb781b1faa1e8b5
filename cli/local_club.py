"""`paylinks office` (`make office`): the demo's whole club on this machine, in one command.

After `make demo`, it starts the local Stripe emulator on the demo's kept state (so every link in
the outbox still opens and pays, in the same Stripe account), delivering signed webhooks to the
office, and the club office pointed at that emulator and the demo's database. It prints where the
office is, the demo's logins and where the Prefect UI is; one Ctrl-C stops both.

Everything it keeps lives in the demo's folder (the SQLite database's, `var/` by default), each
secret in a file only its owner may read (0600), made on first use:

- `stripe-emulator.json`: the emulator's state (the demo writes it afresh);
- `stripe-webhook-secret`: the `whsec_…` the emulator signs with and the office checks;
- `office-session-secret`: what signs the office's login cookies, so logins survive a restart.

A setup of one's own (a real Stripe key, SMTP, PostgreSQL) runs the office with `paylinks serve`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import sqlalchemy as sa
import typer

from cli.app import app, console, fail, guarded
from paylinks.settings import PROJECT_ROOT, EmailTransportName, Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

EMULATOR_STATE_FILE = "stripe-emulator.json"
WEBHOOK_SECRET_FILE = "stripe-webhook-secret"
SESSION_SECRET_FILE = "office-session-secret"
DEFAULT_EMULATOR_PORT = 12111
PREFECT_UI = "http://127.0.0.1:4200"


def local_var_dir(settings: Settings) -> Path:
    """The folder the demo keeps its things in: its SQLite database's (`var/` by default)."""
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database)).resolve().parent
    return PROJECT_ROOT / "var"


def emulator_state_path(settings: Settings) -> Path:
    """Where the local emulator keeps its state: beside the demo's database."""
    return local_var_dir(settings) / EMULATOR_STATE_FILE


def kept_secret(path: Path, make: str) -> str:
    """The secret in `path`, made (`make` + random) and written 0600 on first use."""
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a secret others can read is tightened, not used as it is
        return existing
    secret = make + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    one_time_password: str | None  # None: the person has set a password of their own


def demo_logins(engine: Engine) -> list[DemoLogin]:
    """The demo's own office accounts (`admin@<club>.example`, `coach@<club>.example`): a fresh
    one-time password for each one that has never set its own; the others keep theirs."""
    from paylinks.access.accounts import add_user, user_by_email
    from paylinks.access.audit import COMMAND_LINE
    from paylinks.club.tenants import tenant_by_slug
    from paylinks.demo.data import DEMO_TENANTS
    from paylinks.vocabulary import Role

    logins = []
    with engine.begin() as connection:
        club = tenant_by_slug(connection, DEMO_TENANTS[0].slug)
        for role in (Role.admin, Role.coach):
            email = f"{role.value}@{club.slug}.example"
            user = user_by_email(connection, email)
            if user is None or user.role_in(club.id) is None:
                continue
            password = None
            if user.password_is_temporary:
                password = add_user(
                    connection, email, club, role, actor=COMMAND_LINE, reset_password=True
                ).one_time_password
            logins.append(DemoLogin(email, role.value, password))
    return logins


def _demo_database(settings: Settings) -> Path | None:
    """The demo's SQLite file, when it exists and holds the demo club with its emulator's state."""
    from paylinks.demo.data import DEMO_TENANTS

    url = sa.make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or not Path(url.database).is_file():
        return None
    if not emulator_state_path(settings).is_file():
        return None
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            slug = connection.execute(
                sa.text("SELECT slug FROM tenants WHERE slug = :slug"), {"slug": DEMO_TENANTS[0].slug}
            ).scalar()
    except sa.exc.DBAPIError:
        return None
    finally:
        engine.dispose()
    return Path(url.database) if slug else None


def local_club_settings(
    settings: Settings, *, emulator_url: str, office_url: str, webhook_secret: str, session_secret: str
) -> Settings:
    """The office's settings in the local club: the demo's emulator with a test key, its webhook
    secret, mail to the outbox (the emulator's links never reach a real parent)."""
    from pydantic import SecretStr

    from paylinks.stripe_api.keys import EMULATOR_DEFAULT_KEY

    session = settings.office_session_secret or SecretStr(session_secret)
    return settings.model_copy(
        update={
            "stripe_api_base": emulator_url,
            "stripe_api_key": SecretStr(EMULATOR_DEFAULT_KEY),
            "stripe_api_key_block": None,
            "stripe_webhook_secret": SecretStr(webhook_secret),
            "stripe_webhook_secret_block": None,
            "email_transport": EmailTransportName.outbox,
            "office_url": office_url,
            "office_session_secret": session,
        }
    )


class _Stop(Exception):
    """SIGTERM: stop as Ctrl-C does."""


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def wait_until_interrupted() -> None:
    """Return never: only Ctrl-C (KeyboardInterrupt) or SIGTERM (`_Stop`) ends the wait.

    Python runs signal handlers in the main thread, but the kernel may hand a signal to any of the
    process's threads (the office has many); a main thread blocked in an untimed wait would then
    never run the handler, and Ctrl-C would do nothing. Waking twice a second, it does."""
    while True:
        time.sleep(0.5)


@app.command("office")
def office(
    ctx: typer.Context,
    port: int = typer.Option(8000, min=1, max=65535, help="The office's port (loopback)."),
) -> None:
    """The demo's club on this machine: the office and the local Stripe emulator, one Ctrl-C stops both."""
    from office.app import check_office_settings
    from office.server import OfficeServer
    from stripe_emulator import EmulatorServer, EmulatorStateError

    settings = ctx.obj.settings
    if _demo_database(settings) is None:
        fail("there is no demo club here yet: run `make demo` first (a club of your own: `paylinks serve`)")
    var = local_var_dir(settings)
    webhook_secret = kept_secret(var / WEBHOOK_SECRET_FILE, "whsec_")
    session_secret = kept_secret(var / SESSION_SECRET_FILE, "")
    office_url = f"http://127.0.0.1:{port}"
    state = emulator_state_path(settings)
    try:
        emulator = EmulatorServer(
            host="127.0.0.1",
            state=state,
            webhook_url=f"{office_url}/stripe/webhook",
            webhook_secret=webhook_secret,
        )
    except EmulatorStateError as error:
        fail(str(error))
    try:
        emulator.start()
    except OSError as error:
        fail(
            f"cannot start the Stripe emulator on port {emulator.port}, where the demo's links point: "
            f"{error.strerror or error}; stop what uses it (`make emulator`?) and try again"
        )
    previous_handler = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        local = local_club_settings(
            settings,
            emulator_url=emulator.url,
            office_url=office_url,
            webhook_secret=webhook_secret,
            session_secret=session_secret,
        )
        guarded(lambda: check_office_settings(local))
        from paylinks.runtime import engine_for

        logins = guarded(lambda: demo_logins(engine_for(local.database_url)))
        with contextlib.ExitStack() as running:
            try:
                served = running.enter_context(OfficeServer(local, port=port))
            except OSError as error:
                fail(f"cannot serve the office on port {port}: {error.strerror or error}; try --port")
            _say_where(served.url, emulator.url, state, logins)
            wait_until_interrupted()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        emulator.stop()
    console.print("the local club stopped")


def _say_where(office_url: str, emulator_url: str, state: Path, logins: list[DemoLogin]) -> None:
    console.print(f"club office on {office_url}", markup=False, soft_wrap=True)
    for login in logins:
        if login.one_time_password:
            console.print(
                f"  {login.role}: {login.email}, one-time password {login.one_time_password}",
                markup=False,
                soft_wrap=True,
            )
        else:
            console.print(
                f"  {login.role}: {login.email}, with the password you set", markup=False, soft_wrap=True
            )
    shown = state.relative_to(PROJECT_ROOT) if state.is_relative_to(PROJECT_ROOT) else state
    console.print(
        f"local Stripe emulator on {emulator_url} (kept in {shown}), delivering signed webhooks to the office",
        markup=False,
        soft_wrap=True,
    )
    console.print(f"runs in the Prefect UI: `make ui`, then {PREFECT_UI}", markup=False, soft_wrap=True)
    console.print("Ctrl-C stops the office and the emulator", markup=False, soft_wrap=True)
