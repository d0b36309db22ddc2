"""Who may run a job: message generations, worker incarnations and their beats, and the sweep that
finds stranded jobs from the database (Postgres)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job, JobStatus, LedgerEntry, LedgerKind, Worker
from sojourn.clock import utcnow
from sojourn.services import lifecycle, submission, workers
from sojourn.services.recovery import OUT_OF_TRIES, find_stranded_jobs, recover_jobs, requeue_job
from sojourn.services.workers import WorkerProcess
from sojourn.settings import Credits, RecoverySettings, Settings

pytestmark = pytest.mark.usefixtures("pinned_clock")
_user_ids = itertools.count(70_000)
RECOVERY = RecoverySettings()
Sessions = async_sessionmaker[AsyncSession]


class Recorded:
    """A queue that records (job id, dispatch) of what it is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[uuid.UUID, int]] = []

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        self.sent.append((job_id, dispatch))


class Census:
    """A broker that holds exactly the messages a test says it holds."""

    def __init__(self, *held: str) -> None:
        self.held = set(held)

    async def held_message_ids(self) -> set[str]:
        return set(self.held)


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url, data_dir=tmp_path_factory.mktemp("data"), credits=Credits(daily_free=100)
    )


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def a_worker(
    sessions: Sessions, name: str = "w@host", *, host: str = "host", pid: int | None = None
) -> WorkerProcess:
    pid = os.getpid() if pid is None else pid
    async with sessions.begin() as session:
        incarnation = await workers.register_worker(session, name=name, host=host, pid=pid, processes=[pid])
    return WorkerProcess(name=name, incarnation=incarnation, pid=pid)


async def beat(
    sessions: Sessions, worker: WorkerProcess, processes: list[int], at: dt.datetime | None = None
) -> None:
    async with sessions.begin() as session:
        await workers.beat(session, worker.incarnation, processes, at or utcnow())


async def queued_job(sessions: Sessions, settings: Settings, queue: Recorded | None = None) -> Job:
    jobs = await submission.submit_prompt(
        sessions, settings, queue or Recorded(), user_id=next(_user_ids), text="a kite --seed 3"
    )
    return jobs[0]


async def claim(
    sessions: Sessions, job_id: uuid.UUID, worker: WorkerProcess, dispatch: int | None = 0
) -> Job | None:
    async with sessions.begin() as session:
        return await lifecycle.claim_job(session, job_id, worker, RECOVERY, dispatch=dispatch)


async def edit_job(sessions: Sessions, job_id: uuid.UUID, **values: object) -> None:
    async with sessions.begin() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        for name, value in values.items():
            setattr(job, name, value)


async def load(sessions: Sessions, job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


# -- message generations -------------------------------------------------------------------


async def test_only_a_message_of_the_current_dispatch_runs_the_job(
    sessions: Sessions, settings: Settings
) -> None:
    worker = await a_worker(sessions)
    job = await queued_job(sessions, settings)
    await edit_job(sessions, job.id, dispatch=2)  # resent twice: messages 0 and 1 are stale copies
    assert await claim(sessions, job.id, worker, dispatch=1) is None
    claimed = await claim(sessions, job.id, worker, dispatch=2)
    assert claimed is not None and claimed.attempts == 1 and claimed.worker_pid == worker.pid


async def test_a_message_from_before_dispatches_runs_a_queued_job(
    sessions: Sessions, settings: Settings
) -> None:
    worker = await a_worker(sessions)
    job = await queued_job(sessions, settings)
    assert await claim(sessions, job.id, worker, dispatch=None) is not None


async def test_two_workers_claiming_at_once_one_wins(sessions: Sessions, settings: Settings) -> None:
    first, second = await a_worker(sessions, "a@h1", host="h1"), await a_worker(sessions, "b@h2", host="h2")
    for _ in range(5):
        job = await queued_job(sessions, settings)
        claims = await asyncio.gather(claim(sessions, job.id, first), claim(sessions, job.id, second))
        assert sum(c is not None for c in claims) == 1
        assert (await load(sessions, job.id)).attempts == 1


# -- taking over a running job: only when its worker is known gone --------------------------


async def test_a_live_worker_keeps_its_job(sessions: Sessions, settings: Settings) -> None:
    owner, other = await a_worker(sessions, "a@h1", host="h1"), await a_worker(sessions, "b@h2", host="h2")
    job = await queued_job(sessions, settings)
    assert await claim(sessions, job.id, owner)
    await beat(sessions, owner, [owner.pid])  # listed after the claim, with the job's process
    assert await claim(sessions, job.id, other) is None  # a duplicate message: skipped


async def test_a_process_missing_from_its_workers_next_beat_is_gone(
    sessions: Sessions, settings: Settings
) -> None:
    owner = await a_worker(sessions, "a@h1", host="h1", pid=4_000_001)
    other = await a_worker(sessions, "b@h2", host="h2")
    job = await queued_job(sessions, settings)
    assert await claim(sessions, job.id, owner)
    started = (await load(sessions, job.id)).started_at
    assert started is not None
    # A listing taken before the claim cannot know the process: no evidence yet.
    await beat(sessions, owner, [1], at=started - dt.timedelta(milliseconds=1))
    assert await claim(sessions, job.id, other) is None
    await beat(sessions, owner, [1])  # after the claim, without the job's process: it died
    taken = await claim(sessions, job.id, other)
    assert taken is not None and taken.attempts == 2 and taken.worker_id == "b@h2"


async def test_a_stopped_or_silent_worker_is_gone(sessions: Sessions, settings: Settings) -> None:
    other = await a_worker(sessions, "b@h2", host="h2")
    for gone in ("stopped", "silent"):
        owner = await a_worker(sessions, f"{gone}@h1", host="h1")
        job = await queued_job(sessions, settings)
        assert await claim(sessions, job.id, owner)
        async with sessions.begin() as session:
            row = await session.get(Worker, owner.incarnation)
            assert row is not None
            if gone == "stopped":
                row.stopped_at = utcnow()
            else:
                row.seen_at = utcnow() - dt.timedelta(seconds=RECOVERY.worker_gone_after + 1)
        assert await claim(sessions, job.id, other) is not None, gone


async def test_a_stale_heartbeat_is_taken_over_whatever_its_worker_says(
    sessions: Sessions, settings: Settings
) -> None:
    owner, other = await a_worker(sessions, "a@h1", host="h1"), await a_worker(sessions, "b@h2", host="h2")
    job = await queued_job(sessions, settings)
    assert await claim(sessions, job.id, owner)
    await beat(sessions, owner, [owner.pid])
    await edit_job(
        sessions, job.id, heartbeat_at=utcnow() - dt.timedelta(seconds=RECOVERY.takeover_after + 1)
    )
    assert await claim(sessions, job.id, other) is not None


async def test_a_redelivery_to_the_same_worker_after_its_process_died(
    sessions: Sessions, settings: Settings
) -> None:
    me = await a_worker(sessions, "a@h1", host="h1")
    dead = WorkerProcess(name=me.name, incarnation=me.incarnation, pid=dead_pid())
    job = await queued_job(sessions, settings)
    assert await claim(sessions, job.id, dead)
    await beat(sessions, me, [me.pid, dead.pid])  # no beat has noticed yet: this host can tell
    again = await claim(sessions, job.id, me)
    assert again is not None and again.attempts == 2 and again.worker_pid == me.pid
    # And this process's own earlier claim, cut off (its task ended without an outcome).
    assert await claim(sessions, job.id, me) is not None


async def test_a_restarted_worker_ends_its_predecessor(sessions: Sessions) -> None:
    dead_before = await a_worker(sessions, "r@h", host="h", pid=dead_pid())
    alive_before = await a_worker(sessions, "s@h", host="h", pid=os.getppid())  # still running
    restarted = await a_worker(sessions, "r@h", host="h")
    also = await a_worker(sessions, "s@h", host="h")  # a misconfigured twin: the first is alive
    async with sessions() as session:
        rows = {w.id: w for w in (await session.scalars(select(Worker))).all()}
    assert rows[dead_before.incarnation].stopped_at is not None
    assert rows[restarted.incarnation].stopped_at is None
    assert rows[alive_before.incarnation].stopped_at is None and rows[also.incarnation].stopped_at is None
    # A container restarted as the same pid: the earlier one is this very pid, so it is over.
    again = await a_worker(sessions, "r@h", host="h")
    async with sessions() as session:
        assert (await session.get(Worker, restarted.incarnation, populate_existing=True)).stopped_at  # type: ignore[union-attr]
    assert again.incarnation != restarted.incarnation


# -- the sweep -----------------------------------------------------------------------------


async def test_the_sweep_resends_a_sent_message_the_broker_lost_once(
    sessions: Sessions, settings: Settings
) -> None:
    kept, lost = await queued_job(sessions, settings), await queued_job(sessions, settings)
    long_ago = utcnow() - dt.timedelta(seconds=RECOVERY.lost_after + 1)
    for job in (kept, lost):
        await edit_job(sessions, job.id, enqueued_at=long_ago)
    census = Census(f"{kept.id}.0")
    queue = Recorded()
    resent = await recover_jobs(sessions, queue, settings, census)
    assert lost.id in resent and kept.id not in resent
    assert (lost.id, 1) in queue.sent
    assert (await load(sessions, lost.id)).dispatch == 1
    census.held.add(f"{lost.id}.1")  # the resent message is in the broker now
    assert lost.id not in await recover_jobs(sessions, Recorded(), settings, census)


async def test_the_sweep_requeues_a_job_whose_worker_is_gone(sessions: Sessions, settings: Settings) -> None:
    owner = await a_worker(sessions, "gone@h1", host="h1", pid=4_000_002)
    alive = await a_worker(sessions, "alive@h2", host="h2")
    orphan, fine = await queued_job(sessions, settings), await queued_job(sessions, settings)
    assert await claim(sessions, orphan.id, owner) and await claim(sessions, fine.id, alive)
    await beat(sessions, owner, [1])  # its process died
    await beat(sessions, alive, [alive.pid])
    queue = Recorded()
    resent = await recover_jobs(sessions, queue, settings, Census())
    assert resent == [orphan.id] or (orphan.id in resent and fine.id not in resent)
    requeued = await load(sessions, orphan.id)
    assert requeued.status == JobStatus.QUEUED and requeued.dispatch == 1 and requeued.attempts == 1
    assert requeued.worker_incarnation is None and (orphan.id, 1) in queue.sent
    assert (await load(sessions, fine.id)).status == JobStatus.RUNNING


async def test_a_job_that_moved_on_after_the_sweep_read_it_is_left_alone(
    sessions: Sessions, settings: Settings
) -> None:
    worker = await a_worker(sessions)
    job = await queued_job(sessions, settings)
    await edit_job(sessions, job.id, enqueued_at=utcnow() - dt.timedelta(seconds=RECOVERY.lost_after + 1))
    async with sessions() as session:
        stranded = await find_stranded_jobs(session, settings, Census())
    assert [j.id for j in stranded if j.id == job.id] == [job.id]
    assert await claim(sessions, job.id, worker)  # the message was only in a worker's hands
    async with sessions.begin() as session:
        assert not await requeue_job(session, next(j for j in stranded if j.id == job.id))
    assert (await load(sessions, job.id)).status == JobStatus.RUNNING


async def test_a_stranded_job_out_of_tries_is_failed_and_refunded(
    sessions: Sessions, settings: Settings
) -> None:
    owner = await a_worker(sessions, "tired@h1", host="h1")
    job = await queued_job(sessions, settings)
    assert await claim(sessions, job.id, owner)
    await edit_job(sessions, job.id, attempts=settings.max_attempts)
    async with sessions.begin() as session:
        await workers.stop_worker(session, owner.incarnation)
    assert job.id not in await recover_jobs(sessions, Recorded(), settings, Census())
    failed = await load(sessions, job.id)
    assert failed.status == JobStatus.FAILED and failed.error == OUT_OF_TRIES
    async with sessions() as session:
        kinds = (await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == job.id))).all()
    assert sorted(kinds) == sorted([LedgerKind.HOLD, LedgerKind.REFUND])
