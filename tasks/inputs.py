"""Handing a task a large value (a tenant's rows, a plan of 10,000 steps) without Prefect walking
through it.

Prefect looks into every argument of a task call for futures and states to wait on and to draw as
dependencies (`visit_collection`), item by item: at 10,000 rows that walk cost more than the work
itself, several times per run. `whole(value)` is Prefect's `opaque` annotation: the value itself
is still recorded as an input (the run graph keeps its arrow), its contents are not walked.
"""

from __future__ import annotations

from typing import TypeVar, cast

from prefect.utilities.annotations import opaque

T = TypeVar("T")


def whole(value: T) -> T:
    """`value` as a task argument Prefect passes as it is, without looking inside."""
    return cast(T, opaque(value))
