"""The settings a run works with, and the secrets it may read from Prefect Secret blocks.

Settings never travel as flow parameters (the Prefect API stores those): a caller holding them as
a value starts its flows inside `settings_for_runs`; a run started by a worker reads its environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import cast

from pydantic import SecretStr

from paylinks.errors import ConfigurationError
from paylinks.settings import Settings, load_settings

# The settings of runs started in this process by a caller that has them as a value (the CLI,
# the demo, the office, tests). A run started by a worker has none and reads its environment.
_run_settings: ContextVar[Settings | None] = ContextVar("paylinks_run_settings", default=None)


@contextmanager
def settings_for_runs(settings: Settings) -> Iterator[Settings]:
    """Flows started inside this block run with `settings` (never written to the environment),
    and without Prefect's flow-run heartbeats (see `in_process_runs`)."""
    token = _run_settings.set(settings)
    try:
        with in_process_runs():
            yield settings
    finally:
        _run_settings.reset(token)


@contextmanager
def in_process_runs() -> Iterator[None]:
    """Flows run here, by a caller in this process, send no heartbeats. Prefect's heartbeat thread
    sleeps in whole seconds and every run waits for it at its end: about a second a run, most of
    what a short run takes. Heartbeats serve an automation that marks a silent run crashed, which
    matters for runs a worker starts (those keep the worker's setting), not for a run whose caller
    is here to see it end."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def scoped_settings() -> Settings | None:
    """The settings `settings_for_runs` gave this context, if any."""
    return _run_settings.get()


# Settings whose secret may instead live in a Prefect Secret block named by a `*_block` setting.
SECRET_BLOCKS = (
    ("stripe_api_key", "stripe_api_key_block"),
    ("smtp_password", "smtp_password_block"),
    ("family_link_secret", "family_link_secret_block"),
)


def flow_settings() -> Settings:
    """The settings a flow runs with: its caller's, or the environment's; secrets from Secret blocks.

    `PAYLINKS_STRIPE_API_KEY_BLOCK` / `PAYLINKS_SMTP_PASSWORD_BLOCK` /
    `PAYLINKS_FAMILY_LINK_SECRET_BLOCK` name Secret blocks to read when the secret is not set directly, so a worker's environment need not hold them.
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
