"""Where a job stands in the queue, and roughly when it will be done.

position = queued jobs of the same queue (fast or relax) submitted before it, plus one.
ETA = rounds of work ahead of it (jobs running and queued ahead, shared among the workers now
busy) plus its own, each round lasting the median duration of recent successful jobs
(`finished_at - started_at`), or `default_seconds` while there is no history yet.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from sqlalchemy import func, select
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
    if job.status != JobStatus.QUEUED:
        return None
    # One round trip: the jobs ahead of it in its queue, the jobs running and their workers.
    mode = job.spec.get("mode", "fast")
    ahead = (
        select(func.count())
        .select_from(Job)
        .where(
            Job.status == JobStatus.QUEUED,
            Job.spec["mode"].as_string() == mode,
            (Job.queued_at < job.queued_at) | ((Job.queued_at == job.queued_at) & (Job.id < job.id)),
        )
        .scalar_subquery()
    )
    running = select(func.count(), func.count(func.distinct(Job.worker_id))).where(
        Job.status == JobStatus.RUNNING
    )
    counts = running.add_columns(ahead)
    running_now, workers, queued_ahead = (await session.execute(counts)).one()
    duration = typical if typical is not None else await typical_duration(session, default_seconds)
    rounds = math.ceil((queued_ahead + running_now) / max(workers, 1)) + 1
    return QueueEstimate(position=queued_ahead + 1, eta_seconds=rounds * duration)


def describe_eta(seconds: float) -> str:
    """ "~40 s", "~3 min", "~1 h 20 min"."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"~{minutes} min"
    return f"~{minutes // 60} h {minutes % 60} min"
