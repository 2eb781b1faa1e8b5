"""A run's report as Prefect artifacts: keys Prefect accepts, the presenter's tables as a summary
table and a markdown page of details."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from paylinks.present.tables import Table


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
