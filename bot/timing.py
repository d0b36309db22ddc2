"""A hook for measuring the bot from the inside (the Discord benchmark installs a recorder).

Timestamps are `time.perf_counter()` (and `time.time()` where they meet another process's), taken
where the work happens; by default nothing is recorded and a mark costs one attribute lookup.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Protocol


class TimingHook(Protocol):
    def mark(self, name: str, key: object, *, wall: float | None = None) -> None:
        """Note that `name` happened for `key` now (or, given `wall`, at that wall-clock time)."""


class NoTimings:
    def mark(self, name: str, key: object, *, wall: float | None = None) -> None:
        return None


class TimingRecorder:
    """Keeps every mark: `marks[name][key] = (perf_counter, wall clock)` (perf is NaN for `wall=`)."""

    def __init__(self) -> None:
        self.marks: dict[str, dict[object, tuple[float, float]]] = defaultdict(dict)

    def mark(self, name: str, key: object, *, wall: float | None = None) -> None:
        if wall is None:
            self.marks[name][key] = (time.perf_counter(), time.time())
        else:
            self.marks[name][key] = (float("nan"), wall)
