"""The one clock every service reads: real time by default, a fixed or moved one in tests.

Services, the ledger's daily grant, the worker's heartbeats and the bot's delivery all call
`utcnow()` / `today()` here, never `datetime.now()`, so a test that pins a date pins what the
code reads (`use_clock(FixedClock(...))`), and the suite passes on any day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until moved: `advance(days=1)` is tomorrow."""

    def __init__(self, moment: dt.datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("a FixedClock needs an aware datetime (tzinfo=dt.UTC)")
        self.moment = moment

    def now(self) -> dt.datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += dt.timedelta(**delta)


class ShiftedClock:
    """Real time, moved so that it reads `start` now and runs on from there."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a ShiftedClock needs an aware datetime (tzinfo=dt.UTC)")
        self.shift = start - dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.shift


_current: Clock = SystemClock()


def utcnow() -> dt.datetime:
    return _current.now()


def today() -> dt.date:
    """Today's date in UTC (the daily grant's day)."""
    return _current.now().date()


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make `clock` the one everything reads, for the duration."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
