"""A worker's permits keep their spacing however long the Prefect server takes to answer for the
next block: a slow answer delays the pace, and the permits after it never go together to catch
up (two requests at once show Stripe one more than the rate in a sliding second)."""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from paylinks.settings import Settings
from paylinks.stripe_api.pacers import PAYMENT_LINK_CREATE
from tasks.pacing import (
    _LimitBlocks,
    ensure_stripe_limits,
    stripe_limit_block,
    stripe_limit_burst,
    stripe_limit_name,
    worker_share,
)
from tasks.prefect_api import prefect_client

RATE = 25.0  # link creations a second
PERMITS = 3 * stripe_limit_block(RATE) + 1  # three blocks and the start of a fourth


class _AnswersAfter:
    """The real Prefect client, its answers for a block of permits delayed by `seconds`."""

    def __init__(self, client: Any, seconds: float) -> None:
        self._client = client
        self._seconds = seconds
        self.asks = 0

    def increment_concurrency_slots(self, *args: Any, **kwargs: Any) -> Any:
        self.asks += 1
        time.sleep(self._seconds)
        return self._client.increment_concurrency_slots(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize("answer_s", [0.0, 0.15], ids=["quick-server", "slow-server"])
def test_permits_keep_their_spacing_however_long_the_server_takes_to_answer(tmp_path: Path, answer_s):
    account = f"acct_spacing{uuid.uuid4().hex[:10]}"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        stripe_api_key="sk_test_paylinks_tests",
        stripe_link_create_rps=RATE,
    )
    ensure_stripe_limits(settings, [account], livemode=False)
    blocks = _LimitBlocks(
        stripe_limit_name(account, False, PAYMENT_LINK_CREATE), stripe_limit_burst(RATE), RATE
    )
    server = blocks._client = _AnswersAfter(prefect_client(), answer_s)

    spent = []  # when the pacer lets each permit go (how late a sleep wakes is the machine's)
    for _ in range(PERMITS):
        wait = blocks.take()
        spent.append(time.monotonic() + wait)
        if wait > 0:
            time.sleep(wait)

    interval = 1 / worker_share(RATE, 1)
    gaps = [later - earlier for earlier, later in itertools.pairwise(spent)]
    # The slow server answers in about four intervals: without care, the permit after each answer went
    # at once, right behind the late one.
    # Half an interval: room for this test's thread being paused between the pacer and its clock.
    assert min(gaps) >= 0.5 * interval, [round(gap, 3) for gap in gaps]
    # On average no faster than the share: the same half interval of room, since a pause before the
    # first permit's clock reading shortens the span measured (it failed by 0.00004 permits/s so).
    assert (PERMITS - 1) / (spent[-1] - spent[0] + 0.5 * interval) <= 1 / interval
    # One ask a block, each before the block ran out.
    assert server.asks == 4
