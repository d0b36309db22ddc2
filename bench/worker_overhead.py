"""Worker overhead: how long the GPU waits for the worker between two jobs, and the share of a
job's cycle that is not the diffusers calls.

Runs the worker's own `JobRunner` (what the Celery task calls) on tiny models at real
resolution, jobs back to back as a worker takes them: claim, render, then the safety scores, PNG
encoding + storage, grid, database writes and events (since issue 13 §3 on the runner's storing
thread, while the next job renders). For each job but the last it measures the **GPU idle gap**,
from the end of its pipeline calls to the start of the next job's, and the **overhead share**:
the job's cycle (pipeline start to the next pipeline start) less its pipeline calls, over the
cycle. With the storing done in line (before issue 13 §3) the cycle was the job's whole run, so
the share is the one reported since the first run of this bench. Also prints the burst's wall
time per job, and the model-load counters, which must not move between jobs.

Run: `.venv/bin/python bench/worker_overhead.py` (SQLite), or under scripts/with-services.sh to
use Postgres + Redis (it picks up SOJOURN_TEST_DATABASE_URL / SOJOURN_TEST_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.migrate import upgrade_async
from db.session import make_engine, make_sessionmaker
from inference.runner import JobRunner
from sojourn.bootstrap import ensure_runnable_models
from sojourn.services import credits
from sojourn.services.submission import submit_prompt
from sojourn.services.workers import WorkerProcess
from sojourn.settings import Settings


class NotSent:
    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        return None


async def prepare(settings: Settings, count: int, prompt: str) -> list[uuid.UUID]:
    await upgrade_async(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        await credits.grant(session, 1, 10_000, key=f"bench:{uuid.uuid4()}")
    ids: list[uuid.UUID] = []
    for i in range(count):
        jobs = await submit_prompt(sessions, settings, NotSent(), user_id=1, text=prompt.format(seed=i))
        ids += [job.id for job in jobs]
    await engine.dispose()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--prompt", default="a lighthouse in a storm --ar 16:9 --seed {seed}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = ensure_runnable_models(Settings(data_dir=Path(".sojourn"), redis_url=None))
        updates: dict[str, object] = {"data_dir": Path(tmp)}
        if os.environ.get("SOJOURN_TEST_DATABASE_URL"):
            from tests.conftest import create_database

            updates["database_url"] = asyncio.run(create_database(os.environ["SOJOURN_TEST_DATABASE_URL"]))
            updates["redis_url"] = os.environ["SOJOURN_TEST_REDIS_URL"]
        settings = settings.model_copy(update=updates)
        ids = asyncio.run(prepare(settings, args.jobs + 1, args.prompt))

        runner = JobRunner(settings, WorkerProcess("bench-worker", uuid.uuid4(), os.getpid()))
        runner.load_models()  # as a worker process does when it starts
        runner.run(ids[0])  # warm-up
        runner.wait_stored()
        loads_after_warmup = dict(runner.registry.load_counts)
        jobs: list[dict[str, float]] = []
        burst_started = time.perf_counter()
        for job_id in ids[1:]:
            runner.run(job_id)
            jobs.append(runner.timings)  # this job's; the storing thread fills in the rest
        runner.wait_stored()
        burst = time.perf_counter() - burst_started
        assert all("finish" in job for job in jobs), "a job did not succeed: see the log"
        report(settings, args, jobs, burst)
        print(
            f"model loads after warm-up {loads_after_warmup}, "
            f"after all jobs {dict(runner.registry.load_counts)}"
        )


def report(settings: Settings, args: argparse.Namespace, jobs: list[dict[str, float]], burst: float) -> None:
    gaps, shares = [], []
    for job, following in itertools.pairwise(jobs):
        gaps.append(following["pipeline_started_at"] - job["pipeline_ended_at"])
        cycle = following["pipeline_started_at"] - job["pipeline_started_at"]
        shares.append((cycle - job["pipeline"]) / cycle)
    backend = "sqlite" if settings.resolved_database_url.startswith("sqlite") else "postgres+redis"
    print(f"backend: {backend}; {args.jobs} warm jobs back to back: {args.prompt!r}")
    print(f"burst wall time per job   {burst / len(jobs) * 1000:8.1f} ms")
    print(f"run() per job      median {statistics.median(j['total'] for j in jobs) * 1000:8.1f} ms")
    print(f"pipeline calls     median {statistics.median(j['pipeline'] for j in jobs) * 1000:8.1f} ms")
    for phase in ("progress", "safety", "hand_off", "store", "finish"):
        values = [job[phase] for job in jobs if phase in job]
        if values:
            print(f"  {phase:<16} median {statistics.median(values) * 1000:8.1f} ms")
    print(
        f"GPU idle gap       median {statistics.median(gaps) * 1000:8.1f} ms   max {max(gaps) * 1000:.1f} ms"
    )
    print(
        f"overhead share     median {statistics.median(shares) * 100:8.2f} %   max {max(shares) * 100:.2f} %"
    )


if __name__ == "__main__":
    main()
