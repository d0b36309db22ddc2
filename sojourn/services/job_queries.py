"""Reading jobs for people: a job id as typed, a user's latest jobs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Job, JobStatus
from sojourn.errors import JobNotFound


def parse_job_id(text: str) -> uuid.UUID:
    """A job id as a user types it (with or without dashes); raises `JobNotFound` otherwise."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise JobNotFound(text.strip()[:40] or "with an empty id") from None


async def recent_jobs(
    session: AsyncSession,
    user_id: int,
    *,
    statuses: Sequence[JobStatus] | None = None,
    limit: int = 100,
) -> list[Job]:
    """The user's latest jobs, newest first (for autocomplete and /info)."""
    query = select(Job).where(Job.user_id == user_id).order_by(Job.queued_at.desc()).limit(limit)
    if statuses is not None:
        query = query.where(Job.status.in_(statuses))
    return list((await session.execute(query)).scalars())
