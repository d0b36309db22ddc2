"""Bookkeeping of results sent to Discord: which message shows a job, which outcomes are delivered.

The database decides what still needs delivering: a job that ended, came from a channel and has
no `delivered_at` is undelivered, whatever the bot process remembers. Delivery is at least once:
the bot posts, then marks; a crash in between re-posts the same result after a restart.

A result the safety check held is delivered as a notice (it counts as delivered); once a moderator
approves it, it awaits delivery again until its message shows the result: a hold approved at or
after `delivered_at` means the message still shows the notice. No extra column says so, so an
approval that the bot never heard about (a restart, another shard) is still found by the sweep.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, bindparam, exists, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.models import FINAL_STATUSES, HeldResult, HoldStatus, Job
from sojourn.clock import utcnow
from sojourn.services import queue_info
from sojourn.services.queue_info import QueueEstimate

DELIVERY_ERROR_CHARS = 300


@dataclass(frozen=True)
class DeliveryFailure:
    job_id: uuid.UUID
    prompt: str
    channel_id: int | None
    reason: str


@dataclass(frozen=True)
class Outcome:
    """An ended (or running) job as delivery needs it: its images, and what the safety check decided."""

    job: Job
    hold: HoldStatus | None  # None: the check held nothing
    decided_at: dt.datetime | None  # when a moderator decided the hold

    @property
    def awaiting_delivery(self) -> bool:
        """Ended, asked for in a channel, and its message does not show the outcome yet."""
        job = self.job
        if job.status not in FINAL_STATUSES or job.channel_id is None:
            return False
        return job.delivered_at is None or self.redelivery

    @property
    def redelivery(self) -> bool:
        """Approved after its held notice was delivered: the notice becomes the result."""
        return (
            self.hold == HoldStatus.APPROVED
            and self.job.delivered_at is not None
            and self.decided_at is not None
            and self.decided_at >= self.job.delivered_at
        )


def _approved_since_delivered() -> ColumnElement[bool]:
    return exists().where(
        HeldResult.job_id == Job.id,
        HeldResult.status == HoldStatus.APPROVED,
        HeldResult.decided_at >= Job.delivered_at,
    )


def _awaiting() -> ColumnElement[bool]:
    return or_(Job.delivered_at.is_(None), _approved_since_delivered())


async def outcome_of(session: AsyncSession, job_id: uuid.UUID) -> Outcome | None:
    """The job with its images and its hold; None if there is no such job."""
    job = await job_with_images(session, job_id)
    if job is None:
        return None
    # Read after the job: a hold is written in the transaction that ends the job, so it is seen.
    held = (
        await session.execute(
            select(HeldResult.status, HeldResult.decided_at).where(HeldResult.job_id == job_id)
        )
    ).one_or_none()
    return Outcome(job=job, hold=held.status if held else None, decided_at=held.decided_at if held else None)


async def waiting_views(
    session: AsyncSession, job_ids: Sequence[uuid.UUID], *, default_seconds: float, typical: float
) -> list[tuple[Job | None, QueueEstimate | None]]:
    """For the waiting messages of new jobs: each job as it is now and, while it is queued, its
    place and ETA; two statements however many jobs (a burst's messages are read together)."""
    jobs = {job.id: job for job in await session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    estimates = await queue_info.estimates_for(
        session, jobs.values(), default_seconds=default_seconds, typical=typical
    )
    return [(jobs.get(job_id), estimates.get(job_id)) for job_id in job_ids]


async def is_removed(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Deleted by its owner or a moderator (`/delete`, `/mod delete`), or removed by the check."""
    return await session.scalar(select(Job.removed_at).where(Job.id == job_id)) is not None


async def record_messages(session: AsyncSession, shown: Sequence[tuple[uuid.UUID, int]]) -> None:
    """Remember the bot's own message that shows each job (edited with the bot token, not a
    webhook): one executemany for a burst's messages."""
    jobs = Job.table()
    await session.execute(
        update(jobs).where(jobs.c.id == bindparam("job")).values(message_id=bindparam("message")),
        [{"job": job_id, "message": message_id} for job_id, message_id in shown],
    )


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
    """Ended jobs asked for in a channel whose outcome is not delivered, oldest first, then
    approved results whose message still shows the held notice.

    `guild_ids` limits them to the guilds this bot process serves (None: all guilds), and
    `include_direct` says whether jobs from direct messages (no guild) are included.
    """
    undelivered = select(Job.id).where(Job.delivered_at.is_(None)).order_by(Job.finished_at)
    # Two queries: the first stays on the delivery index, the second starts from the approved holds.
    approved = (
        select(Job.id)
        .join(HeldResult, HeldResult.job_id == Job.id)
        .where(HeldResult.status == HoldStatus.APPROVED, HeldResult.decided_at >= Job.delivered_at)
        .order_by(HeldResult.decided_at)
    )
    found: list[uuid.UUID] = []
    for query in (undelivered, approved):
        query = query.where(Job.status.in_(FINAL_STATUSES), Job.channel_id.is_not(None)).limit(limit)
        if guild_ids is not None:
            query = query.where(Job.guild_id.is_(None) | Job.guild_id.in_(list(guild_ids)))
        if not include_direct:
            query = query.where(Job.guild_id.is_not(None))
        found.extend((await session.execute(query)).scalars())
    return found[:limit]


async def mark_delivered(
    session: AsyncSession,
    job_id: uuid.UUID,
    message_id: int | None,
    *,
    held_notice: bool = False,
    again: bool = False,
) -> bool:
    """Mark the outcome delivered (in `message_id`); False if it already was.

    `held_notice`: the message shows the held notice. A moderator who approved the result while
    it was being posted made that notice stale: it is marked as delivered before the approval,
    so the sweep delivers the result. `again`: an approved result shown on request, whatever
    the marks say (after an approval, the bot asks for that at once).
    """
    delivered_at = utcnow()
    if held_notice:
        decided = (
            await session.execute(
                select(HeldResult.status, HeldResult.decided_at)
                .where(HeldResult.job_id == job_id)
                .with_for_update()
            )
        ).one_or_none()
        if decided is not None and decided.status == HoldStatus.APPROVED and decided.decided_at is not None:
            delivered_at = min(delivered_at, decided.decided_at)
    values: dict[str, object] = {"delivered_at": delivered_at, "delivery_error": None}
    if message_id is not None:
        values["message_id"] = message_id
    due = true() if again else _awaiting()
    result = await session.execute(
        update(Job).where(Job.id == job_id, due).values(**values).returning(Job.id)
    )
    return result.scalar_one_or_none() is not None


async def mark_undeliverable(session: AsyncSession, job_id: uuid.UUID, reason: str) -> bool:
    """Give up on posting the outcome (channel gone, permission lost); /info tells the user once."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, _awaiting())
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
