"""Stripe's list endpoints: cursor pagination and the `created` range filter.

Stripe lists newest first and pages with object ids: `starting_after=<id>` continues after that
object, `ending_before=<id>` returns the `limit` objects just before it; `has_more` says whether
another page lies further in the direction of travel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import objects
from .errors import EmulatorError, parameter_unknown, resource_missing
from .params import as_dict, as_int

DEFAULT_LIMIT = 10
MAX_LIMIT = 100

_CREATED_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda created, bound: created > bound,
    "gte": lambda created, bound: created >= bound,
    "lt": lambda created, bound: created < bound,
    "lte": lambda created, bound: created <= bound,
}


def paginate(
    ordered: Sequence[dict[str, Any]],
    params: Mapping[str, Any],
    *,
    url: str,
    kind: str,
    keep: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any]:
    """One page of `ordered` (already in list order) as a Stripe list object.

    The cursor is located in the unfiltered sequence, so a cursor object that no longer passes
    the filters (a link deactivated since the last page) still marks the right position.
    `kind` names the objects in the error for an unknown cursor.
    """
    limit = as_int(params.get("limit", DEFAULT_LIMIT), "limit", minimum=1, maximum=MAX_LIMIT)
    starting_after = params.get("starting_after")
    ending_before = params.get("ending_before")
    if starting_after and ending_before:
        raise EmulatorError(
            400, "You may only specify one of these parameters: ending_before, starting_after."
        )

    if ending_before:
        end = _position(ordered, ending_before, "ending_before", kind)
        before_cursor = [obj for obj in ordered[:end] if keep(obj)]
        page = before_cursor[-limit:]
        return objects.list_object(url, page, has_more=len(before_cursor) > limit)

    start = _position(ordered, starting_after, "starting_after", kind) + 1 if starting_after else 0
    after_cursor = [obj for obj in ordered[start:] if keep(obj)]
    return objects.list_object(url, after_cursor[:limit], has_more=len(after_cursor) > limit)


def _position(ordered: Sequence[dict[str, Any]], cursor: str, param: str, kind: str) -> int:
    for index, obj in enumerate(ordered):
        if obj["id"] == cursor:
            return index
    raise resource_missing(kind, cursor, param=param, http_status=400)


def created_filter(condition: Any, param: str = "created") -> Callable[[dict[str, Any]], bool]:
    """A predicate for Stripe's `created` param: an exact timestamp or a `{gt,gte,lt,lte}` range."""
    if condition is None or condition == "":
        return lambda _: True
    if not isinstance(condition, dict):
        exact = as_int(condition, param)
        return lambda obj: obj["created"] == exact

    bounds = []
    for operator, bound in as_dict(condition, param).items():
        if operator not in _CREATED_COMPARISONS:
            raise parameter_unknown(f"{param}[{operator}]")
        bounds.append((_CREATED_COMPARISONS[operator], as_int(bound, f"{param}[{operator}]")))
    return lambda obj: all(compare(obj["created"], bound) for compare, bound in bounds)
