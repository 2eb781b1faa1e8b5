"""Workers minting payment links in one Stripe account, each in its own OS process, as two
Prefect workers would: `python -m tests.flows.pacing_worker ACCOUNT PRICE COUNT shared|local`.

`run_workers` starts them together and gathers what they did; each worker prints, as JSON, how
many links it minted, how many calls Stripe answered 429 (retried), and when each link creation left.
For a benchmark of two workers on one account: a Prefect server (`prefect_test_harness()` will
do), `tasks.pacing.ensure_stripe_limits(settings, [account], livemode)`, then
`run_workers(worker_env(settings, prefect_home), account=..., price_id=..., count=..., shared=True)`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from paylinks.settings import PROJECT_ROOT, Settings, load_settings
from paylinks.stripe_api.gateway import StripeGateway
from paylinks.stripe_api.pacers import PAYMENT_LINK_CREATE, REQUEST, LocalPacer, Pacer


class RecordingPacer:
    """Passes permits through and notes when each request was let go (wall clock, comparable
    across processes)."""

    def __init__(self, inner: Pacer):
        self.inner = inner
        self.sent: dict[str, list[float]] = {REQUEST: [], PAYMENT_LINK_CREATE: []}

    def acquire(self, kind: str) -> None:
        self.inner.acquire(kind)
        self.sent[kind].append(time.time())


def mint_links_as_worker(
    settings: Settings, *, account: str, price_id: str, count: int, shared: bool, threads: int = 4
) -> dict:
    """Mint `count` links in the key's account (`account`, in the key's mode), `threads` at a time,
    through one worker's gateways (one per link, as tasks build them): paced with every other
    worker by the Prefect server's limits if `shared`, by this process alone otherwise."""
    from paylinks.stripe_api.gateway import StripeContext
    from paylinks.stripe_api.keys import key_is_live
    from tasks.pacing import stripe_gateway

    where = StripeContext(account=account, livemode=key_is_live(settings.stripe_api_key.get_secret_value()))

    gateways: list[StripeGateway] = []
    recorders: list[RecordingPacer] = []

    def mint(number: int) -> str:
        if shared:
            gateway = stripe_gateway(settings, where=where)
        else:
            gateway = StripeGateway(settings, pacer=LocalPacer(settings))
        recorder = RecordingPacer(gateway.pacer)
        gateway.pacer = recorder
        gateways.append(gateway)
        recorders.append(recorder)
        link = gateway.create_payment_link(
            price_id=price_id,
            metadata={"payment_link_row_id": str(number)},
            idempotency_key=f"pacing-{time.time_ns()}-{number}",
        )
        return link.id

    started = time.time()
    with ThreadPoolExecutor(threads) as pool:
        minted = list(pool.map(mint, range(count)))
    return {
        "minted": len(minted),
        "started": started,
        "finished": time.time(),
        "rate_limited": sum(g.retries for g in gateways),
        "sent": sorted(t for r in recorders for t in r.sent[PAYMENT_LINK_CREATE]),  # the permit taken last
    }


def worker_env(settings: Settings, prefect_home: Path) -> dict[str, str]:
    """The environment of a worker process: `settings` as PAYLINKS_*, and this process's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    from tests.helpers import settings_env

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYLINKS_", "PREFECT_"))}
    env.update(settings_env(settings))
    env["PREFECT_HOME"] = str(prefect_home)
    env["PREFECT_API_URL"] = PREFECT_API_URL.value() or ""
    return env


@dataclass
class WorkersOutcome:
    minted: int
    rate_limited: int  # calls Stripe answered 429, summed over the workers
    busiest_second: int  # most link creations sent by all workers in any one second
    seconds: float  # from the first worker's first link to the last worker's last


def busiest_second(times: Sequence[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def start_workers(
    env: dict[str, str], *, account: str, price_id: str, count: int, shared: bool, workers: int = 2
) -> list[subprocess.Popen]:
    """Start `workers` processes together, each minting `count` links in `account` with the
    settings and Prefect API `env` gives (PAYLINKS_*, PREFECT_API_URL)."""
    command = [sys.executable, "-m", "tests.flows.pacing_worker", account, price_id, str(count)]
    command.append("shared" if shared else "local")
    return [
        subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]


def gather_workers(processes: list[subprocess.Popen], timeout: float = 120) -> WorkersOutcome:
    """Wait for the workers; what they did together."""
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise AssertionError(f"a worker failed:\n{err[-3000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return WorkersOutcome(
        minted=sum(r["minted"] for r in reports),
        rate_limited=sum(r["rate_limited"] for r in reports),
        busiest_second=busiest_second([t for r in reports for t in r["sent"]]),
        seconds=max(r["finished"] for r in reports) - min(r["started"] for r in reports),
    )


def run_workers(
    env: dict[str, str], *, account: str, price_id: str, count: int, shared: bool, workers: int = 2
) -> WorkersOutcome:
    """Two (or `workers`) workers on one account, minting `count` links each, through the shared
    pacer if `shared`; waits for them. What a benchmark of shared pacing calls."""
    processes = start_workers(
        env, account=account, price_id=price_id, count=count, shared=shared, workers=workers
    )
    return gather_workers(processes)


if __name__ == "__main__":
    account_id, price, how_many, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    outcome = mint_links_as_worker(
        load_settings(), account=account_id, price_id=price, count=how_many, shared=how == "shared"
    )
    print(json.dumps(outcome))
