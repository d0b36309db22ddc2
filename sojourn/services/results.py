"""Reading job outcomes: waiting for jobs to end and describing them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from db.models import FINAL_STATUSES, Job
from sojourn.settings import Settings
from sojourn.storage import LocalStorage


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
    """One job as the CLI prints it: id, status, cost, seeds, grid path, image paths."""
    storage = LocalStorage(settings.resolved_storage_dir)
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
        "grid": str(storage.local_path(grid.storage_key)) if grid else None,
        "images": [str(storage.local_path(image.storage_key)) for image in cells],
        "error": job.error,
    }
