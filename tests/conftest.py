"""Shared fixtures: one Prefect test API per session, a fresh database per test (SQLite and
PostgreSQL), a local Stripe emulator over HTTP, and settings wired to all of them.

PostgreSQL tests use the server named by PAYLINKS_TEST_POSTGRES_URL (an admin URL; default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and, when nothing answers there, start a
throwaway server of their own (tests/support/postgres_server.py). They fail, not skip, when
neither can be had: CI must never pass by skipping them. Set PAYLINKS_TEST_SKIP_POSTGRES=1 to
leave them out on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# Before Prefect is imported anywhere: tests keep their Prefect files out of the repo's var/.
os.environ["PREFECT_HOME"] = os.environ.get("PAYLINKS_TEST_PREFECT_HOME") or tempfile.mkdtemp(
    prefix="paylinks-prefect-"
)

# Settings are values here: nothing from the developer's own PAYLINKS_* environment leaks in.
for _key in [k for k in os.environ if k.startswith("PAYLINKS_") and not k.startswith("PAYLINKS_TEST_")]:
    del os.environ[_key]

import stripe

from paylinks.club.tenants import Tenant, tenant_by_slug
from paylinks.demo.data import seed_demo
from paylinks.settings import Settings
from paylinks.store import migrations
from tests.helpers import TENANT, Mailroom, smtp_server
from tests.support import postgres_server, stripe_fixtures

POSTGRES_ADMIN_URL = postgres_server.configured_url()
SKIP_POSTGRES = os.environ.get("PAYLINKS_TEST_SKIP_POSTGRES") == "1"
BACKENDS = ["sqlite"] + ([] if SKIP_POSTGRES else ["postgresql"])
FAMILY_LINK_SECRET = "test-family-link-secret-0123456789abcdef"
TESTS = Path(__file__).resolve().parent


# Every test runs on SQLite; a test whose storage semantics differ on PostgreSQL (locking, races,
# constraints, the balance query, migrations, integer ranges, case folding) is marked `storage`
# and runs on PostgreSQL as well. PAYLINKS_TEST_ALL_BACKENDS=1 runs every test on both.
ALL_BACKENDS = os.environ.get("PAYLINKS_TEST_ALL_BACKENDS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    """The server at PAYLINKS_TEST_POSTGRES_URL, or a throwaway one started here (before xdist workers)."""
    config.addinivalue_line(
        "markers", "storage: storage semantics differ by database: runs on PostgreSQL as well as SQLite"
    )
    global POSTGRES_ADMIN_URL
    POSTGRES_ADMIN_URL = postgres_server.provide(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where this run's parts came from (make test prints Chromium's before pytest starts)."""
    return postgres_server.report_line() + [stripe_fixtures.PROVENANCE]


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """One temporary Prefect API for the whole session (its own database, its own port)."""
    from prefect.testing.utilities import prefect_test_harness

    from tasks.run_settings import in_process_runs

    # Flows a test calls directly run as the CLI's do: without heartbeats (a second a run).
    with in_process_runs(), prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database used as the template of each test's database."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"paylinks_template_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(postgres_server.unreachable_message(POSTGRES_ADMIN_URL, error.orig))
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    yield name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database: SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "paylinks.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    name = f"paylinks_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    from paylinks.runtime import engine_for

    engine_for.cache_clear()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_template")  # fails clearly when PostgreSQL is down
    name = f"paylinks_empty_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, once_is_enough = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        if "postgresql" in (params.get("database_url"), params.get("empty_database_url")):
            if not ALL_BACKENDS and item.get_closest_marker("storage") is None:
                once_is_enough.append(item)  # its SQLite variant covers it
                continue
            item.add_marker(pytest.mark.postgres)
        kept.append(item)
    if once_is_enough:
        config.hook.pytest_deselected(items=once_is_enough)
    # The slow tests first, the whole-club ones of tests/ itself (demos, the benchmark harness, the
    # state machine: 30–150 s each) before the rest, others after in their order: xdist hands tests
    # out in this order, so no two-minute test starts near the end while the other workers sit idle.
    kept.sort(key=_start_early)
    items[:] = kept


def _start_early(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") is None:
        return 2
    return 0 if item.path.parent == TESTS else 1


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    from paylinks.runtime import engine_for

    return engine_for(database_url)


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:  # noqa: F821
    """A fresh local Stripe emulator on a loopback port, for one test: the worker's own port when it
    is free (so a minted club's links, which name it, can be restored; see `minted_club`), else any."""
    from stripe_emulator import EmulatorServer

    try:
        server = EmulatorServer(host="127.0.0.1", port=_worker_emulator_port()).start()
    except OSError:  # taken (another run of the suite on this machine): any free port
        server = EmulatorServer(host="127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


def _worker_emulator_port() -> int:
    """23000 + the xdist worker's number: below the range the kernel hands out for port 0, so no
    other server of the suite takes it between two tests."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return 23_000 + (int(worker) if worker.isdigit() else 0)


@pytest.fixture
def settings(database_url: str, emulator, tmp_path: Path) -> Iterator[Settings]:
    """This test's settings, as a value: every flow the test starts runs with them."""
    from tasks.run_settings import settings_for_runs

    value = Settings(
        database_url=database_url,
        stripe_api_base=emulator.url,
        stripe_api_key="sk_test_paylinks_tests",
        outbox_dir=tmp_path / "outbox",
        # The emulator enforces no limit unless a test asks it to: pace at the most the settings
        # allow, so minting the demo club takes a fraction of a second, not Stripe's 25/s.
        stripe_max_rps=100,
        stripe_link_create_rps=100,
        email_transport="outbox",
        # A mail server that refuses for now is tried again after pauses of a moment, not 5 and 30 s.
        mail_retry_delays_s=(0.2, 0.5),
        # A server database needs it set (SQLite keeps one of its own beside the test's database).
        family_link_secret=None if database_url.startswith("sqlite") else FAMILY_LINK_SECRET,
    )
    with settings_for_runs(value):
        yield value


@pytest.fixture
def use_settings(settings: Settings) -> Iterator[Callable[..., Settings]]:
    """`use_settings(**changes)`: from now on, this test's flows run with the settings changed."""
    from contextlib import ExitStack

    from tasks.run_settings import scoped_settings, settings_for_runs

    with ExitStack() as stack:

        def use(**changes: object) -> Settings:
            current = scoped_settings() or settings
            # Validate the changed settings as a whole, as the environment's would be.
            changed = Settings(**(current.model_dump() | changes))
            return stack.enter_context(settings_for_runs(changed))

        yield use


# -- the demo club, a Stripe client and an SMTP server, for flow, office and club tests ------------
@pytest.fixture
def demo_club(settings, engine: sa.Engine) -> list[Tenant]:
    report = seed_demo(engine, settings.club_timezone)
    with engine.connect() as connection:
        return [tenant_by_slug(connection, slug) for slug in report.tenants]


@pytest.fixture
def minted_club(settings, demo_club: list[Tenant], engine: sa.Engine, emulator) -> list[Tenant]:
    """The demo club with TENANT's links minted (a committed backfill).

    About 150 tests start here, and the backfill (a flow run, thirty-odd Stripe requests) took 1.3-1.7 s
    of each one's setup. On SQLite, the first test of a worker runs it and keeps what it left: the
    database and the emulator's state. A later test whose starting point is the same (an untouched
    emulator on the same port, the same settings, the same seeded rows) gets those back instead;
    anything else (PostgreSQL, a changed setting or row) runs the backfill itself."""
    from flows.backfill_payment_links import backfill_payment_links

    key = _minted_key(settings, engine, emulator)
    if key is not None and key in _MINTED:
        _restore_minted(engine, emulator, _MINTED[key])
        return demo_club
    backfill_payment_links(tenant=TENANT, commit=True)
    if key is not None:
        _MINTED[key] = _keep_minted(engine, emulator)
    return demo_club


_MINTED: dict[tuple[str, ...], tuple[bytes, str]] = {}  # this worker's: the database, the emulator


def _minted_key(settings: Settings, engine: sa.Engine, emulator) -> tuple[str, ...] | None:
    """What the backfill starts from, or None when it cannot be kept (not SQLite; the emulator
    already used). Stored times are left out: the seed stamps its rows with the moment it ran."""

    from paylinks.store.tables import metadata

    if engine.dialect.name != "sqlite":
        return None
    with emulator.emulator.lock:
        if emulator.emulator.snapshot()["books"]:
            return None
    rows = hashlib.sha256()
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if not isinstance(c.type, sa.DateTime)]
            for row in connection.execute(sa.select(*columns).order_by(*table.primary_key.columns)):
                rows.update(repr((table.name, tuple(row))).encode())
    # The test's own paths and mail server: the backfill neither mails nor writes files.
    mail = {"database_url", "outbox_dir", "email_transport", "smtp_host", "smtp_port"}
    kept_settings = settings.model_dump(mode="json", exclude=mail)
    return (emulator.url, json.dumps(kept_settings, sort_keys=True, default=str), rows.hexdigest())


def _keep_minted(engine: sa.Engine, emulator) -> tuple[bytes, str]:

    copy = sqlite3.connect(":memory:")
    raw = engine.raw_connection()
    try:
        raw.driver_connection.backup(copy)
    finally:
        raw.close()
    with emulator.emulator.lock:
        state = json.dumps(emulator.emulator.snapshot())
    database = bytearray(copy.serialize())
    database[18:20] = b"\x01\x01"  # a WAL file's header: the copy is read back in memory, not WAL
    return bytes(database), state


def _restore_minted(engine: sa.Engine, emulator, kept: tuple[bytes, str]) -> None:

    database, state = kept
    copy = sqlite3.connect(":memory:")
    copy.deserialize(database)
    raw = engine.raw_connection()
    try:
        copy.backup(raw.driver_connection)
    finally:
        raw.close()
    emulator.emulator.restore(json.loads(state))


@pytest.fixture
def stripe_client(emulator) -> stripe.StripeClient:
    """The real SDK pointed at the test's emulator, retries off so we see what it returns."""
    return stripe.StripeClient(
        "sk_test_paylinks_tests", base_addresses={"api": emulator.url}, max_network_retries=0
    )


@pytest.fixture
def mailroom(use_settings) -> Iterator[Mailroom]:
    """A real SMTP server on loopback; the test's settings send through it."""
    handler = Mailroom()
    with smtp_server(handler) as port:
        use_settings(
            email_transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            allow_test_links=True,  # the emulator's links, on purpose
        )
        yield handler
