"""One recovery sweep for the cluster: an advisory lock on Postgres picks the sweeper; on SQLite the
one embedded worker always sweeps."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from db.migrate import upgrade_async
from db.models import Job, JobStatus
from inference.recovery import RecoverySweeper, SweepLock
from sojourn.clock import utcnow
from sojourn.services.submission import submit_prompt
from sojourn.settings import Settings

# The backend holding an advisory lock in this database: the sweeper's (a bigint key is split into
# classid, the high half, and objid, the low half; objsubid 1 marks a single-bigint key).
KILL_THE_LOCK_HOLDER = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
    "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class Recorded:
    """A queue that records what it is sent."""

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        self.sent.append(job_id)


async def test_one_sweeper_at_a_time_and_another_takes_over_when_it_goes(database_url: str) -> None:
    first, second, third = SweepLock(database_url), SweepLock(database_url), SweepLock(database_url)
    try:
        assert await first.acquire()
        assert not await second.acquire()  # tried, not waited for
        assert await first.acquire()  # still the sweeper at its next interval
        assert not await second.acquire()

        await first.release()  # a worker shutting down
        assert await second.acquire()
        assert not await first.acquire() and not await third.acquire()
        await first.release()
    finally:
        for lock in (first, second, third):
            await lock.release()


async def test_the_sweep_passes_on_when_the_sweepers_connection_dies(database_url: str) -> None:
    sweeper, waiting = SweepLock(database_url), SweepLock(database_url)
    admin = create_async_engine(database_url)
    try:
        assert await sweeper.acquire()
        assert not await waiting.acquire()
        async with admin.connect() as connection:  # as a crashed worker or a network cut would
            killed = await connection.scalar(KILL_THE_LOCK_HOLDER)
        assert killed == 1
        assert await waiting.acquire()
        assert not await sweeper.acquire()  # it notices its connection is gone, and finds the lock taken
    finally:
        await sweeper.release()
        await waiting.release()
        await admin.dispose()


async def test_only_the_lock_holder_sweeps(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path, redis_url=None)
    engine = create_async_engine(database_url)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    user_id = int(uuid.uuid4().int % 10**12)
    jobs = await submit_prompt(sessions, settings, Recorded(), user_id=user_id, text="a ship --seed 1")
    async with sessions.begin() as session:  # its worker vanished long ago
        job = await session.get(Job, jobs[0].id)
        assert job is not None
        job.status, job.worker_id, job.attempts = JobStatus.RUNNING, "gone@elsewhere", 1
        job.heartbeat_at = utcnow() - dt.timedelta(seconds=settings.recovery.recover_after + 60)

    holder_queue, other_queue = Recorded(), Recorded()
    holder, other = RecoverySweeper(settings, holder_queue), RecoverySweeper(settings, other_queue)
    try:
        assert await holder.sweep() == [job.id]
        assert await other.sweep() is None
        assert holder_queue.sent == [job.id] and other_queue.sent == []
    finally:
        await holder.close()
        await other.close()
        await engine.dispose()


async def test_on_sqlite_the_one_worker_always_sweeps(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=None)
    await upgrade_async(settings.resolved_database_url)
    one, two = RecoverySweeper(settings, Recorded()), RecoverySweeper(settings, Recorded())
    try:
        assert await one.sweep() == [] and await two.sweep() == []
    finally:
        await one.close()
        await two.close()
