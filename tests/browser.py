"""Real processes for the slow tests: a Prefect server on a loopback port, the `prefect` CLI in a
process of its own, and headless Chromium reading what a person would see.

Every process is started in its own session and killed with its whole process group, so nothing
outlives a test, even when it fails.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from paylinks.settings import PROJECT_ROOT
from tests.support.chromium import INSTALL_HINT, find_chromium

VENV_BIN = Path(sys.executable).parent
PREFECT = [sys.executable, "-m", "prefect"]
ARTIFACTS_DIR = PROJECT_ROOT / "tests" / "artifacts"  # gitignored: screenshots to look at


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """A fresh process's environment: this one's, minus every Prefect setting, venv bin first on PATH.

    The test's settings (the `settings` fixture) become its PAYLINKS_* environment.
    """
    from tasks.run_settings import scoped_settings
    from tests.helpers import settings_env

    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    if (settings := scoped_settings()) is not None:
        env.update(settings_env(settings))
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.update(extra)
    return env


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the process group, SIGKILL what is left after `timeout` seconds."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class PrefectServer:
    """A `prefect server start` on loopback; `env` is what its clients (CLI, worker) need."""

    url: str  # http://127.0.0.1:PORT
    auth_string: str | None
    process: subprocess.Popen
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def auth(self) -> tuple[str, str] | None:
        return tuple(self.auth_string.split(":", 1)) if self.auth_string else None  # type: ignore[return-value]

    def client_env(self, home: Path, **extra: str) -> dict[str, str]:
        env = base_env(PREFECT_HOME=str(home), PREFECT_API_URL=self.api_url, **extra)
        if self.auth_string:
            env["PREFECT_API_AUTH_STRING"] = self.auth_string
        return env

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, auth=self.auth, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextmanager
def prefect_server(
    home: Path, *, auth: bool, ui: bool = False, startup_timeout: float = 90, attempts: int = 3
) -> Iterator[PrefectServer]:
    """Start a Prefect server with its own PREFECT_HOME (and SQLite database) on a free port.

    With `auth`, the API requires HTTP basic auth `admin:<random password>`. The scheduler is off:
    the tests start every run themselves, and a scheduled deployment's next run must not be
    picked up by `prefect worker start --run-once` by chance.
    """
    home.mkdir(parents=True, exist_ok=True)
    auth_string = f"admin:{secrets.token_urlsafe(16)}" if auth else None
    for attempt in range(1, attempts + 1):
        port = free_port()
        env = base_env(
            PREFECT_HOME=str(home),
            # Besides --port: in Prefect 3.9 the UI is told to call the API on
            # PREFECT_SERVER_API_HOST/PORT (default 4200), not on the --port it is served from.
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(port),
            PREFECT_SERVER_UI_ENABLED=str(ui).lower(),
            PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
            PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL="WARNING",
        )
        if auth_string:
            env["PREFECT_SERVER_API_AUTH_STRING"] = auth_string
        log_path = home / f"server-{attempt}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                PREFECT + ["--no-prompt", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = PrefectServer(f"http://127.0.0.1:{port}", auth_string, process, log_path)
        try:
            if _wait_healthy(server, startup_timeout):
                yield server
                return
            # Another process took the port between free_port() and the bind: try another one.
            if "already in use" not in server.log() or attempt == attempts:
                raise RuntimeError(f"prefect server did not start on port {port}:\n{server.log()}")
        finally:
            stop(process)


def _wait_healthy(server: PrefectServer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    return False


def prefect_cli(args: list[str], env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """`prefect <args>` from the project root (where prefect.yaml is), no prompts."""
    return subprocess.run(
        PREFECT + ["--no-prompt", *args],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- Chromium ------------------------------------------------------------------------------


def chromium_path() -> str:
    """Debian's chromium, one on PATH, or Playwright's build (tests/support/chromium.py)."""
    found = find_chromium()
    if found is None:
        raise RuntimeError(f"no Chromium found: {INSTALL_HINT} (make test gets one itself)")
    return found[0]


class Chromium:
    """Headless Chromium, one short-lived browser per page load, profile in a temp folder."""

    def __init__(self, profile_dir: Path) -> None:
        self.executable = chromium_path()
        self.profile_dir = profile_dir

    def _run(self, url: str, *args: str, budget_ms: int, timeout: float) -> subprocess.CompletedProcess:
        command = [
            self.executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
            f"--user-data-dir={self.profile_dir}",
            # Virtual time waits for pending fetches, so a single-page app has loaded its data by then.
            f"--virtual-time-budget={budget_ms}",
            *args,
            url,
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            stop(process, timeout=2)
        if process.returncode != 0:
            raise RuntimeError(f"chromium exited {process.returncode} on {url}:\n{stderr[-2000:]}")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def dom(
        self, url: str, *, budget_ms: int = 15000, timeout: float = 60, size: tuple[int, int] | None = None
    ) -> str:
        """The page's DOM after its scripts ran (serialized HTML).

        With `size`, the page gets a window of that size: parts that load only once they are on
        screen (the Prefect UI's run logs) need one.
        """
        window = (f"--window-size={size[0]},{size[1]}",) if size else ()
        return self._run(url, "--dump-dom", *window, budget_ms=budget_ms, timeout=timeout).stdout

    def text(self, url: str, *, expect: tuple[str, ...] = (), attempts: int = 3, **kwargs) -> str:
        """The page's visible text; reloads (up to `attempts`) until every `expect` string shows."""
        text = ""
        for _ in range(attempts):
            text = visible_text(self.dom(url, **kwargs))
            if all(item in text for item in expect):
                break
        return text

    def screenshot(
        self,
        url: str,
        path: Path,
        *,
        size: tuple[int, int] = (1400, 1000),
        budget_ms: int = 15000,
        timeout: float = 60,
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._run(
            url,
            f"--screenshot={path}",
            f"--window-size={size[0]},{size[1]}",
            budget_ms=budget_ms,
            timeout=timeout,
        )
        assert path.is_file() and path.stat().st_size > 10_000, f"no real screenshot at {path}"
        return path


_HIDDEN = re.compile(r"<(script|style|template|title|head)\b.*?</\1>", re.S | re.I)
_HIDDEN_BY_STYLE = re.compile(
    r"<(\w+)\b[^>]*style=\"[^\"]*display:\s*none[^\"]*\"[^>]*>.*?</\1>", re.S | re.I
)


def visible_text(dom: str) -> str:
    """The words of a DOM dump, one space between each: no tags, scripts, styles or display:none."""
    dom = _HIDDEN.sub(" ", dom)
    dom = _HIDDEN_BY_STYLE.sub(" ", dom)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())
