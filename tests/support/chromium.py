"""The Chromium the browser tests drive: where to find one, and (run as a script) how to get one.

`find_chromium()` looks, in order, at PAYLINKS_TEST_CHROMIUM (a path to a browser), `chromium`
and `chromium-browser` on PATH, and the browsers Playwright's installer put in
PLAYWRIGHT_BROWSERS_PATH (default ~/.cache/ms-playwright).

`python tests/support/chromium.py` (what `make test` runs before pytest) prints one line saying
which Chromium the tests will use and where it came from. When there is none it gets one:
Debian's `chromium` package when apt-get is there and we are root, otherwise Playwright's
installer (`pip install playwright`, `python -m playwright install chromium`) into this Python's
environment. Only if neither works does it exit 1, with one line naming what to install.
PAYLINKS_TEST_CHROMIUM_INSTALLERS (default "apt playwright") chooses the installers to try.

Standard library only: it runs before anything else of the tests is importable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PATH_ENV = "PAYLINKS_TEST_CHROMIUM"
INSTALLERS_ENV = "PAYLINKS_TEST_CHROMIUM_INSTALLERS"
INSTALL_HINT = (
    "install Chromium (Debian, as root: apt-get install chromium) or Playwright's "
    "(pip install playwright && python -m playwright install chromium)"
)


def _playwright_dir() -> Path:
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured and configured != "0":
        return Path(configured)
    return Path.home() / ".cache" / "ms-playwright"


def _playwright_browsers() -> list[Path]:
    root = _playwright_dir()
    found = [
        path
        for pattern in (
            "chromium-*/chrome-linux*/chrome",
            "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
        )
        for path in root.glob(pattern)
        if os.access(path, os.X_OK)
    ]
    # Newest build first (the directory is chromium-<build number>).
    return sorted(
        found,
        key=lambda path: int("".join(filter(str.isdigit, path.parts[len(root.parts)])) or 0),
        reverse=True,
    )


def _origin_on_path(path: str) -> str:
    try:
        owner = subprocess.run(
            ["dpkg-query", "--search", os.path.realpath(path)], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "on PATH"
    if owner.returncode == 0 and owner.stdout.strip():
        return f"Debian package {owner.stdout.split(':', 1)[0].strip()}"
    return "on PATH"


def find_chromium() -> tuple[str, str] | None:
    """(path to the browser, where it came from), or None."""
    configured = os.environ.get(PATH_ENV)
    if configured:
        return (configured, PATH_ENV) if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path, _origin_on_path(path)
    for path in _playwright_browsers():
        return str(path), "Playwright's build"
    return None


def runs(path: str) -> str | None:
    """None when the browser starts (prints its version), else why not."""
    try:
        result = subprocess.run(
            [path, "--headless", "--no-sandbox", "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        return output.splitlines()[-1] if output else f"exit {result.returncode}"
    return None


def _quietly(commands: list[list[str]], env: dict[str, str] | None = None) -> str | None:
    """Run each command, output to a log; None on success, else the log's last lines."""
    with tempfile.TemporaryFile("w+") as log:
        for command in commands:
            try:
                result = subprocess.run(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    timeout=1800,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                return f"{command[0]}: {error}"
            if result.returncode != 0:
                log.seek(0)
                lines = [line.strip() for line in log.read().splitlines()]
                lines = [line for line in lines if line and not line.startswith("at ")]  # no stack frames
                tail = " | ".join(lines[-3:])
                return f"`{' '.join(command)}` failed: {tail}"
    return None


def _install_with_apt() -> str | None:
    if not shutil.which("apt-get"):
        return "no apt-get"
    if os.geteuid() != 0:
        return "apt-get needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return _quietly(
        [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]],
        env=env,
    )


def _install_with_playwright() -> str | None:
    return _quietly(
        [
            [sys.executable, "-m", "pip", "install", "--quiet", "playwright"],
            [sys.executable, "-m", "playwright", "install", "chromium"],
        ]
    )


def _installed_by_apt() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _installed_by_playwright() -> str | None:
    browsers = _playwright_browsers()
    return str(browsers[0]) if browsers else None


INSTALLERS = {
    "apt": ("Debian package chromium, installed just now by apt-get", _install_with_apt, _installed_by_apt),
    "playwright": (
        "Playwright's build, installed just now by `python -m playwright install chromium`",
        _install_with_playwright,
        _installed_by_playwright,
    ),
}


def ensure() -> int:
    found = find_chromium()
    if found is not None:
        path, origin = found
        problem = runs(path)
        if problem is None:
            print(f"chromium: {path} ({origin}, already installed)")
            return 0
        print(f"chromium: {path} ({origin}) does not start ({problem}); getting another", file=sys.stderr)
    tried: list[str] = []
    for name in os.environ.get(INSTALLERS_ENV, "apt playwright").split():
        if name not in INSTALLERS:
            continue
        origin, install, installed = INSTALLERS[name]
        problem = install()
        if problem is None:
            path = installed()
            if path is None:
                problem = "installed, but no browser found afterwards"
            else:
                problem = runs(path)
                if problem is None:
                    print(f"chromium: {path} ({origin})")
                    return 0
        tried.append(f"{name}: {problem}")
    print(
        f"chromium: none found and none could be installed ({'; '.join(tried) or 'no installer tried'}): "
        f"{INSTALL_HINT}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(ensure())
