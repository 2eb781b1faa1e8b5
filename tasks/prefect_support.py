"""The Prefect helpers every flow and task shares: settings for a run, the retry rule, artifacts.

This is where paylinks meets Prefect; the plain library below knows nothing of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import SecretStr

from paylinks.errors import ConfigurationError
from paylinks.mail import MailDeliveryError
from paylinks.present import Table
from paylinks.settings import Settings, load_settings
from paylinks.stripe_gateway import is_transient

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
        value = Secret.load(name).get()
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
