"""A server's showcase channel: a result that reaches the server's ❤ threshold is posted there once.

A threshold of 0 posts every public upscale (a grid needs at least one ❤): it is checked when a
result is delivered, and a ❤ checks it again for a threshold above 0.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import GuildSettings, Job, JobKind, ShowcasePost
from sojourn.clock import utcnow
from sojourn.services.gallery.visibility import visible_in_gallery


async def showcase_due(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Whether the job should be posted to its server's showcase now (visible, enough ❤, not yet)."""
    due = await session.scalar(
        select(Job.id)
        .join(GuildSettings, GuildSettings.guild_id == Job.guild_id)
        .where(
            Job.id == job_id,
            visible_in_gallery(),
            GuildSettings.showcase_channel_id.is_not(None),
            GuildSettings.showcase_likes.is_not(None),
            Job.likes >= GuildSettings.showcase_likes,
            or_(GuildSettings.showcase_likes > 0, Job.kind == JobKind.UPSCALE),
            ~exists().where(ShowcasePost.job_id == Job.id),
        )
    )
    return due is not None


async def record_showcase_post(session: AsyncSession, job_id: uuid.UUID, channel_id: int) -> bool:
    """Claim the job's one showcase post; False if it was already claimed (then post nothing)."""
    try:
        async with session.begin_nested():
            session.add(ShowcasePost(job_id=job_id, channel_id=channel_id, posted_at=utcnow()))
    except IntegrityError:
        return False
    return True


async def record_showcase_message(
    sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID, message_id: int
) -> None:
    """The showcase message that was posted for the claim (so a moderator's removal can find it)."""
    async with sessions.begin() as session:
        await session.execute(
            update(ShowcasePost).where(ShowcasePost.job_id == job_id).values(message_id=message_id)
        )


async def showcase_message_of(session: AsyncSession, job_id: uuid.UUID) -> tuple[int, int] | None:
    """(channel id, message id) of the job's showcase post, to delete with the result."""
    row = (
        await session.execute(
            select(ShowcasePost.channel_id, ShowcasePost.message_id).where(ShowcasePost.job_id == job_id)
        )
    ).one_or_none()
    if row is None or row.message_id is None:
        return None
    return row.channel_id, row.message_id
