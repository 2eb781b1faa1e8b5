"""The query registry: every named SQL query of `sql/queries/*.sql`, loaded once.

Each file holds one query and starts with a header naming it (`-- name: query_x`) and saying
what it returns. Queries take `:named` binds only; nothing is ever formatted into SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paylinks.settings import PROJECT_ROOT

QUERIES_DIR = PROJECT_ROOT / "sql" / "queries"
_NAME_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str
    path: Path

    @property
    def statement(self) -> sa.TextClause:
        return sa.text(self.sql)


def load_query(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    match = _NAME_HEADER.search(text)
    if match is None:
        raise ValueError(f"{path}: the first lines must name the query (`-- name: query_name`)")
    header = [line[2:].strip() for line in text.splitlines() if line.startswith("--")]
    description = " ".join(line for line in header[1:] if line)
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()
    return NamedQuery(name=match["name"], description=description, sql=body, path=path)


def load_registry(directory: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    registry: dict[str, NamedQuery] = {}
    for path in sorted(directory.glob("*.sql")):
        query = load_query(path)
        if query.name in registry:
            raise ValueError(f"query {query.name!r} is defined twice: {registry[query.name].path}, {path}")
        registry[query.name] = query
    return registry


QUERY_REGISTRY: Mapping[str, NamedQuery] = load_registry()


def fetch_all(connection: Connection, name: str, **params: Any) -> list[sa.RowMapping]:
    """Run the named query with its binds and return every row as a mapping."""
    return list(connection.execute(QUERY_REGISTRY[name].statement, params).mappings())
