"""A latest-only throttle: the progress edits of one job message, at most one per interval."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _monotonic() -> float:
    # Looked up at call time, so a simulator's clock (simcord's) is the one read.
    return time.monotonic()


class LatestOnlyThrottle(Generic[T]):
    """Sends at most one value per `interval`; values pushed in between coalesce to the latest.

    `send(value)` returns False when it cannot send yet (e.g. the message is not posted); the
    value then waits for `kick()`.
    """

    def __init__(
        self,
        interval: float,
        send: Callable[[T], Awaitable[bool]],
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        clock: Callable[[], float] = _monotonic,
    ) -> None:
        self.interval = interval
        self.last_sent = -math.inf
        self._send = send
        self._spawn = spawn
        self._clock = clock
        self._latest: T | None = None
        self._dirty = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def latest(self) -> T | None:
        return self._latest

    def push(self, value: T) -> None:
        if self._closed:
            return
        self._latest, self._dirty = value, True
        self.kick()

    def kick(self) -> None:
        if self._dirty and not self._closed and (self._task is None or self._task.done()):
            self._task = self._spawn(self._drain())

    def sent_now(self) -> None:
        """Something else changed the message just now: the interval starts again."""
        self.last_sent = self._clock()

    def close(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()

    async def idle(self) -> None:
        """Wait until everything pushed so far is sent (or the throttle closed)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def _drain(self) -> None:
        while self._dirty and not self._closed:
            wait = self.last_sent + self.interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            value, self._dirty = self._latest, False
            assert value is not None
            if not await self._send(value):
                self._dirty = True  # not sendable yet: `kick()` resumes
                return
            self.last_sent = self._clock()
