"""The cells of every report: a titled table of text, and how a value becomes one cell.

Every layer hands the next dataclasses and enums; only in `paylinks.present` are they turned into
labels, money in the tenant's currency, and sentences. The CLI prints these tables and the flows
publish the same tables as Prefect artifacts, so the terminal and the UI always agree.
"""

from __future__ import annotations

import re
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
        """The table as markdown, every cell as text (`markdown_text`): a name never becomes markup."""
        if not self.rows:
            return f"_{markdown_text(self.empty)}_"
        lines = [
            "| " + " | ".join(markdown_text(c) for c in self.columns) + " |",
            "|" + "---|" * len(self.columns),
        ]
        lines += ["| " + " | ".join(markdown_text(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


# Characters markdown (CommonMark and GitHub's tables) reads as markup inside a line: emphasis, code,
# links and images, strikethrough, table cells, escapes, and the `:` of a bare https:// autolink.
_MARKDOWN_PUNCTUATION = frozenset("\\`*_[]|~!#:")
_HTML_CHARACTERS = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_text(value: str) -> str:
    """`value` as markdown that renders as exactly this text, on one line: HTML's `& < >` as entities,
    markdown's punctuation escaped with a backslash, `www.` unlinked, line breaks as spaces."""
    one_line = " ".join(value.splitlines())
    escaped = "".join(
        _HTML_CHARACTERS.get(ch) or (f"\\{ch}" if ch in _MARKDOWN_PUNCTUATION else ch) for ch in one_line
    )
    return re.sub(r"(?i)\b(www)\.", r"\1\\.", escaped)


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
