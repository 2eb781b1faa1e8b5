"""The local club as a newcomer meets it: `paylinks demo` (the project's main job, every step and
its tally), then `make emulator` and `make office`, each in its own process on the demo's folder;
the office over HTTP, the emulator over HTTP, the mail in the outbox."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from paylinks.settings import PROJECT_ROOT

TENANT = "riverside-hoops"
EMULATOR_KEY = {"Authorization": "Bearer sk_test_paylinks_emulator"}
NEW_PASSWORD = "a long password of my own"
TEST_ADDRESS = "treasurer.test@riverside.example"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PAY_LINK = re.compile(r"http://127\.0\.0\.1:\d+/pay/plink_\w+")
_LOGIN = re.compile(r"(admin|coach): (\S+@\S+\.example), one-time password (\S+)")


def _env(var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYLINKS_", "PREFECT_"))}
    env.update(
        PAYLINKS_DATABASE_URL=f"sqlite:///{var / 'paylinks.db'}",
        PAYLINKS_OUTBOX_DIR=str(var / "outbox"),
        PREFECT_HOME=str(var / "prefect"),
        COLUMNS="200",
    )
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Process:
    """A `paylinks` command running in its own process, its output read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.popen.poll() is None, f"it stopped ({self.popen.returncode}):\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout:.0f} s:\n{self.output}"
            time.sleep(0.1)
        return self.output

    def interrupt(self) -> int:
        """Ctrl-C, as a person stops it; when it is still running a minute later, what its threads
        were doing (`paylinks` prints their stacks on USR1) is in the failure."""
        self.popen.send_signal(signal.SIGINT)
        try:
            code = self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGUSR1)
            time.sleep(3)
            raise AssertionError(
                f"still running 60 s after Ctrl-C; it said:\n{self.output[-8000:]}"
            ) from None
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=30)


@contextmanager
def _running(args: list[str], env: dict[str, str]) -> Iterator[_Process]:
    process = _Process(args, env)
    try:
        yield process
    finally:
        process.kill()


class _Browser(httpx.Client):
    def form(self, page_path: str, action: str, data: dict[str, str]) -> httpx.Response:
        page = self.get(page_path)
        assert page.status_code == 200, (page_path, page.status_code)
        return self.post(action, data={**data, "csrf_token": _csrf(page.text)})

    def log_in(self, email_address: str, one_time_password: str) -> None:
        assert (
            self.form("/login", "/login", {"email": email_address, "password": one_time_password}).headers[
                "location"
            ]
            == "/password"
        )
        changed = self.form(
            "/password",
            "/password",
            {
                "current_password": one_time_password,
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
        )
        assert changed.status_code == 303, changed.text


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def _mails(outbox: Path) -> dict[str, email.message.EmailMessage]:
    return {
        path.name: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in outbox.glob("*.eml")
    }


def _new_mails(outbox: Path, seen: set[str], timeout: float = 120) -> dict[str, email.message.EmailMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = {name: mail for name, mail in _mails(outbox).items() if name not in seen}
        if fresh:
            time.sleep(0.5)  # the rest of a blast lands meanwhile
            return {name: mail for name, mail in _mails(outbox).items() if name not in seen}
        time.sleep(0.2)
    raise AssertionError(f"no new email in {outbox} within {timeout:.0f} s")


def _to(mail: email.message.EmailMessage) -> str:
    return mail["To"].addresses[0].addr_spec


def _pay_links(mail: email.message.EmailMessage) -> list[str]:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return _PAY_LINK.findall(body.get_content())


def _row_of(var: Path, url: str) -> tuple[int, str, str]:
    """The (player id, description, status) of the riverside-hoops row a Pay Now link belongs to; a
    link of the other club, or replaced since it was mailed (a spent one), belongs to none."""
    with sqlite3.connect(var / "paylinks.db") as database:
        found = database.execute(
            "SELECT pl.player_id, pl.description, pl.status FROM payment_links pl "
            "JOIN tenants t ON t.id = pl.tenant_id WHERE pl.stripe_payment_link_url = ? AND t.slug = ?",
            (url, TENANT),
        ).fetchone()
    return found or (0, "", "elsewhere")


def _platform_account(var: Path) -> str:
    return json.loads((var / "stripe-emulator.json").read_text())["platform_account"]


def _assert_the_demo_did_every_step(demo: subprocess.CompletedProcess, var: Path) -> None:
    """`paylinks demo`: every step said, no noise, the tally of both clubs, the outbox and the
    emulator's kept state beside the database (so `make office` serves the same links)."""
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    for noise in ("Traceback", "ERROR", "Error", "WARNING"):
        assert noise not in output
    for step in (
        "backfill, dry run",
        "backfill, commit",
        "test send",
        "the real blast",
        "pay through",
        "reconcile",
        "balances now",
    ):
        assert step in output
    assert "run again: 0 links minted" in output
    # One club is paid into its own connected account, and its links are minted there.
    assert "northside-eagles is paid into its own Stripe account acct_demoNorthsideEagles" in output
    assert "links minted in Stripe account acct_demoNorthsideEagles" in output
    tally = output[output.index("paylinks demo") :]
    assert "riverside-hoops" in tally and "northside-eagles" in tally
    assert len(list((var / "outbox").glob("*.eml"))) > 2 and (var / "outbox" / "index.html").exists()
    assert "index.html" in output and "make ui" in output and "make office" in output
    assert (var / "stripe-emulator.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
# Every demo prefers port 12111 (where a newcomer's links point), and this test needs the port its
# demo took to stay free while it restarts the emulator and the office on it: the tests that run
# the demo share one xdist worker (make test passes --dist loadgroup), so never two at once.
@pytest.mark.xdist_group("demo-port")
def test_after_the_demo_make_office_runs_the_whole_club_and_every_link_pays(tmp_path):
    var = tmp_path / "var"
    env = _env(var)
    outbox = var / "outbox"

    nothing_yet = subprocess.run(
        [sys.executable, "-m", "cli", "office"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert nothing_yet.returncode == 2 and "run `make demo` first" in nothing_yet.stderr
    assert nothing_yet.stderr.count("\n") == 1

    refused = subprocess.run(
        [sys.executable, "-m", "cli", "demo"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--reset-database" in refused.stderr

    demo = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--reset-database"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    _assert_the_demo_did_every_step(demo, var)
    account = _platform_account(var)
    blasted = _mails(outbox)
    links = [link for mail in blasted.values() for link in _pay_links(mail)]
    open_links = [link for link in links if _row_of(var, link)[2] == "pending"]
    assert len(open_links) > 3

    # `make emulator` between the demo and the office: the same Stripe account, the same links.
    with _running(["stripe-emulator"], env) as emulator:
        emulator.wait_for("Stripe emulator on", timeout=120)
        emulator_url = re.search(r"http://127\.0\.0\.1:\d+", emulator.output).group(0)  # type: ignore[union-attr]
        assert open_links[0].startswith(emulator_url)
        for _ in range(100):
            try:
                answer = httpx.get(f"{emulator_url}/v1/account", headers=EMULATOR_KEY)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer.json()["id"] == account
        assert httpx.get(open_links[0]).status_code == 200
        paid = httpx.post(open_links[0], headers={"Accept": "application/json"})
        assert paid.status_code == 200 and paid.json()["payment_status"] == "paid"
        assert emulator.interrupt() in (0, 130)  # 130: stopped by Ctrl-C, as a shell reports it

    port = _free_port()
    with _running(["office", "--port", str(port)], env) as office:
        said = office.wait_for("Ctrl-C stops", timeout=180)
        office_url = f"http://127.0.0.1:{port}"
        assert (
            f"club office on {office_url}" in said and "http://127.0.0.1:4200" in said and "make ui" in said
        )
        logins = {role: (address, password) for role, address, password in _LOGIN.findall(said)}
        assert set(logins) == {"admin", "coach"}
        assert httpx.get(f"{emulator_url}/v1/account", headers=EMULATOR_KEY).json()["id"] == account

        with _Browser(base_url=office_url, timeout=120) as admin:
            admin.log_in(*logins["admin"])
            preview = admin.get(f"/t/{TENANT}/blast")
            assert preview.status_code == 200 and "parents owe something" in preview.text

            seen = set(_mails(outbox))
            tested = admin.form(f"/t/{TENANT}/blast", f"/t/{TENANT}/blast/test", {"test_email": TEST_ADDRESS})
            assert tested.status_code == 200 and f"Test email sent to {TEST_ADDRESS}" in tested.text
            test_mails = _new_mails(outbox, seen)
            assert [_to(mail) for mail in test_mails.values()] == [TEST_ADDRESS]
            assert "[TEST]" in str(next(iter(test_mails.values()))["Subject"])

            # The demo blasted minutes ago: a panel that holds back the recently emailed offers to
            # include them; one that does not ignores the field.
            seen = set(_mails(outbox))
            parents = re.search(r'name="parents" value="(\d+)"', tested.text).group(1)  # type: ignore[union-attr]
            sent = admin.post(
                f"/t/{TENANT}/blast/send",
                data={
                    "parents": parents,
                    "include_recent": "yes",
                    "checked": "on",
                    "csrf_token": _csrf(tested.text),
                },
            )
            assert sent.status_code == 303, sent.text
            assert admin.get(sent.headers["location"]).status_code == 200
            blast_mails = _new_mails(outbox, seen)
            assert len(blast_mails) >= 1 and TEST_ADDRESS not in {_to(m) for m in blast_mails.values()}

        # The coach resends one family's links; the parent pays from that email.
        still_open = [link for link in open_links[1:] if _row_of(var, link)[2] == "pending"]
        player_id, description, _ = _row_of(var, still_open[0])
        card = f"/t/{TENANT}/players/{player_id}"
        with _Browser(base_url=office_url, timeout=120) as coach:
            coach.log_in(*logins["coach"])
            seen = set(_mails(outbox))
            resent = coach.form(card, f"{card}/resend", {"action": "resend"})
            assert resent.status_code == 303, resent.text
            assert coach.get(resent.headers["location"]).status_code == 200
            resent_mail = next(iter(_new_mails(outbox, seen).values()))
            link = next(url for url in _pay_links(resent_mail) if _row_of(var, url)[1] == description)

            assert f'value="{link}"' in coach.get(card).text  # open, with its link to copy
            assert httpx.get(link).status_code == 200
            assert httpx.post(link).status_code == 200  # the parent pays, as their browser does
            paid_at = time.monotonic()
            while f'value="{link}"' in coach.get(card).text:
                assert time.monotonic() - paid_at < 2, "the card does not show the payment within 2 s"
                time.sleep(0.1)
            shown = coach.get(card).text
            paid_row = re.search(r'<tr class="status-paid">\s*<td>([^<]*)</td>', shown)
            assert paid_row is not None and description in shown

        assert office.interrupt() == 0
        assert "the local club stopped" in office.output
    # One Ctrl-C stopped the emulator too. Another test's demo may take the freed port at once (the
    # demo prefers the same one); whatever answers there now is not this club's Stripe.
    try:
        answer = httpx.get(f"{emulator_url}/v1/account", headers=EMULATOR_KEY, timeout=2)
    except httpx.TransportError:
        pass
    else:
        assert answer.json().get("id") != account, "the club's emulator still answers after Ctrl-C"
    assert _platform_account(var) == account
    for secret in ("stripe-webhook-secret", "office-session-secret"):
        assert (var / secret).stat().st_mode & 0o777 == 0o600
