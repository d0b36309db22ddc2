"""A per-address token bucket, in process: enough for one `sojourn web`, no shared store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_ADDRESSES = 10_000  # past this many, full buckets (idle addresses) are forgotten


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`burst` requests at once per address, refilled at `per_minute`; `take` says how long to wait."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, address: str) -> float:
        """0 if the request may go ahead (a token is spent), else the seconds until one is free."""
        now = self.clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= MAX_ADDRESSES:
                self._forget_idle(now)
            bucket = self._buckets[address] = _Bucket(tokens=self.burst, updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {
            address: bucket for address, bucket in self._buckets.items() if now - bucket.updated < full_after
        }
