"""Removing a result everywhere (`/mod delete`, and `/delete` for its owner).

The job is marked removed (galleries, `/show` and buttons skip it), its favorites go, and the bot
deletes its Discord message. Its files stay, since a moderator may need them, unless purged; the
job row stays too, for the ledger and the log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from db.models import Favorite, Image, Job, JobStatus
from sojourn.clock import utcnow
from sojourn.errors import JobNotFound, NotYourJob, UserError
from sojourn.services.gallery.showcase import showcase_message_of
from sojourn.services.job_queries import parse_job_id
from sojourn.services.moderation import audit_log
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.permissions import Actor, require_moderator
from sojourn.storage import ImageStorage


@dataclass(frozen=True)
class Removed:
    job_id: object
    user_id: int
    channel_id: int | None
    message_id: int | None  # the Discord message to delete, if it was posted
    purged_files: int
    showcase_message: tuple[int, int] | None = None  # (channel, message) in the showcase channel


async def _load(session: AsyncSession, job_text: str) -> Job:
    job = (
        await session.execute(
            select(Job)
            .where(Job.id == parse_job_id(job_text))
            .options(selectinload(Job.images))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if job is None:
        raise JobNotFound(job_text.strip()[:40])
    return job


async def _remove(
    session: AsyncSession, storage: ImageStorage, job: Job, *, actor_id: int, purge: bool, reason: str
) -> Removed:
    if job.status != JobStatus.SUCCEEDED:
        raise UserError(
            f"Job {job.id} {job.status.value}: it has no result to delete (use /cancel for a running one)."
        )
    if job.removed_at is not None and not purge:
        raise UserError(f"Job {job.id} was already deleted.")
    job.removed_at = job.removed_at or utcnow()
    await session.execute(delete(Favorite).where(Favorite.job_id == job.id))
    job.likes = 0
    keys = [image.storage_key for image in job.images]
    if purge:
        await session.execute(delete(Image).where(Image.job_id == job.id))
    await audit_log.record(
        session,
        AuditAction.DELETE,
        guild_id=job.guild_id,
        actor_id=actor_id,
        target_user_id=job.user_id,
        job_id=job.id,
        detail=f"{'deleted, files purged' if purge else 'deleted, files kept'}: {job.prompt[:300]}",
        reason=reason,
    )
    await session.flush()
    if purge:  # after the rows are gone in this transaction; a file left behind is only disk space
        await asyncio.to_thread(_delete_files, storage, keys)
    return Removed(
        job_id=job.id,
        user_id=job.user_id,
        channel_id=job.channel_id,
        message_id=job.message_id,
        purged_files=len(keys) if purge else 0,
        showcase_message=await showcase_message_of(session, job.id),
    )


async def delete_as_moderator(
    sessions: async_sessionmaker[AsyncSession],
    storage: ImageStorage,
    actor: Actor,
    job_text: str,
    *,
    purge: bool = False,
    reason: str = "",
) -> Removed:
    """`/mod delete`: any result made in this server."""
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        job = await _load(session, job_text)
        if job.guild_id != guild_id:
            raise JobNotFound(job_text.strip()[:40])  # another server's job is not this one's business
        return await _remove(session, storage, job, actor_id=actor.user_id, purge=purge, reason=reason)


async def delete_own(
    sessions: async_sessionmaker[AsyncSession], storage: ImageStorage, user_id: int, job_text: str
) -> Removed:
    """`/delete`: the owner removes their own result (the files stay, as for a moderator's)."""
    async with sessions.begin() as session:
        job = await _load(session, job_text)
        if job.user_id != user_id:
            if job.spec.get("private"):
                raise JobNotFound(job_text.strip()[:40])
            raise NotYourJob(job.id, "delete")
        return await _remove(
            session, storage, job, actor_id=user_id, purge=False, reason="deleted by its owner"
        )


def _delete_files(storage: ImageStorage, keys: list[str]) -> None:
    for key in keys:
        storage.delete(key)
