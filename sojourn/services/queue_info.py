"""Where a job stands in the queue, and roughly when it will be done.

position = queued jobs of the same queue (fast or relax) submitted before it, plus one.
ETA = rounds of work ahead of it (jobs running and queued ahead, shared among the workers now
busy) plus its own, each round lasting the median duration of recent successful jobs
(`finished_at - started_at`), or `default_seconds` while there is no history yet.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Job, JobStatus

DURATION_SAMPLE = 50  # recent successful jobs the typical duration is the median of


@dataclass(frozen=True)
class QueueEstimate:
    position: int  # 1 = next to start
    eta_seconds: float  # until the job is done


async def typical_duration(session: AsyncSession, default_seconds: float) -> float:
    """Median seconds from start to finish of the latest successful jobs."""
    rows = (
        await session.execute(
            select(Job.started_at, Job.finished_at)
            .where(
                Job.status == JobStatus.SUCCEEDED,
                Job.started_at.is_not(None),
                Job.finished_at.is_not(None),
            )
            .order_by(Job.finished_at.desc())
            .limit(DURATION_SAMPLE)
        )
    ).all()
    durations = [
        (finished - started).total_seconds()
        for started, finished in rows
        if started is not None and finished is not None
    ]
    durations = [seconds for seconds in durations if seconds > 0]
    return statistics.median(durations) if durations else default_seconds


async def estimate_for(
    session: AsyncSession, job: Job, *, default_seconds: float, typical: float | None = None
) -> QueueEstimate | None:
    """The queue position and ETA of a queued job (None once it has started)."""
    estimates = await estimates_for(session, [job], default_seconds=default_seconds, typical=typical)
    return estimates.get(job.id)


async def estimates_for(
    session: AsyncSession, jobs: Iterable[Job], *, default_seconds: float, typical: float | None = None
) -> dict[uuid.UUID, QueueEstimate]:
    """The queue positions and ETAs of those of `jobs` still queued, in one round trip (two
    without `typical`): a queue's jobs are numbered in order once, however many are asked about."""
    queued = [job.id for job in jobs if job.status == JobStatus.QUEUED]
    if not queued:
        return {}
    queue = func.coalesce(Job.spec["mode"].as_string(), "fast")
    places = (
        select(
            Job.id.label("job_id"),
            func.row_number().over(partition_by=queue, order_by=(Job.queued_at, Job.id)).label("place"),
        )
        .where(Job.status == JobStatus.QUEUED)
        .subquery()
    )
    running = (
        select(func.count().label("jobs"), func.count(func.distinct(Job.worker_id)).label("workers"))
        .where(Job.status == JobStatus.RUNNING)
        .subquery()
    )
    rows = (
        await session.execute(
            select(places.c.job_id, places.c.place, running.c.jobs, running.c.workers)
            .select_from(places.join(running, true()))
            .where(places.c.job_id.in_(queued))
        )
    ).all()
    duration = typical if typical is not None else await typical_duration(session, default_seconds)
    estimates = {}
    for job_id, place, running_now, workers in rows:
        rounds = math.ceil((place - 1 + running_now) / max(workers, 1)) + 1
        estimates[job_id] = QueueEstimate(position=place, eta_seconds=rounds * duration)
    return estimates


def describe_eta(seconds: float) -> str:
    """ "~40 s", "~3 min", "~1 h 20 min"."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"~{minutes} min"
    return f"~{minutes // 60} h {minutes % 60} min"
