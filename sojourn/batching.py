"""Group commit: one call of a slow batch operation for everything asked of it meanwhile.

A burst of submissions in one process would each pay their own transaction, a round trip to the
broker and one to the database to note that their jobs left; gathered, the burst pays a few. The
first caller starts a flush on the next turn of the event loop; callers arriving while it runs
wait for the next one. With `max_batch` and `concurrency`, a burst is cut into batches of which
several run at once, so one batch's database work overlaps the next one's Python.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Pending(Generic[Item, Result]):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.items: list[Item] = []
        self.done: asyncio.Future[list[Result]] = loop.create_future()


class _LoopState(Generic[Item, Result]):
    def __init__(self) -> None:
        self.pending: deque[_Pending[Item, Result]] = deque()
        self.drains = 0  # running
        self.idle = 0  # of those, not flushing (about to take the next batch)
        self.tasks: set[asyncio.Task[None]] = set()  # referenced while they run


class Coalescer(Generic[Item, Result]):
    """Gathers the items of concurrent `submit` calls into `flush(items)` calls.

    `flush` returns one result per item, in order; each caller gets its own items' results, or the
    flush's exception. A caller's items stay in one batch; a batch takes no more callers once it
    holds `max_batch` items, and at most `concurrency` flushes run at once. A caller that is
    cancelled leaves the batch to run for the others.
    """

    def __init__(
        self,
        flush: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int | None = None,
        concurrency: int = 1,
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._concurrency = concurrency
        # Per event loop: a process's bot and its worker's private loop never share a batch.
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState[Item, Result]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        state = self._states.setdefault(loop, _LoopState())
        if not state.pending or self._full(state.pending[-1], len(items)):
            state.pending.append(_Pending(loop))
        batch = state.pending[-1]
        start = len(batch.items)
        batch.items.extend(items)
        if state.drains < self._concurrency and state.idle < len(state.pending):
            state.drains += 1
            state.idle += 1
            task = loop.create_task(self._drain(state))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        results = await asyncio.shield(batch.done)
        return results[start : start + len(items)]

    def _full(self, batch: _Pending[Item, Result], adding: int) -> bool:
        return (
            self._max_batch is not None and bool(batch.items) and len(batch.items) + adding > self._max_batch
        )

    async def _drain(self, state: _LoopState[Item, Result]) -> None:
        try:
            await asyncio.sleep(0)  # the callers of this turn of the loop join the first batch
            while state.pending:
                batch = state.pending.popleft()
                state.idle -= 1
                try:
                    results = list(await self._flush(batch.items))
                except BaseException as error:  # every caller of this batch gets it
                    batch.done.set_exception(error)
                    batch.done.exception()  # retrieved: a batch whose callers all left logs nothing
                    if not isinstance(error, Exception):
                        raise
                else:
                    batch.done.set_result(results)
                finally:
                    state.idle += 1
        finally:
            state.drains -= 1
            state.idle -= 1
