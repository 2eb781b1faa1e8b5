"""Stripe's bracket notation, parsed into nested dicts and lists.

Stripe's v1 API takes `application/x-www-form-urlencoded` bodies (and query strings) whose keys
spell out nesting: `metadata[club]=fc`, `line_items[0][price]=price_x`, `lookup_keys[]=a`,
`created[gte]=123`. `parse_form` turns those pairs into the JSON-like structure the handlers
read: `{"metadata": {"club": "fc"}, "line_items": [{"price": "price_x"}], ...}`. Values stay
strings; the handlers convert them (see `params.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from .errors import EmulatorError

_BRACKET_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

# Keys under these names are the caller's own strings, never list indices: `metadata[0]=x` is a
# metadata entry named "0", not a one-element list.
_FREE_FORM_KEYS = frozenset({"metadata"})


def parse_form(source: str | bytes | Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Parse a urlencoded body or query string (or its key/value pairs) into nested params.

    `a[b][c]=v` nests dicts, `a[0][b]=v` and `a[]=v` build lists, a blank value stays `""`
    (Stripe reads `metadata=` as "clear it"). A key that is both a value and a container is
    rejected with a Stripe-style 400.
    """
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if isinstance(source, str):
        source = parse_qsl(source, keep_blank_values=True)

    root: dict[str, Any] = {}
    for key, value in source:
        _insert(root, split_key(key), value, key)
    return _lists_from_indexed_dicts(root)


def split_key(key: str) -> list[str]:
    """`a[b][0]` → `["a", "b", "0"]`, `a[]` → `["a", ""]`; a malformed key is one literal segment."""
    head, bracket, _ = key.partition("[")
    if not bracket or not head:
        return [key]
    tail = key[len(head) :]
    segments = _BRACKET_SEGMENT.findall(tail)
    if "".join(f"[{segment}]" for segment in segments) != tail:
        return [key]
    return [head, *segments]


def _insert(node: dict[str, Any], segments: list[str], value: str, full_key: str) -> None:
    *parents, leaf = segments
    for segment in parents:
        child = node.setdefault(_resolve_append(node, segment), {})
        if not isinstance(child, dict):
            raise _conflict(full_key)
        node = child
    leaf = _resolve_append(node, leaf)
    if isinstance(node.get(leaf), dict):
        raise _conflict(full_key)
    node[leaf] = value


def _resolve_append(node: dict[str, Any], segment: str) -> str:
    # `a[]` means "the next element": give it the next free index so it becomes a list later.
    return str(len(node)) if segment == "" else segment


def _lists_from_indexed_dicts(node: Any, key: str | None = None) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {child_key: _lists_from_indexed_dicts(child, child_key) for child_key, child in node.items()}
    if key not in _FREE_FORM_KEYS and converted and all(child_key.isdigit() for child_key in converted):
        return [converted[index] for index in sorted(converted, key=int)]
    return converted


def _conflict(full_key: str) -> EmulatorError:
    root_name = split_key(full_key)[0]
    return EmulatorError(
        400,
        f"Invalid parameters: `{root_name}` was given both as a value and as a hash or array.",
        param=root_name,
    )
