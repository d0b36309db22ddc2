"""The bot's one hook for what measures or simulates it: waits on outside input, and timing marks.

A simulated Discord (simcord) must tell a wait on input from outside the bot (Redis pub/sub)
from stuck work: it sets `wait_hook` to its `env.external_wait`. The Discord benchmark sets
`recording` and reads `marks`. By default a wait is a plain await and a mark costs one check.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class WaitHook(Protocol):
    async def __call__(self, awaitable: Awaitable[T], /, *, reason: str) -> T: ...


class Instrumentation:
    def __init__(self, *, recording: bool = False) -> None:
        self.wait_hook: WaitHook | None = None
        self.recording = recording
        # marks[name][key] = (perf_counter, wall clock); perf is NaN for a mark given `wall=`.
        self.marks: defaultdict[str, dict[object, tuple[float, float]]] = defaultdict(dict)

    async def external_wait(self, awaitable: Awaitable[T], *, reason: str) -> T:
        """Await input from outside Discord (`reason` says which, for the simulator's reports)."""
        if self.wait_hook is None:
            return await awaitable
        return await self.wait_hook(awaitable, reason=reason)

    def mark(self, name: str, key: object, *, wall: float | None = None) -> None:
        """Note that `name` happened for `key` now (or, given `wall`, at that wall-clock time)."""
        if not self.recording:
            return
        if wall is None:
            self.marks[name][key] = (time.perf_counter(), time.time())
        else:
            self.marks[name][key] = (float("nan"), wall)
