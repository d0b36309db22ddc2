"""Group commit: one call of a slow batch operation for everything asked of it meanwhile.

A burst of submissions in one process would each pay a round trip to the broker and one to the
database to note that their jobs left; gathered, the burst pays a few. The first caller starts a
flush on the next turn of the event loop; callers arriving while it runs wait for the next one.
"""

from __future__ import annotations

import asyncio
import weakref
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
        self.pending: _Pending[Item, Result] | None = None
        self.flushing: asyncio.Task[None] | None = None


class Coalescer(Generic[Item, Result]):
    """Gathers the items of concurrent `submit` calls into one `flush(items)` call.

    `flush` returns one result per item, in order; each caller gets its own items' results, or the
    flush's exception. A caller that is cancelled leaves the batch to run for the others.
    """

    def __init__(self, flush: Callable[[list[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._flush = flush
        # Per event loop: a process's bot and its worker's private loop never share a batch.
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState[Item, Result]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        state = self._states.setdefault(loop, _LoopState())
        if state.pending is None:
            state.pending = _Pending(loop)
        batch = state.pending
        start = len(batch.items)
        batch.items.extend(items)
        if state.flushing is None:
            state.flushing = loop.create_task(self._drain(state))
        results = await asyncio.shield(batch.done)
        return results[start : start + len(items)]

    async def _drain(self, state: _LoopState[Item, Result]) -> None:
        try:
            await asyncio.sleep(0)  # the callers of this turn of the loop join the first batch
            while state.pending is not None:
                batch, state.pending = state.pending, None
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
            state.flushing = None
