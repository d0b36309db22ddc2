"""Load and scale: simulated members drive a realistic job mix through 1, 2 and 4 real workers.

For each worker count: a fresh migrated Postgres database and an emptied Redis database, N real
`sojourn worker` processes (`sojourn.bootstrap.start_worker`: `--concurrency=1`, so each runs one
job at a time, like one GPU each) on tiny random-weight models, then a **burst**: every member
submits their prompts at once through `submit_prompt` (5 % of them cancelled right after through
`cancel_user_job`), and presses U or V (`press_button`) on each grid as it finishes, as a member
watching the result would. It waits until every job has ended and prints, per worker count, jobs
per second (first submission to last finish), queue wait (started - queued) p50/p99, render time
p50, failures (must be 0), the workers' CPU per job and the scaling ratio to 1 worker.

The mix (of `--jobs`): 60 % grids, 25 % upscales, 10 % variations (Vary Strong), 5 % grids
cancelled shortly after submission. Grids render at `--resolution` px (the faults harness's
trick: the row's spec is shrunk before its message leaves), so a tiny-model job is short; an
upscale doubles that, a variation keeps it.

The CPU table splits the machine's busy cores during the load between the workers, this process
(the members and the services they call), Postgres + Redis, and other users' work: on a shared
machine the scaling ratio is bounded by the cores the others leave, not only by the core count.

Run: `scripts/with-services.sh .venv/bin/python bench/load.py --members 200 --jobs 2000 --workers 1,2,4`
(the issue's sizes). On the shared 2-core development machine, about 10 minutes in all:
`scripts/with-services.sh .venv/bin/python bench/load.py --members 200 --jobs 240 --quality .25`
(`--quality .25`: every prompt at a quarter of the steps, a real prompt parameter).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import psutil
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.submit import percentile
from db.models import ACTIVE_STATUSES, Job, JobStatus
from db.session import make_engine, make_sessionmaker
from sojourn.actions import UPSCALE, VARY, ButtonAction
from sojourn.bootstrap import start_worker, stop_child
from sojourn.celery_app import make_celery
from sojourn.errors import JobAlreadyEnded
from sojourn.prompt import PromptRules
from sojourn.queue import CeleryJobQueue, JobQueue
from sojourn.services import credits
from sojourn.services.buttons import Press, press_button
from sojourn.services.lifecycle import cancel_user_job
from sojourn.services.submission import submit_prompt
from sojourn.settings import Limits, ModelPaths, Settings
from tests.conftest import create_migrated_database, worker_settings

PROMPTS = (
    "a lighthouse in a storm --ar 16:9",
    "portrait of an old sailor, oil painting --ar 2:3 --chaos 10",
    "a red fox in fresh snow --stylize 250",
    "isometric cozy cabin, warm light --no people",
    "a city of glass at dawn --ar 21:9 --weird 50",
)
REDIS_DB = 11
CANCEL_AFTER = 0.05  # seconds between a submission and its cancel ("shortly after")
POLL_INTERVAL = 0.25  # how often the members look for finished grids
WORKER_START_TIMEOUT = 180.0


@dataclasses.dataclass(frozen=True)
class Mix:
    """How many of `jobs` are grids, cancelled grids, upscales and variations."""

    grids: int
    cancelled: int
    upscales: int
    variations: int

    @classmethod
    def of(cls, jobs: int) -> Mix:
        cancelled, upscales, variations = round(jobs * 0.05), round(jobs * 0.25), round(jobs * 0.10)
        grids = jobs - cancelled - upscales - variations
        if upscales + variations > 4 * grids:
            raise SystemExit(f"--jobs {jobs} is too small for the mix")
        return cls(grids, cancelled, upscales, variations)

    def describe(self) -> str:
        return (
            f"{self.grids} grids, {self.upscales} upscales, {self.variations} variations, "
            f"{self.cancelled} grids cancelled after submission"
        )


@dataclasses.dataclass(frozen=True)
class Submission:
    member: int
    text: str
    cancel: bool
    presses: tuple[tuple[ButtonAction, int], ...]  # (U or V, image index) on the finished grid


def plan(mix: Mix, members: int, seed: int, suffix: str = "") -> list[Submission]:
    """Prompts round-robin over the members; cancels spread evenly; presses spread over the grids."""
    total = mix.grids + mix.cancelled
    cancel_every = total / mix.cancelled if mix.cancelled else math.inf
    cancelled = {math.floor(i * cancel_every) for i in range(mix.cancelled)}
    kept = [i for i in range(total) if i not in cancelled]
    presses: dict[int, list[tuple[ButtonAction, int]]] = {i: [] for i in kept}
    actions = [UPSCALE] * mix.upscales + [VARY] * mix.variations
    random.Random(seed).shuffle(actions)
    for k, action in enumerate(actions):
        presses[kept[k % len(kept)]].append((action, 1 + (k // len(kept)) % 4))
    return [
        Submission(
            member=1 + i % members,
            text=f"{PROMPTS[i % len(PROMPTS)]} --seed {seed + i}{suffix}",
            cancel=i in cancelled,
            presses=tuple(presses.get(i, ())),
        )
        for i in range(total)
    ]


class SmallQueue:
    """The services' real queue, rendering grids at `resolution` px (see the module docstring)."""

    def __init__(self, queue: JobQueue, sessions: async_sessionmaker[AsyncSession], resolution: int) -> None:
        self._queue = queue
        self._sessions = sessions
        self._size = {"width": resolution, "height": resolution}

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        async with self._sessions.begin() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            if job.spec.get("action") is None:  # text-to-image; derived jobs follow their source's size
                job.spec = {**job.spec, **self._size}
        await self._queue.enqueue(job_id, mode, dispatch)


@dataclasses.dataclass
class Outcome:
    """What the members saw: refused presses, cancels that came too late."""

    refused: list[str] = dataclasses.field(default_factory=list)
    late_cancels: int = 0


class Members:
    """The simulated members: submit, cancel, and press buttons on finished grids."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, queue: JobQueue
    ) -> None:
        self.sessions, self.settings, self.queue = sessions, settings, queue
        self.rules = PromptRules.from_settings(settings)
        self.awaiting: dict[uuid.UUID, Submission] = {}  # grids whose owner will press on them
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcome = Outcome()

    async def submit_all(self, submissions: list[Submission]) -> None:
        by_member: dict[int, list[Submission]] = {}
        for submission in submissions:
            by_member.setdefault(submission.member, []).append(submission)
        await asyncio.gather(*(self._member(mine) for mine in by_member.values()))

    async def _member(self, mine: list[Submission]) -> None:
        for submission in mine:
            jobs = await submit_prompt(
                self.sessions,
                self.settings,
                self.queue,
                user_id=submission.member,
                text=submission.text,
                rules=self.rules,
            )
            if submission.cancel:
                self._spawn(self._cancel(submission.member, jobs[0].id))
            elif submission.presses:
                self.awaiting[jobs[0].id] = submission

    async def _cancel(self, member: int, job_id: uuid.UUID) -> None:
        await asyncio.sleep(CANCEL_AFTER)
        try:
            await cancel_user_job(self.sessions, member, job_id)
        except JobAlreadyEnded:
            self.outcome.late_cancels += 1

    async def _press(self, grid_id: uuid.UUID, submission: Submission) -> None:
        for action, index in submission.presses:
            press = Press(action=action, job_id=grid_id, index=index, presser_id=submission.member)
            try:
                await press_button(self.sessions, self.settings, self.queue, press, rules=self.rules)
            except Exception as error:  # reported, not fatal: the table says how many
                self.outcome.refused.append(f"{action.code}{index} on {grid_id}: {error}")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def watch_until_done(self, submitting: asyncio.Task[None]) -> None:
        """Press on grids as they finish; return once everything submitted has ended."""
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            # Read before the count: with nothing left to make jobs, a count of 0 is final.
            finished_making = submitting.done() and not self.awaiting and not self.tasks
            async with self.sessions() as session:
                if self.awaiting:
                    ended = await session.execute(
                        select(Job.id, Job.status).where(
                            Job.id.in_(list(self.awaiting)), Job.status.not_in(ACTIVE_STATUSES)
                        )
                    )
                    for job_id, status in ended.all():
                        submission = self.awaiting.pop(job_id)
                        if status == JobStatus.SUCCEEDED:
                            self._spawn(self._press(job_id, submission))
                        else:
                            self.outcome.refused.append(f"grid {job_id} {status.value}: no presses")
                active = await session.scalar(
                    select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE_STATUSES))
                )
            if finished_making and not active:
                submitting.result()  # raise what a submission raised
                return


@dataclasses.dataclass(frozen=True)
class Cpu:
    """CPU seconds (user + system) spent by each party, and the machine's busy core-seconds."""

    workers: float  # the worker processes and their pool processes
    members: float  # this process: the simulated members and the services they call
    services: float  # Postgres (postmaster and backends) and Redis
    machine: float  # every process on the machine, other users' included

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            *(a - b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True))
        )

    @property
    def others(self) -> float:
        return self.machine - self.workers - self.members - self.services


class CpuMeter:
    """Reads `Cpu` for the workers, this process, and the Postgres and Redis behind the URLs."""

    def __init__(self, workers: list[subprocess.Popen[bytes]], database_url: str, redis_url: str) -> None:
        self.workers = [process.pid for process in workers]
        ports = {make_url(database_url).port, urlsplit(redis_url).port}
        self.services = [
            connection.pid
            for connection in psutil.net_connections(kind="tcp")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port in ports and connection.pid
        ]

    def read(self) -> Cpu:
        times = psutil.cpu_times()
        machine = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        return Cpu(tree_cpu(self.workers), time.process_time(), tree_cpu(self.services), machine)


def tree_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in set(pids):
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


@dataclasses.dataclass
class Run:
    workers: int
    ended: int
    succeeded: int
    cancelled: int
    failed: int
    wall: float  # first submission to last finish
    queue_waits: list[float]
    renders: list[float]
    cpu: Cpu  # during the load
    cpu_wall: float  # the seconds over which `cpu` was measured
    outcome: Outcome

    @property
    def ended_per_second(self) -> float:
        return self.ended / self.wall

    @property
    def rendered_per_second(self) -> float:
        return self.succeeded / self.wall

    @property
    def busy_share(self) -> float:
        """How much of the workers' time went to rendering (100 %: never idle)."""
        return sum(self.renders) / (self.workers * self.wall)

    def cores(self, seconds: float) -> float:
        return seconds / self.cpu_wall


def start_workers(settings: Settings, count: int, threads: int) -> list[subprocess.Popen[bytes]]:
    """`count` real workers, each its own node name and log, answering pings; models loaded."""
    processes, nodes = [], []
    host = socket.gethostname()
    with mock.patch.dict(os.environ, {"OMP_NUM_THREADS": str(threads)}):
        for i in range(count):
            name = f"load{count}-{i + 1}@%h"
            own = settings.model_copy(
                update={"data_dir": settings.data_dir / f"worker-{i + 1}", "worker_name": name}
            )
            processes.append(start_worker(own))
            nodes.append(name.replace("%h", host))
    control = make_celery(settings).control
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while not all(any(node in reply for reply in control.ping(timeout=0.5)) for node in nodes):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            logs = settings.data_dir.glob("worker-*/worker.log")
            raise RuntimeError("a worker did not start:\n" + "\n".join(p.read_text()[-2000:] for p in logs))
    return processes


async def warm_up(members: Members, workers: int, user_id: int) -> None:
    """One small grid per worker through the real path, so no measured job waits for a model load."""
    jobs = []
    for i in range(2 * workers):
        jobs += await submit_prompt(
            members.sessions, members.settings, members.queue, user_id=user_id, text=f"warm-up --seed {i}"
        )
    while True:
        async with members.sessions() as session:
            active = await session.scalar(
                select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE_STATUSES))
            )
        if not active:
            return
        await asyncio.sleep(POLL_INTERVAL)


async def run_once(args: argparse.Namespace, workers: int, models: ModelPaths, data_dir: Path) -> Run:
    database_url = await create_migrated_database(os.environ["SOJOURN_TEST_DATABASE_URL"])
    mix = Mix.of(args.jobs)
    per_member = math.ceil((args.jobs) / args.members) + 4
    limits = Limits(max_queued_per_user=max(Limits().max_queued_per_user, per_member))
    settings = worker_settings(
        database_url,
        os.environ["SOJOURN_TEST_REDIS_URL"],
        REDIS_DB,
        data_dir,
        models,
        storage_dir=data_dir / "images",
        limits=limits,
    )
    engine = make_engine(database_url, pool_size=20)
    sessions = make_sessionmaker(engine)
    queue = SmallQueue(CeleryJobQueue(make_celery(settings)), sessions, args.resolution)
    warm_up_user = args.members + 1
    async with sessions.begin() as session:
        for user_id in range(1, warm_up_user + 1):
            await credits.grant(session, user_id, 100_000, key=f"bench-load:{user_id}")

    processes = start_workers(settings, workers, args.threads)
    try:
        members = Members(sessions, settings, queue)
        await warm_up(members, workers, warm_up_user)
        meter = CpuMeter(processes, database_url, settings.redis_url or "")
        submissions = plan(mix, args.members, args.seed, quality_suffix(args.quality))
        cpu_before, clock_before = meter.read(), time.monotonic()
        submitting = asyncio.ensure_future(members.submit_all(submissions))
        await members.watch_until_done(submitting)
        cpu, cpu_wall = meter.read() - cpu_before, time.monotonic() - clock_before
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            stop_child(process, timeout=30)

    async with sessions() as session:
        rows = (
            await session.execute(
                select(Job.status, Job.queued_at, Job.started_at, Job.finished_at).where(
                    Job.user_id <= args.members
                )
            )
        ).all()
    await engine.dispose()
    started = min(row.queued_at for row in rows)
    finished = max(row.finished_at for row in rows)
    done = [row for row in rows if row.status == JobStatus.SUCCEEDED]
    return Run(
        workers=workers,
        ended=len(rows),
        succeeded=len(done),
        cancelled=sum(row.status == JobStatus.CANCELLED for row in rows),
        failed=sum(row.status == JobStatus.FAILED for row in rows),
        wall=(finished - started).total_seconds(),
        queue_waits=[(row.started_at - row.queued_at).total_seconds() for row in done],
        renders=[(row.finished_at - row.started_at).total_seconds() for row in done],
        cpu=cpu,
        cpu_wall=cpu_wall,
        outcome=members.outcome,
    )


def quality_suffix(quality: str) -> str:
    return "" if quality == "1" else f" --quality {quality}"


def ensure_tiny_models(folder: Path) -> ModelPaths:
    """The tiny models in `folder`, built there first if absent (`sojourn models make-tiny DIR`)."""
    if not (folder / "sdxl-base" / "model_index.json").exists():
        from inference.tiny_models import make_tiny_models

        return make_tiny_models(folder)
    return ModelPaths(
        base=str(folder / "sdxl-base"),
        refiner=str(folder / "sdxl-refiner"),
        unclip=str(folder / "unclip"),
        vae=str(folder / "vae"),
    )


def report(runs: list[Run], cores: int) -> None:
    print(
        f"{'workers':>7} {'ended':>5} {'ok':>5} {'canc':>4} {'fail':>4} {'wall':>6} {'ended/s':>7} "
        f"{'ok/s':>6} {'ratio':>5} {'wait p50':>8} {'wait p99':>8} {'render p50':>10} {'busy':>5}"
    )
    base = runs[0].rendered_per_second
    for run in runs:
        print(
            f"{run.workers:>7} {run.ended:>5} {run.succeeded:>5} {run.cancelled:>4} {run.failed:>4} "
            f"{run.wall:>5.1f}s {run.ended_per_second:>7.2f} {run.rendered_per_second:>6.2f} "
            f"{run.rendered_per_second / base:>5.2f} {statistics.median(run.queue_waits):>7.1f}s "
            f"{percentile(run.queue_waits, 99):>7.1f}s {statistics.median(run.renders) * 1000:>8.0f}ms "
            f"{run.busy_share:>5.0%}"
        )
    print(
        "ended: succeeded + cancelled + failed; ok: succeeded; ratio: ok/s over the first row's; "
        "wait: started - queued;\nbusy: render time / (workers x wall), 100 % = no worker ever idle\n"
    )
    print(f"CPU during the load, in cores ({cores} on this machine); CPU per succeeded job")
    print(
        f"{'workers':>7} {'workers':>8} {'members':>8} {'pg+redis':>8} {'others':>7} {'idle':>6} "
        f"{'worker CPU/job':>14} {'all CPU/job':>11}"
    )
    for run in runs:
        ours = run.cpu.workers + run.cpu.members + run.cpu.services
        print(
            f"{run.workers:>7} {run.cores(run.cpu.workers):>8.2f} {run.cores(run.cpu.members):>8.2f} "
            f"{run.cores(run.cpu.services):>8.2f} {run.cores(run.cpu.others):>7.2f} "
            f"{cores - run.cores(run.cpu.machine):>6.2f} {run.cpu.workers / run.succeeded * 1000:>12.0f}ms "
            f"{ours / run.succeeded * 1000:>9.0f}ms"
        )
    print("members: this process (the simulated members and the services); others: other users' work\n")
    one = runs[0]
    per_job = (one.cpu.workers + one.cpu.members + one.cpu.services) / one.succeeded
    print(
        f"CPU bound: a worker renders one job at a time on one thread, so N workers use at most "
        f"min(N, {cores}) cores;\nthe ideal ratio here is "
        + ", ".join(f"{min(run.workers, cores)}x" for run in runs)
        + f". All of sojourn's CPU per job is {per_job * 1000:.0f} ms, so {cores} idle cores would cap the "
        f"rate near {cores / per_job:.2f} jobs/s."
    )
    one_cores = one.cores(one.cpu.workers)
    for run in runs[1:]:
        ideal = min(run.workers, cores)
        ratio = run.rendered_per_second / base
        left = cores - run.cores(run.cpu.others + run.cpu.members + run.cpu.services)
        allowed = min(run.workers, left) / one_cores
        print(
            f"  {run.workers} workers: {ratio:.2f}x of an ideal {ideal}x ({ratio / ideal:.0%}); "
            f"the others left the workers {left:.2f} cores, they used {run.cores(run.cpu.workers):.2f}: "
            f"that CPU allowed {allowed:.2f}x ({ratio / allowed:.0%} reached)"
        )
    for run in runs:
        if run.outcome.refused or run.outcome.late_cancels:
            refused, late = len(run.outcome.refused), run.outcome.late_cancels
            print(f"  {run.workers} workers: {refused} presses refused, {late} cancels came too late")
            for line in run.outcome.refused[:3]:
                print(f"    {line}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--resolution", type=int, default=256, help="grid side in px (tiny models)")
    parser.add_argument(
        "--quality", default="1", help="every prompt's --quality (.25 = a quarter of the steps)"
    )
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each worker")
    parser.add_argument("--models", type=Path, default=Path("/tmp/sojourn-load-models"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    counts = [int(n) for n in args.workers.split(",")]
    cores = os.cpu_count() or 1
    models = ensure_tiny_models(args.models)
    print(
        f"{args.members} members, {args.jobs} jobs ({Mix.of(args.jobs).describe()}), burst arrival; "
        f"grids at {args.resolution} px, {args.threads} thread(s) per worker; {cores} cores, "
        f"load average before {os.getloadavg()[0]:.1f}"
    )
    runs = []
    for workers in counts:
        with tempfile.TemporaryDirectory(prefix="sojourn-load-") as tmp:
            started = time.monotonic()
            run = await run_once(args, workers, models, Path(tmp))
            took = time.monotonic() - started
            print(f"  {workers} worker(s): {took:.0f} s in all (start, warm-up, load, stop)", flush=True)
            runs.append(run)
    report(runs, cores)
    if any(run.failed for run in runs):
        raise SystemExit("some jobs failed: see the workers' logs")


if __name__ == "__main__":
    asyncio.run(main())
