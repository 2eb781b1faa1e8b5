"""`paylinks demo`, the project's main job, end to end in its own process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from paylinks.settings import PROJECT_ROOT


@pytest.mark.slow
@pytest.mark.xdist_group("demo-port")  # see tests/test_local_club.py
def test_demo_runs_every_step_and_ends_with_the_tally(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYLINKS_", "PREFECT_"))}
    env.update(
        PAYLINKS_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
        PAYLINKS_OUTBOX_DIR=str(tmp_path / "outbox"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        COLUMNS="120",
    )
    refused = subprocess.run(
        [sys.executable, "-m", "cli", "demo"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "--reset-database" in refused.stderr

    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--reset-database"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
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
    emails = list((tmp_path / "outbox").glob("*.eml"))
    assert len(emails) > 2 and (tmp_path / "outbox" / "index.html").exists()
    assert "index.html" in output and "make ui" in output
    # Its emulator's state is kept beside the database, so `make office` serves the same links.
    assert (tmp_path / "stripe-emulator.json").stat().st_mode & 0o777 == 0o600
    assert "make office" in output
