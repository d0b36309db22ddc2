"""The recovery sweep: resend jobs whose message never left or whose worker vanished.

One sweep runs for the whole cluster at a time (see `inference.recovery`); its thresholds are
`Settings.recovery`.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job, JobStatus
from sojourn.clock import utcnow
from sojourn.queue import JobQueue
from sojourn.services.lifecycle import fail_job
from sojourn.services.submission import enqueue_jobs
from sojourn.settings import Settings

OUT_OF_TRIES = "the job failed on every try; your credits were refunded"


async def recover_jobs(
    sessions: async_sessionmaker[AsyncSession], queue: JobQueue, settings: Settings
) -> list[uuid.UUID]:
    """Resend stranded jobs; fail (and refund) those that used up their attempts."""
    now = utcnow()
    unsent_after = dt.timedelta(seconds=settings.recovery.unsent_after)
    recover_after = dt.timedelta(seconds=settings.recovery.recover_after)
    async with sessions() as session:
        rows = (
            (
                await session.execute(
                    select(Job).where(
                        or_(
                            (Job.status == JobStatus.QUEUED)
                            & Job.enqueued_at.is_(None)
                            & (Job.queued_at < now - unsent_after),
                            (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < now - recover_after),
                        )
                    )
                )
            )
            .scalars()
            .all()
        )
    resend: list[Job] = []
    for job in rows:
        if job.attempts >= settings.max_attempts:
            async with sessions.begin() as session:
                await fail_job(session, job.id, OUT_OF_TRIES)
        else:
            resend.append(job)
    await enqueue_jobs(sessions, queue, resend)
    return [job.id for job in resend]
