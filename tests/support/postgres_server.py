"""The PostgreSQL server the tests use: the one at PAYLINKS_TEST_POSTGRES_URL when it answers,
otherwise a throwaway server of their own.

`provide(config)` runs once, in pytest's main process (the xdist controller, before any worker
starts). When nothing listens at PAYLINKS_TEST_POSTGRES_URL it initialises a cluster in a
temporary directory (trust auth, superuser `postgres`, loopback only on a free port, its unix
socket inside that directory, no fsync), starts it, and puts its URL in PAYLINKS_TEST_POSTGRES_URL
so the workers, which inherit the environment, use it. The server is stopped and the directory
removed when pytest ends; a small watchdog process does the same if pytest dies without cleaning
up (SIGKILL), so no postgres process outlives the run.

The binaries come from, in order: PAYLINKS_TEST_POSTGRES_BIN (a directory holding initdb, pg_ctl
and postgres; set only that to force one), the system's (pg_ctl on PATH, then Debian's
/usr/lib/postgresql/*/bin, newest first), then the `pgserver` wheel of the test extra, which
ships PostgreSQL's binaries. initdb refuses to run as root, so as root the cluster belongs to
the `postgres` user when there is one, else `nobody`.

If nothing answers and no binaries can be found, PostgreSQL tests fail (never skip) with one line
naming what to install. PAYLINKS_TEST_SKIP_POSTGRES=1 leaves them out on purpose.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

URL_ENV = "PAYLINKS_TEST_POSTGRES_URL"
BIN_ENV = "PAYLINKS_TEST_POSTGRES_BIN"
SKIP_ENV = "PAYLINKS_TEST_SKIP_POSTGRES"
# Why PostgreSQL tests will fail, from the main process to the xdist workers.
PROBLEM_ENV = "PAYLINKS_TEST_POSTGRES_PROBLEM"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

INSTALL_HINT = (
    "install PostgreSQL's server binaries (Debian: apt-get install postgresql) or the test extra "
    "(pip install -e '.[test]', which brings the pgserver wheel)"
)


def configured_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def _named_by() -> str:
    return URL_ENV if os.environ.get(URL_ENV) else f"the default of {URL_ENV}"


def unreachable_message(url: str, error: object) -> str:
    """The one line a PostgreSQL test fails with when the server cannot be used."""
    problem = os.environ.get(PROBLEM_ENV)
    if problem:
        return problem
    return (
        f"PostgreSQL at {_where(url)} is not reachable ({error}); start it, {INSTALL_HINT} so the "
        f"tests start their own, or set {SKIP_ENV}=1 to leave PostgreSQL tests out on purpose."
    )


# --- the pytest side ------------------------------------------------------------------------

_provenance: str | None = None


def provide(config: pytest.Config) -> str:
    """The admin URL the tests use; starts a throwaway server first if that is what it takes.

    Call from conftest's pytest_configure (in every process; only the main one does anything).
    """
    global _provenance
    url = configured_url()
    if hasattr(config, "workerinput") or os.environ.get(SKIP_ENV) == "1":
        if os.environ.get(SKIP_ENV) == "1":
            _provenance = f"postgres: left out ({SKIP_ENV}=1)"
        return url
    os.environ.pop(PROBLEM_ENV, None)
    if not _needed(config):
        _provenance = "postgres: not needed (PostgreSQL tests deselected)"
        return url
    answered, error = _answers(url)
    if answered:
        _provenance = f"postgres: the server at {_where(url)} ({_named_by()})"
        return url
    if error is not None:  # something listens there but refused us: say so, do not paper over it
        _provenance = f"postgres: the server at {_where(url)} ({_named_by()}) refused a connection: {error}"
        return url
    found = find_binaries()
    if found is None:
        problem = (
            f"No PostgreSQL answers at {_where(url)} ({_named_by()}) and no initdb/pg_ctl was found to "
            f"start a throwaway one: {INSTALL_HINT}, or set {SKIP_ENV}=1 to leave PostgreSQL tests out."
        )
        os.environ[PROBLEM_ENV] = problem
        _provenance = f"postgres: none ({problem})"
        return url
    bindir, origin = found
    try:
        server = ThrowawayServer.start(bindir)
    except RuntimeError as error:
        problem = f"Could not start a throwaway PostgreSQL from {bindir}: {error}"
        os.environ[PROBLEM_ENV] = problem
        _provenance = f"postgres: none ({problem})"
        return url
    config.add_cleanup(server.stop)
    os.environ[URL_ENV] = server.url
    _provenance = (
        f"postgres: a throwaway server from {origin} in {server.directory} on 127.0.0.1:{server.port} "
        f"(nothing answered at {_where(url)})"
    )
    return server.url


def report_line() -> list[str]:
    """For pytest_report_header: where this run's PostgreSQL came from."""
    return [_provenance] if _provenance else []


def _needed(config: pytest.Config) -> bool:
    option = config.option
    if getattr(option, "help", False) or getattr(option, "version", False):
        return False
    if getattr(option, "collectonly", False):
        return False
    return not re.search(r"\bnot\s+postgres\b", getattr(option, "markexpr", "") or "")


def _where(url: str) -> str:
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    return f"{parsed.host or 'the local socket'}:{parsed.port or 5432}"


def _answers(url: str) -> tuple[bool, str | None]:
    """(connected, error): error is None when nothing listens there at all."""
    import psycopg
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.host and not parsed.host.startswith("/"):
        try:
            with socket.create_connection((parsed.host, parsed.port or 5432), timeout=3):
                pass
        except OSError:
            return False, None
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, connect_timeout=5):
            return True, None
    except psycopg.Error as error:
        if not parsed.host or parsed.host.startswith("/"):
            return False, None
        return False, str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# --- finding binaries -----------------------------------------------------------------------

_TOOLS = ("initdb", "pg_ctl", "postgres")


def _complete(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in _TOOLS)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_binaries() -> tuple[Path, str] | None:
    """(directory holding initdb, pg_ctl and postgres; where it came from), or None."""
    forced = os.environ.get(BIN_ENV)
    if forced:
        path = Path(forced)
        return (path, f"{path} ({BIN_ENV})") if _complete(path) else None
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        if _complete(bindir):
            return bindir, str(bindir)
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if _complete(bindir):
            return bindir, f"the pgserver wheel ({bindir})"
    return None


# --- the throwaway server -------------------------------------------------------------------

_WATCHDOG = r"""
import os, shutil, signal, sys, time
parent, pidfile, directory = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while os.path.isdir(directory) and alive(parent) and os.getppid() == parent:
    time.sleep(1)
if os.path.isdir(directory):  # pytest died without stopping the server: stop it now
    try:
        with open(pidfile) as f:
            postmaster = int(f.readline())
        os.kill(postmaster, signal.SIGQUIT)
        for _ in range(100):
            if not alive(postmaster):
                break
            time.sleep(0.1)
        else:
            os.kill(postmaster, signal.SIGKILL)
    except (OSError, ValueError):
        pass
    shutil.rmtree(directory, ignore_errors=True)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ThrowawayServer:
    """A PostgreSQL cluster in a temporary directory, for one test run."""

    directory: Path
    bindir: Path
    port: int
    user: pwd.struct_passwd | None  # who runs it (None: this process's user)
    watchdog: subprocess.Popen | None = None
    stopped: bool = field(default=False)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, bindir: Path, attempts: int = 3) -> ThrowawayServer:
        user = _unprivileged_user() if os.geteuid() == 0 else None
        directory = Path(tempfile.mkdtemp(prefix="paylinks-postgres-"))
        try:
            if user is not None:
                bindir = _reachable_bindir(bindir, directory, user)
                os.chown(directory, user.pw_uid, user.pw_gid)
            server = cls(directory=directory, bindir=bindir, port=0, user=user)
            server._initdb()
            for attempt in range(1, attempts + 1):
                server.port = _free_port()
                if server._pg_ctl_start():
                    break
                if attempt == attempts:
                    raise RuntimeError(f"pg_ctl start failed: {server._log_tail()}")
            server._start_watchdog()
            return server
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "LC_", "LANG"))}
        env.update(LC_ALL="C", HOME=str(self.directory))
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
            env.update(USER=self.user.pw_name, LOGNAME=self.user.pw_name)
        return subprocess.run(
            args,
            cwd=self.directory,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    def _initdb(self) -> None:
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {(result.stderr or result.stdout).strip()[-500:]}")
        (self.directory / "socket").mkdir()
        if self.user is not None:
            os.chown(self.directory / "socket", self.user.pw_uid, self.user.pw_gid)

    def _pg_ctl_start(self) -> bool:
        options = " ".join(
            shlex.quote(option)
            for option in [
                "-c", "listen_addresses=127.0.0.1",
                "-p", str(self.port),
                "-k", str(self.directory / "socket"),
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ]
        )  # fmt: skip
        result = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "--pgdata",
                str(self.data),
                "--log",
                str(self.directory / "server.log"),
                "--options",
                options,
                "--wait",
                "--timeout",
                "60",
                "start",
            ],
            timeout=90,
        )
        return result.returncode == 0

    def _log_tail(self) -> str:
        try:
            lines = (self.directory / "server.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no server log"
        return " | ".join(lines[-3:])

    def _start_watchdog(self) -> None:
        self.watchdog = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WATCHDOG,
                str(os.getpid()),
                str(self.data / "postmaster.pid"),
                str(self.directory),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop the server (fast shutdown, then immediate, then SIGKILL) and remove its directory."""
        if self.stopped:
            return
        self.stopped = True
        postmaster = self._postmaster_pid()
        for mode in ("fast", "immediate"):
            try:
                result = self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "--pgdata",
                        str(self.data),
                        "--mode",
                        mode,
                        "--wait",
                        "stop",
                    ],
                    timeout=60,
                )
                if result.returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                continue
        if postmaster is not None:
            try:
                os.kill(postmaster, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(
        "running as root and there is neither a `postgres` nor a `nobody` user to run initdb as"
    )


def _reachable_bindir(bindir: Path, directory: Path, user: pwd.struct_passwd) -> Path:
    """`bindir`, or a copy of its installation inside `directory` when `user` cannot reach it.

    A wheel's binaries live in a virtualenv that may sit in a root-only directory (mktemp -d).
    """
    try:
        probe = subprocess.run(
            [str(bindir / "pg_ctl"), "--version"],
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=30,
        )
        if probe.returncode == 0:
            return bindir
    except OSError:
        pass
    installation = bindir.parent  # e.g. site-packages/pgserver/pginstall
    package = installation.parent
    # A wheel's own copies of shared libraries (auditwheel), found through RPATH
    # $ORIGIN/../../../<package>.libs: copy them too, keeping that layout.
    libs = package.parent / f"{package.name}.libs"
    root = directory / "pginstall"
    copy = root / package.name / installation.name
    shutil.copytree(installation, copy, symlinks=True)
    if libs.is_dir():
        shutil.copytree(libs, root / libs.name, symlinks=True)
    return copy / bindir.name
