"""What every fault test shares.

A `World` is one test's system: a fresh migrated database on the suite's private PostgreSQL, a
Redis database of its own on the private Redis, a data directory, the services' real queue, and the
real worker processes it starts. Jobs are cheap (`CheapQueue`); a `HeldImagePrompt` holds one job
mid-render for as long as a test needs, so a fault hits it without a race. Every wait is bounded
and fails with the workers' logs; `assert_all_settled` is the one end-of-test check; `record`
notes how long the system took to recover.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import resource
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.models import FINAL_STATUSES, Image, Job, JobStatus, LedgerEntry, LedgerKind, User
from db.session import make_engine, make_sessionmaker
from sojourn.bootstrap import stop_child, worker_log_path
from sojourn.celery_app import make_celery
from sojourn.clock import utcnow
from sojourn.queue import CeleryJobQueue, JobQueue
from sojourn.services.audit import audit_database
from sojourn.services.submission import submit_prompt
from sojourn.settings import Settings
from sojourn.storage import LocalStorage
from tests.conftest import create_migrated_database, start_test_worker, worker_settings
from tests.held_image import HeldImagePrompt

# A generous bound for any one wait: a recovery takes seconds; this only turns a hang into a failure.
FAULT_TIMEOUT = 120.0
USERS = (7001, 7002, 7003)
# The faults are about jobs' lives, not pixels: 256 px instead of SDXL's 1024 (see `CheapQueue`).
SMALL_RENDER = {"width": 256, "height": 256}
DATABASE_DOWN_ERRORS = (DBAPIError, OSError)  # what a poll sees while the database is unreachable
# A grid job's image rows, as the runner stores them: the grid (0) and images 1-4.
GRID_ROWS = [0, 1, 2, 3, 4]


def record(metric: str, seconds: float) -> None:
    """Print a recovery time (visible with `-s`) and append it to `$SOJOURN_FAULT_METRICS` (JSON lines)."""
    print(f"\n[fault metric] {metric}: {seconds:.2f} s")
    path = os.environ.get("SOJOURN_FAULT_METRICS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"metric": metric, "seconds": round(seconds, 3), "at": time.time()}) + "\n")


def seconds_between(start: dt.datetime, end: dt.datetime | None) -> float:
    assert end is not None, "the job has not ended"
    return (end - start).total_seconds()


class CheapQueue:
    """The services' real queue (Celery on the private Redis), sending cheap jobs.

    Before a job's message leaves, its row's spec is shrunk to 256 px (the worker renders what the
    row says, and a 256-px grid of the tiny models takes a fraction of a second where a 1024-px one
    takes seconds). `hold_next` makes the next job's image prompt a `HeldImagePrompt`; `copies`
    sends every message that many times, as a broker delivering twice would.
    """

    def __init__(self, queue: JobQueue, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._queue = queue
        self._sessions = sessions
        self._held: list[HeldImagePrompt] = []
        self.copies = 1

    def hold_next(self, held: HeldImagePrompt) -> None:
        self._held.append(held)

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        patch: dict[str, object] = dict(SMALL_RENDER)
        if self._held:
            patch.update(image_key=self._held.pop(0).key, image_weight=1.0)
        async with self._sessions.begin() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            job.spec = {**job.spec, **patch}
        for _ in range(self.copies):
            await self._queue.enqueue(job_id, mode, dispatch)


class PipedLog:
    """A worker log that is a named pipe, copied into a regular file by a thread of the test.

    A worker whose file-size limit is lowered (a full disk) could no longer write a regular log
    file past that size; a pipe is not a file and has no size.
    """

    def __init__(self, pipe: Path) -> None:
        self.pipe = pipe
        self.copy = pipe.with_name(pipe.name + ".copy")
        os.mkfifo(pipe)
        self._thread = threading.Thread(target=self._drain, name="worker-log", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with open(self.pipe, "rb") as source, open(self.copy, "ab") as copy:
            while chunk := source.read1(65536):
                copy.write(chunk)
                copy.flush()

    def close(self) -> None:
        self._thread.join(10)  # EOF once the worker and its children are gone


@dataclass
class WorkerHandle:
    """One real worker (`sojourn worker`, started by `sojourn.bootstrap.start_worker`)."""

    process: subprocess.Popen[bytes]
    settings: Settings  # its own data directory, for its own log
    name: str | None
    piped: PipedLog | None = None

    @property
    def log(self) -> Path:
        return self.piped.copy if self.piped else worker_log_path(self.settings)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pool(self) -> list[psutil.Process]:
        """The prefork pool's processes (children of the worker's main process)."""
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_pool(self) -> list[int]:
        """SIGKILL the pool's processes, as the kernel's OOM killer would; their pids."""
        children = self.pool()
        assert children, "the prefork pool should have a child process"
        for child in children:
            child.kill()
        psutil.wait_procs(children, timeout=10)
        return [child.pid for child in children]

    def kill_all(self) -> None:
        """SIGKILL the whole worker, main process and children at once (a host losing power)."""
        processes = [psutil.Process(self.process.pid), *self.pool()]
        for process in processes:
            process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        psutil.wait_procs(processes, timeout=10)

    def limit_file_size(self, size: int | None) -> None:
        """Set RLIMIT_FSIZE on every process of the worker (None: no limit): writes past `size`
        bytes fail with EFBIG (Python ignores SIGXFSZ), as on a full disk."""
        limit = resource.RLIM_INFINITY if size is None else size
        for process in [psutil.Process(self.process.pid), *self.pool()]:
            resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    def stop(self) -> None:
        """Stop the worker; a pool process it left behind (one blocked on a held image prompt that
        was never released, after a failure) is killed."""
        pool = self.pool()
        stop_child(self.process, timeout=10)
        for process in pool:
            if process.is_running():
                process.kill()
        psutil.wait_procs(pool, timeout=10)
        if self.piped is not None:
            self.piped.close()


@dataclass
class World:
    """One test's system: its settings (database, Redis database, data directory), the services'
    sessions, storage and queue, and the workers it started."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    storage: LocalStorage = field(init=False)
    queue: CheapQueue = field(init=False)
    workers: list[WorkerHandle] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sessions = make_sessionmaker(self.engine)
        self.storage = LocalStorage(self.settings.resolved_storage_dir)
        self.queue = CheapQueue(CeleryJobQueue(make_celery(self.settings)), self.sessions)

    def hold(self) -> HeldImagePrompt:
        """A held image prompt for the next job submitted."""
        held = HeldImagePrompt(self.settings.resolved_storage_dir, self.diagnostics)
        self.queue.hold_next(held)
        return held

    async def submit(self, user_id: int, text: str) -> list[Job]:
        return await submit_prompt(self.sessions, self.settings, self.queue, user_id=user_id, text=text)

    def start_worker(self, *, name: str | None = None, piped_log: bool = False) -> WorkerHandle:
        """Start a worker (node name `name`, else the settings' default) and wait until it answers."""
        settings = self.settings.model_copy(
            update={
                "data_dir": self.settings.data_dir / f"worker-{len(self.workers) + 1}",
                "worker_name": name or self.settings.worker_name,
            }
        )
        log = worker_log_path(settings)
        log.parent.mkdir(parents=True, exist_ok=True)
        piped = PipedLog(log) if piped_log else None
        process = start_test_worker(settings)
        handle = WorkerHandle(process, settings, name, piped)
        self.workers.append(handle)
        self._wait_until_answering(handle)
        return handle

    def _wait_until_answering(self, worker: WorkerHandle) -> None:
        # Each worker's own node name: with two workers, any answer is not this one's.
        node = (worker.name or self.settings.worker_name).replace("%h", socket.gethostname())
        control = make_celery(self.settings).control
        deadline = time.monotonic() + FAULT_TIMEOUT
        while not any(node in reply for reply in control.ping(timeout=0.5)):
            if worker.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker {node} did not start:\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        tails = []
        for index, worker in enumerate(self.workers, 1):
            name = worker.name or "default name"
            tails.append(f"--- worker {index} ({name}), {worker.log}:\n{worker.log_text()[-4000:]}")
        return "\n".join(tails) or "(no worker started)"

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        if os.environ.get("SOJOURN_SHOW_WORKER_LOG"):
            print(self.diagnostics())

    async def close(self) -> None:
        self.stop_workers()
        await self.engine.dispose()


async def open_world(
    postgres_admin_url: str, redis_url: str, redis_db: int, data_dir: Path, models: object, **extra: object
) -> World:
    """A fresh migrated database, an emptied Redis database and a data directory, with no worker yet."""
    database_url = await create_migrated_database(postgres_admin_url)
    settings = worker_settings(
        database_url, redis_url, redis_db, data_dir, models, storage_dir=data_dir / "images", **extra
    )
    return World(settings, make_engine(database_url))


# --- waiting, with deadlines -------------------------------------------------------------------


async def wait_for(
    world: World,
    check: Callable[[], Awaitable[bool]],
    *,
    what: str,
    timeout: float = FAULT_TIMEOUT,  # noqa: ASYNC109 (a deadline for other processes)
    every: float = 0.1,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Poll `check` until it holds; a database that is down (a fault) counts as not yet.

    On timeout, fails with `describe()` (what was seen last) and the workers' logs.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except DATABASE_DOWN_ERRORS:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what}\n{describe()}\n{world.diagnostics()}"
            )
        await asyncio.sleep(every)


async def load_jobs(
    sessions: async_sessionmaker[AsyncSession], job_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Job]:
    ids = list(job_ids)
    async with sessions() as session:
        rows = (await session.scalars(select(Job).where(Job.id.in_(ids)))).all()
    return {job.id: job for job in rows}


async def wait_for_jobs(
    world: World,
    job_ids: Sequence[uuid.UUID],
    until: Callable[[Job], bool] = lambda job: job.status in FINAL_STATUSES,
    *,
    what: str = "the jobs to end",
) -> dict[uuid.UUID, Job]:
    """Wait until `until` holds for every job; their rows."""
    found: dict[uuid.UUID, Job] = {}

    async def reached() -> bool:
        found.clear()
        found.update(await load_jobs(world.sessions, job_ids))
        return len(found) == len(set(job_ids)) and all(until(job) for job in found.values())

    def describe() -> str:
        states = {str(i): (j.status.value, j.attempts, j.dispatch) for i, j in found.items()}
        return f"jobs last seen (status, tries, dispatch): {states}"

    await wait_for(world, reached, what=what, describe=describe)
    return dict(found)


async def wait_all_succeeded(world: World, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Job]:
    """Wait until every job ended, and check that each succeeded."""
    jobs = await wait_for_jobs(world, job_ids)
    failed = {str(job.id): job.error for job in jobs.values() if job.status != JobStatus.SUCCEEDED}
    assert not failed, f"jobs that did not succeed: {failed}"
    return jobs


def last_end(jobs: Iterable[Job]) -> dt.datetime:
    """When the last of these (ended) jobs ended."""
    ends = [job.finished_at for job in jobs]
    assert ends and all(end is not None for end in ends), "not every job has ended"
    return max(end for end in ends if end is not None)


async def wait_until_running(world: World, job_id: uuid.UUID, *, attempts: int = 1) -> Job:
    """Until the job is running its `attempts`-th try (held there by a `HeldImagePrompt`)."""
    jobs = await wait_for_jobs(
        world,
        [job_id],
        lambda job: job.status == JobStatus.RUNNING and job.attempts == attempts,
        what=f"job {job_id} to be running its try number {attempts}",
    )
    return jobs[job_id]


# --- the end-of-test checks --------------------------------------------------------------------


async def assert_all_settled(
    world: World, job_ids: Sequence[uuid.UUID], *, delivered: bool = False
) -> dict[uuid.UUID, Job]:
    """Every job ended exactly once, paid for exactly once, with its images; then the audit passes.

    - each job ended: succeeded with one settle, or failed/cancelled with one refund of its cost,
      under its one final key `final:<job id>`, after one hold under `hold:<job id>`;
    - each user's balance is their ledger's sum, and their grants less what their succeeded jobs
      cost (nothing charged twice, nothing refunded twice);
    - a succeeded job has its grid and four images, rows and files; an unsucceeded one has none;
    - with `delivered`, every job's outcome was posted to Discord (`delivered_at`, no error);
    - `sojourn.services.audit.audit_database` finds nothing wrong anywhere in the database.
    """
    jobs = await load_jobs(world.sessions, job_ids)
    assert set(jobs) == set(job_ids), "some jobs are missing from the database"
    problems: list[str] = []
    async with world.sessions() as session:
        for job in jobs.values():
            problems += await _job_problems(session, world, job, delivered=delivered)
        for user_id in sorted({job.user_id for job in jobs.values()}):
            problems += await _balance_problems(session, user_id)
    report = await audit_database(world.sessions, world.settings, world.storage)
    problems += [f"audit: {violation}" for violation in report.violations]
    assert not problems, "\n".join(problems)
    assert report.ok
    return jobs


async def _job_problems(session: AsyncSession, world: World, job: Job, *, delivered: bool) -> list[str]:
    name = f"job {job.id} ({job.status.value}, {job.attempts} tries)"
    if job.status not in FINAL_STATUSES:
        return [f"{name} has not ended"]
    problems: list[str] = []
    entries = (await session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job.id))).all()
    holds = [e for e in entries if e.kind == LedgerKind.HOLD]
    finals = [e for e in entries if e.kind in (LedgerKind.SETTLE, LedgerKind.REFUND)]
    if [(e.idempotency_key, e.amount) for e in holds] != [(f"hold:{job.id}", -job.cost)]:
        problems.append(f"{name}: holds {[(e.idempotency_key, e.amount) for e in holds]}")
    expected_final = (
        (LedgerKind.SETTLE, 0) if job.status == JobStatus.SUCCEEDED else (LedgerKind.REFUND, job.cost)
    )
    if [(e.idempotency_key, e.kind, e.amount) for e in finals] != [(f"final:{job.id}", *expected_final)]:
        problems.append(
            f"{name}: final entries {[(e.idempotency_key, e.kind.value, e.amount) for e in finals]}"
        )
    if len(entries) != len(holds) + len(finals):
        problems.append(f"{name}: other ledger entries {[e.kind.value for e in entries]}")

    images = (await session.scalars(select(Image).where(Image.job_id == job.id).order_by(Image.index))).all()
    if job.status == JobStatus.SUCCEEDED:
        if [image.index for image in images] != GRID_ROWS:
            problems.append(f"{name}: image rows {[image.index for image in images]}, not {GRID_ROWS}")
        missing = [i.storage_key for i in images if not (world.storage.root / i.storage_key).is_file()]
        if missing:
            problems.append(f"{name}: image files missing: {missing}")
    elif images:
        problems.append(f"{name}: has {len(images)} image rows")
    if delivered and (job.delivered_at is None or job.delivery_error is not None):
        problems.append(
            f"{name}: not delivered (delivered_at {job.delivered_at}, error {job.delivery_error})"
        )
    return problems


async def _balance_problems(session: AsyncSession, user_id: int) -> list[str]:
    user = await session.get(User, user_id)
    if user is None:
        return [f"user {user_id} does not exist"]
    entries = (await session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == user_id))).all()
    jobs = (await session.scalars(select(Job).where(Job.user_id == user_id))).all()
    granted = sum(e.amount for e in entries if e.kind in (LedgerKind.DAILY, LedgerKind.GRANT))
    spent = sum(
        job.cost for job in jobs if job.status != JobStatus.FAILED and job.status != JobStatus.CANCELLED
    )
    problems = []
    if user.balance != sum(e.amount for e in entries):
        problems.append(
            f"user {user_id}: balance {user.balance}, ledger sum {sum(e.amount for e in entries)}"
        )
    if user.balance != granted - spent:
        problems.append(f"user {user_id}: balance {user.balance}, granted {granted} less spent {spent}")
    return problems


def job_ids_of(*batches: Iterable[Job]) -> list[uuid.UUID]:
    return [job.id for batch in batches for job in batch]


def now() -> dt.datetime:
    """The time as the workers' clock reads it (`finished_at`), to measure a recovery against."""
    return utcnow()
