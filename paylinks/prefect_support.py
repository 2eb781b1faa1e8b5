"""The one place in `paylinks/` that knows Prefect: retry conditions and artifact helpers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import SecretStr

from paylinks.errors import ConfigurationError
from paylinks.settings import Settings, get_settings
from paylinks.stripe_gateway import is_transient


def flow_settings() -> Settings:
    """The settings a flow runs with: the environment's, plus secrets from Prefect Secret blocks.

    `PAYLINKS_STRIPE_API_KEY_BLOCK` / `PAYLINKS_SMTP_PASSWORD_BLOCK` name Secret blocks to read
    when the key or password is not set directly, so a worker's environment need not hold them.
    """
    settings = get_settings()
    updates: dict[str, SecretStr] = {}
    for field, block_field in (
        ("stripe_api_key", "stripe_api_key_block"),
        ("smtp_password", "smtp_password_block"),
    ):
        block_name = getattr(settings, block_field)
        if block_name and getattr(settings, field) is None:
            updates[field] = SecretStr(_read_secret_block(block_name, block_field))
    return settings.model_copy(update=updates) if updates else settings


def _read_secret_block(name: str, setting: str) -> str:
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


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a Stripe-calling task only when a later try may succeed (429, 5xx, network)."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # the result itself could not be read: do not guess, do not retry
        return False
    return is_transient(error) or isinstance(error, (ConnectionError, TimeoutError))


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


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
