"""One stranded-job sweep for the whole cluster, whichever worker happens to run it.

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
import threading
import uuid

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from db.session import make_engine, make_sessionmaker
from sojourn.queue import JobQueue
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


class RecoverySweeper:
    """Resends stranded jobs (`recover_jobs`) every `sweep_interval`, while it holds the sweep."""

    def __init__(self, settings: Settings, queue: JobQueue) -> None:
        self.settings = settings
        self.queue = queue
        self.lock = SweepLock(settings.resolved_database_url)
        self._engine = make_engine(settings.resolved_database_url, pool_size=1)
        self._sessions = make_sessionmaker(self._engine)

    async def sweep(self) -> list[uuid.UUID] | None:
        """One sweep: the jobs resent, or None when another worker holds the sweep."""
        if not await self.lock.acquire():
            return None
        return await recover_jobs(self._sessions, self.queue, self.settings)

    async def run(self, stop: threading.Event) -> None:
        """Sweep at once, then every `sweep_interval` seconds, until `stop` is set."""
        interval = self.settings.recovery.sweep_interval
        try:
            while not stop.is_set():
                try:
                    resent = await self.sweep()
                    if resent:
                        log.info("resent %d stranded jobs", len(resent))
                except Exception:
                    log.exception("job recovery failed; retrying in %.0f s", interval)
                await asyncio.to_thread(stop.wait, interval)
        finally:
            await self.close()

    async def close(self) -> None:
        await self.lock.release()
        await self._engine.dispose()


class SweeperThread:
    """A `RecoverySweeper` on a thread of its own, with its own event loop (Celery's is not asyncio)."""

    def __init__(self, sweeper: RecoverySweeper) -> None:
        self.sweeper = sweeper
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="sojourn-recovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self.sweeper.run(self._stop))
