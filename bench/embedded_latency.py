"""Does the bot's event loop stay responsive while a job renders on the same CPU?

Compares the two embedded layouts the design allows, on tiny models at real resolution:
  child   the worker as a child process (kombu filesystem transport), as `make run` does
  thread  the worker in-process on a thread (what an in-memory transport would give)
and prints the event loop's lag (how late a 10 ms sleep wakes up) while jobs run: any lag is
added to every Discord interaction's time-to-defer, which must stay under 3 s.

Run: `.venv/bin/python bench/embedded_latency.py` (no servers needed).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.migrate import upgrade_async
from db.session import make_engine, make_sessionmaker
from inference.celery_app import make_celery
from sojourn.bootstrap import ensure_runnable_models, start_worker, stop_worker
from sojourn.queue import CeleryJobQueue
from sojourn.services import jobs as job_service
from sojourn.services.results import wait_for_jobs
from sojourn.settings import Settings

PROMPT = "a lighthouse in a storm --ar 16:9 --seed {seed}"
JOBS = 3


class NotSent:
    async def enqueue(self, job_id: uuid.UUID, mode: str) -> None:
        return None


async def measure_lag(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - started - 0.01)


def report(label: str, lags: list[float], wall: float) -> None:
    ms = sorted(lag * 1000 for lag in lags)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"{label:<8} {JOBS} jobs in {wall:6.1f} s   loop lag: median {statistics.median(ms):6.2f} ms   "
        f"p99 {p99:7.2f} ms   max {ms[-1]:7.2f} ms   (n={len(ms)})"
    )


async def submit(sessions, settings, queue, count: int, offset: int):  # type: ignore[no-untyped-def]
    jobs = []
    for i in range(count):
        jobs += await job_service.submit_prompt(
            sessions, settings, queue, user_id=1, text=PROMPT.format(seed=offset + i)
        )
    return [job.id for job in jobs]


async def child_process(settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    queue = CeleryJobQueue(make_celery(settings))
    worker = start_worker(settings)
    try:
        warm = await submit(sessions, settings, queue, 1, 100)  # loads the models in the child
        await wait_for_jobs(sessions, warm, deadline=time.monotonic() + 300)
        lags: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.create_task(measure_lag(stop, lags))
        started = time.perf_counter()
        ids = await submit(sessions, settings, queue, JOBS, 200)
        await wait_for_jobs(sessions, ids, deadline=time.monotonic() + 600)
        wall = time.perf_counter() - started
        stop.set()
        await probe
        report("child", lags, wall)
    finally:
        stop_worker(worker)
        await engine.dispose()


async def in_thread(settings: Settings) -> None:
    from inference.runner import JobRunner

    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    runner = JobRunner(settings, "bench-thread")
    warm = await submit(sessions, settings, NotSent(), 1, 300)
    await asyncio.to_thread(runner.run, warm[0])
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(measure_lag(stop, lags))
    started = time.perf_counter()
    ids = await submit(sessions, settings, NotSent(), JOBS, 400)
    for job_id in ids:
        await asyncio.to_thread(runner.run, job_id)
    wall = time.perf_counter() - started
    stop.set()
    await probe
    report("thread", lags, wall)
    await engine.dispose()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp), redis_url=None)
        base = ensure_runnable_models(base.model_copy(update={"data_dir": Path(".sojourn")}))
        settings = base.model_copy(update={"data_dir": Path(tmp)})
        await upgrade_async(settings.resolved_database_url)
        await child_process(settings)
        await in_thread(settings)


if __name__ == "__main__":
    asyncio.run(main())
