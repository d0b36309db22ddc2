"""The progress-edit throttle: at most one send per interval, intermediate values coalesced."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Coroutine
from typing import Any

from bot.throttle import LatestOnlyThrottle

INTERVAL = 0.3


def _spawn(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coroutine)


def _recorder() -> tuple[list[tuple[float, int]], Any]:
    sent: list[tuple[float, int]] = []

    async def send(value: int) -> bool:
        sent.append((time.monotonic(), value))
        return True

    return sent, send


async def test_a_burst_sends_the_first_value_then_only_the_latest() -> None:
    sent, send = _recorder()
    throttle = LatestOnlyThrottle(INTERVAL, send, spawn=_spawn)
    for value in range(1, 21):
        throttle.push(value)
        await asyncio.sleep(0)
    await throttle.idle()

    assert [value for _, value in sent] == [1, 20]
    assert sent[1][0] - sent[0][0] >= INTERVAL * 0.95


async def test_sends_are_spaced_by_the_interval_however_fast_values_come() -> None:
    sent, send = _recorder()
    throttle = LatestOnlyThrottle(INTERVAL, send, spawn=_spawn)
    deadline = time.monotonic() + INTERVAL * 3.5
    value = 0
    while time.monotonic() < deadline:
        value += 1
        throttle.push(value)
        await asyncio.sleep(0.01)
    await throttle.idle()

    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)]
    assert 3 <= len(sent) <= 5 and all(gap >= INTERVAL * 0.95 for gap in gaps)
    assert sent[-1][1] == value  # the last state always gets shown


async def test_a_recent_other_edit_delays_the_first_send() -> None:
    sent, send = _recorder()
    throttle = LatestOnlyThrottle(INTERVAL, send, spawn=_spawn)
    throttle.sent_now()  # e.g. the waiting message was just posted
    started = time.monotonic()
    throttle.push(1)
    await throttle.idle()
    assert sent[0][0] - started >= INTERVAL * 0.95


async def test_a_value_that_cannot_be_sent_yet_waits_for_a_kick() -> None:
    ready = False
    sent: list[int] = []

    async def send(value: int) -> bool:
        if not ready:
            return False
        sent.append(value)
        return True

    throttle = LatestOnlyThrottle(INTERVAL, send, spawn=_spawn)
    throttle.push(1)
    throttle.push(2)
    await throttle.idle()
    assert sent == []
    ready = True
    throttle.kick()
    await throttle.idle()
    assert sent == [2]


async def test_closing_drops_what_is_pending() -> None:
    sent, send = _recorder()
    throttle = LatestOnlyThrottle(INTERVAL, send, spawn=_spawn)
    throttle.push(1)
    await asyncio.sleep(0)
    throttle.push(2)  # waits for the interval
    throttle.close()
    throttle.push(3)
    await asyncio.sleep(INTERVAL * 1.5)
    assert [value for _, value in sent] == [1]
