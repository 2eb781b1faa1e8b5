"""Task runs a few at a time: the next starts while the last one's outcome is taken.

A flow that sends or mints in batches spends, between two batches, the time a task run takes to
start and the time its outcome takes to store; with one batch at a time the mail server or
Stripe's pace waits meanwhile. `in_order` keeps `at_once` batches submitted (the flow's thread
pool runs them) and hands each back, finished, in the order given, so what the flow does with an
outcome (count it, store it, show progress) happens in order as before.

Without `stop`, the next batch is submitted before a finished one is handed back: `at_once` keep
running while the flow takes an outcome (a blast's progress artifact is an API call per batch;
taken while only one batch ran, it left one mail connection idle each time). With `stop`, what
the flow does with an outcome may stop the rest (a mint batch that failed), so the next is
submitted only once the flow has taken it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from prefect.futures import PrefectFuture

T = TypeVar("T")


def in_order(
    submit: Callable[[T], PrefectFuture[Any]],
    items: Iterable[T],
    at_once: int,
    stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[T, PrefectFuture[Any]]]:
    """Submit each item's task run, at most `at_once` unfinished, and yield (item, its finished
    future) in the items' order. Once `stop()` is true no item is submitted; those already under
    way are still yielded, so nothing they did goes unrecorded."""
    pending: deque[tuple[T, PrefectFuture[Any]]] = deque()
    waiting = iter(items)

    def top_up() -> None:
        while len(pending) < max(1, at_once) and not (stop is not None and stop()):
            for item in waiting:  # the next one, if any is left
                pending.append((item, submit(item)))
                break
            else:
                return

    top_up()
    while pending:
        finished = _finished(pending.popleft())
        if stop is None:
            top_up()  # before the flow takes this one: the others keep going meanwhile
            yield finished
        else:
            yield finished
            top_up()  # after: taking it may have stopped the rest


def _finished(entry: tuple[T, PrefectFuture[Any]]) -> tuple[T, PrefectFuture[Any]]:
    entry[1].wait()
    return entry
