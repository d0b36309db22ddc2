"""Does the bot stay responsive while a job renders on the same CPU?

Compares the two embedded layouts the design allows, on tiny models at real resolution:
  child   the worker as a child process (kombu filesystem transport), as `make run` does
  thread  the worker in-process on a thread (what an in-memory transport would give)
and prints, while jobs run, (a) the event loop's lag (how late a 10 ms sleep wakes up) and
(b) the time an /imagine handler needs before it can defer (parse the prompt, read the user
row). Both add to every interaction's time-to-defer, which Discord caps at 3 s.

Run: `.venv/bin/python bench/embedded_latency.py` (no servers needed).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.migrate import upgrade_async
from db.models import User
from db.session import make_engine, make_sessionmaker
from sojourn.bootstrap import ensure_runnable_models, start_worker, stop_child
from sojourn.celery_app import make_celery
from sojourn.prompt import PromptRules, parse_prompt
from sojourn.queue import CeleryJobQueue
from sojourn.services.results import wait_for_jobs
from sojourn.services.submission import submit_prompt
from sojourn.services.workers import WorkerProcess
from sojourn.settings import Settings

PROMPT = "a lighthouse in a storm --ar 16:9 --seed {seed}"
JOBS = 3


class NotSent:
    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        return None


class Probes:
    """Loop lag and handler latency, sampled until stopped."""

    def __init__(self, sessions, settings: Settings) -> None:  # type: ignore[no-untyped-def]
        self.sessions = sessions
        self.rules = PromptRules.from_settings(settings)
        self.lags: list[float] = []
        self.handled: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Future[object] | None = None

    def start(self) -> None:
        self._task = asyncio.gather(self._lag(), self._handler())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _lag(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - started - 0.01)

    async def _handler(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            parse_prompt("a lighthouse in a storm --ar 16:9 --seed 7 --no fog", self.rules)
            async with self.sessions() as session:
                await session.get(User, 1)
            self.handled.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


def summary(values: list[float]) -> str:
    ms = sorted(value * 1000 for value in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):6.2f} ms  p99 {p99:7.2f} ms  max {ms[-1]:7.2f} ms (n={len(ms)})"


def report(label: str, probes: Probes, wall: float) -> None:
    print(f"{label:<7} {JOBS} jobs in {wall:5.1f} s | loop lag {summary(probes.lags)}")
    print(f"{'':<7} {'':<17} | handler  {summary(probes.handled)}")


async def submit(sessions, settings, queue, count: int, offset: int) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    ids: list[uuid.UUID] = []
    for i in range(count):
        jobs = await submit_prompt(sessions, settings, queue, user_id=1, text=PROMPT.format(seed=offset + i))
        ids += [job.id for job in jobs]
    return ids


async def child_process(settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    queue = CeleryJobQueue(make_celery(settings))
    worker = start_worker(settings)
    try:
        warm = await submit(sessions, settings, queue, 1, 100)  # loads the models in the child
        await wait_for_jobs(sessions, warm, deadline=time.monotonic() + 300)
        probes = Probes(sessions, settings)
        probes.start()
        started = time.perf_counter()
        ids = await submit(sessions, settings, queue, JOBS, 200)
        await wait_for_jobs(sessions, ids, deadline=time.monotonic() + 600)
        wall = time.perf_counter() - started
        await probes.stop()
        report("child", probes, wall)
    finally:
        stop_child(worker)
        await engine.dispose()


async def in_thread(settings: Settings) -> None:
    from inference.runner import JobRunner

    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    runner = JobRunner(settings, WorkerProcess("bench-thread", uuid.uuid4(), os.getpid()))
    runner.load_models()
    warm = await submit(sessions, settings, NotSent(), 1, 300)
    await asyncio.to_thread(runner.run, warm[0])
    await asyncio.to_thread(runner.wait_stored)
    probes = Probes(sessions, settings)
    probes.start()
    started = time.perf_counter()
    ids = await submit(sessions, settings, NotSent(), JOBS, 400)
    for job_id in ids:
        await asyncio.to_thread(runner.run, job_id)
    await asyncio.to_thread(runner.wait_stored)
    wall = time.perf_counter() - started
    await probes.stop()
    report("thread", probes, wall)
    await engine.dispose()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        models = ensure_runnable_models(Settings(data_dir=Path(".sojourn"), redis_url=None)).models
        settings = Settings(data_dir=Path(tmp), redis_url=None, models=models)
        await upgrade_async(settings.resolved_database_url)
        await child_process(settings)
        await in_thread(settings)


if __name__ == "__main__":
    asyncio.run(main())
