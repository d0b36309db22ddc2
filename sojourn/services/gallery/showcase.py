"""A server's showcase channel: a result that reaches the server's ❤ threshold is posted there once."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GuildSettings, Job, ShowcasePost
from sojourn.clock import utcnow
from sojourn.services.gallery.query import likes_as_of
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
            likes_as_of(utcnow()) >= GuildSettings.showcase_likes,
            ~exists().where(ShowcasePost.job_id == Job.id),
        )
    )
    return due is not None


async def record_showcase_post(
    session: AsyncSession, job_id: uuid.UUID, channel_id: int, message_id: int | None = None
) -> bool:
    """Claim the job's one showcase post; False if it was already claimed (then post nothing)."""
    try:
        async with session.begin_nested():
            session.add(
                ShowcasePost(job_id=job_id, channel_id=channel_id, message_id=message_id, posted_at=utcnow())
            )
    except IntegrityError:
        return False
    return True
