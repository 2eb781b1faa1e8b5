"""A run's report as Prefect artifacts: keys Prefect accepts, the presenter's tables as a summary
table and a markdown page of details.

Every cell, title and description holds the club's own data (names, descriptions, messages), and
the Prefect UI renders markdown and may render HTML: each is published as text, never as markup
(`paylinks.present.tables.markdown_text`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from paylinks.present.tables import Table, markdown_text


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
    page = "\n\n".join(f"## {markdown_text(t.title)}\n{t.markdown()}" for t in tables)
    publish_markdown(artifact_key(subject, tenant, "details"), page, description=f"{summary.title}: details")


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    """A table artifact; every column name and cell as text, escaped as markdown is (the UI may
    render a cell as markdown or as HTML)."""
    table = [{markdown_text(str(k)): _table_cell(v) for k, v in row.items()} for row in rows]
    create_table_artifact(key=key, table=table, description=markdown_text(description))


def _table_cell(value: Any) -> Any:
    return markdown_text(value) if isinstance(value, str) else value


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A markdown artifact: `markdown` is published as given (its club data already escaped)."""
    create_markdown_artifact(key=key, markdown=markdown, description=markdown_text(description))
