"""A job held between "its images are stored" and "it is SUCCEEDED", without a race.

The worker's last transaction for a job (`lifecycle.complete_job`) appends the settlement to the
user's ledger, whose foreign key needs a share lock on the user's row. While a test holds that row
`FOR UPDATE`, the transaction waits there: after the files are written, before the success is
committed. Nothing earlier in a job's run touches the user's row (Postgres only).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.models import User

HOLD_TIMEOUT = 120.0  # turns a hang into a failure; the worker reaches the lock in seconds
# pg_locks, not pg_stat_activity: that one is a snapshot frozen for the rest of our transaction.
BLOCKED_BY_ME = text(
    "SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
)


class HeldSettlement:
    """Holds the user's row locked from `hold` until `release`."""

    def __init__(self, engine: AsyncEngine, user_id: int) -> None:
        self.engine = engine
        self.user_id = user_id
        self._connection: AsyncConnection | None = None

    async def hold(self) -> None:
        self._connection = await self.engine.connect()
        await self._connection.begin()
        await self._connection.execute(select(User.id).where(User.id == self.user_id).with_for_update())

    async def wait_until_waited_on(self, timeout: float = HOLD_TIMEOUT) -> None:  # noqa: ASYNC109 (another process)
        """Until another session (the worker's final transaction) waits for the lock."""
        assert self._connection is not None, "hold first"
        deadline = time.monotonic() + timeout
        while not await self._connection.scalar(BLOCKED_BY_ME):
            if time.monotonic() > deadline:
                pytest.fail(f"nothing waited for user {self.user_id}'s row in {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def release(self) -> None:
        if self._connection is not None:
            await self._connection.rollback()
            await self._connection.close()
            self._connection = None
