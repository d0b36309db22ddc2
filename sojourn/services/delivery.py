"""Bookkeeping of results sent to Discord: which message shows a job, which outcomes are delivered.

The database decides what still needs delivering: a job that ended, came from a channel and has
no `delivered_at` is undelivered, whatever the bot process remembers. Delivery is at least once:
the bot posts, then marks; a crash in between re-posts the same result after a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.models import FINAL_STATUSES, Job
from sojourn.clock import utcnow

DELIVERY_ERROR_CHARS = 300


@dataclass(frozen=True)
class DeliveryFailure:
    job_id: uuid.UUID
    prompt: str
    channel_id: int | None
    reason: str


async def record_message(session: AsyncSession, job_id: uuid.UUID, message_id: int) -> None:
    """Remember the bot's own message that shows this job (edited with the bot token, not a webhook)."""
    await session.execute(update(Job).where(Job.id == job_id).values(message_id=message_id))


async def job_with_images(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    return (
        await session.execute(select(Job).where(Job.id == job_id).options(selectinload(Job.images)))
    ).scalar_one_or_none()


async def undelivered_jobs(
    session: AsyncSession,
    *,
    guild_ids: Collection[int] | None = None,
    include_direct: bool = True,
    limit: int = 50,
) -> list[uuid.UUID]:
    """Ended jobs asked for in a channel whose outcome is not delivered, oldest first.

    `guild_ids` limits them to the guilds this bot process serves (None: all guilds), and
    `include_direct` says whether jobs from direct messages (no guild) are included.
    """
    query = (
        select(Job.id)
        .where(
            Job.status.in_(FINAL_STATUSES),
            Job.delivered_at.is_(None),
            Job.channel_id.is_not(None),
        )
        .order_by(Job.finished_at)
        .limit(limit)
    )
    if guild_ids is not None:
        query = query.where(Job.guild_id.is_(None) | Job.guild_id.in_(list(guild_ids)))
    if not include_direct:
        query = query.where(Job.guild_id.is_not(None))
    return list((await session.execute(query)).scalars())


async def mark_delivered(session: AsyncSession, job_id: uuid.UUID, message_id: int | None) -> bool:
    """Mark the outcome delivered (in `message_id`); False if it already was."""
    values: dict[str, object] = {"delivered_at": utcnow(), "delivery_error": None}
    if message_id is not None:
        values["message_id"] = message_id
    result = await session.execute(
        update(Job).where(Job.id == job_id, Job.delivered_at.is_(None)).values(**values).returning(Job.id)
    )
    return result.scalar_one_or_none() is not None


async def mark_undeliverable(session: AsyncSession, job_id: uuid.UUID, reason: str) -> bool:
    """Give up on posting the outcome (channel gone, permission lost); /info tells the user once."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.delivered_at.is_(None))
        .values(
            delivered_at=utcnow(), delivery_error=reason[:DELIVERY_ERROR_CHARS], delivery_error_reported=False
        )
        .returning(Job.id)
    )
    return result.scalar_one_or_none() is not None


async def take_unreported_failures(session: AsyncSession, user_id: int) -> list[DeliveryFailure]:
    """The user's undeliverable results not yet reported to them, marked reported now."""
    rows = (
        await session.execute(
            update(Job)
            .where(
                Job.user_id == user_id,
                Job.delivery_error.is_not(None),
                Job.delivery_error_reported.is_(False),
            )
            .values(delivery_error_reported=True)
            .returning(Job.id, Job.prompt, Job.channel_id, Job.delivery_error)
        )
    ).all()
    return [
        DeliveryFailure(job_id=job_id, prompt=prompt, channel_id=channel_id, reason=reason or "")
        for job_id, prompt, channel_id, reason in rows
    ]
