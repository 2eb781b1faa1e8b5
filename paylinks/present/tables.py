"""The cells of every report: a titled table of text, and how a value becomes one cell.

Every layer hands the next dataclasses and enums; only in `paylinks.present` are they turned into
labels, money in the tenant's currency, and sentences. The CLI prints these tables and the flows
publish the same tables as Prefect artifacts, so the terminal and the UI always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from paylinks.money import format_money


@dataclass(frozen=True)
class Table:
    """A titled table of text cells. `key` names it (the artifact key's last part)."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"

    def records(self) -> list[dict[str, str]]:
        """The rows as column → cell mappings (a Prefect table artifact)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def markdown(self) -> str:
        if not self.rows:
            return f"_{self.empty}_"

        def cell(value: str) -> str:
            return value.replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


def facts(key: str, title: str, pairs: Iterable[tuple[str, Any]]) -> Table:
    """A two-column table of labelled figures."""
    return Table(key, title, ("figure", "value"), tuple((label, text(value)) for label, value in pairs))


def table(
    key: str, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none"
) -> Table:
    return Table(key, title, tuple(columns), tuple(tuple(text(v) for v in row) for row in rows), empty)


def text(value: Any) -> str:
    """One cell: enums by their label, None as empty."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return label(value)
    return str(value)


def label(member: Enum) -> str:
    """An enum member in words: its `label` if it has one, else its value with spaces."""
    return str(getattr(member, "label", None) or str(member.value).replace("_", " "))


def money(amount_cents: int | None, currency: str) -> str:
    return "" if amount_cents is None else format_money(int(amount_cents), currency)


def labelled(mapping: Mapping[Enum, int]) -> list[tuple[str, int]]:
    return [(label(member), count) for member, count in mapping.items()]
