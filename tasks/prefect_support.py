"""The Prefect helpers every flow and task shares: settings for a run, the retry rule, artifacts.

This is where paylinks meets Prefect; the plain library below knows nothing of it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import SecretStr

from paylinks.errors import ConfigurationError
from paylinks.messaging.transports import MailDeliveryError
from paylinks.present.reports import Table
from paylinks.settings import Settings, load_settings
from paylinks.stripe_api.gateway import (
    PACED_KINDS,
    PAYMENT_LINK_CREATE,
    REQUEST,
    LocalPacer,
    Pacer,
    RateLimiter,
    StripeContext,
    StripeGateway,
    is_transient,
    key_is_live,
)

# The settings of runs started in this process by a caller that has them as a value (the CLI,
# the demo, the office, tests). A run started by a worker has none and reads its environment.
_run_settings: ContextVar[Settings | None] = ContextVar("paylinks_run_settings", default=None)


@contextmanager
def settings_for_runs(settings: Settings) -> Iterator[Settings]:
    """Flows started inside this block run with `settings` (never written to the environment)."""
    token = _run_settings.set(settings)
    try:
        yield settings
    finally:
        _run_settings.reset(token)


def scoped_settings() -> Settings | None:
    """The settings `settings_for_runs` gave this context, if any."""
    return _run_settings.get()


# Settings whose secret may instead live in a Prefect Secret block named by a `*_block` setting.
SECRET_BLOCKS = (("stripe_api_key", "stripe_api_key_block"), ("smtp_password", "smtp_password_block"))


def flow_settings() -> Settings:
    """The settings a flow runs with: its caller's, or the environment's; secrets from Secret blocks.

    `PAYLINKS_STRIPE_API_KEY_BLOCK` / `PAYLINKS_SMTP_PASSWORD_BLOCK` name Secret blocks to read
    when the key or password is not set directly, so a worker's environment need not hold them.
    Settings never travel as flow parameters: the Prefect API stores those.
    """
    return with_secret_blocks(_run_settings.get() or load_settings())


def with_secret_blocks(settings: Settings, fields: tuple[tuple[str, str], ...] = SECRET_BLOCKS) -> Settings:
    """`settings` with each (secret, block setting) pair's secret read from its Secret block,
    where the block is named and the secret is not set directly."""
    updates: dict[str, SecretStr] = {}
    for field, block_field in fields:
        block_name = getattr(settings, block_field)
        if block_name and getattr(settings, field) is None:
            updates[field] = SecretStr(read_secret_block(block_name, block_field))
    return settings.model_copy(update=updates) if updates else settings


def read_secret_block(name: str, setting: str) -> str:
    from prefect.blocks.system import Secret

    try:
        value = cast(Secret, Secret.load(name)).get()
    except ValueError:
        raise ConfigurationError(
            f"no Prefect Secret block named {name!r} (PAYLINKS_{setting.upper()}); create it with "
            f"`Secret(value=...).save({name!r})` or the Prefect UI"
        ) from None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"the Prefect Secret block {name!r} is empty or not a string")
    return value


def is_worth_retrying(error: BaseException) -> bool:
    """A later try may succeed: Stripe's 429/5xx/network, a mail server's "try later", a dropped line."""
    if isinstance(error, MailDeliveryError):
        return not error.permanent
    return is_transient(error) or isinstance(error, (ConnectionError, TimeoutError))


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn` of every I/O task: retry only what a later try may fix."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # the result itself could not be read: do not guess, do not retry
        return False
    return isinstance(error, BaseException) and is_worth_retrying(error)


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def publish_tables(subject: str, tenant: str, tables: Sequence[Table]) -> None:
    """A run's report as artifacts: its first table (the summary) as a table artifact, and
    every table on one markdown page, keyed `<subject>-<tenant>-summary` / `-details`."""
    if not tables:
        return
    summary, *_ = tables
    publish_table(artifact_key(subject, tenant, "summary"), summary.records(), description=summary.title)
    page = "\n\n".join(f"## {t.title}\n{t.markdown()}" for t in tables)
    publish_markdown(artifact_key(subject, tenant, "details"), page, description=f"{summary.title}: details")


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    create_table_artifact(key=key, table=[dict(r) for r in rows], description=description)


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(key=key, markdown=markdown, description=description)


def markdown_table(rows: Sequence[Mapping[str, Any]], empty: str = "_none_") -> str:
    if not rows:
        return empty
    headers = list(rows[0].keys())

    def cell(value: Any) -> str:
        return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(row.get(h)) for h in headers) + " |" for row in rows]
    return "\n".join(lines)


# -- Stripe's limits, shared by every worker ---------------------------------------------------
# Stripe limits each account and mode (25 requests/s in test mode, 100/s live, and 25 payment link
# creations/s on top). A process paces itself (paylinks.stripe_api.gateway.LocalPacer); processes share
# a pace through Prefect global concurrency limits with slot decay, one per account, mode and kind,
# created by `paylinks limits setup`.
STRIPE_REQUEST_RPS = {False: 25.0, True: 100.0}  # by livemode
# Permits are taken from the server in blocks of a quarter second's worth and spent here at the
# limit's rate. Measured against a local Prefect server: `prefect.concurrency.sync.rate_limit` costs
# 10-130 ms a call (the higher figure on a loaded machine), the client's increment it wraps ~8 ms,
# and every refused ask also restarts the limit's decay clock; a server call per Stripe request
# would cap a worker near 10 requests/s and starve the limit. With blocks, a worker asks about four
# times a second, and can hold at most a quarter second of the rate unused.
STRIPE_BLOCK_SECONDS = 0.25
# The limit's `limit` (its burst after a quiet spell) is two blocks: a full second's burst on top of
# a second's rate lets twice the rate through in the first second, which Stripe answers with 429s.
STRIPE_BURST_SECONDS = 2 * STRIPE_BLOCK_SECONDS
LIMITS_SETUP_COMMAND = "paylinks limits setup"

_pacing_logger = logging.getLogger("paylinks.pacing")


def stripe_limit_name(account: str, livemode: bool, kind: str = REQUEST) -> str:
    """`stripe-<account>-<test|live>` for requests, `…-payment-links` for link creation."""
    name = f"stripe-{account}-{'live' if livemode else 'test'}"
    if kind == PAYMENT_LINK_CREATE:
        name += "-payment-links"
    return re.sub(r"[/%&<>\s]+", "-", name)  # characters Prefect names may not hold


def stripe_limit_rates(settings: Settings, livemode: bool) -> dict[str, float]:
    """Each kind's permits per second: Stripe's request limit for the mode, and link creation's."""
    return {REQUEST: STRIPE_REQUEST_RPS[livemode], PAYMENT_LINK_CREATE: settings.stripe_link_create_rps}


def stripe_limit_block(rate: float) -> int:
    """Permits one `rate_limit` call takes: a quarter second's worth."""
    return max(1, math.ceil(rate * STRIPE_BLOCK_SECONDS))


def stripe_limit_burst(rate: float) -> int:
    """The limit's `limit`: half a second's worth, and never less than one block."""
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
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    changes: list[LimitChange] = []
    with get_client(sync_client=True) as client:
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
                            GlobalConcurrencyLimitUpdate(
                                limit=burst, slot_decay_per_second=rate, active=True
                            ),
                        )
                        action = "updated"
                changes.append(LimitChange(name=name, action=action, rate=rate, burst=burst))
    return changes


class SharedLimitMissing(Exception):
    """The server granted nothing: the limit is gone (deleted, or made inactive) since it was read."""


class _LimitBlocks:
    """One process's share of one global limit: permits taken from the server a block at a time,
    spent here no faster than the limit's rate. Shared by every pacer of the process.

    It asks the server with the client's `increment_concurrency_slots` (mode "rate_limit") and, when
    refused (423), waits the server's Retry-After: what `prefect.concurrency.sync.rate_limit` does,
    minus its per-call thread hop and acquisition events. Measured on a loaded test machine, two
    threads taking blocks of 3 from a 10/s limit got 9.4 permits/s, evenly, this way; through
    `rate_limit` they got 8.7/s in bursts with whole seconds of nothing, at 10-130 ms a call."""

    def __init__(self, name: str, limit: int, rate: float):
        self.name = name
        self.rate = rate
        self.block = min(limit, stripe_limit_block(rate))
        self._left = 0
        self._lock = threading.Lock()
        self._spend = RateLimiter(rate)
        self._client: Any = None
        self.server_calls = 0

    def take(self) -> float:
        """Take one permit (blocking while the server has none); the wait before spending it."""
        with self._lock:
            wait = self._spend.reserve()
            if self._left == 0:
                # Ask for the next block only when this one is spent: a refused ask (423) restarts
                # the server's decay clock (`floor(rate * seconds since updated)`), so asking too
                # often starves every worker of the account.
                if wait > 0:
                    time.sleep(wait)
                    wait = 0.0
                self._refill()
                self._left = self.block
            self._left -= 1
        return wait

    def _refill(self) -> None:
        import httpx
        from prefect.client.orchestration import get_client

        if self._client is None:  # one client per limit and process, kept for the process's life
            self._client = get_client(sync_client=True).__enter__()
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
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
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
        key = (_api_url(), name, limit, rate)
        with _shared_lock:
            blocks = _blocks.get(key)
            if blocks is None:
                blocks = _blocks[key] = _LimitBlocks(name, limit, rate)
        return blocks


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
    from the database (`paylinks.stripe_api.where.stripe_where`); only a key never seen asks Stripe once.
    A gateway that makes no request asks the Prefect server nothing either.
    """
    from paylinks.runtime import engine_for
    from paylinks.stripe_api.where import stripe_where

    def where_for() -> StripeContext:
        if account:
            return StripeContext(account=account, livemode=key_is_live(gateway.api_key))
        if where is not None:
            return where
        return stripe_where(engine_for(settings.database_url), gateway, settings)

    gateway = StripeGateway(settings, account=account, pacer=stripe_pacer(settings, where_for, account))
    return gateway
