"""Submission latency: parse + credit hold + job insert + enqueue, on real Postgres + Redis.

Run with `make bench`, or `scripts/with-services.sh .venv/bin/python bench/submit.py`.
The submitting process freezes its startup and sets the garbage collector's thresholds as a bot
process does once ready (`sojourn.collector`). Prints, for users seen before (their row exists,
today's credits given) and for first-time users:
median and p99 per submission one at a time, the CPU time and the statements each costs, and the
median and p99 of a burst of 200 concurrent submissions with its throughput and, in one process,
the CPU the servers spent on each (Postgres, all its processes, read from /proc; Redis from its
INFO): with the submitting process's own, what a burst costs the machine, which says how many
processes and cores a target needs. `--processes N` splits each burst over N submitting
processes, started together at a barrier in Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from sqlalchemy import event, text

from db.migrate import upgrade_async
from db.session import make_engine, make_sessionmaker
from sojourn.celery_app import make_celery
from sojourn.collector import freeze_startup
from sojourn.prompt import PromptRules
from sojourn.queue import CeleryJobQueue
from sojourn.services.submission import submit_prompt
from sojourn.settings import Settings
from tests.conftest import create_database

PROMPT = "a lighthouse in a storm --ar 16:9 --seed 7 --chaos 10 --no fog, people"
KNOWN_USERS = 1_000  # ids 1..KNOWN_USERS are warmed up first; first-time users come after
WARM_UP_USERS = itertools.count(10**9)  # a submitting child's first ten submissions, each its own user


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def describe(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label:<44} n={len(ms):<4} median {statistics.median(ms):7.2f} ms   "
        f"p99 {percentile(ms, 99):7.2f} ms   max {max(ms):7.2f} ms"
    )


class Submitter:
    """One process's engine (the pool a bot process has), queue and statement counter."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.resolved_database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.queue = CeleryJobQueue(make_celery(settings))
        self.rules = PromptRules.from_settings(settings)
        self.statements = 0
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_: object) -> None:
        self.statements += 1

    async def one(self, user_id: int) -> float:
        started = time.perf_counter()
        await submit_prompt(
            self.sessions, self.settings, self.queue, user_id=user_id, text=PROMPT, rules=self.rules
        )
        return time.perf_counter() - started

    async def burst(self, user_ids: list[int]) -> list[float]:
        return list(await asyncio.gather(*(self.one(user_id) for user_id in user_ids)))


class ServerCpu:
    """CPU seconds the servers have used so far: Postgres (the postmaster, its live processes and
    those that exited) and Redis. Postgres reads as None where its files cannot be read."""

    def __init__(self, postmaster: int | None, broker: redis.Redis) -> None:
        self._postmaster, self._broker = postmaster, broker

    @classmethod
    async def find(cls, submitter: Submitter) -> ServerCpu:
        postmaster = None
        try:
            async with submitter.engine.connect() as connection:
                data_directory = await connection.scalar(text("SHOW data_directory"))
            pid_file = await asyncio.to_thread(Path(data_directory, "postmaster.pid").read_text)
            postmaster = int(pid_file.split()[0])
        except Exception as error:  # not the server's owner, or another host's server
            print(f"(Postgres's CPU cannot be read here: {error!r})")
        return cls(postmaster, redis.Redis.from_url(submitter.settings.redis_url or ""))

    @staticmethod
    def _times(pid: int) -> tuple[int, list[int]]:
        """(parent pid, [utime, stime, cutime, cstime]) in clock ticks, from /proc/PID/stat."""
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), [int(value) for value in fields[11:15]]

    def postgres(self) -> float | None:
        if self._postmaster is None:
            return None
        ticks = sum(self._times(self._postmaster)[1])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent, times = self._times(int(entry.name))
                except (OSError, ValueError):  # gone meanwhile
                    continue
                if parent == self._postmaster:
                    ticks += times[0] + times[1]
        return ticks / os.sysconf("SC_CLK_TCK")

    def redis(self) -> float:
        info = self._broker.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def one_at_a_time(submitter: Submitter, label: str, users: Iterator[int], count: int) -> None:
    statements, cpu = submitter.statements, time.process_time()
    seconds = [await submitter.one(next(users)) for _ in range(count)]
    cpu_ms = (time.process_time() - cpu) / count * 1000
    describe(f"one at a time, {label}", seconds)
    print(
        f"{'':<44} CPU {cpu_ms:5.2f} ms and "
        f"{(submitter.statements - statements) / count:.1f} statements per submission"
    )


def bursts_in_processes(
    settings: Settings, users: Iterator[int], concurrent: int, rounds: int, processes: int
) -> tuple[list[float], list[float], float]:
    """Each round's burst split over `processes` children; returns latencies, walls, CPU ms each."""
    assert settings.redis_url is not None
    broker = redis.Redis.from_url(settings.redis_url)
    latencies: list[float] = []
    walls: list[float] = []
    cpu = 0.0
    for _ in range(rounds):
        barrier = f"bench-barrier:{uuid.uuid4()}"
        shares = [[next(users) for _ in range(concurrent // processes)] for _ in range(processes)]
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    settings.model_dump_json(),
                    barrier,
                    json.dumps(share),
                    json.dumps([next(WARM_UP_USERS) for _ in range(10)]),
                ],
                stdout=subprocess.PIPE,
            )
            for share in shares
        ]
        for _ in children:
            broker.blpop([f"{barrier}:ready"], 120)
        broker.rpush(f"{barrier}:go", *([1] * processes))
        reports = [json.loads(child.communicate()[0]) for child in children]
        walls.append(max(report["wall"] for report in reports))  # the slowest process's burst
        for report in reports:
            latencies += report["latencies"]
            cpu += report["cpu"]
    return latencies, walls, cpu / (rounds * processes * (concurrent // processes)) * 1000


async def child(settings_json: str, barrier: str, share: str, warm_up: str) -> None:
    """A submitting process of `--processes`: warm, wait at the barrier, submit its share at once."""
    settings = Settings.model_validate_json(settings_json)
    submitter = Submitter(settings)
    for user_id in json.loads(warm_up):  # connections, caches and the producer pool
        await submitter.one(user_id)
    freeze_startup()
    broker = redis.Redis.from_url(settings.redis_url or "")
    broker.rpush(f"{barrier}:ready", 1)
    await asyncio.to_thread(broker.blpop, [f"{barrier}:go"], 120)
    cpu, started = time.process_time(), time.perf_counter()
    latencies = await submitter.burst(json.loads(share))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"latencies": latencies, "wall": wall, "cpu": cpu}))
    await submitter.engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=1, help="submitting processes sharing each burst")
    args = parser.parse_args()

    database_url = await create_database(os.environ["SOJOURN_TEST_DATABASE_URL"])
    await upgrade_async(database_url)
    redis_url = os.environ["SOJOURN_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/9"
    settings = Settings(database_url=database_url, redis_url=redis_url)
    submitter = Submitter(settings)
    known = itertools.cycle(range(1, KNOWN_USERS + 1))
    first_timers = itertools.count(KNOWN_USERS + 1)

    for user_id in range(1, KNOWN_USERS + 1):  # every known user's row and today's credits
        await submitter.one(user_id)
    freeze_startup()  # as the bot does once it is ready
    await one_at_a_time(submitter, "users seen before", known, args.sequential)
    await one_at_a_time(submitter, "first-time users", first_timers, args.sequential)

    servers = ""
    if args.processes == 1:
        latencies: list[float] = []
        walls: list[float] = []
        server_cpu = await ServerCpu.find(submitter)
        cpu, postgres, broker = time.process_time(), server_cpu.postgres(), server_cpu.redis()
        for _ in range(args.rounds):
            started = time.perf_counter()
            latencies += await submitter.burst([next(known) for _ in range(args.concurrent)])
            walls.append(time.perf_counter() - started)
        count = args.rounds * args.concurrent
        cpu_ms = (time.process_time() - cpu) / count * 1000
        postgres_after = server_cpu.postgres()
        postgres_ms = (
            f"{(postgres_after - postgres) / count * 1000:.2f}"
            if postgres is not None and postgres_after is not None
            else "n/a"
        )
        servers = f"; Postgres {postgres_ms} ms, Redis {(server_cpu.redis() - broker) / count * 1000:.2f} ms"
    else:
        latencies, walls, cpu_ms = bursts_in_processes(
            settings, known, args.concurrent, args.rounds, args.processes
        )
    label = f"{args.concurrent} concurrent, {args.processes} process(es) (x{args.rounds})"
    describe(label, latencies)
    print(
        f"{'burst throughput':<44} {args.concurrent / statistics.median(walls):7.0f} submissions/s "
        f"(median round wall {statistics.median(walls) * 1000:.0f} ms; "
        f"CPU per submission: {cpu_ms:.2f} ms in the submitting process{servers})"
    )
    print(f"{'':<44} each round's last answer: {', '.join(f'{wall * 1000:.0f}' for wall in walls)} ms")
    await submitter.engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        asyncio.run(child(*sys.argv[2:6]))
    else:
        asyncio.run(main())
