"""The bot killed (SIGKILL) between /imagine and the delivery, then started again.

The bot runs on simcord in a child process (`bot_process.py`). Three members ask for a grid; once
the jobs are queued and their "Waiting…" messages posted, the bot is killed, and only then does a
worker start, so the jobs end while no bot runs. A second bot process on the same database, with
the same Discord ids, must deliver each result exactly once, by itself, although the waiting
messages it would replace died with the first process; and nothing is charged twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from db.models import JobStatus
from sojourn.settings import BotSettings
from tests.faults.harness import (
    FAULT_TIMEOUT,
    World,
    assert_all_settled,
    now,
    record,
    seconds_between,
    wait_for_jobs,
)

REPO = Path(__file__).resolve().parents[2]


class BotProcess:
    """`python -m tests.faults.bot_process`, read line by line (JSON events)."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, world: World, name: str, **config: Any) -> BotProcess:
        settings = world.settings
        data_dir = settings.data_dir / name
        data_dir.mkdir(parents=True)
        config |= {
            "database_url": settings.resolved_database_url,
            "redis_url": settings.redis_url,
            "data_dir": str(data_dir),
            "storage_dir": str(settings.resolved_storage_dir),
        }
        log = data_dir / "bot.log"
        errors = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.faults.bot_process",
                json.dumps(config),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
            )
        finally:
            os.close(errors)
        return cls(process, log)

    async def expect(self, event: str) -> dict[str, Any]:
        """The next line reporting `event` (earlier lines are kept in `events`)."""
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FAULT_TIMEOUT
        while True:
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), deadline - loop.time())
            except TimeoutError:
                line = b""
            if not line:
                pytest.fail(f"the bot process never said {event!r}; its log:\n{self.log_tail()}")
            try:
                parsed = json.loads(line)
            except ValueError:
                continue  # a library printing to stdout
            self.events.append(parsed)
            if parsed["event"] == "timeout":
                pytest.fail(f"the bot process timed out: {parsed}; its log:\n{self.log_tail()}")
            if parsed["event"] == event:
                return parsed

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown, no cleanup
        await self.process.wait()

    async def wait(self) -> int:
        return await asyncio.wait_for(self.process.wait(), FAULT_TIMEOUT)


@pytest.fixture
async def bots() -> AsyncIterator[list[BotProcess]]:
    """The bot processes a test starts; any still running at its end is killed."""
    started: list[BotProcess] = []
    yield started
    for bot in started:
        if bot.process.returncode is None:
            await bot.kill()


def ids_of(ready: dict[str, Any]) -> tuple[int, int, list[int]]:
    return ready["guild"], ready["channel"], ready["members"]


async def test_the_bot_killed_between_submit_and_delivery(make_world, bots) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(bot=BotSettings(shard_count=1))
    prompts = [f"a lantern {index} --q .25" for index in range(3)]
    first = await BotProcess.start(world, "bot-1", mode="submit", prompts=prompts)
    bots.append(first)
    before = await first.expect("ready")
    submitted = await first.expect("submitted")
    job_ids = [uuid.UUID(job_id) for job_id in submitted["jobs"]]
    assert len(job_ids) == 3 and submitted["waiting"] == 3, submitted
    queued = await wait_for_jobs(world, job_ids, lambda job: job.message_id is not None)
    assert all(job.status == JobStatus.QUEUED for job in queued.values())  # no worker yet

    await first.kill()
    world.start_worker()
    ended = await wait_for_jobs(world, job_ids)
    assert all(job.status == JobStatus.SUCCEEDED and job.delivered_at is None for job in ended.values())

    second = await BotProcess.start(world, "bot-2", mode="deliver", jobs=[str(i) for i in job_ids])
    bots.append(second)
    started_at = now()
    after = await second.expect("ready")
    assert ids_of(after) == ids_of(before), "simcord gave the second process other ids"
    done = await second.expect("done")
    assert await second.wait() == 0, second.log_tail()

    messages = [event for event in second.events if event["event"] == "message"]
    for job_id in job_ids:
        results = [m for m in messages if any(f":{job_id.hex}" in c for c in m["custom_ids"])]
        assert len(results) == 1, (job_id, messages)
    assert done["posts"] == len(messages) == 3, (done, messages)  # nothing else was posted
    jobs = await assert_all_settled(world, job_ids, delivered=True)
    assert {job.message_id for job in jobs.values()} == {m["id"] for m in messages}  # recorded as delivered
    record(
        "bot SIGKILL, new bot started -> every result delivered",
        max(seconds_between(started_at, job.delivered_at) for job in jobs.values()),
    )
