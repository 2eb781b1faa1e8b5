"""Batches a few at a time, handed back in order: while the flow takes one batch's outcome, the
others keep running (a blast never leaves a mail connection idle while its progress is shown),
and a flow that stops on an outcome (a failed mint batch) submits nothing after it. Real Prefect
task runs in a real flow."""

from __future__ import annotations

from prefect import flow, task

from flows.in_flight import in_order


@task
def batch(number: int) -> int:
    return number


def test_the_next_batches_are_under_way_while_the_flow_takes_an_outcome():
    submitted: list[int] = []
    running_when_taken: dict[int, list[int]] = {}

    @flow
    def blast() -> list[int]:
        def submit(number: int):
            submitted.append(number)
            return batch.submit(number)

        taken = []
        for number, future in in_order(submit, range(6), at_once=2):
            running_when_taken[number] = [n for n in submitted if n > number]
            taken.append(future.result())
        return taken

    assert blast() == [0, 1, 2, 3, 4, 5], "every batch, in order"
    # Two at once: while batch n's outcome is taken, n + 1 and n + 2 (when there are any) run.
    assert running_when_taken == {0: [1, 2], 1: [2, 3], 2: [3, 4], 3: [4, 5], 4: [5], 5: []}


def test_a_flow_that_stops_on_an_outcome_submits_nothing_after_it():
    submitted: list[int] = []

    @flow
    def backfill() -> list[int]:
        failed: list[int] = []

        def submit(number: int):
            submitted.append(number)
            return batch.submit(number)

        taken = []
        for number, future in in_order(submit, range(6), at_once=2, stop=lambda: bool(failed)):
            taken.append(future.result())
            if number == 1:
                failed.append(number)  # batch 1 failed: mint no more
        return taken

    assert backfill() == [0, 1, 2], "batch 2 was already under way when 1 failed: still taken"
    assert submitted == [0, 1, 2], "nothing submitted once the flow saw the failure"
