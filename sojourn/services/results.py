"""Reading job outcomes: waiting for jobs to end and describing them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from db.models import FINAL_STATUSES, WITHHELD, HeldResult, HoldStatus, Job, JobStatus
from sojourn.actions import Placement
from sojourn.errors import JobNotFound, UserError
from sojourn.settings import Settings
from sojourn.spec import IMAGES_PER_JOB
from sojourn.storage import make_storage


async def wait_for_jobs(
    sessions: async_sessionmaker[AsyncSession],
    job_ids: list[uuid.UUID],
    *,
    deadline: float,
    poll: float = 0.2,
    keep_waiting: Callable[[], bool] = lambda: True,
) -> bool:
    """Poll until every job has ended; False at the deadline or once `keep_waiting()` says no."""
    while True:
        async with sessions() as session:
            statuses = (await session.execute(select(Job.status).where(Job.id.in_(job_ids)))).scalars().all()
        if all(status in FINAL_STATUSES for status in statuses):
            return True
        if time.monotonic() >= deadline or not keep_waiting():
            return False
        await asyncio.sleep(poll)


async def job_report(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, job_id: uuid.UUID
) -> dict[str, Any]:
    """One job as the CLI prints it: id, status, cost, seeds, where its grid and images are (path or URL)."""
    storage = make_storage(settings)
    async with sessions() as session:
        job = (
            await session.execute(select(Job).where(Job.id == job_id).options(selectinload(Job.images)))
        ).scalar_one()
    grid = next((image for image in job.images if image.index == 0), None)
    cells = [image for image in job.images if image.index > 0]
    seed = job.spec.get("seed")
    return {
        "job_id": str(job.id),
        "status": job.status.value,
        "cost": job.cost,
        "prompt": job.prompt,
        "seeds": [image.seed for image in cells]
        or ([seed + i for i in range(4)] if seed is not None else []),
        "grid": storage.location(grid.storage_key) if grid else None,
        "images": [storage.location(image.storage_key) for image in cells],
        "error": job.error,
    }


def is_single_image(job: Job) -> bool:
    """An upscale's result: one image, no grid."""
    return int(job.spec.get("images", IMAGES_PER_JOB)) == 1


def placement_of(job: Job) -> Placement:
    """Which buttons a finished job's result carries: a grid's, or a single image's."""
    return "single" if is_single_image(job) else "grid"


def shown_index_of(job: Job) -> int:
    """The image a result shows (its message, the galleries' tile): the grid, or an upscale's one image."""
    return 1 if is_single_image(job) else 0


def display_key_of(job: Job) -> str | None:
    """What a result message shows: the grid, or the one image of a single-image job (an upscale)."""
    shown = shown_index_of(job)
    return next((image.storage_key for image in job.images if image.index == shown), None)


async def job_to_show(session: AsyncSession, user_id: int, job_id: uuid.UUID) -> Job:
    """A finished job the user may re-post: their own, or anyone's public one (images loaded).

    Never a result that was deleted, or that the safety check holds or removed, whoever asks:
    moderators see held results through `/mod review`.
    """
    job = (
        await session.execute(select(Job).where(Job.id == job_id).options(selectinload(Job.images)))
    ).scalar_one_or_none()
    if job is None or (job.user_id != user_id and job.spec.get("private", False)):
        # Someone else's private job is reported like a missing one: its existence is private too.
        raise JobNotFound(job_id)
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        raise UserError(
            f"Job {job_id} is still {job.status.value} ({job.progress} %): show it when it is done."
        )
    if job.status != JobStatus.SUCCEEDED:
        raise UserError(f"Job {job_id} {job.status.value} and has no images to show.")
    hold = await session.scalar(select(HeldResult.status).where(HeldResult.job_id == job_id))
    if hold == HoldStatus.HELD:
        raise UserError(
            f"Job {job_id} is held for a moderator's review: it can be shown once it is approved."
        )
    if hold == HoldStatus.REMOVED:
        raise UserError(f"Job {job_id} was removed by moderation, so it cannot be shown.")
    if job.removed_at is not None:
        raise UserError(f"Job {job_id} was deleted, so it cannot be shown.")
    if display_key_of(job) is None:
        raise UserError(f"Job {job_id} {job.status.value} and has no images to show.")
    return job


async def showable_jobs(session: AsyncSession, user_id: int, limit: int = 100) -> list[Job]:
    """The user's results that /show can post, newest first: not deleted, held or removed."""
    held = exists().where(HeldResult.job_id == Job.id, HeldResult.status.in_(WITHHELD))
    return list(
        (
            await session.execute(
                select(Job)
                .where(
                    Job.user_id == user_id, Job.status == JobStatus.SUCCEEDED, Job.removed_at.is_(None), ~held
                )
                .order_by(Job.queued_at.desc())
                .limit(limit)
            )
        ).scalars()
    )


async def deletable_jobs(session: AsyncSession, user_id: int, limit: int = 100) -> list[Job]:
    """The user's results that /delete can take down, newest first (held ones included)."""
    return list(
        (
            await session.execute(
                select(Job)
                .where(Job.user_id == user_id, Job.status == JobStatus.SUCCEEDED, Job.removed_at.is_(None))
                .order_by(Job.queued_at.desc())
                .limit(limit)
            )
        ).scalars()
    )
