"""A job's life on a worker: claim, progress, complete, fail, cancel.

Status moves only through conditional UPDATEs (`WHERE status IN …`), so a cancel racing a
completion, or two deliveries of one message, have exactly one winner. Settle and refund
share the idempotency key `final:<job id>`: a job is charged or refunded, once, never both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ACTIVE_STATUSES, Image, Job, JobStatus, LedgerKind
from sojourn.clock import utcnow
from sojourn.errors import JobAlreadyEnded, JobNotFound, NotYourJob
from sojourn.services import credits
from sojourn.services.workers import WorkerProcess, owner_gone, owner_of
from sojourn.settings import RecoverySettings


@dataclass(frozen=True)
class StoredImage:
    index: int
    seed: int
    width: int
    height: int
    storage_key: str
    # The image safety check's score (0 safe … 1 explicit); None: the check was off or failed.
    safety_score: float | None = None


async def claim_job(
    session: AsyncSession,
    job_id: uuid.UUID,
    worker: WorkerProcess,
    recovery: RecoverySettings,
    *,
    dispatch: int | None = None,
) -> Job | None:
    """Mark a job running in this worker process, or return None when there is nothing to do.

    Only a message of the job's current `dispatch` counts (None: a message from before dispatches
    were numbered). A queued job is claimed; a running one is taken over only when its worker is
    known gone (`workers.owner_gone`), else it is left to its worker. The claim is a conditional
    UPDATE on what was read, so of two workers claiming at once exactly one wins.
    """
    job = await session.get(Job, job_id, populate_existing=True)
    if job is None or (dispatch is not None and dispatch != job.dispatch):
        return None
    if job.status == JobStatus.RUNNING:
        owner = await owner_of(session, job)
        gone = worker.left_behind(job) or owner_gone(
            job, owner, recovery, now=utcnow(), heartbeat_stale_after=recovery.takeover_after
        )
        if not gone:
            return None
    elif job.status != JobStatus.QUEUED:
        return None
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == job.status,
            Job.dispatch == job.dispatch,
            Job.attempts == job.attempts,
        )
        .values(
            status=JobStatus.RUNNING,
            worker_id=worker.name,
            worker_incarnation=worker.incarnation,
            worker_pid=worker.pid,
            started_at=now,
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            progress=0,
            error=None,
        )
        .returning(Job.id)
    )
    if result.scalar_one_or_none() is None:
        return None
    # A half-run attempt may have left image rows behind; this attempt redoes them all.
    await session.execute(delete(Image).where(Image.job_id == job_id))
    return await session.get(Job, job_id, populate_existing=True)


async def record_progress(
    session: AsyncSession, job_id: uuid.UUID, attempt: int, percent: int
) -> JobStatus | None:
    """Store progress and the heartbeat of the job's `attempt`-th claim; returns the job's status.

    Cancelled means: stop. A status other than running (or a later attempt) means the job is no
    longer this claim's.
    """
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts == attempt, Job.status == JobStatus.RUNNING)
        .values(progress=percent, heartbeat_at=utcnow())
        .returning(Job.status)
    )
    status = result.scalar_one_or_none()
    if status is None:
        status = await session.scalar(select(Job.status).where(Job.id == job_id))
    return status


async def complete_job(
    session: AsyncSession, job_id: uuid.UUID, attempt: int, images: Sequence[StoredImage]
) -> bool:
    """Record the images and settle the hold; False when the job was cancelled or taken over meanwhile."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.attempts == attempt)
        .values(status=JobStatus.SUCCEEDED, progress=100, finished_at=utcnow(), error=None)
        .returning(Job.user_id, Job.spec)
    )
    row = result.one_or_none()
    if row is None:
        return False
    user_id, spec = row
    public = not spec.get("private", False)
    session.add_all(
        Image(
            job_id=job_id,
            index=image.index,
            seed=image.seed,
            width=image.width,
            height=image.height,
            storage_key=image.storage_key,
            public=public,
            safety_score=image.safety_score,
        )
        for image in images
    )
    await credits.record_entry(
        session, user_id=user_id, amount=0, kind=LedgerKind.SETTLE, key=f"final:{job_id}", job_id=job_id
    )
    return True


async def fail_job(session: AsyncSession, job_id: uuid.UUID, error: str) -> bool:
    """Fail an unfinished job and refund its hold; False if it had already ended."""
    return await _end_with_refund(session, job_id, JobStatus.FAILED, error)


async def cancel_job(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Cancel a queued or running job and refund it in full (the worker stops at its next step)."""
    return await _end_with_refund(session, job_id, JobStatus.CANCELLED, "cancelled")


async def _end_with_refund(session: AsyncSession, job_id: uuid.UUID, status: JobStatus, error: str) -> bool:
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
        # Freeing the button press's key lets the same press make a new job after this one.
        .values(status=status, finished_at=utcnow(), error=error, request_key=None)
        .returning(Job.user_id, Job.cost)
    )
    row = result.one_or_none()
    if row is None:
        return False
    user_id, cost = row
    await credits.record_entry(
        session,
        user_id=user_id,
        amount=cost,
        kind=LedgerKind.REFUND,
        key=f"final:{job_id}",
        job_id=job_id,
        note=error[:200],
    )
    return True


async def cancel_user_job(
    sessions: async_sessionmaker[AsyncSession], user_id: int, job_id: uuid.UUID | None
) -> Job:
    """Cancel one of the user's jobs (their latest active one when `job_id` is None), refunded in full.

    A running job is interrupted by its worker at the next denoising step; the partial work is
    thrown away, so all of the hold comes back, as for a queued job.
    """
    async with sessions.begin() as session:
        if job_id is None:
            job = await session.scalar(
                select(Job)
                .where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES))
                .order_by(Job.queued_at.desc())
                .limit(1)
            )
            if job is None:
                raise JobNotFound.none_active()
        else:
            job = await session.get(Job, job_id)
            if job is None:
                raise JobNotFound(job_id)
            if job.user_id != user_id:
                raise NotYourJob(job_id, "cancel")
        if job.status not in ACTIVE_STATUSES or not await cancel_job(session, job.id):
            await session.refresh(job)
            raise JobAlreadyEnded(job.id, job.status.value)
        await session.refresh(job)
    return job
