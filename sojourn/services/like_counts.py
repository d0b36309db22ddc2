"""A job's ❤ count (`jobs.likes`): people who favorited any of its images, each once.

Every change to a job's favorites locks the job's row first (`lock_likes`) and recounts after
(`recount_likes`), in the same transaction: two ❤ at once are counted one after the other, and
the count is never a guess. The top gallery sorts on it through an index.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Favorite, Job


async def lock_likes(session: AsyncSession, job_id: uuid.UUID) -> None:
    """Hold the job's row until the transaction ends (before its favorites change)."""
    await session.execute(select(Job.id).where(Job.id == job_id).with_for_update())


async def recount_likes(session: AsyncSession, job_id: uuid.UUID) -> int:
    """Store and return the job's ❤ count, from its favorites as this transaction sees them."""
    await session.flush()
    count = (
        select(func.count(func.distinct(Favorite.user_id))).where(Favorite.job_id == job_id).scalar_subquery()
    )
    likes = await session.scalar(update(Job).where(Job.id == job_id).values(likes=count).returning(Job.likes))
    return int(likes or 0)
