"""Each worker's beat, and one stranded-job sweep for the whole cluster, whichever worker runs it.

Every worker's main process registers an incarnation at start and beats every `worker_beat`,
listing its pool processes, so the claim and the sweep can tell a job whose process or worker
died (`sojourn.services.workers`) within seconds, instead of waiting for its heartbeat to go stale.

Every worker's main process runs a `RecoverySweeper` thread, but only one of them sweeps: on
Postgres, the one whose dedicated connection holds a session-level advisory lock. The others try
for the lock each interval, so when the sweeper's process (or just its connection) dies, the lock
goes with the connection and another worker takes over within one interval. On SQLite there is
only the embedded setup's one worker, which always sweeps. Intervals and thresholds are
`Settings.recovery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import psutil
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from db.session import make_engine, make_sessionmaker
from sojourn.clock import utcnow
from sojourn.queue import BrokerCensus, JobQueue
from sojourn.services import workers
from sojourn.services.recovery import recover_jobs
from sojourn.settings import Settings

log = logging.getLogger(__name__)

# The advisory lock's key: any fixed bigint no other code locks; this one spells its purpose.
SWEEP_LOCK_KEY = int.from_bytes(hashlib.sha256(b"sojourn:recovery-sweep").digest()[:8], "big", signed=True)
TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")


class SweepLock:
    """Whether this process is the cluster's sweeper: it is while it holds the advisory lock."""

    def __init__(self, database_url: str) -> None:
        # No pool: closing the connection must end its database session, which frees the lock.
        self._engine: AsyncEngine | None = None
        if not database_url.startswith("sqlite"):
            self._engine = create_async_engine(database_url, poolclass=NullPool)
        self._connection: AsyncConnection | None = None

    async def acquire(self) -> bool:
        """True when this process holds the sweep now (kept, or just taken); never waits."""
        if self._engine is None:
            return True  # SQLite: one embedded worker, nobody to share with
        if self._connection is not None:
            if await self._still_connected(self._connection):
                return True
            await self._drop()  # the connection died, and the lock with it: try again below
        connection = await self._engine.connect()
        try:
            taken = await connection.scalar(TRY_LOCK, {"key": SWEEP_LOCK_KEY})
            await connection.commit()  # a session-level lock outlives the transaction; don't idle in one
        except BaseException:
            await connection.close()
            raise
        if taken:
            self._connection = connection
            return True
        await connection.close()
        return False

    async def release(self) -> None:
        """Give up the sweep (if held) so another worker takes it at its next try."""
        await self._drop()
        if self._engine is not None:
            await self._engine.dispose()

    @staticmethod
    async def _still_connected(connection: AsyncConnection) -> bool:
        try:
            await connection.execute(text("SELECT 1"))
            await connection.commit()
        except DBAPIError:
            return False
        return True

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(DBAPIError):  # already gone; so is its lock
                await connection.close()


def register_this_worker(settings: Settings, name: str) -> uuid.UUID:
    """Register this main process as a new incarnation of `name`, waiting for the database if need be."""

    async def register() -> uuid.UUID:
        engine = make_engine(settings.resolved_database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine).begin() as session:
                return await workers.register_worker(
                    session, name=name, host=socket.gethostname(), pid=os.getpid()
                )
        finally:
            await engine.dispose()

    delay = 0.5
    while True:
        try:
            return asyncio.run(register())
        except (DBAPIError, OSError) as error:
            if delay == 0.5:  # one line per outage
                log.warning("cannot register the worker yet (%s); retrying until the database answers", error)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class WorkerBeat:
    """Notes, every `worker_beat`, that this worker is alive and which pool processes it has."""

    def __init__(self, settings: Settings, incarnation: uuid.UUID) -> None:
        self.incarnation = incarnation
        self._engine = make_engine(settings.resolved_database_url, pool_size=1)
        self._sessions = make_sessionmaker(self._engine)
        self._me = psutil.Process()

    async def beat(self) -> None:
        listed_at = utcnow()  # before listing: a process born after it is not "missing" from it
        processes = [self._me.pid, *(child.pid for child in self._me.children())]
        async with self._sessions.begin() as session:
            await workers.beat(session, self.incarnation, processes, listed_at)

    async def stop(self) -> None:
        """Mark this incarnation over, so its jobs (none, after a warm shutdown) are free at once."""
        try:
            async with self._sessions.begin() as session:
                await workers.stop_worker(session, self.incarnation)
        finally:
            await self._engine.dispose()


class RecoverySweeper:
    """Resends stranded jobs (`recover_jobs`) every `sweep_interval`, while it holds the sweep."""

    def __init__(self, settings: Settings, queue: JobQueue, census: BrokerCensus | None = None) -> None:
        self.settings = settings
        self.queue = queue
        self.census = census
        self.lock = SweepLock(settings.resolved_database_url)
        self._engine = make_engine(settings.resolved_database_url, pool_size=1)
        self._sessions = make_sessionmaker(self._engine)

    async def sweep(self) -> list[uuid.UUID] | None:
        """One sweep: the jobs resent, or None when another worker holds the sweep."""
        if not await self.lock.acquire():
            return None
        return await recover_jobs(self._sessions, self.queue, self.settings, self.census)

    async def close(self) -> None:
        await self.lock.release()
        await self._engine.dispose()


class SweeperThread:
    """The main process's beat and sweep, on a thread of its own with its own event loop (Celery's
    is not asyncio): beat every `worker_beat`, sweep every `sweep_interval`, until stopped."""

    def __init__(self, sweeper: RecoverySweeper, beat: WorkerBeat | None = None) -> None:
        self.sweeper = sweeper
        self.beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="sojourn-recovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self.run())

    async def run(self) -> None:
        recovery = self.sweeper.settings.recovery
        next_sweep = 0.0
        failing: set[str] = set()  # what is failing now: logged once per outage, not every round
        try:
            while not self._stop.is_set():
                if self.beat is not None:
                    await self._guarded("beat", self.beat.beat(), failing)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + recovery.sweep_interval
                    resent = await self._guarded("sweep", self.sweeper.sweep(), failing)
                    if resent:
                        log.info("resent %d stranded jobs", len(resent))
                # asyncio's sleep, not the event's timed wait: that one can stall under libfaketime
                # (`make test-dates`), whose clocks are shifted; `stop` is checked every round.
                await asyncio.sleep(min(recovery.worker_beat, recovery.sweep_interval))
        finally:
            with contextlib.suppress(Exception):
                await self.sweeper.close()
            if self.beat is not None:
                with contextlib.suppress(Exception):
                    await self.beat.stop()

    @staticmethod
    async def _guarded(name: str, step: Any, failing: set[str]) -> Any:
        try:
            result = await step
        except Exception as error:
            if name not in failing:
                failing.add(name)
                log.warning("the worker's %s failed (%s); retrying until it works", name, error)
            return None
        if name in failing:
            failing.discard(name)
            log.info("the worker's %s works again", name)
        return result
