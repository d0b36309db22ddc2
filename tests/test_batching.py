"""The group commit (`sojourn.batching.Coalescer`) that sends and marks a burst's jobs in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sojourn.batching import Coalescer


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.flushing = asyncio.Event()
        self.hold = False

    async def flush(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.flushing.set()
        if self.hold:
            await self.release.wait()
        return [item * 10 for item in items]


async def turns_until(condition: Callable[[], bool], turns: int = 50) -> None:
    """Let the event loop turn until `condition` holds; fail if it does not within `turns`."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition(), f"not so after {turns} turns of the event loop"


async def test_concurrent_callers_share_one_flush_and_each_gets_its_own_results() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush)
    results = await asyncio.gather(*(coalescer.submit([i, i + 100]) for i in range(5)))
    assert recorder.batches == [[0, 100, 1, 101, 2, 102, 3, 103, 4, 104]]
    assert results == [[i * 10, (i + 100) * 10] for i in range(5)]


async def test_callers_arriving_during_a_flush_go_in_the_next_one() -> None:
    recorder = Recorder()
    recorder.hold = True
    coalescer = Coalescer(recorder.flush)
    first = asyncio.create_task(coalescer.submit([1]))
    await recorder.flushing.wait()  # the first flush is running, held
    later = [asyncio.create_task(coalescer.submit([n])) for n in (2, 3)]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await first == [10]
    assert [await task for task in later] == [[20], [30]]
    assert recorder.batches == [[1], [2, 3]]


async def test_a_cancelled_caller_leaves_the_batch_to_run_for_the_others() -> None:
    recorder = Recorder()
    recorder.hold = True
    coalescer = Coalescer(recorder.flush)
    leaving = asyncio.create_task(coalescer.submit([1]))
    staying = asyncio.create_task(coalescer.submit([2]))
    await recorder.flushing.wait()
    leaving.cancel()
    recorder.release.set()
    assert await staying == [20]
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failed_flush_reaches_every_caller_of_its_batch_and_the_next_batch_runs() -> None:
    calls: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("the broker is down")
        return items

    coalescer = Coalescer(flush)
    outcomes = await asyncio.gather(coalescer.submit([1]), coalescer.submit([2]), return_exceptions=True)
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    assert await coalescer.submit([3]) == [3]


async def test_nothing_to_submit_flushes_nothing() -> None:
    recorder = Recorder()
    assert await Coalescer(recorder.flush).submit([]) == []
    assert recorder.batches == []


async def test_a_burst_is_cut_into_batches_of_at_most_max_batch_and_each_callers_items_stay_together() -> (
    None
):
    recorder = Recorder()
    coalescer = Coalescer(recorder.flush, max_batch=3)
    results = await asyncio.gather(
        *(coalescer.submit(items) for items in ([1, 2], [3, 4], [5], [6, 7, 8, 9]))
    )
    # [3, 4] would overfill the first batch; [6, 7, 8, 9] alone is over the size, and still one batch.
    assert recorder.batches == [[1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert results == [[10, 20], [30, 40], [50], [60, 70, 80, 90]]


async def test_at_most_concurrency_batches_flush_at_once() -> None:
    recorder = Recorder()
    recorder.hold = True
    coalescer = Coalescer(recorder.flush, max_batch=1, concurrency=2)
    tasks = [asyncio.create_task(coalescer.submit([n])) for n in (1, 2, 3)]
    await turns_until(lambda: len(recorder.batches) >= 2)
    for _ in range(5):  # the third batch waits, however long the first two are held
        await asyncio.sleep(0)
    assert recorder.batches == [[1], [2]]
    recorder.release.set()
    assert [await task for task in tasks] == [[10], [20], [30]]
    assert recorder.batches == [[1], [2], [3]]


async def test_a_batch_that_forms_while_one_flushes_gets_the_second_flush() -> None:
    recorder = Recorder()
    recorder.hold = True
    coalescer = Coalescer(recorder.flush, concurrency=2)
    first = asyncio.create_task(coalescer.submit([1]))
    await recorder.flushing.wait()  # the first batch is held in its flush
    second = asyncio.create_task(coalescer.submit([2]))
    await turns_until(lambda: len(recorder.batches) >= 2)  # flushed beside the first, not after it
    recorder.release.set()
    assert (await first, await second) == ([10], [20])
