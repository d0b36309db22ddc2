"""The recovery sweep: find every stranded job from the database (the truth) and resend it, once.

A job is stranded when it is queued and its message never left, or left and is no longer in the
broker (lost with a broker's data, or taken by a worker that could not reach the database and
dropped it); or when it is running and its worker is known gone (`workers.owner_gone`). A
stranded job goes back to the queue under a new `dispatch`, through a conditional UPDATE on what
the sweep read, so a job that moved on meanwhile is left alone and a late copy of its old message
is a no-op for the workers. One sweep runs for the whole cluster at a time (see
`inference.recovery`); its thresholds are `Settings.recovery`.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job, JobStatus, Worker
from sojourn.clock import utcnow
from sojourn.queue import BrokerCensus, JobQueue, message_id
from sojourn.services.lifecycle import fail_job
from sojourn.services.submission import enqueue_jobs
from sojourn.services.workers import owner_gone, owners_of
from sojourn.settings import Settings

OUT_OF_TRIES = "the job failed on every try; your credits were refunded"
FORGET_WORKERS_AFTER = dt.timedelta(days=7)


async def find_stranded_jobs(
    session: AsyncSession, settings: Settings, census: BrokerCensus | None
) -> list[Job]:
    """The jobs that will not move on by themselves (`census` None: lost messages go unseen)."""
    recovery = settings.recovery
    now = utcnow()
    queued_unsent = (
        (Job.status == JobStatus.QUEUED)
        & Job.enqueued_at.is_(None)
        & (Job.queued_at < now - dt.timedelta(seconds=recovery.unsent_after))
    )
    queued_sent = (
        (Job.status == JobStatus.QUEUED)
        & Job.enqueued_at.is_not(None)
        & (Job.enqueued_at < now - dt.timedelta(seconds=recovery.lost_after))
    )
    candidates = [queued_unsent, Job.status == JobStatus.RUNNING]
    if census is not None:
        candidates.append(queued_sent)
    jobs = (await session.scalars(select(Job).where(or_(*candidates)))).all()

    running = [job for job in jobs if job.status == JobStatus.RUNNING]
    owners = await owners_of(session, running)
    sent = [job for job in jobs if job.status == JobStatus.QUEUED and job.enqueued_at is not None]
    # Read after the rows: a message consumed since is a job claimed since, which the
    # conditional requeue then leaves alone.
    held = await census.held_message_ids() if census is not None and sent else set()

    stranded: list[Job] = []
    for job in jobs:
        if job.status == JobStatus.RUNNING:
            owner = owners.get(job.worker_incarnation) if job.worker_incarnation else None
            if owner_gone(job, owner, recovery, now=now, heartbeat_stale_after=recovery.recover_after):
                stranded.append(job)
        elif job.enqueued_at is None or message_id(job.id, job.dispatch) not in held:
            stranded.append(job)
    return stranded


async def requeue_job(session: AsyncSession, job: Job) -> bool:
    """Put a stranded job back in the queue under a new dispatch, unless it moved on meanwhile."""
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job.id,
            Job.status == job.status,
            Job.dispatch == job.dispatch,
            Job.attempts == job.attempts,
        )
        .values(
            status=JobStatus.QUEUED,
            dispatch=Job.dispatch + 1,
            enqueued_at=None,
            worker_id=None,
            worker_incarnation=None,
            worker_pid=None,
            progress=0,
        )
        .returning(Job.dispatch)
    )
    dispatch = result.scalar_one_or_none()
    if dispatch is None:
        return False
    job.status, job.dispatch = JobStatus.QUEUED, dispatch
    return True


async def recover_jobs(
    sessions: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    settings: Settings,
    census: BrokerCensus | None = None,
) -> list[uuid.UUID]:
    """Resend stranded jobs; fail (and refund) those that used up their attempts."""
    async with sessions() as session:
        stranded = await find_stranded_jobs(session, settings, census)
    resend: list[Job] = []
    for job in stranded:
        async with sessions.begin() as session:
            if job.attempts >= settings.max_attempts:
                await fail_job(session, job.id, OUT_OF_TRIES)
            elif await requeue_job(session, job):
                resend.append(job)
    await enqueue_jobs(sessions, queue, resend)
    async with sessions.begin() as session:
        await session.execute(delete(Worker).where(Worker.seen_at < utcnow() - FORGET_WORKERS_AFTER))
    return [job.id for job in resend]
