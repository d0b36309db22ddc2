"""Which workers are alive: each worker's main process registers an incarnation and beats.

A job records who runs it (node name, incarnation, pid). It is taken from them only on evidence
that they are gone (`owner_gone`), never because they are slow: the incarnation stopped, was
replaced under its node name, or fell silent; or its latest beat, taken after the claim, no longer
lists the job's process; or, whatever the worker says, the job's own heartbeat went stale.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Job, Worker
from sojourn.clock import utcnow
from sojourn.settings import RecoverySettings


@dataclass(frozen=True)
class WorkerProcess:
    """The process running a job: its worker's node name and incarnation, and its own pid."""

    name: str
    incarnation: uuid.UUID
    pid: int

    def left_behind(self, job: Job) -> bool:
        """True when the job's claim is an earlier process's of this very incarnation, now over.

        That process is dead, or it is this one, which runs one task at a time and so is no
        longer running that claim (a redelivery after its earlier try was cut off). Only this host
        can tell at once; the worker's next beat tells everyone else.
        """
        return (
            job.worker_incarnation == self.incarnation
            and job.worker_pid is not None
            and (job.worker_pid == self.pid or not process_alive(job.worker_pid))
        )


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it is just not ours
    return True


async def register_worker(
    session: AsyncSession, *, name: str, host: str, pid: int, processes: Collection[int] = ()
) -> uuid.UUID:
    """Start a new incarnation; an earlier one of the same name on this host is over.

    Only one process can use a node name on a host at a time: an earlier incarnation is over when
    its main process is gone, or when its pid is now ours (a container restarted as pid 1).
    """
    now = utcnow()
    earlier = (
        await session.scalars(
            select(Worker).where(Worker.name == name, Worker.host == host, Worker.stopped_at.is_(None))
        )
    ).all()
    for worker in earlier:
        if worker.pid == pid or not process_alive(worker.pid):
            worker.stopped_at = now
    incarnation = uuid.uuid4()
    session.add(
        Worker(
            id=incarnation,
            name=name,
            host=host,
            pid=pid,
            processes=sorted(processes),
            started_at=now,
            seen_at=now,
        )
    )
    return incarnation


async def beat(
    session: AsyncSession, incarnation: uuid.UUID, processes: Collection[int], listed_at: dt.datetime
) -> None:
    """Note the worker alive with these pool processes, as listed at `listed_at`.

    The time is the listing's, not the write's: a process started after the listing must not be
    read as missing from it.
    """
    await session.execute(
        update(Worker)
        .where(Worker.id == incarnation, Worker.stopped_at.is_(None))
        .values(seen_at=listed_at, processes=sorted(processes))
    )


async def stop_worker(session: AsyncSession, incarnation: uuid.UUID) -> None:
    await session.execute(update(Worker).where(Worker.id == incarnation).values(stopped_at=utcnow()))


def owner_gone(
    job: Job,
    owner: Worker | None,
    recovery: RecoverySettings,
    *,
    now: dt.datetime,
    heartbeat_stale_after: float,
) -> bool:
    """Whether the worker process running `job` is known gone (see the module's docstring)."""
    if job.heartbeat_at is None or job.heartbeat_at < now - dt.timedelta(seconds=heartbeat_stale_after):
        return True
    if job.worker_incarnation is None:
        return False  # claimed before workers beat: the heartbeat alone decides
    if owner is None or owner.stopped_at is not None:
        return True
    if owner.seen_at < now - dt.timedelta(seconds=recovery.worker_gone_after):
        return True
    listed_after_claim = job.started_at is not None and owner.seen_at > job.started_at
    return listed_after_claim and job.worker_pid not in owner.processes


async def owner_of(session: AsyncSession, job: Job) -> Worker | None:
    """The worker incarnation running `job` (None when unknown)."""
    if job.worker_incarnation is None:
        return None
    return await session.get(Worker, job.worker_incarnation, populate_existing=True)


async def owners_of(session: AsyncSession, jobs: Collection[Job]) -> dict[uuid.UUID, Worker]:
    """The worker incarnations running these jobs, by id."""
    ids = {job.worker_incarnation for job in jobs if job.worker_incarnation is not None}
    if not ids:
        return {}
    rows = await session.scalars(select(Worker).where(Worker.id.in_(ids)))
    return {worker.id: worker for worker in rows}
