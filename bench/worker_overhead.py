"""Worker overhead: the share of a warm worker's job wall time spent outside the diffusers calls.

Runs the worker's own `JobRunner` (what the Celery task calls) on tiny models at real
resolution: claim, render, PNG encoding + storage, grid, database writes, events. Prints the
per-job overhead share (median) and the model-load counters, which must not move between jobs.

Run: `.venv/bin/python bench/worker_overhead.py` (SQLite), or under scripts/with-services.sh to
use Postgres + Redis (it picks up SOJOURN_TEST_DATABASE_URL / SOJOURN_TEST_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
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
        loads_after_warmup = dict(runner.registry.load_counts)
        shares, totals, pipelines = [], [], []
        phases: dict[str, list[float]] = {"progress": [], "safety": [], "store": [], "finish": []}
        for job_id in ids[1:]:
            runner.run(job_id)
            total, pipeline = runner.timings["total"], runner.timings["pipeline"]
            totals.append(total)
            pipelines.append(pipeline)
            shares.append((total - pipeline) / total)
            for phase, values in phases.items():
                values.append(runner.timings[phase])
        backend = "postgres+redis" if "database_url" in updates else "sqlite"
        print(f"backend: {backend}; {args.jobs} warm jobs: {args.prompt!r}")
        print(f"job wall time      median {statistics.median(totals) * 1000:8.1f} ms")
        for phase, values in phases.items():
            print(f"  {phase:<16} median {statistics.median(values) * 1000:8.1f} ms")
        print(f"pipeline calls     median {statistics.median(pipelines) * 1000:8.1f} ms")
        print(
            f"overhead share     median {statistics.median(shares) * 100:8.2f} %   "
            f"max {max(shares) * 100:.2f} %"
        )
        print(
            f"model loads after warm-up {loads_after_warmup}, "
            f"after all jobs {dict(runner.registry.load_counts)}"
        )


if __name__ == "__main__":
    main()
