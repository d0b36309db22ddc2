"""Submission latency: parse + credit hold + job insert + enqueue, on real Postgres + Redis.

Run with `make bench`, or `scripts/with-services.sh .venv/bin/python bench/submit.py`.
Prints median and p99 per job, one at a time and with 200 concurrent submissions.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.migrate import upgrade_async
from db.session import make_engine, make_sessionmaker
from sojourn.celery_app import make_celery
from sojourn.prompt import PromptRules
from sojourn.queue import CeleryJobQueue
from sojourn.services.submission import submit_prompt
from sojourn.settings import Settings
from tests.conftest import create_database

PROMPT = "a lighthouse in a storm --ar 16:9 --seed 7 --chaos 10 --no fog, people"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def describe(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label:<34} n={len(ms):<4} median {statistics.median(ms):7.2f} ms   "
        f"p99 {percentile(ms, 99):7.2f} ms   max {max(ms):7.2f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    database_url = await create_database(os.environ["SOJOURN_TEST_DATABASE_URL"])
    await upgrade_async(database_url)
    redis_url = os.environ["SOJOURN_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/9"
    settings = Settings(database_url=database_url, redis_url=redis_url)
    engine = make_engine(database_url)  # the pool a bot process has
    sessions = make_sessionmaker(engine)
    queue = CeleryJobQueue(make_celery(settings))
    rules = PromptRules.from_settings(settings)
    users = itertools.count(1)

    async def one() -> float:
        started = time.perf_counter()
        await submit_prompt(sessions, settings, queue, user_id=next(users), text=PROMPT, rules=rules)
        return time.perf_counter() - started

    for _ in range(20):  # warm connections, caches and the Celery producer pool
        await one()

    sequential = [await one() for _ in range(args.sequential)]
    describe("one at a time", sequential)

    burst: list[float] = []
    walls: list[float] = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        burst += await asyncio.gather(*(one() for _ in range(args.concurrent)))
        walls.append(time.perf_counter() - started)
    describe(f"{args.concurrent} concurrent (x{args.rounds} rounds)", burst)
    throughput = args.concurrent / statistics.median(walls)
    print(
        f"{'burst throughput':<34} {throughput:7.0f} submissions/s "
        f"(median round wall {statistics.median(walls) * 1000:.0f} ms)"
    )
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
