"""Servers that start on this machine say what reaching them from elsewhere would mean: the Stripe
emulator refuses an address other than loopback unless told (its admin endpoints answer anyone), and
the office served on another address without PAYLINKS_OFFICE_BEHIND_PROXY warns that behind a proxy
every user would share one address for the login throttle."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.helpers import PAYLINKS, PROJECT_ROOT, cli_env

SESSION_SECRET = "test-office-session-secret-0123456789abcdef"


@pytest.mark.parametrize("host", ["0.0.0.0", "2001:db8::1", "192.0.2.10", "club.example"])
def test_the_emulator_refuses_an_address_other_than_loopback(host):
    with socket.socket() as taken:  # were it to start, it would fail to bind: never serve forever
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["stripe-emulator", "--host", host, "--port", str(port)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"--host {host}" in lines[0] and "--allow-remote" in lines[0], lines[0]
    assert "no authentication" in lines[0], lines[0]
    assert "Stripe emulator on" not in result.stdout  # nothing started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _emulator_listens(args: list[str], port: int) -> bool:
    process = subprocess.Popen(
        PAYLINKS + ["stripe-emulator", "--port", str(port), "--state", ":memory:", *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.2)
        return False
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
def test_the_emulator_serves_loopback_and_with_allow_remote_any_address():
    assert _emulator_listens(["--host", "0.0.0.0", "--allow-remote"], _free_port())


def _office_start_output(tmp_path, host: str, **env: str) -> str:
    """What `paylinks serve --host HOST` prints until the office says where it listens."""
    environment = cli_env(tmp_path, PAYLINKS_OFFICE_SESSION_SECRET=SESSION_SECRET, **env)
    process = subprocess.Popen(
        PAYLINKS + ["serve", "--host", host, "--port", str(_free_port())],
        env=environment,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if "club office on" in line:
                break
    finally:
        process.terminate()
        process.wait(timeout=20)
    return "".join(seen)


def test_serve_on_another_address_without_the_proxy_setting_warns_of_the_shared_throttle(
    settings, engine, demo_club, tmp_path
):
    output = _office_start_output(tmp_path, "0.0.0.0")
    assert "club office on http://0.0.0.0:" in output, output
    (warning,) = [line for line in output.splitlines() if line.startswith("warning:")]
    assert "PAYLINKS_OFFICE_BEHIND_PROXY" in warning and "one address" in warning, warning
    assert "login" in warning, warning

    quiet = _office_start_output(tmp_path, "0.0.0.0", PAYLINKS_OFFICE_BEHIND_PROXY="true")
    assert "club office on" in quiet and "warning:" not in quiet, quiet
    loopback = _office_start_output(tmp_path, "127.0.0.1")
    assert "club office on" in loopback and "warning:" not in loopback, loopback
