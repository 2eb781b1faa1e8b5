"""Stripe's limits shared by every worker: Prefect global concurrency limits with slot decay, one
per account, mode and kind (created by `paylinks limits setup`), and the pacer and gateway tasks use.
"""

from __future__ import annotations

import atexit
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from paylinks.runtime import engine_for
from paylinks.settings import Settings
from paylinks.stripe_api.gateway import StripeContext, StripeGateway
from paylinks.stripe_api.keys import key_is_live
from paylinks.stripe_api.pacers import (
    PACED_KINDS,
    PAYMENT_LINK_CREATE,
    REQUEST,
    LocalPacer,
    Pacer,
    RateLimiter,
)
from paylinks.stripe_api.where import remembered_where

# Stripe limits each account and mode (25 requests/s in test mode, 100/s live, and 25 payment link
# creations/s on top). A process paces itself (paylinks.stripe_api.gateway.LocalPacer); processes share
# a pace through Prefect global concurrency limits with slot decay, one per account, mode and kind,
# created by `paylinks limits setup`.
STRIPE_REQUEST_RPS = {False: 25.0, True: 100.0}  # by livemode
# Permits are taken from the server in blocks of half a second's worth and spent here at this
# worker's share of the limit's rate. A server call takes long next to a Stripe request, and every
# refused ask also restarts the limit's decay clock: asking once per Stripe request would hold a
# worker far below Stripe's rate and starve the limit (benchmarks/RESULTS.md has the figures). With
# blocks of half a second, a worker alone asks about twice a second for each of its two limits.
STRIPE_BLOCK_SECONDS = 0.5
# The limit's `limit` is two blocks, so a worker asking for its next block finds room even when the
# server's decay (whole slots, its clock restarted by every write) runs a little behind. What is
# sent in any one second is kept within Stripe's limit by the spending, not by this burst.
STRIPE_BURST_SECONDS = 2 * STRIPE_BLOCK_SECONDS
# The next block is asked for when this many permits of the current one are left in hand.
STRIPE_ASK_AHEAD_PERMITS = 2
LIMITS_SETUP_COMMAND = "paylinks limits setup"
# Each process spends its permits at the limit's rate shared by the workers acting in the account
# and mode (see `_Workers`): a block spent at the full rate by two processes at once is twice
# Stripe's limit for that moment. A worker counts itself with a lease on one slot of the
# `…-workers` limit (no decay, created when first needed), renewed while it takes permits, and
# reads how many hold one at most once a REFRESH; a worker that finds others there waits a REFRESH
# (and a margin) before its first request, so they have slowed down for it first.
WORKERS_REFRESH_SECONDS = 2.0
WORKERS_JOIN_MARGIN_SECONDS = 1.0
WORKERS_LEASE_SECONDS = 60.0  # the shortest lease Prefect grants
WORKERS_CEILING = 10_000  # the `…-workers` limit's `limit`: it counts, it never refuses

_pacing_logger = logging.getLogger("paylinks.pacing")


def stripe_limit_name(account: str, livemode: bool, kind: str = REQUEST) -> str:
    """`stripe-<account>-<test|live>` for requests, `…-payment-links` for link creation."""
    name = f"stripe-{account}-{'live' if livemode else 'test'}"
    if kind == PAYMENT_LINK_CREATE:
        name += "-payment-links"
    return re.sub(r"[/%&<>\s]+", "-", name)  # characters Prefect names may not hold


def stripe_workers_name(account: str, livemode: bool) -> str:
    """`stripe-<account>-<test|live>-workers`: the workers acting in the account and mode now."""
    return stripe_limit_name(account, livemode) + "-workers"


def worker_share(rate: float, workers: int) -> float:
    """Permits per second one of `workers` processes spends of a limit of `rate`/s. Each spends
    evenly, and a stream of r/s can show r + 1 in a sliding second: one permit less a second per
    worker keeps their sum within the limit in every second, not just on average."""
    workers = max(1, workers)
    return max(rate / (2 * workers), (rate - workers) / workers)


def stripe_limit_rates(settings: Settings, livemode: bool) -> dict[str, float]:
    """Each kind's permits per second: Stripe's request limit for the mode, and link creation's."""
    return {REQUEST: STRIPE_REQUEST_RPS[livemode], PAYMENT_LINK_CREATE: settings.stripe_link_create_rps}


def stripe_limit_block(rate: float) -> int:
    """Permits one `rate_limit` call takes: half a second's worth."""
    return max(1, math.ceil(rate * STRIPE_BLOCK_SECONDS))


def stripe_limit_burst(rate: float) -> int:
    """The limit's `limit`: a second's worth (two blocks), and never less than one block."""
    return max(stripe_limit_block(rate), math.ceil(rate * STRIPE_BURST_SECONDS))


@dataclass(frozen=True)
class LimitChange:
    name: str
    action: str  # "created", "updated" or "unchanged"
    rate: float
    burst: int

    def describe(self) -> str:
        return f"{self.action:9} {self.name}: {self.rate:g}/s, burst {self.burst}"


def ensure_stripe_limits(settings: Settings, accounts: Sequence[str], livemode: bool) -> list[LimitChange]:
    """Create or update the global concurrency limits of these accounts (idempotent): `limit` is
    half a second's worth of permits (the burst), `slot_decay_per_second` the rate."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    from tasks.prefect_api import prefect_client

    changes: list[LimitChange] = []
    client = prefect_client()
    for account in dict.fromkeys(accounts):
        for kind, rate in stripe_limit_rates(settings, livemode).items():
            name = stripe_limit_name(account, livemode, kind)
            burst = stripe_limit_burst(rate)
            try:
                known = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=burst, slot_decay_per_second=rate)
                )
                action = "created"
            else:
                if known.limit == burst and known.slot_decay_per_second == rate and known.active:
                    action = "unchanged"
                else:
                    client.update_global_concurrency_limit(
                        name,
                        GlobalConcurrencyLimitUpdate(limit=burst, slot_decay_per_second=rate, active=True),
                    )
                    action = "updated"
            changes.append(LimitChange(name=name, action=action, rate=rate, burst=burst))
    return changes


class SharedLimitMissing(Exception):
    """The server granted nothing: the limit is gone (deleted, or made inactive) since it was read."""


class _Workers:
    """How many workers act in one Stripe account and mode now, this process among them: each
    holds a lease on one slot of the `…-workers` global limit while it takes permits (renewed as
    it goes, released at exit, let go by the server when it lapses). Read at most once a REFRESH.
    Shared by every limit of the account and mode in the process."""

    def __init__(self, name: str):
        self.name = name
        self.count = 1
        self.server_calls = 0
        self._lease_id: str | None = None
        self._renewed = 0.0
        self._read = -math.inf
        self._lock = threading.Lock()

    def refresh(self, client: Any) -> tuple[int, bool]:
        """(the workers acting now, whether this process has just joined them)."""
        with self._lock:
            now = time.monotonic()
            if now - self._read < WORKERS_REFRESH_SECONDS:
                return self.count, False
            # Asked at most once a REFRESH, even when the server fails: the last count stands.
            self._read = now
            joined = False
            if self._lease_id is None or now - self._renewed > WORKERS_LEASE_SECONDS / 3:
                joined = self._hold(client, now)
            self.server_calls += 1
            self.count = max(1, int(client.read_global_concurrency_limit_by_name(self.name).active_slots))
            return self.count, joined

    def _hold(self, client: Any, now: float) -> bool:
        """Take (or renew) this process's lease; True when it was taken anew."""
        import httpx

        if self._lease_id is not None:
            self.server_calls += 1
            try:
                client.renew_concurrency_lease(self._lease_id, WORKERS_LEASE_SECONDS)
                self._renewed = now
                return False
            except httpx.HTTPStatusError:  # lapsed (the process was idle): take a new one
                self._lease_id = None
        self._ensure_limit(client)
        self.server_calls += 1
        response = client.increment_concurrency_slots_with_lease(
            [self.name], 1, "concurrency", WORKERS_LEASE_SECONDS
        )
        self._lease_id = str(response.json()["lease_id"])
        self._renewed = now
        _held_leases.append((client, self._lease_id))
        return True

    def _ensure_limit(self, client: Any) -> None:
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
        from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

        self.server_calls += 1
        try:
            client.read_global_concurrency_limit_by_name(self.name)
            return
        except ObjectNotFound:
            pass
        self.server_calls += 1
        try:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=self.name, limit=WORKERS_CEILING)
            )
        except ObjectAlreadyExists:  # another worker made it first
            pass


_held_leases: list[tuple[Any, str]] = []


def _release_leases() -> None:
    """At exit: this process no longer counts among any account's workers (best effort: a lease
    not released lapses on its own)."""
    while _held_leases:
        client, lease_id = _held_leases.pop()
        try:
            client.release_concurrency_slots_with_lease(lease_id)
        except Exception:
            pass


atexit.register(_release_leases)


class _LimitBlocks:
    """One process's share of one global limit: permits taken from the server a block at a time,
    spent here at the limit's rate divided among the workers acting in the account (`_Workers`).
    Shared by every pacer of the process.

    It asks the server with the client's `increment_concurrency_slots` (mode "rate_limit") and, when
    refused (423), waits the server's Retry-After: what `prefect.concurrency.sync.rate_limit` does,
    minus its per-call thread hop and acquisition events, so permits arrive evenly rather than in
    bursts with gaps (benchmarks/RESULTS.md compares the two)."""

    def __init__(self, name: str, limit: int, rate: float, workers: _Workers | None = None):
        self.name = name
        self.rate = rate
        self.block = min(limit, stripe_limit_block(rate))
        self.workers = workers
        self.share = worker_share(rate, 1)
        self._left = 0
        self._lock = threading.Lock()
        self._spend = RateLimiter(self.share)
        self._client: Any = None
        self.server_calls = 0
        self.permits = 0
        self.first_permit: float | None = None
        self.last_permit: float | None = None
        # When the latest permits were spent (wall clock, comparable across processes), for a
        # benchmark to find the busiest second of what all workers sent.
        self.spent: deque[float] = deque(maxlen=20_000)

    def take(self) -> float:
        """Take one permit (blocking while the server has none); the wait before spending it."""
        with self._lock:
            self._follow_workers()
            if self._left == 0:  # none in hand (the first permit, or blocks this small): ask now
                self._refill()
                self._left += self.block
            wait = self._spend.reserve()  # after the ask: a slow answer delays the pace, never bunches it
            now = time.monotonic()
            due = now + wait
            self.permits += 1
            self.first_permit = self.first_permit or now
            self._left -= 1
            if self._left == STRIPE_ASK_AHEAD_PERMITS:
                # The next block is asked for while this permit waits for its time: the server's
                # answer seldom takes longer, so the pace never stops for it. Permits are handed
                # out ahead of their time when many callers wait, so the ask waits until an
                # interval before this permit's: asked earlier, the server's decay would not have
                # made room yet and would refuse it.
                early = due - self._spend.interval - time.monotonic()
                if early > 0:
                    time.sleep(early)
                self._refill()
                self._left += self.block
                answered = time.monotonic()
                if answered > due:
                    # The answer took longer: this permit goes at once, and the next one an
                    # interval after it, not together with it to catch up (two requests at once
                    # show as one more than the rate in a sliding second).
                    due = answered
                    self._spend.not_before(due + self._spend.interval)
            self.last_permit = due
        return max(0.0, due - time.monotonic())

    def _connected(self) -> Any:
        from tasks.prefect_api import prefect_client

        if self._client is None:
            self._client = prefect_client()
        return self._client

    def _follow_workers(self) -> None:
        """Spend at this process's share of the rate; on joining others, let them slow down first."""
        if self.workers is None:
            return
        try:
            count, joined = self.workers.refresh(self._connected())
        except Exception as error:  # the count is a refinement: without it, the last one known
            _pacing_logger.debug("could not count the workers on %s: %s", self.name, error)
            return
        share = worker_share(self.rate, count)
        if share != self.share:
            _pacing_logger.debug("%s: %d worker(s), spending %.2f/s here", self.name, count, share)
            self.share = share
            self._spend.set_rate(share)
        if joined and count > 1:
            # The others read the count within a REFRESH of their last read, plus a permit's
            # wait and a server call: by then they spend their smaller share.
            time.sleep(WORKERS_REFRESH_SECONDS + WORKERS_JOIN_MARGIN_SECONDS)

    def _refill(self) -> None:
        import httpx

        self._connected()
        while True:
            self.server_calls += 1
            try:
                granted = self._client.increment_concurrency_slots(
                    [self.name], self.block, "rate_limit"
                ).json()
            except httpx.HTTPStatusError as error:
                if error.response.status_code != 423:
                    raise
                # The server's Retry-After grows with every refusal (its `denied_slots`) and, once
                # refusals come faster than they decay, asks for seconds while the limit has room:
                # a block's time is as long as any ask needs to wait.
                retry_after = float(error.response.headers.get("Retry-After") or "inf")
                time.sleep(min(retry_after, self.block / self.rate))
                continue
            if not granted:
                raise SharedLimitMissing(f"the Prefect server has no active limit named {self.name!r}")
            return


_blocks: dict[tuple[str | None, str, int, float], _LimitBlocks] = {}  # by (API, name, limit, rate)
_workers: dict[tuple[str | None, str], _Workers] = {}  # by (API, workers limit name)
_limits_read: dict[tuple[str | None, str], tuple[int, float] | None] = {}  # by (flow run, limit name)
_warned: set[tuple[str | None, str]] = set()
_shared_lock = threading.Lock()


def _current_run_id() -> str | None:
    from prefect.runtime import flow_run

    try:
        return flow_run.id
    except Exception:
        return None


def _run_logger() -> Any:
    """The current task or flow run's logger (its lines reach the run's log), else paylinks.pacing."""
    try:
        from prefect.logging import get_run_logger

        return get_run_logger()
    except Exception:
        return _pacing_logger


def _warn_once(run_id: str | None, name: str, message: str, run_logger: Any) -> None:
    """One warning per flow run (per process outside runs) and limit."""
    with _shared_lock:
        if (run_id, name) in _warned:
            return
        _warned.add((run_id, name))
    run_logger.warning(message)


def _read_limit(run_id: str | None, name: str) -> tuple[int, float] | None:
    """(limit, slots decayed per second) of a usable global limit, read once per run; None if missing."""
    with _shared_lock:
        if (run_id, name) in _limits_read:
            return _limits_read[(run_id, name)]
    from prefect.exceptions import ObjectNotFound

    from tasks.prefect_api import prefect_client

    try:
        client = prefect_client()
        known = client.read_global_concurrency_limit_by_name(name)
        found = (
            (known.limit, known.slot_decay_per_second)
            if known.active and known.slot_decay_per_second > 0
            else None
        )
    except ObjectNotFound:
        found = None
    with _shared_lock:
        if len(_limits_read) > 10_000:
            _limits_read.clear()
        _limits_read[(run_id, name)] = found
    return found


class SharedPacer:
    """A `Pacer` shared by every process using one Prefect server: permits come from the global
    limits `stripe_limit_name` names (see `paylinks limits setup`). The account and mode are
    learnt on the first permit asked for (`where`, usually no request: see `stripe_gateway`);
    without a usable limit, one warning per run, then `fallback` (this process's own pacing)."""

    def __init__(
        self, where: Callable[[], StripeContext], fallback: Pacer, sleep: Callable[[float], None] = time.sleep
    ):
        self._where = where
        self._fallback = fallback
        # Taken where the pacer is made (a task): the threads that spend permits have no run context.
        self._run_id = _current_run_id()
        self._logger = _run_logger()
        self._sleep = sleep
        self._names: dict[str, str] | None = None
        self._resolving = False
        self._alone: set[str] = set()  # kinds this pacer paces alone: the server failed it once
        self._lock = threading.RLock()

    def limit_names(self) -> dict[str, str] | None:
        """Each kind's limit name, once the account is known (None before any permit was asked)."""
        return self._names

    def acquire(self, kind: str) -> None:
        blocks = None if kind in self._alone else self._blocks_for(kind)
        if blocks is None:
            self._fallback.acquire(kind)
            return
        try:
            wait = blocks.take()
        except Exception as error:  # the server went away or the limit was deleted: pace alone
            self._alone.add(kind)
            _warn_once(
                self._run_id,
                blocks.name,
                f"Stripe's shared limit {blocks.name!r} could not be used ({type(error).__name__}: {error}); "
                f"this worker paces itself alone. Check the Prefect server and run `{LIMITS_SETUP_COMMAND}`.",
                self._logger,
            )
            self._fallback.acquire(kind)
            return
        if wait > 0:
            self._sleep(wait)
        blocks.spent.append(time.time())

    def _blocks_for(self, kind: str) -> _LimitBlocks | None:
        with self._lock:
            if self._names is None:
                if self._resolving:  # learning the account takes a request: pace it alone
                    return None
                self._resolving = True
                try:
                    where = self._where()
                finally:
                    self._resolving = False
                self._names = {k: stripe_limit_name(where.account, where.livemode, k) for k in PACED_KINDS}
                self._account = where.account
                self._workers_name = stripe_workers_name(where.account, where.livemode)
        name = self._names[kind]
        run_id = self._run_id
        try:
            found = _read_limit(run_id, name)
        except Exception as error:
            self._alone.add(kind)
            _warn_once(
                run_id,
                name,
                f"the Prefect server could not be asked for Stripe's shared limit {name!r} "
                f"({type(error).__name__}); this worker paces itself alone.",
                self._logger,
            )
            return None
        if found is None:
            _warn_once(
                run_id,
                name,
                f"Stripe's shared limit {name!r} does not exist on the Prefect server (or has no slot decay): "
                f"this worker paces itself alone, so workers together may exceed {self._account}'s Stripe limit. "
                f"Create it once with `{LIMITS_SETUP_COMMAND}`.",
                self._logger,
            )
            return None
        limit, rate = found
        api = _api_url()
        key = (api, name, limit, rate)
        with _shared_lock:
            blocks = _blocks.get(key)
            if blocks is None:
                workers = _workers.get((api, self._workers_name))
                if workers is None:
                    workers = _workers[(api, self._workers_name)] = _Workers(self._workers_name)
                blocks = _blocks[key] = _LimitBlocks(name, limit, rate, workers)
        return blocks


def pacing_costs() -> dict[str, dict[str, Any]]:
    """Per shared limit this process used: permits taken, Prefect API calls made for them (its
    blocks and its share of the account's worker count) and the seconds between the first permit
    and the last."""
    costs = {}
    with _shared_lock:
        for blocks in _blocks.values():
            if not blocks.permits:
                continue
            workers_calls = blocks.workers.server_calls if blocks.workers else 0
            costs[blocks.name] = {
                "permits": blocks.permits,
                "api_calls": blocks.server_calls,
                "workers_api_calls": workers_calls,  # shared by the account's limits
                "seconds": (blocks.last_permit or 0.0) - (blocks.first_permit or 0.0),
                "spent": list(blocks.spent),
            }
    return costs


def _api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def shared_limits_configured() -> bool:
    """Whether runs talk to a Prefect server (PREFECT_API_URL), whose limits other workers share;
    an ephemeral API lives in this process alone."""
    return bool(_api_url())


def stripe_pacer(settings: Settings, where: Callable[[], StripeContext], account: str | None = None) -> Pacer:
    """The pacer tasks hand to gateways: shared through the Prefect server's global limits when
    there is a server, this process's own otherwise. `where` names the account and mode; it is
    called on the first permit asked for."""
    local = LocalPacer(settings, account)
    return SharedPacer(where, local) if shared_limits_configured() else local


def stripe_gateway(
    settings: Settings, *, account: str | None = None, where: StripeContext | None = None
) -> StripeGateway:
    """A gateway for a task, paced with every other worker acting in its account.

    The account for the limit's name comes without asking Stripe: a connected `account` is its own
    name, `where` is the run's (from `find_stripe_account`), and otherwise the key's account is read
    from the database (`paylinks.stripe_api.where.remembered_where`); only a key never seen asks Stripe once.
    A gateway that makes no request asks the Prefect server nothing either.
    """

    def where_for() -> StripeContext:
        if account:
            return StripeContext(account=account, livemode=key_is_live(gateway.api_key))
        if where is not None:
            return where
        return remembered_where(engine_for(settings.database_url), gateway, settings)

    gateway = StripeGateway(settings, account=account, pacer=stripe_pacer(settings, where_for, account))
    return gateway
